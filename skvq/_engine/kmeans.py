"""Exact K-Means for images: Lloyd's algorithm on the distinct colors.

Lloyd's algorithm on the distinct rows of ``X`` weighted by how often each
occurs has the same objective, the same iterations and the same fixed points
as Lloyd on every sample, and images repeat colors a lot. For 8-bit data of
up to four channels, four more steps make it fast:

1. Distinct colors come from sorting one packed integer key per pixel,
   never from comparing rows; for millions of RGB pixels, from counting them
   in cache-sized tables (``_lloyd.distinct_colors``).
2. Seeding (k-means++, the seeds scikit-learn's
   :func:`~sklearn.cluster.kmeans_plusplus` picks) and the first Lloyd
   passes run on a coarse color histogram (the weighted mean color of each
   occupied cell of a 32-level grid), a few thousand points however large
   the image.
3. Lloyd's iteration then runs on finer histograms (64 and 128 levels) when
   each has at most half as many cells as the next finer level (a start
   nearer the end saves more of the dearer passes than it costs), and
   finally on the distinct colors themselves, so the result is a fixed
   point of Lloyd's iteration over the full pixel set (with ``tol=0``).
   Past the seeding, the updates are over-relaxed (a centroid that keeps
   heading the same way steps ``_RELAXATION`` times the way to its mean)
   until no color moves; plain updates then land on the means.
4. The passes run in a compiled loop (``_lloyd.pyx``). Nearest codewords are
   found through a color grid: a codeword is a candidate for a cell only if
   it may be nearest to some color in the cell, which leaves a dozen per
   cell instead of K. Bounds on each color's distances to its codeword, its
   runner-up and the rest skip the colors whose codeword cannot have
   changed. They only skip work: every assignment is that of a brute-force
   search.

Every sample is then assigned through its distinct color with a lookup
table, never through an ``n_samples x K`` distance matrix (and
``fit_codebook(..., return_codes=True)`` takes the fit's own assignment).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from . import _lloyd as _lloyd_kernels
from . import threads

# Rows of at most 4 uint8 values pack into one uint32 key; up to 3 of them
# (24-bit keys) also index a dense table of counts or codes.
_PACKABLE_MAX_FEATURES = 4
_DENSE_MAX_FEATURES = 3
# From this many samples on, distinct colors come from counting them in
# dense tables rather than from sorting their keys.
_DENSE_COUNT_MIN_SAMPLES = 2**22
# Levels per channel (as a power of two) of the finest grid of the
# nearest-codeword search, and the number of coarser grids whose candidate
# lists narrow those of the next finer one.
_GRID_BITS = 5
_POOL_LEVELS = 2
# Levels per channel of the coarse color histograms converged on first.
_LEVEL_BITS = (5, 6, 7)
# A histogram is used only when it is that many times smaller than the next.
_MIN_COARSENING = 2
# How far, in color levels, centroids may move before the candidate
# centroids of each grid cell are recomputed.
_REACH = 6.0
# Over-relaxed updates move a centroid that keeps heading the same way this
# many times the way to its mean: past the seeding (with tol=0), Lloyd's
# slow tail then takes a third to a half fewer passes to a fixed point.
_RELAXATION = 1.8


def _pack_uint8(X):
    """One uint32 key per row; keys sort like the rows (lexicographically)."""
    keys = X[:, 0].astype(np.uint32)
    for j in range(1, X.shape[1]):
        keys <<= np.uint32(8)
        keys |= X[:, j]
    return keys


def _unpack_uint8(keys, n_features):
    rows = np.empty((keys.shape[0], n_features), dtype=np.uint8)
    for j in range(n_features):
        rows[:, j] = (keys >> (8 * (n_features - 1 - j))) & 0xFF
    return rows


def _is_dense(X):
    return _is_packable(X) and X.shape[1] <= _DENSE_MAX_FEATURES


def _counts_densely(X):
    return _is_dense(X) and len(X) >= _DENSE_COUNT_MIN_SAMPLES


def _distinct_keys(X):
    """Sorted keys of the distinct rows of packable ``X``."""
    if _counts_densely(X):
        return _distinct_colors(X)[0]
    keys = np.sort(_pack_uint8(X))
    return keys[_run_starts(keys)]


def _distinct_colors(X):
    return _lloyd_kernels.distinct_colors(
        np.ascontiguousarray(X), threads.for_work(len(X), threads.COLORS)
    )


def _as_uint8_if_exact(X):
    """Float ``X`` as uint8 when it holds only integers 0..255, else ``X``.

    Such images then take the uint8 path (packed keys, color histograms),
    with the same result as their uint8 form.
    """
    if X.dtype.kind != "f" or not 1 <= X.shape[1] <= _PACKABLE_MAX_FEATURES:
        return X
    # Written so that NaN fails the test too; out-of-range casts would warn.
    if len(X) == 0 or not (X.min() >= 0 and X.max() <= 255):
        return X
    as_uint8 = X.astype(np.uint8)
    return as_uint8 if np.array_equal(as_uint8, X) else X


def _is_packable(X):
    return X.dtype == np.uint8 and 1 <= X.shape[1] <= _PACKABLE_MAX_FEATURES


def _run_starts(sorted_keys):
    """Index of the first element of each run of equal values."""
    change = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    return np.concatenate(([0], change))


def unique_rows(X, sample_weight=None):
    """Distinct rows of ``X`` and their summed weights.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None

    Returns
    -------
    rows : ndarray of shape (n_distinct, n_features), same dtype as ``X``
        Sorted lexicographically.
    weights : ndarray of shape (n_distinct,), float64
        Summed sample weights (counts when ``sample_weight`` is None).
    """
    if not _is_packable(X):
        rows, inverse = np.unique(X, axis=0, return_inverse=True)
        weights = np.bincount(
            inverse.reshape(-1), weights=sample_weight, minlength=len(rows)
        )
        return rows, weights.astype(np.float64, copy=False)
    if sample_weight is None and _counts_densely(X):
        keys, counts = _distinct_colors(X)
        return _unpack_uint8(keys, X.shape[1]), counts
    keys = _pack_uint8(X)
    if sample_weight is None:
        keys.sort()
        starts = _run_starts(keys)
        weights = np.diff(starts, append=len(keys)).astype(np.float64)
    else:
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        starts = _run_starts(keys)
        weights = np.add.reduceat(sample_weight[order], starts)
    return _unpack_uint8(keys[starts], X.shape[1]), weights


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
    return_codes=False,
):
    """Fit a codebook of at most ``n_clusters`` rows to ``X``.

    Seeds as :class:`~sklearn.cluster.KMeans` does (``init``, ``n_init``,
    ``tol`` and ``random_state``) on the coarse color histogram when that is
    much smaller than the set of distinct rows, else on the distinct rows,
    then runs exact weighted Lloyd passes on the distinct rows until no row
    changes cluster or ``max_iter`` passes are done. Float ``X`` holding only
    integers 0..255 is fitted as its uint8 form, with the same result.

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
    X = _as_uint8_if_exact(X)
    rows, weights = unique_rows(X, sample_weight)
    keep = weights > 0
    rows, weights = rows[keep], weights[keep]
    if len(rows) <= n_clusters:
        codebook = rows.astype(np.float64)
        if return_codes:
            return codebook, 0.0, 0, assign(X, codebook, return_distance=False)[0]
        return codebook, 0.0, 0
    levels = _coarse_levels(rows, weights, n_clusters) if _is_packable(rows) else []
    seed_points, seed_weights = levels.pop(0) if levels else (rows, weights)
    centers = _seed(
        seed_points.astype(np.float64, copy=False),
        seed_weights,
        n_clusters,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
    )
    # Past the seeding, the passes run to a fixed point (tol=0) over-relaxed.
    relaxation = _RELAXATION if tol == 0 else 1.0
    for points, level_weights in levels:
        centers, _, _ = _lloyd(
            points, level_weights, centers, max_iter, tol, relaxation=relaxation
        )
    centers, inertia, n_iter, labels = _lloyd(
        rows,
        weights,
        centers,
        max_iter,
        tol,
        relaxation=relaxation,
        return_labels=True,
    )
    if not return_codes:
        return centers, inertia, n_iter
    if not _is_packable(X) or not keep.all():
        # Samples map to distinct rows only through a new search here.
        return centers, inertia, n_iter, assign(X, centers, return_distance=False)[0]
    code_dtype = np.min_scalar_type(len(centers) - 1)
    codes = _look_up(X, _pack_uint8(rows), labels.astype(code_dtype))
    return centers, inertia, n_iter, codes


