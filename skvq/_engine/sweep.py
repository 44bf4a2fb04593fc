"""K-Means on big low-dimensional float data, its rows read in place.

The passes of ``lloyd.py`` keep, for every row, a float64 copy grouped by
grid cell and bounds of 40 bytes: on millions of rows that are not levels
(no histogram to fit on), 13 times the data. For float data of at most four
features and at least ``SWEEP_MIN_ROWS`` rows, this module keeps per row
only a ``uint32`` permutation (the rows cell by cell) and a label:

1. Seeding: KMeans's seeding (``seeding.best_of``: k-means++ or random,
   ``n_init`` times) on a histogram of the rows, the weighted mean row of
   each occupied cell of a fine grid, refined by Lloyd on that histogram,
   as images are seeded on their color histogram (``kmeans.py``). No
   (trials x rows) blocks: the histogram is made in one sweep.
2. Lloyd passes over every row, read in place (float32 or float64) cell
   by cell; each row's nearest centroid is searched among its cell's
   candidates (``grid.candidates`` without slack, made anew each pass), so
   every assignment is that of a brute-force search, the lowest index on
   ties. Without bounds a pass searches every row, but a fixed point is
   exact all the same: the passes stop when no row changes cluster.
"""

from __future__ import annotations

import numpy as np

from . import _sweep, grid, lloyd, progress, threads
from .seeding import best_of

# From this many rows on, float data of at most four features are fitted
# here (the bounded passes would keep about 150 bytes a row).
SWEEP_MIN_ROWS = 1_500_000
# Cells of the seeding's histogram: at most so many, and rows for each.
HISTOGRAM_CELLS = 2**18
ROWS_PER_HISTOGRAM_CELL = 16
# The seeding needs this many histogram cells per cluster (else the
# bounded passes are used, whatever their memory).
MIN_CELLS_PER_CLUSTER = 2


def suits(X):
    """Whether ``X`` is float data that :func:`fit` is for."""
    return (
        X.dtype in (np.float32, np.float64)
        and 1 <= X.shape[1] <= 4
        and len(X) >= SWEEP_MIN_ROWS
    )


