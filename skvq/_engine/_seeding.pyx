# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""Compiled greedy k-means++ seeding (scikit-learn's, without its per-centroid
Python overhead)."""

from cython.parallel cimport prange

import numpy as np

from skvq._engine._common cimport sq_distance


cdef double _trial(
    const double[:, ::1] points,
    const double[::1] weights,
    const double[::1] closest,
    Py_ssize_t candidate,
    double[::1] trial,
) noexcept nogil:
    """Squared distances to the nearest centroid if ``candidate`` were added
    (in ``trial``), and their weighted sum."""
    cdef Py_ssize_t i, d = points.shape[1]
    cdef double sq, potential = 0.0
    for i in range(points.shape[0]):
        sq = sq_distance(&points[i, 0], &points[candidate, 0], d)
        trial[i] = sq if sq < closest[i] else closest[i]
        potential += weights[i] * trial[i]
    return potential


def greedy_kmeans_plusplus(
    const double[:, ::1] points,
    const double[::1] weights,
    Py_ssize_t first,
    const double[:, ::1] draws,
    int n_threads=1,
):
    """Indices of the points chosen by greedy k-means++ seeding.

    The algorithm of scikit-learn's :func:`~sklearn.cluster.kmeans_plusplus`
    (Arthur and Vassilvitskii's D² sampling, keeping the best of several
    draws per centroid), without its per-centroid Python overhead, which
    dominates on the few thousand points of a color histogram.

    Parameters
    ----------
    points : ndarray of shape (n_points, n_features)
    weights : ndarray of shape (n_points,)
        Positive.
    first : int
        Index of the first centroid.
    draws : ndarray of shape (n_clusters - 1, n_trials)
        Uniform draws in [0, 1): ``draws[c]`` pick the candidates for
        centroid ``c + 1`` with probability proportional to weight times
        squared distance to the nearest centroid so far.
    n_threads : int, default=1
        Threads the trials of a centroid run on, each summing its potential
        in order: the choice does not depend on the number of threads.

    Returns
    -------
    ndarray of shape (n_clusters,), intp
    """
    cdef Py_ssize_t n = points.shape[0], d = points.shape[1], n_trials = draws.shape[1]
    cdef Py_ssize_t n_clusters = draws.shape[0] + 1
    cdef Py_ssize_t c, t, i, lo, hi, mid, best
    cdef double potential, target
    chosen_array = np.empty(n_clusters, dtype=np.intp)
    closest_array = np.empty(n)
    cumulative_array = np.empty(n)
    trials_array = np.empty((n_trials, n))
    trial_potentials_array = np.empty(n_trials)
    candidates_array = np.empty(n_trials, dtype=np.intp)
    cdef Py_ssize_t[::1] chosen = chosen_array
    cdef double[::1] closest = closest_array
    cdef double[::1] cumulative = cumulative_array
    cdef double[:, ::1] trials = trials_array
    cdef double[::1] trial_potentials = trial_potentials_array
    cdef Py_ssize_t[::1] candidates = candidates_array
    with nogil:
        chosen[0] = first
        for i in range(n):
            closest[i] = sq_distance(&points[i, 0], &points[first, 0], d)
        for c in range(1, n_clusters):
            potential = 0.0
            for i in range(n):
                potential += weights[i] * closest[i]
                cumulative[i] = potential
            for t in range(n_trials):
                # The first point whose cumulative potential exceeds the draw.
                target = draws[c - 1, t] * potential
                lo, hi = 0, n - 1
                while lo < hi:
                    mid = (lo + hi) // 2
                    if cumulative[mid] <= target:
                        lo = mid + 1
                    else:
                        hi = mid
                candidates[t] = lo
            for t in prange(n_trials, schedule="dynamic", num_threads=n_threads):
                trial_potentials[t] = _trial(
                    points, weights, closest, candidates[t], trials[t]
                )
            best = 0
            for t in range(1, n_trials):
                if trial_potentials[t] < trial_potentials[best]:
                    best = t
            chosen[c] = candidates[best]
            closest[:] = trials[best]
    return chosen_array


# -- The same seeding on a grid, for many points and many clusters -------------


# The potential kept in the tree is summed afresh each time it falls below
# this fraction of what it was when last summed afresh.
cdef double REBUILD = 1e-3
# The trials of a centroid run on threads only when they look at so many
# points in all: later centroids change a few points each, and handing out
# their trials would cost more than it saves.
cdef Py_ssize_t PARALLEL_MIN_POINTS = 100_000


cdef inline double _box_sq_distance(
    const double* x, const double* lo, const double* hi, Py_ssize_t d
) noexcept nogil:
    """Squared distance from ``x`` to the box [lo, hi]."""
    cdef Py_ssize_t f
    cdef double outside, total = 0.0
    for f in range(d):
        outside = max(lo[f] - x[f], x[f] - hi[f])
        if outside > 0:
            total += outside * outside
    return total


cdef struct Layout:
    # The points grouped by cell, the cells grouped by block (a coarser
    # cell), and what a trial must know to skip a cell or a block: its box
    # and the largest squared distance of its points to their nearest
    # centroid. The points, their weights and distances are kept cell by
    # cell, so that a trial reads them in order, not one cache miss each.
    const double* points  # (n, d), cell by cell
    const double* weights
    Py_ssize_t d
    const Py_ssize_t* point_of  # (n,) each one's index in the given order
    const Py_ssize_t* cell_start  # (n_cells + 1,)
    const double* cell_lo  # (n_cells, d)
    const double* cell_hi
    double* cell_max  # (n_cells,)
    Py_ssize_t n_blocks
    const Py_ssize_t* block_start  # (n_blocks + 1,): cells block by block
    const double* block_lo  # (n_blocks, d)
    const double* block_hi
    double* block_max  # (n_blocks,)
    double* closest  # (n,), cell by cell
    Py_ssize_t n_positive  # points of positive potential


cdef double _reduction(const Layout* g, const double* x) noexcept nogil:
    """How much the potential would fall with a centroid at ``x``.

    Only the points of the cells that may come nearer to ``x`` than to
    their centroid are looked at.
    """
    cdef Py_ssize_t b, c, p, d = g.d
    cdef double sq, total = 0.0
    for b in range(g.n_blocks):
        if _box_sq_distance(x, &g.block_lo[b * d], &g.block_hi[b * d], d) >= g.block_max[b]:
            continue
        for c in range(g.block_start[b], g.block_start[b + 1]):
            if _box_sq_distance(x, &g.cell_lo[c * d], &g.cell_hi[c * d], d) >= g.cell_max[c]:
                continue
            for p in range(g.cell_start[c], g.cell_start[c + 1]):
                sq = sq_distance(&g.points[p * d], x, d)
                if sq < g.closest[p]:
                    total += g.weights[p] * (g.closest[p] - sq)
    return total


cdef void _fenwick_add(double* tree, Py_ssize_t n, Py_ssize_t i, double value) noexcept nogil:
    i += 1
    while i <= n:
        tree[i] += value
        i += i & -i


cdef void _fenwick_build(double* tree, Py_ssize_t n, const Layout* g) noexcept nogil:
    """The tree of the points' potentials in their given order, in O(n)."""
    cdef Py_ssize_t i, p, parent
    tree[0] = 0.0
    for p in range(n):
        tree[g.point_of[p] + 1] = g.weights[p] * g.closest[p]
    for i in range(1, n + 1):
        parent = i + (i & -i)
        if parent <= n:
            tree[parent] += tree[i]


