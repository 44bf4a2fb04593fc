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


# -- Draws in the order of the samples, as KMeans draws them -------------------


# The samples' potentials are summed in blocks of 2**LEVEL_BITS samples,
# blocks of as many blocks, and so on for three levels: an update adds to
# one sum of each level, a draw scans at most 2**LEVEL_BITS sums of each.
cdef enum:
    LEVEL_BITS = 6


cdef struct SampleOrder:
    # The samples the points stand for, in their given order, and the sums
    # of their potentials by level: a draw then picks the sample that
    # KMeans's cumulative sum over the samples picks, and the point it is.
    # Samples are found by the position of their point in the seeding's
    # array of distances (its own order of the points).
    bint on
    Py_ssize_t n_samples
    const Py_ssize_t* position  # (n_samples,)
    const double* weight  # (n_samples,)
    const Py_ssize_t* start  # (n_points + 1,): the samples position by position
    const Py_ssize_t* samples  # (n_samples,)
    double* sums[3]  # the sums of blocks of 2**(LEVEL_BITS * (level + 1)) samples
    Py_ssize_t n_sums[3]


cdef inline Py_ssize_t _n_sums(Py_ssize_t n_samples, int level) noexcept nogil:
    cdef int bits = LEVEL_BITS * (level + 1)
    return (n_samples + (1 << bits) - 1) >> bits


def _order_sums_size(Py_ssize_t n_samples):
    return _n_sums(n_samples, 0) + _n_sums(n_samples, 1) + _n_sums(n_samples, 2)


cdef void _order_build(SampleOrder* s, const double* closest) noexcept nogil:
    """The sums of the samples' potentials, from scratch."""
    cdef Py_ssize_t j, b
    cdef int level
    cdef double value
    for level in range(3):
        for b in range(s.n_sums[level]):
            s.sums[level][b] = 0.0
    for j in range(s.n_samples):
        value = s.weight[j] * closest[s.position[j]]
        for level in range(3):
            s.sums[level][j >> (LEVEL_BITS * (level + 1))] += value


cdef void _order_change(SampleOrder* s, Py_ssize_t q, double before, double after) noexcept nogil:
    """The distance at position ``q`` went from ``before`` to ``after``."""
    cdef Py_ssize_t k, j
    cdef double change
    for k in range(s.start[q], s.start[q + 1]):
        j = s.samples[k]
        change = s.weight[j] * (after - before)
        s.sums[0][j >> LEVEL_BITS] += change
        s.sums[1][j >> (2 * LEVEL_BITS)] += change
        s.sums[2][j >> (3 * LEVEL_BITS)] += change


cdef double _order_total(const SampleOrder* s) noexcept nogil:
    cdef Py_ssize_t b
    cdef double total = 0.0
    for b in range(s.n_sums[2]):
        total += s.sums[2][b]
    return total


cdef Py_ssize_t _order_find(SampleOrder* s, const double* closest, double target) noexcept nogil:
    """The first sample whose cumulative potential reaches ``target``, as
    ``np.searchsorted(np.cumsum(w * closest), target)`` finds it (clipped to
    the last sample). Sums are compared, never subtracted: on integer
    distances and weights they are exact, as numpy's are."""
    cdef Py_ssize_t b = 0, end, j
    cdef int level
    cdef double reached = 0.0
    for level in range(2, -1, -1):
        # Within the block found one level up, the first whose sum reaches.
        end = min((b + 1) << LEVEL_BITS, s.n_sums[level]) if level < 2 else s.n_sums[2]
        b = b << LEVEL_BITS if level < 2 else 0
        while b < end - 1 and reached + s.sums[level][b] < target:
            reached += s.sums[level][b]
            b += 1
    end = min((b + 1) << LEVEL_BITS, s.n_samples)
    for j in range(b << LEVEL_BITS, end):
        reached += s.weight[j] * closest[s.position[j]]
        if reached >= target:
            return j
    return s.n_samples - 1


cdef SampleOrder _sample_order(samples, double[::1] sums) except *:
    """The struct over ``samples = (position, weight, start, by_position)``,
    its sums in ``sums`` (of ``_order_sums_size(n_samples)``)."""
    cdef SampleOrder s
    cdef const Py_ssize_t[::1] position, start, by_position
    cdef const double[::1] weight
    cdef int level
    s.on = samples is not None
    if not s.on:
        return s
    position, weight, start, by_position = samples
    s.n_samples = position.shape[0]
    s.position, s.weight = &position[0], &weight[0]
    s.start, s.samples = &start[0], &by_position[0]
    s.sums[0] = &sums[0]
    for level in range(3):
        s.n_sums[level] = _n_sums(s.n_samples, level)
        if level:
            s.sums[level] = s.sums[level - 1] + s.n_sums[level - 1]
    return s


def samples_by_position(const Py_ssize_t[::1] position, Py_ssize_t n_positions):
    """The samples grouped by position, in order within each (a counting
    sort): ``by_position[start[q]:start[q+1]]`` are those at ``q``."""
    cdef Py_ssize_t j, n = position.shape[0]
    start_array = np.zeros(n_positions + 1, dtype=np.intp)
    by_position_array = np.empty(n, dtype=np.intp)
    cdef Py_ssize_t[::1] start = start_array
    cdef Py_ssize_t[::1] by_position = by_position_array
    with nogil:
        for j in range(n):
            start[position[j] + 1] += 1
        for j in range(n_positions):
            start[j + 1] += start[j]
        for j in range(n):
            by_position[start[position[j]]] = j
            start[position[j]] += 1
        for j in range(n_positions, 0, -1):
            start[j] = start[j - 1]
        start[0] = 0
    return start_array, by_position_array


