"""State of VectorQuantizer.partial_fit between chunks."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from . import _kmeans


class ColorStream:
    """Exact K-Means over a stream of 8-bit samples.

    Keeps the weighted distinct rows seen so far (a color histogram: its size
    is bounded by the number of possible colors, not by the number of
    pixels) and fits the codebook on it. Seeding from scratch every chunk
    would cost a full fit per chunk; Lloyd warm-started from the previous
    codebook is cheap but can stay in the previous data's local optimum, so
    the seeding is redone whenever the weight seen has doubled: O(log n)
    full fits over a stream of n samples, and the last one saw at least
    half of the data.
    """

    def __init__(self, params):
        self.params = params
        self.rows = None
        self.weights = None
        self.seeded_weight = 0.0
        self.codebook = None

    def update(self, X, sample_weight):
        rows, weights = _kmeans.unique_rows(X, sample_weight)
        if self.rows is not None:
            rows, weights = _kmeans.unique_rows(
                np.concatenate([self.rows, rows]),
                np.concatenate([self.weights, weights]),
            )
        keep = weights > 0
        self.rows, self.weights = rows[keep], weights[keep]
        total = float(self.weights.sum())
        n_clusters = self.params["n_clusters"]
        warm = (
            self.codebook is not None
            and len(self.codebook) == n_clusters
            and total < 2 * self.seeded_weight
        )
        if warm:
            init, n_init = self.codebook, 1
        else:
            init, n_init = self.params["init"], self.params["n_init"]
            self.seeded_weight = total
        codebook, inertia, n_iter = _kmeans.fit_codebook(
            self.rows,
            self.weights,
            n_clusters,
            init=init,
            n_init=n_init,
            max_iter=self.params["max_iter"],
            tol=self.params["tol"],
            random_state=self.params["random_state"],
        )
        self.codebook = codebook
        return codebook, inertia, n_iter


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
        rows, weights = _kmeans.unique_rows(X, sample_weight)
        if self.minibatch is None:
            if self.pending_rows is not None:
                rows, weights = _kmeans.unique_rows(
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
        _, sq_dist = _kmeans.assign(rows.astype(np.float64), codebook)
        return codebook, float(np.dot(sq_dist, weights)), self.minibatch.n_steps_
