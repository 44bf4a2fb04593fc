"""State of VectorQuantizer.partial_fit between chunks."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from . import kmeans
from .colors import unique_rows


class ColorStream:
    """Exact K-Means over a stream of 8-bit samples.

    Keeps the weighted distinct rows seen so far (a color histogram: its size
    is bounded by the number of possible colors, not by the number of
    pixels) and fits the codebook on all of it at every update, exactly as
    ``fit`` would on every sample seen. Warm-starting from the previous
    codebook would be cheaper but stays in the optimum of the data seen
    first, which is measurably worse when the chunks differ (images of a
    collection).
    """

    def __init__(self, params):
        self.params = params
        self.rows = None
        self.weights = None

    def update(self, X, sample_weight):
        rows, weights = unique_rows(X, sample_weight)
        if self.rows is not None:
            rows, weights = unique_rows(
                np.concatenate([self.rows, rows]),
                np.concatenate([self.weights, weights]),
            )
        keep = weights > 0
        self.rows, self.weights = rows[keep], weights[keep]
        return kmeans.fit_codebook(
            self.rows,
            self.weights,
            self.params["n_clusters"],
            init=self.params["init"],
            n_init=self.params["n_init"],
            max_iter=self.params["max_iter"],
            tol=self.params["tol"],
            random_state=self.params["random_state"],
        )


class MiniBatchStream:
    """Mini-batch K-Means updates by scikit-learn's MiniBatchKMeans.

    Until the stream has shown ``n_clusters`` distinct rows (MiniBatchKMeans
    needs that many to seed), the rows are kept and are the codebook, as in
    ``fit``.
    """

    def __init__(self, params):
        self.params = params
        self.pending_rows = None
        self.pending_weights = None
        self.minibatch = None

    def update(self, X, sample_weight):
        rows, weights = unique_rows(X, sample_weight)
        if self.minibatch is None:
            if self.pending_rows is not None:
                rows, weights = unique_rows(
                    np.concatenate([self.pending_rows, rows]),
                    np.concatenate([self.pending_weights, weights]),
                )
            keep = weights > 0
            rows, weights = rows[keep], weights[keep]
            if len(rows) <= self.params["n_clusters"]:
                self.pending_rows, self.pending_weights = rows, weights
                return rows.astype(np.float64), 0.0, 0
            self.pending_rows = self.pending_weights = None
            self.minibatch = MiniBatchKMeans(
                n_clusters=self.params["n_clusters"],
                init=self.params["init"],
                n_init=self.params["n_init"],
                max_iter=self.params["max_iter"],
                tol=self.params["tol"],
                random_state=self.params["random_state"],
            )
        self.minibatch.partial_fit(rows.astype(np.float64), sample_weight=weights)
        codebook = self.minibatch.cluster_centers_.copy()
        _, sq_dist = kmeans.assign(rows.astype(np.float64), codebook)
        return codebook, float(np.dot(sq_dist, weights)), self.minibatch.n_steps_