def fit(X, sample_weight, n_clusters, params):
    """:func:`~skvq._engine.kmeans.fit_codebook` of big float data.

    ``params`` is a :class:`~skvq._engine.kmeans.FitParams`. Returns None
    when the data fill too few cells of the seeding's grid (a few distinct
    values): the caller then fits them otherwise.
    """
    X = np.ascontiguousarray(X)
    weights = None if sample_weight is None else np.asarray(sample_weight, float)
    lo, span, scale = _extent(X)
    n_features = X.shape[1]
    if isinstance(params.init, str):
        # Fewer rows get fewer cells: some rows per cell on average.
        cells = min(HISTOGRAM_CELLS, len(X) // ROWS_PER_HISTOGRAM_CELL)
        bits = int(np.log2(cells)) // n_features
        totals, sums = _sweep.cell_sums(X, weights, lo, scale(bits), bits)
        occupied = totals > 0
        if np.count_nonzero(occupied) < MIN_CELLS_PER_CLUSTER * n_clusters:
            return None
        means, totals = sums[occupied] / totals[occupied, None], totals[occupied]
        del sums
        progress.say(f"histogram of {len(X):,} rows: {len(means):,} cells")
        centers = best_of(
            means,
            totals,
            n_clusters,
            init=params.init,
            n_init=params.n_init,
            random_state=params.random_state,
            refine=lambda seeds: lloyd.run(
                means, totals, seeds, params.max_iter, params.tol
            ),
        )[0]
    else:
        centers = np.array(params.init, dtype=np.float64)
    passes = _Passes(X, weights, lo, span, scale, n_clusters)
    return passes.run(centers, params)


def assign(X, codebook):
    """The nearest codeword of each row of big float data (the lowest index
    on ties), the rows read in place: one pass of :func:`fit`'s.

    Returns the codes in the smallest unsigned dtype that holds
    ``len(codebook) - 1``.
    """
    X = np.ascontiguousarray(X)
    codebook = np.ascontiguousarray(codebook, dtype=np.float64)
    passes = _Passes(X, None, *_extent(X), len(codebook))
    passes.assign(codebook, first=True)
    return passes.labels


def inertia(X, codebook, sample_weight=None):
    """The weighted sum of squared distances of the rows of big float data
    to their nearest codeword, the rows read in place (one pass of
    :func:`fit`'s)."""
    X = np.ascontiguousarray(X)
    codebook = np.ascontiguousarray(codebook, dtype=np.float64)
    weights = (
        None if sample_weight is None else np.ascontiguousarray(sample_weight, float)
    )
    passes = _Passes(X, weights, *_extent(X), len(codebook))
    return passes.assign(codebook, first=True)[3]


def _extent(X):
    """The least value of each feature, the greatest extent of the features,
    and the scale that maps them onto a grid of ``2**bits`` cells a side."""
    lo, hi = grid.column_ranges(X)
    lo = lo.astype(np.float64)
    span = float(np.max(hi.astype(np.float64) - lo))

    def scale(bits):
        return 2**bits / span if span > 0 else 0.0

    return lo, span, scale


class _Passes:
    """Lloyd passes over the rows of ``X`` in place, cell by cell."""

    def __init__(self, X, weights, lo, span, scale, n_clusters):
        n_rows, n_features = X.shape
        bits = grid.GRID_BITS
        # As grid.build: fewer rows get a coarser grid.
        while bits > grid.POOL_LEVELS and 2 ** (bits * n_features) > n_rows:
            bits -= 1
        counts, _ = _sweep.cell_sums(X, None, lo, scale(bits), bits, with_sums=False)
        occupied = np.flatnonzero(counts)
        start_of_dense = np.zeros(len(counts), dtype=np.intp)
        start_of_dense[1:] = np.cumsum(counts[:-1])
        self.order = _sweep.cell_order(X, lo, scale(bits), bits, start_of_dense)
        self.cell_start = np.append(start_of_dense[occupied], n_rows)
        cells = grid.build(
            grid.Coordinates(
                grid.cell_coordinates(occupied, bits, n_features), bits, span / 256
            ),
            n_rows,
        )
        self.pyramid = cells.pyramid(*_sweep.cell_boxes(X, self.order, self.cell_start))
        self.X, self.weights = X, weights
        self.labels = np.empty(n_rows, dtype=np.min_scalar_type(n_clusters - 1))
        self.n_threads = threads.for_work(n_rows, threads.LLOYD_ROWS)

    def assign(self, centers, first=False):
        """Assign every row; how many moved, the sums, counts and inertia."""
        indptr, indices, floors, _ = grid.candidates(self.pyramid, centers, 0.0)
        return _sweep.assign(
            self.X,
            self.weights,
            self.order,
            self.cell_start,
            indptr,
            indices,
            floors,
            centers,
            self.labels,
            first,
            self.n_threads,
        )

    def run(self, centers, params):
        """Passes from ``centers`` until no row moves, the centroids shift
        within ``tol`` or ``max_iter`` updates (as ``lloyd.run``)."""
        tol = params.tol * self._mean_variance() if params.tol > 0 else 0.0
        _, sums, counts, inertia = self.assign(centers, first=True)
        n_iter, fixed = 0, False
        while n_iter < params.max_iter:
            filled = counts > 0
            moved_to = centers.copy()
            moved_to[filled] = sums[filled] / counts[filled, None]
            shift = float(((moved_to - centers) ** 2).sum())
            centers = moved_to
            n_iter += 1
            moved, sums, counts, inertia = self.assign(centers)
            progress.say(f"Lloyd on {len(self.X):,} rows: {n_iter} passes", level=2)
            if moved == 0:
                fixed = True
                break
            if shift <= tol:
                break
        progress.say(
            f"Lloyd on {len(self.X):,} rows: "
            + ("fixed point" if fixed else "stopped by tol or max_iter")
            + f" after {n_iter} passes, inertia {inertia:.6g}"
        )
        if params.return_codes:
            return centers, inertia, n_iter, self.labels
        return centers, inertia, n_iter

    def _mean_variance(self, chunk=1 << 20):
        """Weighted variance of the features averaged over them, in chunks."""
        X, w = self.X, self.weights
        total = len(X) if w is None else float(w.sum())

        def chunks():
            for start in range(0, len(X), chunk):
                part = X[start : start + chunk].astype(np.float64)
                yield part, None if w is None else w[start : start + chunk]

        mean = sum(
            part.sum(axis=0) if pw is None else pw @ part for part, pw in chunks()
        )
        mean = mean / total
        square = sum(
            ((part - mean) ** 2).sum()
            if pw is None
            else pw @ ((part - mean) ** 2).sum(1)
            for part, pw in chunks()
        )
        return float(square) / total / X.shape[1]