def _seed(points, weights, n_clusters, *, init, n_init, max_iter, tol, random_state):
    """Lloyd's fixed point from the best of ``n_init`` seedings, as in KMeans.

    ``n_init="auto"`` runs one k-means++ seeding or ten random ones, like
    :class:`~sklearn.cluster.KMeans`; "random" draws distinct points with
    probability proportional to their weight.
    """
    random_state = check_random_state(random_state)
    if n_init == "auto":
        n_init = 1 if init == "k-means++" else 10
    best_centers, best_inertia = None, np.inf
    for _ in range(n_init):
        if init == "k-means++":
            chosen = _kmeans_plusplus(points, weights, n_clusters, random_state)
        else:
            chosen = random_state.choice(
                len(points), n_clusters, replace=False, p=weights / weights.sum()
            )
        centers = points[chosen]
        centers, inertia, _ = _lloyd(points, weights, centers, max_iter, tol)
        if inertia < best_inertia:
            best_centers, best_inertia = centers, inertia
    return best_centers


def _kmeans_plusplus(points, weights, n_clusters, random_state):
    """Greedy k-means++ seeding, as :func:`sklearn.cluster.kmeans_plusplus`.

    Same algorithm and number of trials per centroid (``2 + log(k)``); the
    compiled loop costs a few milliseconds where scikit-learn's Python loop
    costs about a quarter of a millisecond per centroid.
    """
    first = random_state.choice(len(points), p=weights / weights.sum())
    draws = random_state.uniform(size=(n_clusters - 1, 2 + int(np.log(n_clusters))))
    return _lloyd_kernels.greedy_kmeans_plusplus(
        np.ascontiguousarray(points, dtype=np.float64),
        np.ascontiguousarray(weights, dtype=np.float64),
        first,
        draws,
        threads.for_work(len(points), threads.SEEDING_POINTS),
    )