cdef double _fenwick_total(const double* tree, Py_ssize_t n) noexcept nogil:
    cdef double total = 0.0
    while n > 0:
        total += tree[n]
        n -= n & -n
    return total


cdef Py_ssize_t _fenwick_find(const double* tree, Py_ssize_t n, double target) noexcept nogil:
    """The first index whose prefix sum exceeds ``target`` (at most n - 1)."""
    cdef Py_ssize_t position = 0, step = 1
    while step * 2 <= n:
        step *= 2
    while step > 0:
        if position + step <= n and tree[position + step] <= target:
            position += step
            target -= tree[position]
        step //= 2
    return min(position, n - 1)


cdef Py_ssize_t _add_centroid(
    Layout* g, const double* x, double* tree, Py_ssize_t n
) noexcept nogil:
    """Bring the points nearer to ``x`` than to their centroid to it.

    Returns how many points it looked at (about as many as a trial does).
    """
    cdef Py_ssize_t b, c, p, d = g.d, looked = 0
    cdef double sq, largest
    cdef bint changed
    for b in range(g.n_blocks):
        if _box_sq_distance(x, &g.block_lo[b * d], &g.block_hi[b * d], d) >= g.block_max[b]:
            continue
        changed = False
        for c in range(g.block_start[b], g.block_start[b + 1]):
            if _box_sq_distance(x, &g.cell_lo[c * d], &g.cell_hi[c * d], d) >= g.cell_max[c]:
                continue
            largest = 0.0
            looked += g.cell_start[c + 1] - g.cell_start[c]
            for p in range(g.cell_start[c], g.cell_start[c + 1]):
                sq = sq_distance(&g.points[p * d], x, d)
                if sq < g.closest[p]:
                    _fenwick_add(tree, n, g.point_of[p], g.weights[p] * (sq - g.closest[p]))
                    g.closest[p] = sq
                    if sq == 0:
                        g.n_positive -= 1
                largest = max(largest, g.closest[p])
            changed = changed or largest != g.cell_max[c]
            g.cell_max[c] = largest
        if changed:
            largest = 0.0
            for c in range(g.block_start[b], g.block_start[b + 1]):
                largest = max(largest, g.cell_max[c])
            g.block_max[b] = largest
    return looked