def first_sample(Py_ssize_t n, double uniform, const double[::1] p=None):
    """``random_state.choice(n, p=p)`` for the draw ``uniform``
    (``random_state.random_sample()``), without its arrays: numpy's legacy
    sampler cumulates ``p`` in order, divides by the last sum and takes the
    first index past the draw. ``p=None`` is ``np.ones(n) / n``, as
    scikit-learn's unit sample weights make it."""
    cdef Py_ssize_t i, found = n - 1
    cdef double each = 1.0 / n, last = 0.0, running = 0.0
    cdef bint uniform_weights = p is None
    with nogil:
        for i in range(n):
            last += each if uniform_weights else p[i]
        for i in range(n):
            running += each if uniform_weights else p[i]
            if running / last > uniform:
                found = i
                break
    return found


def greedy_kmeans_plusplus(
    const double[:, ::1] points,
    const double[::1] weights,
    Py_ssize_t first,
    const double[:, ::1] draws,
    int n_threads=1,
    samples=None,
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
    samples : tuple of four ndarrays, optional
        Draw over the samples the points stand for, in their order, as
        KMeans draws on them: ``(position, weight, start, by_position)``,
        the point of each sample, its weight, and the samples point by point
        (``by_position[start[i]:start[i+1]]`` are those of point ``i``).
        The candidates are then the points of the samples KMeans's
        cumulative sums pick.

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
    order_sums = np.zeros(0 if samples is None else _order_sums_size(len(samples[0])))
    cdef SampleOrder order = _sample_order(samples, order_sums)
    with nogil:
        chosen[0] = first
        for i in range(n):
            closest[i] = sq_distance(&points[i, 0], &points[first, 0], d)
        if order.on:
            _order_build(&order, &closest[0])
        for c in range(1, n_clusters):
            if order.on:
                potential = _order_total(&order)
            else:
                potential = 0.0
                for i in range(n):
                    potential += weights[i] * closest[i]
                    cumulative[i] = potential
            for t in range(n_trials):
                target = draws[c - 1, t] * potential
                if order.on:
                    candidates[t] = order.position[_order_find(&order, &closest[0], target)]
                    continue
                # The first point whose cumulative potential exceeds the draw.
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
            if order.on:
                for i in range(n):
                    if trials[best, i] != closest[i]:
                        _order_change(&order, i, closest[i], trials[best, i])
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
    SampleOrder* order  # the draws over samples, if on


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
                    if g.order.on:
                        _order_change(g.order, p, g.closest[p], sq)
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
    samples=None,
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
    samples : tuple of four ndarrays, optional
        As for :func:`greedy_kmeans_plusplus`, with the points by their
        position cell by cell (``p`` is point ``point_of[p]``).
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
    order_sums = np.zeros(0 if samples is None else _order_sums_size(len(samples[0])))
    cdef SampleOrder order = _sample_order(samples, order_sums)
    cdef double order_built
    cdef Layout g
    g.order = &order
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
        if order.on:
            _order_build(&order, &closest[0])
            order_built = _order_total(&order)
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
            if order.on:
                total = _order_total(&order)
                if total < REBUILD * order_built:
                    _order_build(&order, &closest[0])
                    total = order_built = _order_total(&order)
            for t in range(n_trials):
                if order.on:
                    candidates[t] = point_of[
                        order.position[_order_find(&order, &closest[0], draws[c - 1, t] * total)]
                    ]
                else:
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


# -- KMeans's own arithmetic, for many features --------------------------------


def draw_candidates(
    const double[::1] closest,
    const double[::1] weights,
    const double[::1] targets,
    double[::1] cumulative,
):
    """The candidates KMeans's k-means++ draws for ``targets``:
    ``np.searchsorted(np.cumsum(weights * closest), targets)``, clipped to
    the last point, with the same sums (in order, one product then one
    addition each) and the same search (the first sum not below the
    target). ``cumulative`` is a buffer of the points' length."""
    cdef Py_ssize_t n = closest.shape[0], t, i, lo, hi, mid
    cdef double total = 0.0, product
    candidates_array = np.empty(targets.shape[0], dtype=np.intp)
    cdef Py_ssize_t[::1] candidates = candidates_array
    with nogil:
        for i in range(n):
            product = weights[i] * closest[i]
            total = total + product
            cumulative[i] = total
        for t in range(targets.shape[0]):
            lo, hi = 0, n
            while lo < hi:
                mid = (lo + hi) // 2
                if cumulative[mid] < targets[t]:
                    lo = mid + 1
                else:
                    hi = mid
            candidates[t] = min(lo, n - 1)
    return candidates_array


def trial_distances(
    double[:, ::1] products,
    const double[::1] candidate_norms,
    const double[::1] norms,
    const double[::1] closest,
):
    """In place, from the products of the candidates with every point: each
    point's squared distance to its nearest centroid were the candidate
    added, as KMeans computes it (``-2 x.y``, plus ``|x|^2``, plus
    ``|y|^2``, at least 0, then the least of that and ``closest``)."""
    cdef Py_ssize_t t, i
    cdef double sq
    with nogil:
        for t in range(products.shape[0]):
            for i in range(products.shape[1]):
                sq = -2.0 * products[t, i]
                sq = sq + candidate_norms[t]
                sq = sq + norms[i]
                if not sq >= 0:
                    sq = 0.0
                products[t, i] = closest[i] if closest[i] <= sq else sq