def _coarse_levels(rows, weights, n_clusters):
    """Color histograms of increasing resolution to converge on before ``rows``.

    Each level holds the weighted mean color and total weight of the occupied
    cells of a grid; a level is kept only if it has more than ``n_clusters``
    cells and ``_MIN_COARSENING`` times fewer than the next finer level.
    """
    levels, finer = [], len(rows)
    means, totals = rows, weights
    for bits in reversed(_LEVEL_BITS):
        # Each level pools the cells of the next finer one.
        means, totals = _cell_means(means, totals, bits)
        if len(means) <= n_clusters:
            break
        if len(means) * _MIN_COARSENING <= finer:
            levels.insert(0, (means, totals))
            finer = len(means)
    return levels


def _cell_ids(rows, bits):
    """Index of each row's cell in a grid of ``2**bits`` levels per axis.

    ``rows`` are uint8, or floats in ``[0, 256)``.
    """
    if rows.dtype != np.uint8:
        rows = rows.astype(np.uint8)  # truncation is the floor here
    shift = 8 - bits
    ids = np.zeros(len(rows), dtype=np.intp)
    for j in range(rows.shape[1]):
        ids <<= bits
        ids |= rows[:, j] >> shift
    return ids


def _occupied_cells(rows, bits):
    """Sorted ids of the grid cells holding ``rows``, and each row's cell index."""
    ids = _cell_ids(rows, bits)
    n_ids = 2 ** (bits * rows.shape[1])
    if n_ids > 16 * len(rows):
        occupied, inverse = np.unique(ids, return_inverse=True)
        return occupied, inverse.reshape(-1)
    # Small dtypes: these tables are large, and filling fresh pages is
    # most of their cost.
    is_occupied = np.zeros(n_ids, dtype=bool)
    is_occupied[ids] = True
    occupied = np.flatnonzero(is_occupied)
    index = np.empty(n_ids, dtype=np.min_scalar_type(len(occupied)))
    index[occupied] = np.arange(len(occupied))
    return occupied, index[ids].astype(np.intp)