def grid_kmeans_plusplus(
    const double[:, ::1] points,
    const double[::1] weights,
    Py_ssize_t first,
    const double[:, ::1] draws,
    const Py_ssize_t[::1] point_of,
    const Py_ssize_t[::1] cell_start,
    const double[:, ::1] cell_lo,
    const double[:, ::1] cell_hi,
    const Py_ssize_t[::1] block_start,
    const double[:, ::1] block_lo,
    const double[:, ::1] block_hi,
    int n_threads=1,
):
    """:func:`greedy_kmeans_plusplus` looking only where a centroid matters.

    The same draws make the same choices, to the rounding of sums taken in
    another order: the potential is kept in a Fenwick tree over the points
    (sampling in O(log n)), and a trial's potential is the current one less
    what the points that would come nearer gain, found through a grid of
    cells, grouped in blocks, each with its box and the largest distance of
    its points to their centroid. Each new centroid then costs about the
    points around it, instead of all the points times the trials.

    Parameters
    ----------
    points, weights, first, draws, n_threads
        As for :func:`greedy_kmeans_plusplus`.
    point_of : ndarray of shape (n_points,), intp
        The points, cell by cell: cell ``c`` holds
        ``point_of[cell_start[c]:cell_start[c+1]]``.
    cell_start : ndarray of shape (n_cells + 1,), intp
    cell_lo, cell_hi : ndarray of shape (n_cells, n_features)
        Each cell's box (bounding its points).
    block_start : ndarray of shape (n_blocks + 1,), intp
        The cells, block by block (cells ``block_start[b]:block_start[b+1]``).
    block_lo, block_hi : ndarray of shape (n_blocks, n_features)
        Each block's box (bounding its cells').

    Returns
    -------
    ndarray of shape (n_clusters,), intp
    """
    cdef Py_ssize_t n = points.shape[0], d = points.shape[1], n_trials = draws.shape[1]
    cdef Py_ssize_t n_clusters = draws.shape[0] + 1, n_cells = cell_start.shape[0] - 1
    cdef Py_ssize_t c, t, i, p, b, f, best, looked = n
    cdef double total, built
    chosen_array = np.empty(n_clusters, dtype=np.intp)
    in_cells_array = np.empty((n, d))
    weights_in_cells_array = np.empty(n)
    closest_array = np.empty(n)
    tree_array = np.zeros(n + 1)
    cell_max_array = np.zeros(n_cells)
    block_max_array = np.zeros(block_start.shape[0] - 1)
    candidates_array = np.empty(n_trials, dtype=np.intp)
    reductions_array = np.empty(n_trials)
    cdef Py_ssize_t[::1] chosen = chosen_array
    cdef double[:, ::1] in_cells = in_cells_array
    cdef double[::1] weights_in_cells = weights_in_cells_array
    cdef double[::1] closest = closest_array
    cdef double[::1] tree = tree_array
    cdef double[::1] cell_max = cell_max_array
    cdef double[::1] block_max = block_max_array
    cdef Py_ssize_t[::1] candidates = candidates_array
    cdef double[::1] reductions = reductions_array
    cdef Layout g
    g.points, g.weights, g.d = &in_cells[0, 0], &weights_in_cells[0], d
    g.point_of, g.cell_start = &point_of[0], &cell_start[0]
    g.cell_lo, g.cell_hi, g.cell_max = &cell_lo[0, 0], &cell_hi[0, 0], &cell_max[0]
    g.n_blocks, g.block_start = block_start.shape[0] - 1, &block_start[0]
    g.block_lo, g.block_hi = &block_lo[0, 0], &block_hi[0, 0]
    g.block_max, g.closest = &block_max[0], &closest[0]
    with nogil:
        chosen[0] = first
        g.n_positive = 0
        for p in range(n):
            i = point_of[p]
            for f in range(d):
                in_cells[p, f] = points[i, f]
            weights_in_cells[p] = weights[i]
            closest[p] = sq_distance(&points[i, 0], &points[first, 0], d)
            g.n_positive += closest[p] > 0
        _fenwick_build(&tree[0], n, &g)
        built = _fenwick_total(&tree[0], n)
        for c in range(n_cells):
            for p in range(cell_start[c], cell_start[c + 1]):
                cell_max[c] = max(cell_max[c], closest[p])
        for b in range(g.n_blocks):
            for c in range(block_start[b], block_start[b + 1]):
                block_max[b] = max(block_max[b], cell_max[c])
        for c in range(1, n_clusters):
            total = _fenwick_total(&tree[0], n)
            if total < REBUILD * built:
                # The tree's sums carry the rounding of every update, of the
                # order of the potential when it was built: rebuilt before
                # that matters.
                _fenwick_build(&tree[0], n, &g)
                total = built = _fenwick_total(&tree[0], n)
            for t in range(n_trials):
                # With every point a centroid, the tree holds only rounding:
                # the last point, as the greedy search (and scikit-learn) picks.
                candidates[t] = (
                    _fenwick_find(&tree[0], n, draws[c - 1, t] * total)
                    if g.n_positive > 0 else n - 1
                )
            for t in prange(
                n_trials,
                schedule="dynamic",
                num_threads=n_threads if looked * n_trials >= PARALLEL_MIN_POINTS else 1,
            ):
                reductions[t] = _reduction(&g, &points[candidates[t], 0])
            best = 0
            for t in range(1, n_trials):
                if reductions[t] > reductions[best]:
                    best = t
            chosen[c] = candidates[best]
            looked = _add_centroid(&g, &points[candidates[best], 0], &tree[0], n)
    return chosen_array
