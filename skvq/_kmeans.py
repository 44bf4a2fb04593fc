"""Exact K-Means for images: Lloyd's algorithm on the distinct colors.

Lloyd's algorithm on the distinct rows of ``X`` weighted by how often each
occurs has the same objective, the same iterations and the same fixed points
as Lloyd on every sample, and images repeat colors a lot. For 8-bit data of
up to four channels, four more steps make it fast:

1. Distinct colors come from sorting one packed integer key per pixel
   (numpy's radix sort), never from comparing rows.
2. Seeding runs scikit-learn's :class:`~sklearn.cluster.KMeans` on a coarse
   color histogram (the weighted mean color of each occupied cell of a
   32-level grid), a few thousand points however large the image.
3. Lloyd's iteration then runs on finer histograms (64 and 128 levels) when
   they are much smaller than the set of distinct colors, and finally on the
   distinct colors themselves, so the result is a fixed point of Lloyd's
   iteration over the full pixel set (with ``tol=0``).
4. Nearest codewords are found through a color grid: a codeword is a
   candidate for a cell only if it may be nearest to some color in the cell,
   which leaves a handful per cell instead of K. Hamerly's bounds skip colors
   whose codeword cannot have changed, so late passes touch only the colors
   near a cluster boundary.

Every sample is then assigned through its distinct color with a lookup
table, never through an ``n_samples x K`` distance matrix.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

# Rows of at most 4 uint8 values pack into one uint32 key; up to 3 of them
# (24-bit keys) also index a dense lookup table.
_PACKABLE_MAX_FEATURES = 4
_DENSE_MAX_FEATURES = 3
# Levels per channel of the grid used for seeding and nearest-codeword search.
_GRID_BITS = 5
# Levels per channel of the coarse color histograms converged on first.
_LEVEL_BITS = (5, 6, 7)
# A histogram is used only when it is that many times smaller than the next.
_MIN_COARSENING = 4
# Elements per temporary distance block, to bound memory.
_BLOCK = 1 << 20
# How far, in color levels, centroids may move before the candidate
# centroids of each grid cell are recomputed.
_REACH = 6.0


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
        shift = np.uint32(8 * (n_features - 1 - j))
        rows[:, j] = (keys >> shift) & np.uint32(0xFF)
    return rows


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
):
    """Fit a codebook of at most ``n_clusters`` rows to ``X``.

    Seeds by :class:`~sklearn.cluster.KMeans` (with ``init``, ``n_init``,
    ``tol`` and ``random_state``) on the coarse color histogram when that is
    much smaller than the set of distinct rows, else on the distinct rows,
    then runs exact weighted Lloyd passes on the distinct rows until no row
    changes cluster or ``max_iter`` passes are done.

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
    """
    rows, weights = unique_rows(X, sample_weight)
    keep = weights > 0
    rows, weights = rows[keep], weights[keep]
    if len(rows) <= n_clusters:
        return rows.astype(np.float64), 0.0, 0
    levels = _coarse_levels(rows, weights, n_clusters) if _is_packable(rows) else []
    seed_points, seed_weights = levels.pop(0) if levels else (rows, weights)
    km = KMeans(
        n_clusters=n_clusters,
        init=init,
        n_init=n_init,
        max_iter=max_iter,
        tol=tol,
        random_state=random_state,
        algorithm="lloyd",
    )
    # The seeding problem is small: threads cost more in synchronisation
    # (and under load in spinning) than they save.
    with threadpool_limits(1):
        km.fit(seed_points.astype(np.float64, copy=False), sample_weight=seed_weights)
    centers = km.cluster_centers_
    for points, level_weights in levels:
        centers, _, _ = _lloyd(points, level_weights, centers, max_iter, tol)
    return _lloyd(rows, weights, centers, max_iter, tol)


def _coarse_levels(rows, weights, n_clusters):
    """Color histograms of increasing resolution to converge on before ``rows``.

    Each level holds the weighted mean color and total weight of the occupied
    cells of a grid; a level is kept only if it has more than ``n_clusters``
    cells and ``_MIN_COARSENING`` times fewer than the next finer level.
    """
    levels, finer = [], len(rows)
    for bits in reversed(_LEVEL_BITS):
        means, totals = _cell_means(rows, weights, bits)
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
    if n_ids > 4 * len(rows):
        occupied, inverse = np.unique(ids, return_inverse=True)
        return occupied, inverse.reshape(-1)
    occupied = np.flatnonzero(np.bincount(ids, minlength=n_ids))
    index = np.empty(n_ids, dtype=np.intp)
    index[occupied] = np.arange(len(occupied))
    return occupied, index[ids]


def _cell_means(rows, weights, bits):
    """Weighted mean row and total weight of each occupied grid cell."""
    occupied, inverse = _occupied_cells(rows, bits)
    totals = np.bincount(inverse, weights=weights, minlength=len(occupied))
    means = np.column_stack(
        [
            np.bincount(inverse, weights=weights * rows[:, j], minlength=len(occupied))
            for j in range(rows.shape[1])
        ]
    )
    return means / totals[:, None], totals


def _weighted_sums(points, weights, labels, n_clusters):
    sums = np.column_stack(
        [
            np.bincount(labels, weights=weights * points[:, j], minlength=n_clusters)
            for j in range(points.shape[1])
        ]
    )
    return sums, np.bincount(labels, weights=weights, minlength=n_clusters)


def _means(centers, sums, counts):
    """Cluster means (empty clusters keep their centroid) and how far each moved."""
    filled = counts > 0
    means = centers.copy()
    means[filled] = sums[filled] / counts[filled, None]
    return means, _distance(means, centers)


def _distance(a, b):
    return np.sqrt(((a - b) ** 2).sum(axis=1))


def _lloyd(rows, weights, centers, max_iter, tol):
    """Weighted Lloyd passes from ``centers``.

    Stops when no row changes cluster (the centroids are then the means of
    their rows: a fixed point), when the squared centroid shift summed over
    clusters is at most ``tol`` times the mean per-feature variance, as in
    :class:`~sklearn.cluster.KMeans`, or after ``max_iter`` passes; in the
    last two cases the rows are assigned to the final centroids.

    The passes are grouped in epochs during which no centroid moves farther
    than ``_REACH`` from where it was at the start of the epoch (its anchor).
    At the start of an epoch, each grid cell gets the centroids that may
    become nearest to one of its colors within that reach, and every row is
    matched to its nearest centroid. Rows whose second nearest centroid is
    more than ``2 * _REACH`` farther than their nearest cannot change cluster
    during the epoch; the passes loop over the others only, with Hamerly's
    bounds: ``upper`` bounds the distance of a row to its centroid and
    ``lower`` its distance to the other candidates, and a row whose upper
    bound stays below its lower bound keeps its cluster unchecked. Cluster
    sums are updated with the moved rows only.
    """
    points = rows.astype(np.float64)
    n_clusters = len(centers)
    mean = weights @ points / weights.sum()
    tol = tol * float(weights @ ((points - mean) ** 2).sum(axis=1)) / weights.sum()
    tol /= points.shape[1]
    grid = _grid(rows)
    cell_of_row = grid[0]
    labels, n_iter, fixed, settled = None, 0, False, False
    while True:
        anchor = centers
        table, width = _candidates(grid, centers, 2 * _REACH)
        new_labels, upper, lower = _search(
            points, np.arange(len(rows)), cell_of_row, table, width, centers
        )
        fixed = labels is not None and np.array_equal(new_labels, labels)
        labels = new_labels
        if fixed or settled or n_iter >= max_iter:
            break
        sums, counts = _weighted_sums(points, weights, labels, n_clusters)
        active = np.flatnonzero(lower - upper <= 2 * _REACH)
        x, w, cell = points[active], weights[active], cell_of_row[active]
        lab, up, lo = labels[active], upper[active], lower[active]
        while True:
            centers, shift = _means(centers, sums, counts)
            n_iter += 1
            settled = (shift**2).sum() <= tol
            if _distance(centers, anchor).max() > _REACH:
                break
            up += shift[lab]
            lo -= shift[table].max(axis=1)[cell]
            stale = np.flatnonzero(up > lo)
            up[stale] = _distance(x[stale], centers[lab[stale]])
            stale = stale[up[stale] > lo[stale]]
            new_lab, up[stale], lo[stale] = _search(
                x, stale, cell, table, width, centers
            )
            changed = new_lab != lab[stale]
            moved = stale[changed]
            if moved.size:
                old_sums, old_counts = _weighted_sums(
                    x[moved], w[moved], lab[moved], n_clusters
                )
                lab[moved] = new_lab[changed]
                new_sums, new_counts = _weighted_sums(
                    x[moved], w[moved], lab[moved], n_clusters
                )
                sums += new_sums - old_sums
                counts += new_counts - old_counts
            fixed = not moved.size
            if fixed or settled or n_iter >= max_iter:
                break
        labels[active] = lab
        if fixed or settled or n_iter >= max_iter:
            break
    if fixed:
        # Recompute the means in one pass so that they carry no rounding
        # accumulated by the incremental updates (with float weights).
        sums, counts = _weighted_sums(points, weights, labels, n_clusters)
        centers, _ = _means(centers, sums, counts)
    inertia = float(weights @ ((points - centers[labels]) ** 2).sum(axis=1))
    return centers, inertia, n_iter


def _grid(rows):
    """The cells of the rows: boxes given by one side index per feature.

    Rows of at most 4 values in ``[0, 256)`` fall in the cells of a grid with
    ``2**_GRID_BITS`` levels per feature; other rows all fall in one cell,
    their bounding box.

    Returns
    -------
    cell_of_row : ndarray of shape (n_rows,), intp
    cell_sides : ndarray of shape (n_cells, n_features), intp
        Index of each cell's side along each feature.
    side_lo, side_hi : ndarray of shape (n_sides,) or (n_sides, n_features)
        Lowest and highest coordinate of each side.
    """
    on_grid = rows.shape[1] <= _PACKABLE_MAX_FEATURES and (
        rows.dtype == np.uint8 or (rows.min() >= 0 and rows.max() < 256)
    )
    if on_grid:
        cells, cell_of_row = _occupied_cells(rows, _GRID_BITS)
        n_features = rows.shape[1]
        cell_sides = np.empty((len(cells), n_features), dtype=np.intp)
        for j in range(n_features):
            cell_sides[:, j] = (cells >> (_GRID_BITS * (n_features - 1 - j))) & (
                2**_GRID_BITS - 1
            )
        size = 2 ** (8 - _GRID_BITS)
        side_lo = np.arange(2**_GRID_BITS, dtype=np.float64)[:, None] * size
        # Integer rows reach the last level of their cell, floats up to its end.
        side_hi = side_lo + (size - 1 if rows.dtype == np.uint8 else size)
        return cell_of_row, cell_sides, side_lo, side_hi
    points = rows.astype(np.float64)
    cell_of_row = np.zeros(len(rows), dtype=np.intp)
    cell_sides = np.zeros((1, rows.shape[1]), dtype=np.intp)
    return cell_of_row, cell_sides, points.min(axis=0)[None], points.max(axis=0)[None]


def _candidates(grid, centers, slack):
    """Centroids that may be nearest to a point of each cell, padded by repeats.

    Centroid ``j`` is a candidate for a box if its smallest distance to the
    box is at most ``slack`` more than the smallest, over centroids, of the
    largest distance to the box. Any other centroid is more than ``slack``
    farther from every point of the box than that point's nearest centroid.

    Returns
    -------
    table : ndarray of shape (n_cells, max_width), intp
        Candidates of each cell; row ``i`` repeats its first candidate after
        ``width[i]`` entries.
    width : ndarray of shape (n_cells,), intp
        Number of candidates of each cell.
    """
    _, cell_sides, side_lo, side_hi = grid
    n_cells, k = len(cell_sides), len(centers)
    # The squared distances along each feature are computed once per side
    # and gathered for the cells.
    below = side_lo.T[:, :, None] - centers.T[:, None, :]  # (n_features, n_sides, k)
    above = side_hi.T[:, :, None] - centers.T[:, None, :]
    near_side = np.maximum(below, 0) ** 2 + np.minimum(above, 0) ** 2
    far_side = np.maximum(below**2, above**2)
    step = max(1, _BLOCK // k)
    cell_parts, code_parts = [], []
    for start in range(0, n_cells, step):
        sides = cell_sides[start : start + step].T
        near = sum(table[side] for table, side in zip(near_side, sides, strict=True))
        far = sum(table[side] for table, side in zip(far_side, sides, strict=True))
        bound = np.sqrt(far.min(axis=1, keepdims=True)) + slack
        # The tiny relative margin keeps ties despite rounding in the roots.
        cell, code = np.nonzero(near <= (bound * (1 + 1e-9)) ** 2)
        cell_parts.append(cell + start)
        code_parts.append(code)
    cell, code = np.concatenate(cell_parts), np.concatenate(code_parts)
    width = np.bincount(cell, minlength=n_cells)
    first = np.cumsum(width) - width
    table = np.repeat(code[first], width.max()).reshape(n_cells, -1)
    table[cell, np.arange(len(cell)) - first[cell]] = code
    return table, width


def _search(points, idx, cell_of_row, table, width, centers):
    """Nearest and second nearest candidate centroid of ``points[idx]``.

    Returns
    -------
    labels : ndarray of shape (len(idx),), intp
    first : ndarray of shape (len(idx),), float64
        Distance to the nearest candidate.
    second : ndarray of shape (len(idx),), float64
        Distance to the nearest other candidate (``inf`` if none).
    """
    labels = np.empty(len(idx), dtype=np.intp)
    first = np.empty(len(idx))
    second = np.empty(len(idx))
    row_cell = cell_of_row[idx]
    row_width = width[row_cell]
    coordinates = np.ascontiguousarray(centers.T)
    # Rows go in groups of similar candidate counts, each padded to its
    # group's largest count, in blocks that bound the temporaries.
    lo_width = 0
    while lo_width < row_width.max(initial=0):
        hi_width = min(max(1, 2 * lo_width), table.shape[1])
        group = np.flatnonzero((row_width > lo_width) & (row_width <= hi_width))
        step = max(1, _BLOCK // hi_width)
        for start in range(0, len(group), step):
            part = group[start : start + step]
            x = points[idx[part]]
            codes = table[row_cell[part], :hi_width]
            sq = np.zeros(codes.shape)
            for j, coordinate in enumerate(coordinates):
                diff = coordinate.take(codes)
                diff -= x[:, j, None]
                sq += diff * diff
            best = sq.argmin(axis=1)
            rank = np.arange(len(part))
            labels[part] = codes[rank, best]
            first[part] = sq[rank, best]
            sq[codes == labels[part, None]] = np.inf
            second[part] = sq.min(axis=1)
        lo_width = hi_width
    return labels, np.sqrt(first), np.sqrt(second)


def _nearest(rows, centers):
    """Index of and distance to the nearest centroid of each row."""
    grid = _grid(rows)
    table, width = _candidates(grid, centers, 0.0)
    labels, first, _ = _search(
        rows.astype(np.float64), np.arange(len(rows)), grid[0], table, width, centers
    )
    return labels, first


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
    code_dtype = np.min_scalar_type(max(len(codebook) - 1, 0))
    if X.shape[0] == 0:
        return np.zeros(0, dtype=code_dtype), np.zeros(0) if return_distance else None
    if not _is_packable(X):
        rows, inverse = np.unique(X, axis=0, return_inverse=True)
        labels, distance = _nearest(rows, codebook)
        inverse = inverse.reshape(-1)
        codes = labels.astype(code_dtype)[inverse]
        return codes, (distance**2)[inverse] if return_distance else None
    keys = _pack_uint8(X)
    distinct = np.sort(keys)
    distinct = distinct[_run_starts(distinct)]
    labels, distance = _nearest(_unpack_uint8(distinct, X.shape[1]), codebook)
    dense = X.shape[1] <= _DENSE_MAX_FEATURES
    codes = _look_up(keys, distinct, labels.astype(code_dtype), dense)
    if not return_distance:
        return codes, None
    return codes, _look_up(keys, distinct, distance**2, dense)


def _look_up(keys, distinct, values, dense):
    """``values[i]`` for each key equal to ``distinct[i]`` (sorted, unique)."""
    if dense:
        table = np.empty(2 ** (8 * _DENSE_MAX_FEATURES), dtype=values.dtype)
        table[distinct] = values
        return table[keys]
    return values[np.searchsorted(distinct, keys)]