def _cell_means(rows, weights, bits):
    """Weighted mean row and total weight of each occupied grid cell."""
    occupied, inverse = _occupied_cells(rows, bits)
    sums, totals = _lloyd_kernels.group_sums(
        np.ascontiguousarray(rows), weights, inverse, len(occupied)
    )
    return sums / totals[:, None], totals


def _means(centers, sums, counts):
    """Cluster means; empty clusters keep their centroid."""
    filled = counts > 0
    means = centers.copy()
    means[filled] = sums[filled] / counts[filled, None]
    return means


def _lloyd(rows, weights, centers, max_iter, tol, relaxation=1.0, return_labels=False):
    """Weighted Lloyd passes from ``centers``.

    Stops when no row changes cluster (the centroids are then the means of
    their rows: a fixed point), when the squared centroid shift summed over
    clusters is at most ``tol`` times the mean per-feature variance, as in
    :class:`~sklearn.cluster.KMeans`, or after ``max_iter`` passes; in the
    last two cases the rows are assigned to the final centroids. With
    ``return_labels``, also returns the cluster of each row.

    With ``relaxation > 1``, up to the first ``max_iter // 2`` updates are
    over-relaxed: a centroid whose way to its mean heads the way of its last
    move goes ``relaxation`` times that way. The momentum restarts with each
    epoch (below): its first update is plain. Once no row changes cluster,
    plain updates follow until one leaves every row in place: the end is a
    fixed point of plain Lloyd.

    The passes run in the compiled :func:`skvq._engine._lloyd.lloyd_epoch`, in
    epochs during which no centroid moves farther than ``_REACH`` from where
    it was at the start of the epoch; each epoch gets candidate lists for
    the grid cells made with that much slack.
    """
    cell_of_row, pyramid = _grid(rows)
    (cell_lo, cell_hi), _ = pyramid[0]
    n_cells = len(cell_lo)
    # The kernel takes the rows grouped by cell.
    if rows.dtype != np.uint8:
        rows = rows.astype(np.float64, copy=False)
    order, box_start, points, weights = _lloyd_kernels.group_by_box(
        np.ascontiguousarray(rows),
        np.ascontiguousarray(weights, dtype=np.float64),
        cell_of_row,
        n_cells,
    )
    if tol > 0:
        tol *= _mean_variance(points, weights)
    centers = np.array(centers, dtype=np.float64, order="C")
    state = _lloyd_kernels.new_point_state(len(rows))
    travel, drift = np.zeros(len(centers)), np.zeros(n_cells)
    sums, counts = np.zeros_like(centers), np.zeros(len(centers))
    n_iter, settled, overshot = 0, False, False
    # The last update is then a plain one, even at max_iter.
    relaxed_passes = max_iter // 2 if relaxation != 1 else 0
    n_threads = threads.for_work(len(rows), threads.LLOYD_ROWS)
    margin = _bound_margin(cell_lo, cell_hi, _REACH)
    while True:
        indptr, indices, floors, outside = _candidates(pyramid, centers, 2 * _REACH)
        (
            n_passes,
            fixed,
            settled_now,
            reanchor,
            relaxed_passes,
            overshot,
        ) = _lloyd_kernels.lloyd_epoch(
            points=points,
            weights=weights,
            box_start=box_start,
            indptr=indptr,
            indices=indices,
            floors=floors,
            outside=outside,
            centers=centers,
            state=state,
            travel=travel,
            drift=drift,
            sums=sums,
            counts=counts,
            reach=_REACH,
            max_passes=0 if settled else max_iter - n_iter,
            relaxation=relaxation,
            relaxed_passes=relaxed_passes,
            overshot=overshot,
            tol=tol,
            margin=margin,
            n_threads=n_threads,
        )
        n_iter += n_passes
        settled = settled or settled_now
        if not reanchor:
            break
    labels = np.ascontiguousarray(state["label"])
    if fixed:
        # Recompute the means in one pass so that they carry no rounding
        # accumulated by the incremental updates (with float weights).
        sums, counts = _lloyd_kernels.group_sums(points, weights, labels, len(centers))
        centers = _means(centers, sums, counts)
    inertia = _lloyd_kernels.inertia(points, weights, centers, labels)
    if not return_labels:
        return centers, inertia, n_iter
    labels_of_rows = np.empty_like(labels)
    labels_of_rows[order] = labels
    return centers, inertia, n_iter, labels_of_rows


