"""Exact K-Means for images: Lloyd's algorithm on the distinct colors.

Lloyd's algorithm on the distinct rows of ``X`` weighted by how often each
occurs has the same objective, the same iterations and the same fixed points
as Lloyd on every sample, and images repeat colors a lot. For 8-bit data of
up to four channels, four more steps make it fast:

1. Distinct colors come from sorting one packed integer key per pixel,
   never from comparing rows; for millions of RGB pixels, from counting them
   in cache-sized tables (``colors.py``, ``_colors.pyx``).
2. Seeding (k-means++, the seeds scikit-learn's
   :func:`~sklearn.cluster.kmeans_plusplus` picks: ``seeding.py``,
   ``_seeding.pyx``) and the first Lloyd
   passes run on a coarse color histogram (the weighted mean color of each
   occupied cell of a 32-level grid), a few thousand points however large
   the image.
3. Lloyd's iteration then runs on finer histograms (64 and 128 levels) when
   each has at most half as many cells as the next finer level (a start
   nearer the end saves more of the dearer passes than it costs), and
   finally on the distinct colors themselves, so the result is a fixed
   point of Lloyd's iteration over the full pixel set (with ``tol=0``).
   Past the seeding, the updates are over-relaxed (a centroid that keeps
   heading the same way steps ``lloyd.RELAXATION`` times the way to its mean)
   until no color moves; plain updates then land on the means.
4. The passes run in a compiled loop (``lloyd.py`` drives ``_lloyd.pyx``).
   Nearest codewords are found through a color grid (``grid.py``,
   ``_grid.pyx``): a codeword is a candidate for a cell only if it may be
   nearest to some color in the cell, which leaves a dozen per cell
   instead of K. Bounds on each color's distances to its codeword, its
   runner-up and the rest skip the colors whose codeword cannot have
   changed. They only skip work: every assignment is that of a brute-force
   search, the lowest index on ties.

Every sample is then assigned through its distinct color with a lookup
table, never through an ``n_samples x K`` distance matrix (and
``fit_codebook(..., return_codes=True)`` takes the fit's own assignment).
"""

from __future__ import annotations

import numpy as np

from . import grid, lloyd
from .colors import (
    as_uint8_if_exact,
    distinct_keys,
    is_packable,
    look_up,
    pack_uint8,
    unique_rows,
    unpack_uint8,
)
from .seeding import seed

# Levels per channel of the coarse color histograms converged on first.
LEVEL_BITS = (5, 6, 7)
# A histogram is used only when it is that many times smaller than the next.
MIN_COARSENING = 2
# The seeds are drawn on the coarsest histogram with at least this many
# cells per centroid, cells counted by the perplexity of their weights (a
# few heavy cells count as few): on fewer, k-means++ cannot put several
# seeds where many pixels are, and the fit ends up to 0.3 dB below
# KMeans on all pixels at K = 256 (benchmarks/bench_quality.py).
MIN_SEEDING_CELLS = 2


