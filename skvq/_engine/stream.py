"""The state of partial_fit between chunks."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import MiniBatchKMeans

from . import kmeans, threads
from .histogram import Histogram

# The parameters of VectorQuantizer that the fit of a stream reads.
FIT_PARAMS = ("n_clusters", "init", "n_init", "max_iter", "tol", "random_state")


class HistogramStream:
    """Exact K-Means over a stream of images (of values that are levels).

    Keeps the histogram of the samples seen so far (its size is bounded by
    the number of possible colors, not by the number of pixels) and fits
    the codebook on all of it at every update, exactly as ``fit`` would on
    the distinct rows seen weighted by their counts (K-Means on every
    sample seen; ``fit`` on the samples themselves draws its seeds over
    them in their order). Warm-starting from the previous codebook would be
    cheaper but stays in the optimum of the data seen first, which is
    measurably worse when the chunks differ (images of a collection, bands
    of one image). A chunk whose values are not levels is kept as its
    distinct rows: still exact, but the state then grows with such data.
    """

    def __init__(self, histogram=None):
        self.histogram = histogram

    def update(self, X, sample_weight, params):
        """Add a chunk; the fit (codebook, inertia, passes) on all seen."""
        chunk = Histogram.of(X, sample_weight)
        if self.histogram is not None:
            chunk = Histogram.merge([self.histogram, chunk])
        self.histogram = chunk
        return kmeans.fit_codebook(
            chunk.rows,
            chunk.weights,
            params["n_clusters"],
            init=params["init"],
            n_init=params["n_init"],
            max_iter=params["max_iter"],
            tol=params["tol"],
            random_state=params["random_state"],
        )

    @property
    def n_distinct(self):
        return len(self.histogram.rows)


class MiniBatchStream:
    """Mini-batch K-Means updates by scikit-learn's MiniBatchKMeans.

    Until the stream has shown ``n_clusters`` distinct rows (MiniBatchKMeans
    needs that many to seed), the rows are kept and are the codebook, as in
    ``fit``. When the parameters change between updates (``set_params``),
    the mini-batches start again from the codebook when ``n_clusters`` is
    the same, else from a new seeding on the next chunk.
    """

    def __init__(self):
        self.pending = None  # Histogram of the rows before seeding
        self.minibatch = None
        self.params = None

    def update(self, X, sample_weight, params):
        """Add a chunk; the codebook, inertia (of the chunk) and steps."""
        params = {name: params[name] for name in FIT_PARAMS}
        if self.minibatch is not None and params != self.params:
            self._restart(params)
        self.params = params
        X = np.asarray(X, dtype=np.float64)
        if self.minibatch is None:
            chunk = Histogram.of(X, sample_weight)
            if self.pending is not None:
                chunk = Histogram.merge([self.pending, chunk])
                # The rows kept so far seed the mini-batches with this chunk.
                X, sample_weight = chunk.rows.astype(np.float64), chunk.weights
            if len(chunk.rows) <= params["n_clusters"]:
                self.pending = chunk
                return chunk.rows.astype(np.float64), 0.0, 0
            self.pending = None
            self.minibatch = MiniBatchKMeans(**params)
        with threads.spare_threads(np.size(X) * self.minibatch.n_clusters):
            self.minibatch.partial_fit(X, sample_weight=sample_weight)
        codebook = self.minibatch.cluster_centers_.copy()
        _, sq_dist = kmeans.assign(X, codebook)
        inertia = sq_dist.sum() if sample_weight is None else sq_dist @ sample_weight
        return codebook, float(inertia), self.minibatch.n_steps_

    def _restart(self, params):
        codebook = self.minibatch.cluster_centers_
        self.minibatch = None
        if params["n_clusters"] == len(codebook):
            self.minibatch = MiniBatchKMeans(
                **{**params, "init": codebook, "n_init": 1}
            )

    @property
    def n_distinct(self):
        return None if self.pending is None else len(self.pending.rows)