def _bound_margin(cell_lo, cell_hi, reach):
    """How much the passes loosen each bound (see ``lloyd_epoch``).

    A billionth of the extent of the grid's cells and of the reach: far
    more than the rounding of the sums of centroid moves the bounds keep,
    far less than any distance that matters.
    """
    extent = float((cell_hi.max(axis=0) - cell_lo.min(axis=0)).max())
    return 1e-9 * max(extent, reach)


def _mean_variance(points, weights):
    """Weighted variance of the features, averaged over features."""
    # einsum, not BLAS: OpenBLAS threads would then spin next to the passes'.
    mean = np.einsum("i,ij->j", weights, points) / weights.sum()
    variance = np.einsum("i,ij->", weights, (points - mean) ** 2) / weights.sum()
    return float(variance) / points.shape[1]


def _grid(rows):
    """The cell of each row, and the boxes of the cells and of coarser grids.

    Rows of at most 4 values in ``[0, 256)`` fall in the cells of a grid with
    up to ``2**_GRID_BITS`` levels per feature (fewer for fewer rows); each
    coarser grid, down to ``_POOL_LEVELS`` more, halves the levels. Other
    rows all fall in one cell, their bounding box.

    Returns
    -------
    cell_of_row : ndarray of shape (n_rows,), intp
    pyramid : list of (boxes, parent_of_box), finest first
        ``boxes`` are (box_lo, box_hi), each of shape (n_boxes, n_features),
        float64: the lowest and highest coordinates of the rows each box may
        hold; ``parent_of_box`` the index of each box's box in the next
        coarser grid (None for the coarsest).
    """
    on_grid = rows.shape[1] <= _PACKABLE_MAX_FEATURES and (
        rows.dtype == np.uint8 or (rows.min() >= 0 and rows.max() < 256)
    )
    if not on_grid:
        points = rows.astype(np.float64)
        box = (points.min(axis=0)[None], points.max(axis=0)[None])
        return np.zeros(len(rows), dtype=np.intp), [(box, None)]
    bits = _GRID_BITS
    # Fewer rows get a coarser grid: lists for cells of one row cost more
    # than they save.
    while bits > _POOL_LEVELS and 2 ** (bits * rows.shape[1]) > len(rows):
        bits -= 1
    cells, cell_of_row = _occupied_cells(rows, bits)
    n_features = rows.shape[1]
    side = np.empty((len(cells), n_features), dtype=np.intp)
    for j in range(n_features):
        side[:, j] = (cells >> (bits * (n_features - 1 - j))) & (2**bits - 1)
    # Integer rows reach the last level of their cell, floats up to its end.
    inclusive = rows.dtype == np.uint8
    pyramid = []
    for level_bits in range(bits, bits - _POOL_LEVELS - 1, -1):
        boxes = _boxes(side, 8 - level_bits, inclusive)
        if level_bits == bits - _POOL_LEVELS:
            pyramid.append((boxes, None))
            break
        side = side >> 1
        parent_ids = np.zeros(len(side), dtype=np.intp)
        for j in range(n_features):
            parent_ids = (parent_ids << (level_bits - 1)) | side[:, j]
        _, first, parent_of_box = np.unique(
            parent_ids, return_index=True, return_inverse=True
        )
        pyramid.append((boxes, parent_of_box.reshape(-1).astype(np.intp)))
        side = side[first]
    return np.ascontiguousarray(cell_of_row, dtype=np.intp), pyramid