def fit_codebook(
    X,
    sample_weight,
    n_clusters,
    *,
    init,
    n_init,
    max_iter,
    tol,
    random_state,
    algorithm="lloyd",
    return_codes=False,
):
    """Fit a codebook of at most ``n_clusters`` rows to ``X``.

    Seeds as :class:`~sklearn.cluster.KMeans` does (``init``, ``n_init``,
    ``tol`` and ``random_state``) on the coarse color histogram when that is
    much smaller than the set of distinct rows, else on the distinct rows,
    then runs exact weighted Lloyd passes on the distinct rows until no row
    changes cluster or ``max_iter`` passes are done. Float ``X`` holding only
    integers 0..255 is fitted as its uint8 form, with the same result.

    ``init`` may be an array of ``n_clusters`` initial centers: Lloyd's
    passes then start from them on the distinct rows (a warm start).
    ``algorithm="breathing"`` continues from Lloyd's result with breathing
    k-means (:func:`skvq._engine.refine.breathe`).

    Returns
    -------
    codebook : ndarray of shape (n_codes, n_features), float64
        ``n_codes == n_clusters`` unless ``X`` has fewer distinct rows, in
        which case the codebook is exactly those rows.
    inertia : float
        Weighted sum of squared distances of the samples to their codeword.
    n_iter : int
        Exact Lloyd passes run over the distinct rows (0 when the codebook is
        the distinct rows).
    codes : ndarray of shape (n_samples,)
        Only if ``return_codes``: the index of each sample's codeword, from
        the last assignment of the fit (as :func:`assign` would give, in the
        same dtype).
    """
    X = as_uint8_if_exact(X)
    rows, weights = unique_rows(X, sample_weight)
    keep = weights > 0
    rows, weights = rows[keep], weights[keep]
    if len(rows) <= n_clusters:
        codebook = rows.astype(np.float64)
        if return_codes:
            return codebook, 0.0, 0, assign(X, codebook, return_distance=False)[0]
        return codebook, 0.0, 0
    if isinstance(init, str):
        levels = coarse_levels(rows, weights, n_clusters) if is_packable(rows) else []
        seed_points, seed_weights = levels.pop(0) if levels else (rows, weights)
        centers = seed(
            seed_points.astype(np.float64, copy=False),
            seed_weights,
            n_clusters,
            init=init,
            n_init=n_init,
            max_iter=max_iter,
            tol=tol,
            random_state=random_state,
        )
    else:  # given centers: Lloyd from them, on the rows themselves
        levels, centers = [], np.asarray(init, dtype=np.float64)
    # Past the seeding, the passes run to a fixed point (tol=0) over-relaxed.
    relaxation = lloyd.RELAXATION if tol == 0 else 1.0
    for points, level_weights in levels:
        centers, _, _ = lloyd.run(
            points, level_weights, centers, max_iter, tol, relaxation=relaxation
        )
    centers, inertia, n_iter, labels = lloyd.run(
        rows,
        weights,
        centers,
        max_iter,
        tol,
        relaxation=relaxation,
        return_labels=True,
    )
    if algorithm == "breathing":
        from .refine import breathe

        centers, inertia, more_iter, labels = breathe(
            rows, weights, centers, labels, inertia, max_iter=max_iter
        )
        n_iter += more_iter
    if not return_codes:
        return centers, inertia, n_iter
    if not is_packable(X) or not keep.all():
        # Samples map to distinct rows only through a new search here.
        return centers, inertia, n_iter, assign(X, centers, return_distance=False)[0]
    code_dtype = np.min_scalar_type(len(centers) - 1)
    codes = look_up(X, pack_uint8(rows), labels.astype(code_dtype))
    return centers, inertia, n_iter, codes


def coarse_levels(rows, weights, n_clusters):
    """Color histograms of increasing resolution to converge on before ``rows``.

    Each level holds the weighted mean color and total weight of the occupied
    cells of a grid; a level is kept only if it has more than ``n_clusters``
    cells and ``MIN_COARSENING`` times fewer than the next finer level. The
    first level, where the seeds are drawn, must also have a perplexity of
    its cell weights of at least ``MIN_SEEDING_CELLS * n_clusters``.
    """
    levels, finer = [], len(rows)
    means, totals = rows, weights
    for bits in reversed(LEVEL_BITS):
        # Each level pools the cells of the next finer one.
        means, totals = grid.cell_means(means, totals, bits)
        if len(means) <= n_clusters:
            break
        if len(means) * MIN_COARSENING <= finer:
            levels.insert(0, (means, totals))
            finer = len(means)
    while levels and _perplexity(levels[0][1]) < MIN_SEEDING_CELLS * n_clusters:
        levels.pop(0)
    return levels


def _perplexity(weights):
    """``exp`` of the entropy of the weights: how many cells they fill."""
    p = weights / weights.sum()
    p = p[p > 0]
    return float(np.exp(-np.dot(p, np.log(p))))


def assign(X, codebook, *, return_distance=True):
    """Index of the nearest codebook row for each row of ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), uint8 or float64
    codebook : ndarray of shape (n_codes, n_features), float64
    return_distance : bool, default=True
        Whether to return the squared distances too.

    Returns
    -------
    codes : ndarray of shape (n_samples,)
        In the smallest unsigned integer dtype that holds ``n_codes - 1``.
    sq_dist : ndarray of shape (n_samples,), float64, or None
        Squared Euclidean distance to that row, None if not
        ``return_distance``.
    """
    X = as_uint8_if_exact(X)
    code_dtype = np.min_scalar_type(max(len(codebook) - 1, 0))
    if X.shape[0] == 0:
        return np.zeros(0, dtype=code_dtype), np.zeros(0) if return_distance else None
    if not is_packable(X):
        rows, inverse = np.unique(X, axis=0, return_inverse=True)
        labels, distance = grid.nearest(rows, codebook)
        inverse = inverse.reshape(-1)
        codes = labels.astype(code_dtype)[inverse]
        return codes, (distance**2)[inverse] if return_distance else None
    distinct = distinct_keys(X)
    labels, distance = grid.nearest(unpack_uint8(distinct, X.shape[1]), codebook)
    codes = look_up(X, distinct, labels.astype(code_dtype))
    if not return_distance:
        return codes, None
    return codes, look_up(X, distinct, distance**2)
