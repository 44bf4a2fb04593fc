"""Exact K-Means for images: Lloyd's algorithm on the distinct colors.

Lloyd's algorithm on the distinct rows of ``X`` weighted by how often each
occurs has the same objective, the same iterations and the same fixed points
as Lloyd on every sample, and images repeat colors a lot. For 8-bit data of
up to four channels, four more steps make it fast:

1. Distinct colors come from sorting one packed integer key per pixel,
   never from comparing rows; for millions of RGB pixels, from counting them
   in cache-sized tables (``colors.py``, ``_colors.pyx``).
2. Samples that repeat (an image's pixels, up to ``REPLAY_MAX_SAMPLES``)
   get KMeans's own k-means++ seeds, drawn over the samples in their order
   (``seeding.py``, ``_seeding.pyx``), and Lloyd's passes from them run on
   the distinct colors: KMeans's run continued to a fixed point. Otherwise
   (histograms given as rows and weights, larger images), seeding and the
   first Lloyd passes run on a coarse color histogram (the weighted mean
   color of each occupied cell of a 32-level grid), a few thousand points
   however large the image. For large codebooks, no histogram has enough
   cells: the seeds are drawn on the distinct colors, and the seeding's
   Lloyd run is the fit.
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

import functools
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from . import grid, lloyd, progress, sweep, threads
from .colors import (
    distinct_keys,
    group_sums,
    levels,
    look_up,
    pack,
    unique_rows,
    unpack,
)
from .histogram import Histogram
from .seeding import best_of, kmeans_plusplus_by_products, seed

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
# General vectors of more features are fitted by scikit-learn's KMeans
# itself: the search grid prunes little there, and KMeans's passes (matrix
# products) are faster: on load_digits (64 features) and 4x4 blocks of a
# photo (16) at K = 256, the grid's passes took 2.8 and 2.7 times
# KMeans's time.
GRID_MAX_FEATURES = 4
# When samples repeat, up to this many, k-means++ draws as KMeans draws on
# them (in their order, with their weights: tables of about 30 bytes a
# sample), and Lloyd runs on the distinct rows from those seeds: the fit is
# then KMeans's run continued to a fixed point, at 1.2 to 2.4 times the
# time of seeding and first converging on coarse color histograms (photos,
# K = 16 to 256). Histograms given as distinct rows and weights (what
# skvq's image functions and collection fits pass) and larger images take
# that faster way, with seeds of its own.
REPLAY_MAX_SAMPLES = 2**22


@dataclass(frozen=True)
class FitParams:
    """What :func:`fit_codebook` is asked: KMeans's parameters of the fit,
    and whether to return the codes."""

    init: object
    n_init: object
    max_iter: int
    tol: float
    random_state: object
    algorithm: str = "lloyd"
    return_codes: bool = False


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

    Images (values that are levels: see :func:`~skvq._engine.colors.levels`)
    are fitted on their distinct colors: seeded as
    :class:`~sklearn.cluster.KMeans` seeds (``init``, ``n_init``, ``tol``
    and ``random_state``) on the coarse color histogram when that is much
    smaller than the set of distinct rows, else on the distinct rows, then
    by exact weighted Lloyd passes on the distinct rows until no row changes
    cluster or ``max_iter`` passes are done. Other data (:func:`_fit_vectors`)
    gets KMeans's own seeds and plain Lloyd passes over every sample.

    ``init`` may be an array of ``n_clusters`` initial centers: Lloyd's
    passes then start from them on the distinct rows (a warm start).
    ``algorithm="hartigan"`` and ``"breathing"`` continue from Lloyd's
    result with Hartigan's single-row moves or breathing k-means
    (:func:`skvq._engine.refine.hartigan`, :func:`~skvq._engine.refine.breathe`).

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
    params = FitParams(
        init, n_init, max_iter, tol, random_state, algorithm, return_codes
    )
    found = levels(X)
    if found is None:
        if sweep.suits(X) and algorithm == "lloyd":
            fitted = sweep.fit(X, sample_weight, n_clusters, params)
            if fitted is not None:
                return fitted
        return _fit_vectors(X, sample_weight, n_clusters, params)
    histogram = Histogram.of_levels(found, sample_weight)
    return _fit_levels(X, found, sample_weight, histogram, n_clusters, params)


def _fit_levels(X, found, sample_weight, histogram, n_clusters, params):
    """:func:`fit_codebook` of rows whose values are ``found`` levels, on
    their ``histogram``."""
    values, weights = histogram.rows, histogram.weights
    coordinates = histogram.coordinates
    if len(values) <= n_clusters:
        return _the_distinct_rows(X, values.astype(np.float64), params.return_codes)
    # Past the seeding, the passes run to a fixed point (tol=0) over-relaxed.
    relaxation = lloyd.RELAXATION if params.tol == 0 else 1.0

    def run(points, level_weights, centers, level_coordinates, **options):
        return lloyd.run(
            points,
            level_weights,
            centers,
            params.max_iter,
            params.tol,
            coordinates=level_coordinates,
            **{"relaxation": relaxation, **options},
        )

    def on_the_rows(centers, **options):
        return run(values, weights, centers, coordinates, return_labels=True, **options)

    if not isinstance(init := params.init, str):
        # Given centers: Lloyd from them, on the rows themselves.
        fitted = on_the_rows(np.asarray(init, dtype=np.float64))
    elif init == "k-means++" and len(values) < len(X) <= REPLAY_MAX_SAMPLES:
        fitted = _kmeans_run(found, sample_weight, histogram, n_clusters, params)
        if found.tables is not None:
            fitted = on_the_rows(_in_values(found, fitted, values, weights))
    elif histograms := coarse_levels(values, weights, coordinates, n_clusters):
        seed_points, seed_weights, _ = histograms.pop(0)
        centers = seed(
            seed_points.astype(np.float64, copy=False),
            seed_weights,
            n_clusters,
            init=init,
            n_init=params.n_init,
            max_iter=params.max_iter,
            tol=params.tol,
            random_state=params.random_state,
        )
        for points, level_weights, level_coordinates in histograms:
            centers, _, _ = run(points, level_weights, centers, level_coordinates)
        fitted = on_the_rows(centers)
    else:
        # No histogram is coarse enough: the seeds are drawn on the rows,
        # and each seeding's Lloyd run is the fit's. Plain, as the seeding's
        # always are: over-relaxed steps from seeds make more epochs (new
        # candidate lists), and at large K those cost more than the passes
        # they save.
        fitted = best_of(
            values.astype(np.float64, copy=False),
            weights,
            n_clusters,
            init=init,
            n_init=params.n_init,
            random_state=params.random_state,
            refine=functools.partial(on_the_rows, relaxation=1.0),
            coordinates=coordinates,
        )
    centers, inertia, n_iter, labels = _improve(
        values, weights, *fitted, params, coordinates
    )
    if not params.return_codes:
        return centers, inertia, n_iter
    if sample_weight is not None and not np.all(sample_weight > 0):
        # Samples of no weight may have no row in the histogram: they are
        # assigned by a new search.
        return centers, inertia, n_iter, assign(X, centers, return_distance=False)[0]
    code_dtype = np.min_scalar_type(len(centers) - 1)
    codes = look_up(found.codes, pack(coordinates.codes), labels.astype(code_dtype))
    return centers, inertia, n_iter, codes


def _kmeans_run(found, sample_weight, histogram, n_clusters, params):
    """KMeans's run on samples that repeat, continued to a fixed point.

    The seeds are those KMeans draws, over the samples in their order (see
    :func:`~skvq._engine.seeding.kmeans_plusplus`), and Lloyd runs on the
    distinct rows from them. Levels that are not their own codes (floats in
    [0, 1], 16-bit values of an 8-bit image) run on their integer codes: the
    same draws and passes as their 8-bit or 16-bit form, where distances to
    integer seeds tie exactly and scaled values would break the ties by
    their rounding. Returns Lloyd's ``(centers, inertia, n_iter, labels)``
    of the rows (in codes, then).
    """
    coordinates = histogram.coordinates
    rows, weights = histogram.rows, histogram.weights
    if found.tables is not None:
        rows = coordinates.codes
        coordinates = grid.Coordinates(
            rows, found.bits, 1.0 if found.bits == 8 else 256.0
        )
    point_of_sample = look_up(
        found.codes, pack(coordinates.codes), np.arange(len(rows), dtype=np.uint32)
    )
    if sample_weight is not None:
        # Samples of no weight have no row; they never weigh in a draw.
        point_of_sample[~(sample_weight > 0)] = 0
    rows = rows.astype(np.float64, copy=False)

    def refine(centers):
        relaxation = lloyd.RELAXATION if params.tol == 0 else 1.0
        return lloyd.run(
            rows,
            weights,
            centers,
            params.max_iter,
            params.tol,
            relaxation=relaxation,
            return_labels=True,
            coordinates=coordinates,
        )

    return best_of(
        rows,
        weights,
        n_clusters,
        init="k-means++",
        n_init=params.n_init,
        random_state=params.random_state,
        refine=refine,
        coordinates=coordinates,
        samples=(point_of_sample, sample_weight),
    )


def _in_values(found, fitted, values, weights):
    """The means of the values of the clusters of a fit on codes (an empty
    cluster: the values of its centroid's nearest codes)."""
    centers, _, _, labels = fitted
    nearest = np.clip(np.rint(centers), 0, 2**found.bits - 1).astype(found.codes.dtype)
    sums, counts = group_sums(values, weights, labels, len(centers))
    return lloyd._means(found.values(nearest), sums, counts)


def _fit_vectors(X, sample_weight, n_clusters, params):
    """:func:`fit_codebook` of data that are not levels: K-Means on every sample.

    The seeds are those :class:`~sklearn.cluster.KMeans` picks for the same
    ``random_state`` (its algorithm and draws, on the samples in order), and
    the passes are plain Lloyd's, as KMeans's, but run to a fixed point
    (with ``tol=0``): the inertia is that of ``KMeans(n_init=1)`` or lower.
    Up to ``GRID_MAX_FEATURES`` features, the engine's passes do it, exact
    with ties to the lowest index (on integer features, where distances tie
    exactly, KMeans breaks ties by the rounding of ``|c|^2 - 2 x.c``, and
    the two can reach fixed points up to 0.1 % apart either way); with more,
    KMeans's own passes, continued to a fixed point.
    """
    points = np.asarray(X, dtype=np.float64)
    weights = (
        np.ones(len(points)) if sample_weight is None else np.asarray(sample_weight)
    )
    if np.count_nonzero(weights) <= n_clusters:
        rows, _ = unique_rows(points[weights > 0])
        return _the_distinct_rows(X, rows, params.return_codes)
    by_kmeans = points.shape[1] > GRID_MAX_FEATURES
    # Where the rows fall on the grid of the engine's passes: not needed
    # when KMeans does the whole fit.
    coordinates = (
        None
        if by_kmeans and params.algorithm == "lloyd"
        else grid.Coordinates.quantized(points)
    )

    def refine(centers):
        if len(np.unique(centers, axis=0)) < n_clusters:
            # k-means++ picks a point twice only when every point is a
            # centroid already: fewer distinct rows than clusters.
            raise _FewerRows
        return lloyd.run(
            points,
            weights,
            centers,
            params.max_iter,
            params.tol,
            return_labels=True,
            coordinates=coordinates,
        )

    try:
        if by_kmeans:
            fitted = _fit_by_kmeans(points, sample_weight, n_clusters, params)
        elif isinstance(params.init, str):
            fitted = best_of(
                points,
                weights,
                n_clusters,
                init=params.init,
                n_init=params.n_init,
                random_state=params.random_state,
                refine=refine,
            )
        else:
            fitted = refine(np.array(params.init, dtype=float))
    except _FewerRows:
        rows, _ = unique_rows(points[weights > 0])
        return _the_distinct_rows(X, rows, params.return_codes)
    centers, inertia, n_iter, labels = _improve(
        points, weights, *fitted, params, coordinates
    )
    if not params.return_codes:
        return centers, inertia, n_iter
    if by_kmeans and params.algorithm == "lloyd":
        # KMeans's labels break exact ties by rounding: transform's way.
        return centers, inertia, n_iter, assign(X, centers, return_distance=False)[0]
    return centers, inertia, n_iter, labels.astype(np.min_scalar_type(n_clusters - 1))


def _fit_by_kmeans(points, sample_weight, n_clusters, params):
    """:class:`~sklearn.cluster.KMeans` itself, with the fit's parameters
    (``tol=0``: Lloyd's passes until no sample changes cluster), on the
    CPUs no other process is using (:func:`threads.spare_threads`).

    One k-means++ seeding is KMeans's own computation done faster
    (:func:`~skvq._engine.seeding.kmeans_plusplus_by_products`): KMeans
    then starts from those seeds, the same centroids as it would draw."""
    from sklearn import config_context
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    progress.say(
        f"scikit-learn's KMeans: {n_clusters:,} centroids on {len(points):,} points"
    )
    init, n_init = params.init, params.n_init
    # The data were checked (finite) by the estimator: not again.
    with (
        warnings.catch_warnings(),
        threads.spare_threads(points.size * n_clusters),
        config_context(assume_finite=True),
    ):
        if isinstance(init, str) and init == "k-means++" and n_init in (1, "auto"):
            # KMeans seeds its samples less their mean; given seeds, it
            # takes their mean off them, which gives those rows exactly.
            chosen = kmeans_plusplus_by_products(
                points - points.mean(axis=0),
                np.ones(len(points)) if sample_weight is None else sample_weight,
                n_clusters,
                check_random_state(params.random_state),
            )
            init, n_init = points[chosen], 1
        # Fewer distinct rows than clusters: found below.
        warnings.simplefilter("ignore", ConvergenceWarning)
        kmeans = KMeans(
            n_clusters,
            init=init,
            n_init=n_init,
            max_iter=params.max_iter,
            tol=params.tol,
            # Given centroids, KMeans draws nothing: no generator to make
            # (a seeded one takes 0.2 ms, 3 % of KMeans on load_digits).
            random_state=params.random_state if isinstance(init, str) else None,
        ).fit(points, sample_weight=sample_weight)
    # Fewer distinct rows than clusters leave a cluster empty (KMeans's own
    # test); only then are the centroids compared.
    if (
        np.bincount(kmeans.labels_, minlength=n_clusters).min() == 0
        and len(np.unique(kmeans.cluster_centers_, axis=0)) < n_clusters
    ):
        raise _FewerRows
    progress.say(f"KMeans: {kmeans.n_iter_} passes, inertia {kmeans.inertia_:.6g}")
    return (
        kmeans.cluster_centers_,
        kmeans.inertia_,
        kmeans.n_iter_,
        kmeans.labels_.astype(np.intp),
    )


def _improve(rows, weights, centers, inertia, n_iter, labels, params, coordinates):
    """The ``algorithm`` asked for, from Lloyd's fixed point."""
    if params.algorithm == "breathing":
        return _breathe(
            rows, weights, centers, labels, inertia, n_iter, params, coordinates
        )
    if params.algorithm == "hartigan":
        from . import refine

        centers, labels, moving_passes = refine.hartigan(
            rows, weights, centers, labels, params.max_iter
        )
        # Exact passes from there: the means and assignments of a fixed
        # point, computed as every other fit's (one pass, unless Hartigan's
        # passes ran out).
        centers, inertia, passes, labels = refine.lloyd(
            rows, weights, centers, params.max_iter, coordinates
        )
        return centers, inertia, n_iter + moving_passes + passes, labels
    return centers, inertia, n_iter, labels


def _breathe(rows, weights, centers, labels, inertia, n_iter, params, coordinates):
    """Breathing k-means from Lloyd's fixed point (``algorithm="breathing"``)."""
    from .refine import breathe

    centers, inertia, more_iter, labels = breathe(
        rows,
        weights,
        centers,
        labels,
        inertia,
        max_iter=params.max_iter,
        coordinates=coordinates,
    )
    return centers, inertia, n_iter + more_iter, labels


class _FewerRows(Exception):
    """The data have no more distinct rows (of positive weight) than clusters."""


def _the_distinct_rows(X, rows, return_codes):
    """The fit of data with at most ``n_clusters`` distinct rows: those rows."""
    codebook = np.asarray(rows, dtype=np.float64)
    if return_codes:
        return codebook, 0.0, 0, assign(X, codebook, return_distance=False)[0]
    return codebook, 0.0, 0


def coarse_levels(values, weights, coordinates, n_clusters):
    """Color histograms of increasing resolution to converge on before the rows.

    Each level holds the weighted mean color and total weight of the
    occupied cells of a grid, and the coordinates of those cells; a level
    is kept only if it has more than ``n_clusters`` cells and
    ``MIN_COARSENING`` times fewer than the next finer level. The first
    level, where the seeds are drawn, must also have a perplexity of its
    cell weights of at least ``MIN_SEEDING_CELLS * n_clusters``.
    """
    histograms, finer = [], len(values)
    means, totals = values, weights
    for bits in reversed(LEVEL_BITS):
        # Each level pools the cells of the next finer one.
        means, totals, coordinates = grid.cell_means(means, totals, coordinates, bits)
        if len(means) <= n_clusters:
            break
        if len(means) * MIN_COARSENING <= finer:
            histograms.insert(0, (means, totals, coordinates))
            finer = len(means)
    while histograms and _perplexity(histograms[0][1]) < MIN_SEEDING_CELLS * n_clusters:
        histograms.pop(0)
    return histograms


def _perplexity(weights):
    """``exp`` of the entropy of the weights: how many cells they fill."""
    p = weights / weights.sum()
    p = p[p > 0]
    return float(np.exp(-np.dot(p, np.log(p))))


def inertia(X, codebook, sample_weight=None):
    """The (weighted) sum of squared distances of the rows of ``X`` to their
    nearest codebook row; big float data are read in place
    (:func:`skvq._engine.sweep.inertia`), not copied."""
    if len(X) and levels(X) is None and sweep.suits(X):
        return sweep.inertia(X, codebook, sample_weight)
    _, sq_dist = assign(X, codebook)
    return float(sq_dist.sum() if sample_weight is None else sq_dist @ sample_weight)


def assign(X, codebook, *, return_distance=True):
    """Index of the nearest codebook row for each row of ``X`` (the lowest on ties).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
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
    code_dtype = np.min_scalar_type(max(len(codebook) - 1, 0))
    if X.shape[0] == 0:
        return np.zeros(0, dtype=code_dtype), np.zeros(0) if return_distance else None
    found = levels(X)
    if found is None and not return_distance and sweep.suits(X):
        return sweep.assign(X, codebook), None
    if found is None:
        labels, distance = grid.nearest(np.asarray(X, dtype=np.float64), codebook)
        codes = labels.astype(code_dtype)
        return codes, distance**2 if return_distance else None
    distinct = distinct_keys(found.codes)
    rows = unpack(distinct, X.shape[1], found.codes.dtype)
    coordinates = grid.Coordinates(rows, found.bits, found.level)
    labels, distance = grid.nearest(found.values(rows), codebook, coordinates)
    codes = look_up(found.codes, distinct, labels.astype(code_dtype))
    if not return_distance:
        return codes, None
    return codes, look_up(found.codes, distinct, distance**2)