def _boxes(side, shift, inclusive):
    size = 2**shift
    lo = (side * size).astype(np.float64)
    return lo, lo + (size - 1 if inclusive else size)


def _candidates(pyramid, centers, slack):
    """Candidate lists of the grid's cells (see :func:`skvq._engine._lloyd.candidates`).

    The lists of the coarsest boxes are made first, from all centroids; each
    finer box then considers only the candidates of its enclosing box. Only
    the finest lists, those searched, are sorted.
    """
    (boxes, _) = pyramid[-1]
    finest = len(pyramid) == 1
    lists = _lloyd_kernels.candidates(
        *boxes,
        centers,
        slack,
        ordered=finest,
        n_threads=threads.for_work(len(boxes[0]), threads.GRID_CELLS),
    )
    for level, (boxes, parent_of_box) in reversed(list(enumerate(pyramid[:-1]))):
        lists = _lloyd_kernels.candidates(
            *boxes,
            centers,
            slack,
            parent_of_box,
            *lists[:2],
            ordered=level == 0,
            n_threads=threads.for_work(len(boxes[0]), threads.GRID_CELLS),
        )
    return lists


def _nearest(rows, centers):
    """Index of and distance to the nearest centroid of each row."""
    cell_of_row, pyramid = _grid(rows)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    indptr, indices, floors, _ = _candidates(pyramid, centers, 0.0)
    return _lloyd_kernels.nearest(
        rows.astype(np.float64), cell_of_row, indptr, indices, floors, centers
    )


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
    X = _as_uint8_if_exact(X)
    code_dtype = np.min_scalar_type(max(len(codebook) - 1, 0))
    if X.shape[0] == 0:
        return np.zeros(0, dtype=code_dtype), np.zeros(0) if return_distance else None
    if not _is_packable(X):
        rows, inverse = np.unique(X, axis=0, return_inverse=True)
        labels, distance = _nearest(rows, codebook)
        inverse = inverse.reshape(-1)
        codes = labels.astype(code_dtype)[inverse]
        return codes, (distance**2)[inverse] if return_distance else None
    distinct = _distinct_keys(X)
    labels, distance = _nearest(_unpack_uint8(distinct, X.shape[1]), codebook)
    codes = _look_up(X, distinct, labels.astype(code_dtype))
    if not return_distance:
        return codes, None
    return codes, _look_up(X, distinct, distance**2)


def _look_up(X, distinct, values):
    """``values[i]`` for each row of packable ``X`` whose key is ``distinct[i]``.

    ``distinct`` are sorted and hold the keys of all rows of ``X``.
    """
    if _is_dense(X):
        table = np.empty(2 ** (8 * X.shape[1]), dtype=values.dtype)
        table[distinct] = values
        return _lloyd_kernels.look_up_colors(
            np.ascontiguousarray(X),
            table,
            threads.for_work(len(X), threads.COLORS),
        )
    return values[np.searchsorted(distinct, _pack_uint8(X))]
