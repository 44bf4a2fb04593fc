# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""Compiled inner loops of the exact K-Means engine (see ``_kmeans.py``).

Points fall in boxes (cells of a color grid). For each box, a candidate list
holds the centroids that may be nearest to one of its points, nearest to the
box first; the search for a point's nearest centroid scans only its box's
list and stops early. Lloyd's passes keep bounds per point in the manner of
Hamerly's, so that a pass costs one comparison for most points and a search
for the few near a cluster boundary. Seeding (greedy k-means++) is here too:
scikit-learn's version spends most of its time in Python per centroid.

Candidate lists are valid while no centroid is farther than ``reach`` from
where it was when they were made (its anchor): an epoch. ``lloyd_epoch``
returns when a centroid leaves that reach, and the caller makes new lists.
"""

from cython.parallel cimport prange
from libc.math cimport INFINITY, fabs, sqrt
from libc.stdlib cimport calloc, free, malloc, qsort, realloc

import numpy as np

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #else
    static int omp_get_max_threads(void) { return 1; }
    #endif
    #if defined(__GNUC__) || defined(__clang__)
    #define skvq_prefetch(address) __builtin_prefetch(address)
    #else
    #define skvq_prefetch(address) ((void) (address))
    #endif
    """
    int omp_get_max_threads() nogil
    void skvq_prefetch(const void* address) nogil

# What a pass knows of each point, in one record: a point that must be
# checked costs one cache line, not one per array.
cdef packed struct PointState:
    double upper  # bound on the distance to its centroid, less its travel
    double lower_runner_up  # bound on the distance to the runner-up, plus its travel
    double lower_rest  # bound on the distance to all others, plus the box's drift
    Py_ssize_t label
    Py_ssize_t runner_up  # -1 when unknown

POINT_STATE = np.dtype(
    [
        ("upper", np.float64),
        ("lower_runner_up", np.float64),
        ("lower_rest", np.float64),
        ("label", np.intp),
        ("runner_up", np.intp),
    ]
)


def max_threads():
    """OpenMP's limit on the threads of a parallel step (1 without OpenMP)."""
    return omp_get_max_threads()


def new_point_state(Py_ssize_t n):
    """State of ``n`` points before their first search (labels -1)."""
    state_array = np.empty(n, dtype=POINT_STATE)
    cdef PointState[::1] state = state_array
    cdef Py_ssize_t i
    with nogil:
        for i in range(n):
            state[i].label = -1
            state[i].runner_up = -1
    return state_array


ctypedef fused row_t:
    unsigned char
    double


def group_by_box(
    const row_t[:, ::1] rows,
    const double[::1] weights,
    const Py_ssize_t[::1] box_of_row,
    Py_ssize_t n_boxes,
):
    """The rows and weights in the order of their boxes (a counting sort).

    Returns
    -------
    order : ndarray of shape (n_rows,), intp
        The row at each position.
    box_start : ndarray of shape (n_boxes + 1,), intp
        Box ``c`` holds positions ``box_start[c]:box_start[c+1]``.
    points : ndarray of shape (n_rows, n_features), float64
    point_weights : ndarray of shape (n_rows,), float64
    """
    cdef Py_ssize_t n = rows.shape[0], d = rows.shape[1], i, f, c, position
    order_array = np.empty(n, dtype=np.intp)
    box_start_array = np.zeros(n_boxes + 1, dtype=np.intp)
    points_array = np.empty((n, d))
    point_weights_array = np.empty(n)
    cdef Py_ssize_t[::1] order = order_array
    cdef Py_ssize_t[::1] box_start = box_start_array
    cdef double[:, ::1] points = points_array
    cdef double[::1] point_weights = point_weights_array
    fill_array = np.empty(n_boxes, dtype=np.intp)
    cdef Py_ssize_t[::1] fill = fill_array
    with nogil:
        for i in range(n):
            box_start[box_of_row[i] + 1] += 1
        for c in range(n_boxes):
            box_start[c + 1] += box_start[c]
            fill[c] = box_start[c]
        for i in range(n):
            c = box_of_row[i]
            position = fill[c]
            fill[c] += 1
            order[position] = i
            point_weights[position] = weights[i]
            for f in range(d):
                points[position, f] = rows[i, f]
    return order_array, box_start_array, points_array, point_weights_array


def group_sums(
    const row_t[:, ::1] rows,
    const double[::1] weights,
    const Py_ssize_t[::1] group_of_row,
    Py_ssize_t n_groups,
):
    """Weighted sum of the rows of each group, and the group's total weight.

    In row order, in one pass (``np.bincount`` takes one per feature and
    one for the weights).

    Returns
    -------
    sums : ndarray of shape (n_groups, n_features), float64
    totals : ndarray of shape (n_groups,), float64
    """
    cdef Py_ssize_t n = rows.shape[0], d = rows.shape[1], i, f, g
    cdef double w
    sums_array = np.zeros((n_groups, d))
    totals_array = np.zeros(n_groups)
    cdef double[:, ::1] sums = sums_array
    cdef double[::1] totals = totals_array
    with nogil:
        for i in range(n):
            g = group_of_row[i]
            w = weights[i]
            totals[g] += w
            for f in range(d):
                sums[g, f] += w * rows[i, f]
    return sums_array, totals_array


# Chunks of boxes per assignment step (many, so that threads share the
# work evenly; fewer for large codebooks, whose per-chunk sums are large);
# points checked per batch.
cdef enum:
    _CHUNKS = 32
    _CHUNK_SUMS_MAX = 1 << 21
    _BATCH = 16

# Every parallel loop hands out its work in pieces (dynamic schedules): when
# the cores are shared and a thread waits for one, the others take its share
# instead of leaving it to the end. Colors per piece of a lookup or gather:
cdef enum:
    _ROWS_PER_GRAB = 1 << 15

cdef inline double _sq_distance(
    const double[:, ::1] a, Py_ssize_t i, const double[:, ::1] b, Py_ssize_t j
) noexcept nogil:
    cdef Py_ssize_t f
    cdef double diff, total = 0.0
    if a.shape[1] == 3:  # colors, unrolled
        diff = a[i, 0] - b[j, 0]
        total = diff * diff
        diff = a[i, 1] - b[j, 1]
        total += diff * diff
        diff = a[i, 2] - b[j, 2]
        return total + diff * diff
    for f in range(a.shape[1]):
        diff = a[i, f] - b[j, f]
        total += diff * diff
    return total


cdef void _pool_distances(
    const double* lo,
    const double* hi,
    const double* columns,
    Py_ssize_t k,
    Py_ssize_t d,
    const Py_ssize_t* pool,
    Py_ssize_t n_pool,
    double* near,
    double* far,
) noexcept nogil:
    """Squared least and greatest distances to box [lo, hi] of the centroids
    ``pool[:n_pool]`` (all ``k`` if ``pool`` is NULL).

    ``columns[f * k + j]`` is feature ``f`` of centroid ``j`` (the transposed
    centroids, contiguous over the pool when it is all of them); the loop
    has no branch to mispredict.
    """
    cdef Py_ssize_t p, j, f
    cdef double center, outside, farthest, near_sum, far_sum
    for p in range(n_pool):
        j = pool[p] if pool != NULL else p
        near_sum = 0.0
        far_sum = 0.0
        for f in range(d):
            center = columns[f * k + j]
            outside = max(lo[f] - center, center - hi[f])
            # max(outside, 0) without a branch (the sign is unpredictable);
            # exact: outside + |outside| is 2 * outside or 0.
            outside = 0.5 * (outside + fabs(outside))
            farthest = max(center - lo[f], hi[f] - center)
            near_sum += outside * outside
            far_sum += farthest * farthest
        near[p] = near_sum
        far[p] = far_sum


cdef struct Candidate:
    double floor
    Py_ssize_t index


cdef int _by_floor(const void* a, const void* b) noexcept nogil:
    """Order of candidates by floor, then index."""
    cdef const Candidate* x = <const Candidate*> a
    cdef const Candidate* y = <const Candidate*> b
    if x.floor != y.floor:
        return -1 if x.floor < y.floor else 1
    return (x.index > y.index) - (x.index < y.index)


cdef void _sort(Candidate* found, Py_ssize_t n) noexcept nogil:
    """Sort candidates by floor, then index: by insertion if few."""
    cdef Py_ssize_t p, q
    cdef Candidate moving
    if n > 64:
        qsort(found, n, sizeof(Candidate), _by_floor)
        return
    for p in range(1, n):
        moving = found[p]
        q = p
        # Stable: equal floors stay in index order, as the list was made.
        while q > 0 and found[q - 1].floor > moving.floor:
            found[q] = found[q - 1]
            q -= 1
        found[q] = moving


cdef struct CandidateList:
    Candidate* found
    Py_ssize_t count


cdef int _list_boxes(
    Py_ssize_t first_box,
    Py_ssize_t last_box,
    const double[:, ::1] box_lo,
    const double[:, ::1] box_hi,
    const double[:, ::1] columns,
    double slack,
    bint pooled,
    const Py_ssize_t[::1] pool_of_box,
    const Py_ssize_t[::1] pool_indptr,
    const Py_ssize_t[::1] pool_indices,
    bint ordered,
    Py_ssize_t[::1] box_count,
    double[::1] outside,
    CandidateList* out,
) noexcept nogil:
    """The candidates of boxes ``first_box:last_box`` (see :func:`candidates`).

    Appends them to ``out``, stores each box's number at ``box_count[c + 1]``
    and its bound at ``outside[c]``; returns -1 if out of memory, else 0.
    """
    cdef Py_ssize_t k = columns.shape[1], d = columns.shape[0], c, p, q, lo, hi
    cdef Py_ssize_t size, start
    cdef Py_ssize_t count = 0, capacity = 4 * (last_box - first_box) + k
    cdef double least_far, bound, floor
    cdef double* near = <double*> malloc(2 * k * sizeof(double))
    cdef double* far = near + k
    cdef Candidate* found = <Candidate*> malloc(capacity * sizeof(Candidate))
    cdef void* grown
    if near == NULL or found == NULL:
        free(near)
        free(found)
        return -1
    for c in range(first_box, last_box):
        lo, hi = 0, k
        if pooled:
            lo = pool_indptr[pool_of_box[c]]
            hi = pool_indptr[pool_of_box[c] + 1]
        _pool_distances(
            &box_lo[c, 0], &box_hi[c, 0], &columns[0, 0], k, d,
            &pool_indices[lo] if pooled else NULL, hi - lo, near, far,
        )
        least_far = INFINITY
        for p in range(hi - lo):
            least_far = min(least_far, far[p])
        bound = sqrt(least_far) + slack
        outside[c] = bound
        # The tiny relative margin keeps ties despite rounding.
        bound = (bound * (1 + 1e-9)) ** 2
        if count + hi - lo > capacity:
            size = max(2 * capacity, count + hi - lo)
            grown = realloc(found, size * sizeof(Candidate))
            if grown == NULL:
                free(near)
                free(found)
                return -1
            found = <Candidate*> grown
            capacity = size
        # Each centroid is written, and kept if near: no branch to mispredict.
        start = count
        for p in range(lo, hi):
            found[count].index = pool_indices[p] if pooled else p
            found[count].floor = near[p - lo]
            count += near[p - lo] <= bound
        if ordered:
            for q in range(start, count):
                floor = sqrt(found[q].floor) - slack / 2
                found[q].floor = floor * floor if floor > 0 else 0.0
            _sort(&found[start], count - start)
        box_count[c + 1] = count - start
    free(near)
    out.found = found
    out.count = count
    return 0


def candidates(
    const double[:, ::1] box_lo,
    const double[:, ::1] box_hi,
    const double[:, ::1] centers,
    double slack,
    const Py_ssize_t[::1] pool_of_box=None,
    const Py_ssize_t[::1] pool_indptr=None,
    const Py_ssize_t[::1] pool_indices=None,
    bint ordered=True,
    int n_threads=1,
):
    """Centroids that may be nearest to a point of each box, as CSR lists.

    Centroid ``j`` is a candidate for a box if its least distance to the box
    is at most ``slack`` more than the least, over centroids, of the greatest
    distance to the box. Every other centroid is then more than ``slack``
    farther from each point of the box than that point's nearest centroid.

    Without a pool, every centroid is considered for every box. With one,
    box ``c`` considers only the centroids of pool ``pool_of_box[c]``
    (``pool_indices[pool_indptr[p]:pool_indptr[p+1]]``): the candidate lists
    of an enclosing box made with the same slack hold all candidates.

    With ``ordered=False``, the lists (to be pools) are in no particular
    order and ``floors`` hold squared least distances to the box.

    With ``n_threads > 1``, the boxes are listed in chunks on threads, each
    into its own buffer (each box's list is the same however the boxes are
    split).

    Returns
    -------
    indptr : ndarray of shape (n_boxes + 1,), intp
    indices : ndarray of shape (indptr[-1],), intp
        Candidates of box ``c``, nearest to the box first:
        ``indices[indptr[c]:indptr[c+1]]``.
    floors : ndarray of shape (indptr[-1],), float64
        For each candidate, a lower bound on its squared distance to any
        point of the box while it stays within ``slack / 2`` of where it is;
        ascending within a box, so that a search can stop at the first floor
        above the third least distance it has found.
    outside : ndarray of shape (n_boxes,), float64
        A lower bound on the distance of any point of the box to any centroid
        that is not a candidate.
    """
    cdef Py_ssize_t n_boxes = box_lo.shape[0], n_chunks = 1
    cdef Py_ssize_t t, p, offset, total
    cdef bint pooled = pool_of_box is not None
    if n_threads > 1:
        n_chunks = _CHUNKS
    if not pooled:
        pool_of_box = pool_indptr = pool_indices = np.zeros(1, dtype=np.intp)
    chunk_box_array = (np.arange(n_chunks + 1) * n_boxes // n_chunks).astype(np.intp)
    status_array = np.zeros(n_chunks, dtype=np.intc)
    indptr_array = np.zeros(n_boxes + 1, dtype=np.intp)
    outside_array = np.empty(n_boxes)
    cdef Py_ssize_t[::1] chunk_box = chunk_box_array
    cdef int[::1] status = status_array
    cdef Py_ssize_t[::1] indptr = indptr_array
    cdef double[::1] outside = outside_array
    cdef Py_ssize_t[::1] indices
    cdef double[::1] floors
    # The centroids feature by feature, for the box distances.
    cdef const double[:, ::1] columns = np.ascontiguousarray(np.asarray(centers).T)
    cdef CandidateList* lists = <CandidateList*> calloc(n_chunks, sizeof(CandidateList))
    if lists == NULL:
        raise MemoryError()
    try:
        with nogil:
            for t in prange(n_chunks, schedule="dynamic", num_threads=n_threads):
                status[t] = _list_boxes(
                    chunk_box[t], chunk_box[t + 1], box_lo, box_hi, columns,
                    slack, pooled, pool_of_box, pool_indptr, pool_indices,
                    ordered, indptr, outside, &lists[t],
                )
        if min(status_array) < 0:
            raise MemoryError()
        np.cumsum(indptr_array, out=indptr_array)
        total = indptr[n_boxes]
        indices_array = np.empty(total, dtype=np.intp)
        floors_array = np.empty(total)
        indices = indices_array
        floors = floors_array
        with nogil:
            for t in range(n_chunks):
                offset = indptr[chunk_box[t]]
                for p in range(lists[t].count):
                    indices[offset + p] = lists[t].found[p].index
                    floors[offset + p] = lists[t].found[p].floor
    finally:
        for t in range(n_chunks):
            free(lists[t].found)
        free(lists)
    return indptr_array, indices_array, floors_array, outside_array


cdef inline Py_ssize_t _nearest_three(
    const double[:, ::1] points,
    Py_ssize_t i,
    const Py_ssize_t[::1] indptr,
    const Py_ssize_t[::1] indices,
    const double[::1] floors,
    Py_ssize_t cell,
    const double[:, ::1] centers,
    Py_ssize_t* runner_up,
    double* dist,
) noexcept nogil:
    """Nearest candidate (lowest index on ties), the next one, and the three
    least squared distances (``dist[0] <= dist[1] <= dist[2]``)."""
    cdef Py_ssize_t p, j, best = -1, second = -1
    cdef double sq, d1 = INFINITY, d2 = INFINITY, d3 = INFINITY
    for p in range(indptr[cell], indptr[cell + 1]):
        # The floors ascend: no later candidate can be among the three, nor
        # tie with the nearest (a tie's floor is at most d1 <= d3).
        if floors[p] > d3:
            break
        j = indices[p]
        sq = _sq_distance(points, i, centers, j)
        # Most candidates are none of the three nearest: test that first, a
        # branch the processor predicts well. A tie with the nearest may be
        # at d3 too (three or more tied), and goes first if its index is
        # lower: the lists are ordered by floor, not index.
        if sq < d3 or sq == d1:
            if sq < d1 or (sq == d1 and j < best):
                d3 = d2
                d2 = d1
                second = best
                d1 = sq
                best = j
            elif sq < d2:
                d3 = d2
                d2 = sq
                second = j
            elif sq < d3:
                d3 = sq
    runner_up[0] = second
    dist[0] = d1
    dist[1] = d2
    dist[2] = d3
    return best


def nearest(
    const double[:, ::1] points,
    const Py_ssize_t[::1] cell_of_point,
    const Py_ssize_t[::1] indptr,
    const Py_ssize_t[::1] indices,
    const double[::1] floors,
    const double[:, ::1] centers,
    bint return_three=False,
):
    """Index of and distance to the nearest centroid of each point.

    The candidate lists must hold each point's nearest centroid (as those
    made by :func:`candidates` with any ``slack >= 0`` do). On ties, the
    lowest index.

    With ``return_three``, also the three least squared distances to the
    candidates of each point's box, ascending (infinite when fewer): what
    the bounds of Lloyd's passes are made of.
    """
    cdef Py_ssize_t n = points.shape[0], i, second
    cdef double dist[3]
    labels_array = np.empty(n, dtype=np.intp)
    distance_array = np.empty(n)
    three_array = np.empty((n if return_three else 0, 3))
    cdef Py_ssize_t[::1] labels = labels_array
    cdef double[::1] distance = distance_array
    cdef double[:, ::1] three = three_array
    with nogil:
        for i in range(n):
            labels[i] = _nearest_three(
                points, i, indptr, indices, floors, cell_of_point[i], centers, &second, dist
            )
            distance[i] = sqrt(dist[0])
            if return_three:
                three[i, 0] = dist[0]
                three[i, 1] = dist[1]
                three[i, 2] = dist[2]
    if return_three:
        return labels_array, distance_array, three_array
    return labels_array, distance_array


def inertia(
    const double[:, ::1] points,
    const double[::1] weights,
    const double[:, ::1] centers,
    const Py_ssize_t[::1] labels,
):
    """Weighted sum of squared distances of the points to their centroid."""
    cdef Py_ssize_t i
    cdef double total = 0.0
    with nogil:
        for i in range(points.shape[0]):
            total += weights[i] * _sq_distance(points, i, centers, labels[i])
    return total


cdef void _move(
    const double[:, ::1] points,
    const double[::1] weights,
    Py_ssize_t i,
    Py_ssize_t old,
    Py_ssize_t new,
    double[:, ::1] sums,
    double[::1] counts,
) noexcept nogil:
    cdef Py_ssize_t f
    cdef double w = weights[i]
    for f in range(points.shape[1]):
        sums[old, f] -= w * points[i, f]
        sums[new, f] += w * points[i, f]
    counts[old] -= w
    counts[new] += w


cdef Py_ssize_t _check_points(
    const Py_ssize_t* pending,
    Py_ssize_t n_pending,
    Py_ssize_t c,
    double limit,
    double* least_gap,
    const double[:, ::1] points,
    const double[::1] weights,
    const Py_ssize_t[::1] indptr,
    const Py_ssize_t[::1] indices,
    const double[::1] floors,
    const double[::1] outside,
    const double[:, ::1] centers,
    PointState[::1] state,
    const double[::1] travel,
    const double[::1] drift,
    double[::1] mark,
    double[:, ::1] delta_sums,
    double[::1] delta_counts,
    double reach,
    double margin,
) noexcept nogil:
    """Check the points ``pending`` of box ``c`` whose marks failed.

    Each is reassigned if its bounds no longer hold apart, and gets a new
    mark; returns how many changed cluster.
    """
    cdef Py_ssize_t q, i, a, b, r, moved = 0
    cdef double own, other, rest
    cdef PointState* point
    cdef double dist[3]
    for q in range(n_pending):
        i = pending[q]
        point = &state[i]
        a = point.label
        r = point.runner_up
        own = point.upper + travel[a]
        rest = point.lower_rest - drift[c]
        other = rest
        if r >= 0:
            other = min(other, point.lower_runner_up - travel[r])
        if own > other:
            own = sqrt(_sq_distance(points, i, centers, a))
            point.upper = own + margin - travel[a]
            if own > rest:
                b = _nearest_three(
                    points, i, indptr, indices, floors, c, centers, &r, dist
                )
                own = sqrt(dist[0])
                point.runner_up = r
                point.upper = own + margin - travel[b]
                if r >= 0:
                    point.lower_runner_up = sqrt(dist[1]) - margin + travel[r]
                rest = min(sqrt(dist[2]) - margin, outside[c] - reach)
                point.lower_rest = rest + drift[c]
                other = min(rest, sqrt(dist[1]) - margin)
            elif r >= 0 and own > point.lower_runner_up - travel[r]:
                other = sqrt(_sq_distance(points, i, centers, r))
                b = a
                if other < own or (other == own and r < a):
                    # The runner-up is nearer (or as near, with a lower
                    # index), and the rest farther than the old centroid.
                    b = r
                    point.runner_up = a
                    own, other = other, own
                    point.upper = own + margin - travel[b]
                point.lower_runner_up = other - margin + travel[point.runner_up]
                other = min(other - margin, rest)
            else:
                b = a
            own += margin
            if b != a:
                _move(points, weights, i, a, b, delta_sums, delta_counts)
                point.label = b
                moved += 1
        mark[i] = other - own + limit
        least_gap[0] = min(least_gap[0], mark[i])
    return moved


cdef inline double _largest_shift(
    const Py_ssize_t[::1] indptr,
    const Py_ssize_t[::1] indices,
    const double[::1] shift,
    Py_ssize_t c,
) noexcept nogil:
    """The largest last shift of the candidates of box ``c``."""
    cdef Py_ssize_t p
    cdef double largest = 0.0
    for p in range(indptr[c], indptr[c + 1]):
        largest = max(largest, shift[indices[p]])
    return largest


cdef Py_ssize_t _assign_boxes(
    Py_ssize_t first_box,
    Py_ssize_t last_box,
    const double[:, ::1] points,
    const double[::1] weights,
    const Py_ssize_t[::1] box_start,
    const Py_ssize_t[::1] indptr,
    const Py_ssize_t[::1] indices,
    const double[::1] floors,
    const double[::1] outside,
    const double[:, ::1] centers,
    PointState[::1] state,
    const double[::1] travel,
    double[::1] drift,
    const double[::1] shift,
    double[::1] mark,
    double[::1] box_mark,
    double[:, ::1] delta_sums,
    double[::1] delta_counts,
    double reach,
    double margin,
) noexcept nogil:
    """The assignment step for the points of boxes ``first_box:last_box``.

    Points that change cluster are added to ``delta_sums`` and
    ``delta_counts``; returns how many did.
    """
    cdef Py_ssize_t c, i, n_pending, moved = 0
    cdef Py_ssize_t pending[_BATCH]
    cdef double least_gap, limit
    for c in range(first_box, last_box):
        # Gathered per box on the threads: cheaper than scattering each
        # centroid's shift to its boxes between passes.
        drift[c] += _largest_shift(indptr, indices, shift, c)
        limit = 2 * drift[c]
        if box_mark[c] >= limit:
            continue
        least_gap = INFINITY
        n_pending = 0
        for i in range(box_start[c], box_start[c + 1]):
            if mark[i] >= limit:
                least_gap = min(least_gap, mark[i])
                continue
            # The points to check are gathered and their data fetched ahead:
            # their cache misses then overlap instead of coming one by one.
            skvq_prefetch(&state[i])
            skvq_prefetch(&points[i, 0])
            pending[n_pending] = i
            n_pending += 1
            if n_pending == _BATCH:
                moved += _check_points(
                    pending, n_pending, c, limit, &least_gap, points, weights,
                    indptr, indices, floors, outside, centers, state, travel,
                    drift, mark, delta_sums, delta_counts, reach, margin,
                )
                n_pending = 0
        moved += _check_points(
            pending, n_pending, c, limit, &least_gap, points, weights, indptr,
            indices, floors, outside, centers, state, travel, drift, mark,
            delta_sums, delta_counts, reach, margin,
        )
        box_mark[c] = least_gap
    return moved


cdef Py_ssize_t _enter_boxes(
    Py_ssize_t first_box,
    Py_ssize_t last_box,
    const double[:, ::1] points,
    const double[::1] weights,
    const Py_ssize_t[::1] box_start,
    const Py_ssize_t[::1] indptr,
    const Py_ssize_t[::1] indices,
    const double[::1] floors,
    const double[::1] outside,
    const double[:, ::1] centers,
    PointState[::1] state,
    const double[::1] travel,
    const double[::1] drift,
    double[::1] mark,
    double[::1] box_mark,
    double[:, ::1] delta_sums,
    double[::1] delta_counts,
    double reach,
    double margin,
) noexcept nogil:
    """The points of boxes ``first_box:last_box`` on entry to an epoch.

    Points never assigned are searched and added to ``delta_sums`` and
    ``delta_counts``; returns how many. The others' bound on the rest
    takes in the centroids off the new list. Every point gets its mark, so
    that the first pass checks only those it must.
    """
    cdef Py_ssize_t c, i, a, r, f, searched = 0
    cdef double rest, own, other, least_gap
    cdef double dist[3]
    cdef PointState* point
    for c in range(first_box, last_box):
        least_gap = INFINITY
        for i in range(box_start[c], box_start[c + 1]):
            point = &state[i]
            if point.label < 0:
                a = _nearest_three(
                    points, i, indptr, indices, floors, c, centers, &r, dist
                )
                point.label = a
                point.runner_up = r
                own = sqrt(dist[0]) + margin
                point.upper = own - travel[a]
                if r >= 0:
                    point.lower_runner_up = sqrt(dist[1]) - margin + travel[r]
                rest = sqrt(dist[2]) - margin
                other = sqrt(dist[1]) - margin
                searched += 1
                delta_counts[a] += weights[i]
                for f in range(points.shape[1]):
                    delta_sums[a, f] += weights[i] * points[i, f]
            else:
                # The runner-up's bound holds whether or not it is on the
                # new list: it is kept, and only the rest's bound shrinks.
                own = point.upper + travel[point.label]
                rest = point.lower_rest - drift[c]
                r = point.runner_up
                other = INFINITY
                if r >= 0:
                    other = point.lower_runner_up - travel[r]
            # A centroid off the list stays at least outside - reach away.
            rest = min(rest, outside[c] - reach)
            point.lower_rest = rest + drift[c]
            mark[i] = min(other, rest) - own + 2 * drift[c]
            least_gap = min(least_gap, mark[i])
        box_mark[c] = least_gap
    return searched


cdef Py_ssize_t _merge(
    Py_ssize_t[::1] chunk_moved,
    double[:, :, ::1] delta_sums,
    double[:, ::1] delta_counts,
    double[:, ::1] sums,
    double[::1] counts,
) noexcept nogil:
    """Add the chunks' sums of moves to the clusters' and clear them.

    In a fixed order, so that the sums do not depend on the number of
    threads; returns the number of points moved.
    """
    cdef Py_ssize_t t, j, f, moved = 0
    for t in range(chunk_moved.shape[0]):
        moved += chunk_moved[t]
        if chunk_moved[t] == 0:
            continue
        for j in range(sums.shape[0]):
            counts[j] += delta_counts[t, j]
            delta_counts[t, j] = 0.0
            for f in range(sums.shape[1]):
                sums[j, f] += delta_sums[t, j, f]
                delta_sums[t, j, f] = 0.0
    return moved


def lloyd_epoch(
    const double[:, ::1] points,
    const double[::1] weights,
    const Py_ssize_t[::1] box_start,
    const Py_ssize_t[::1] indptr,
    const Py_ssize_t[::1] indices,
    const double[::1] floors,
    const double[::1] outside,
    double[:, ::1] centers,
    PointState[::1] state,
    double[::1] travel,
    double[::1] drift,
    double[:, ::1] sums,
    double[::1] counts,
    double reach,
    Py_ssize_t max_passes,
    double relaxation,
    Py_ssize_t relaxed_passes,
    bint overshot,
    double tol,
    double margin,
    int n_threads=1,
):
    """Weighted Lloyd passes while the candidate lists stay valid.

    Alternates assigning each point to its nearest centroid and moving each
    centroid to the weighted mean of its points (an empty cluster keeps its
    centroid), starting with an assignment. The first ``relaxed_passes``
    updates are over-relaxed: a centroid whose way to the mean of its
    points heads the way of its last move in this epoch (a positive dot
    product) goes ``relaxation`` times that way. When no point changes
    cluster after such an update (``overshot``), the next update is a plain
    one.

    Each point keeps bounds on its distance to its centroid (``upper``), to
    the runner-up centroid found by its last search (``lower_runner_up``)
    and to all others (``lower_rest``). They are stored so that no pass
    updates them: the first two relative to how far their centroid has
    travelled in all (``travel``), the last relative to the box's ``drift``,
    the sum over passes of the largest shift of the box's candidates. A
    point is searched again only when the rest may be nearer than its
    centroid; when only the runner-up may be, one distance settles it.
    Every bound is loosened by ``margin`` when it is set, more than the
    rounding of the sums that make it: a point whose nearest centroids tie
    is checked, so that it goes to the lowest index, as in a brute-force
    search.

    The points are sorted by box: those of box ``c`` are
    ``points[box_start[c]:box_start[c+1]]``. A box is skipped whole while
    its drift since it was last visited cannot have closed the least gap
    between the bounds of its points.

    All arrays but ``points``, ``weights`` and the lists are state updated
    in place; ``state`` holds each point's bounds, label and runner-up (see
    :func:`new_point_state`). On the first call, the labels are -1,
    ``travel``, ``drift``, ``sums`` and ``counts`` zeros, and the points are
    searched in full. On later calls, the labels are those the centroids
    are the means of, and ``sums`` and ``counts`` the weighted sums and
    weights of the clusters.
    The candidate lists must have been made from ``centers`` with a slack
    of ``2 * reach``.

    The assignment steps run on ``n_threads`` OpenMP threads; the result is
    the same with any number of threads.

    Returns
    -------
    n_passes : int
        Centroid updates done (at most ``max_passes``).
    fixed : bool
        No point changed cluster in the last assignment: the centroids are
        the means of their points and each point is at its nearest centroid.
    settled : bool
        The squared centroid shifts of the last update summed to at most
        ``tol``.
    reanchor : bool
        A centroid moved farther than ``reach`` from where it was on entry:
        the last update was done but points were not reassigned; call again
        with new candidate lists.
    relaxed_passes : int
        How many of the next updates may be over-relaxed (none once the
        centroids have landed).
    overshot : bool
        The last update was over-relaxed.
    """
    cdef Py_ssize_t n = points.shape[0], k = centers.shape[0], d = points.shape[1]
    cdef Py_ssize_t n_boxes = outside.shape[0]
    cdef Py_ssize_t j, f, p, c, n_passes = 0, moved
    cdef double mean, diff, shift_sq, total_shift, excess, step, align, step_j
    cdef bint any_step
    # Each centroid's move in the last update of this epoch (none yet).
    last_move_array = np.zeros((k, d))
    cdef double[:, ::1] last_move = last_move_array
    cdef bint fixed = False, settled = False, reanchor = False, searched = False
    anchor_array = np.array(centers, dtype=np.float64, copy=True)
    # Each centroid's shift in the last update (none yet).
    shift_array = np.zeros(k)
    # A point's bounds hold apart until its box's drift reaches half its
    # mark: the gap between them when last checked plus twice the drift then.
    # Each box's mark is the least of its points'. Both are set on entry.
    mark_array = np.empty(n)
    box_mark_array = np.empty(n_boxes)
    cdef double[:, ::1] anchor = anchor_array
    cdef double[::1] shift = shift_array
    cdef double[::1] mark = mark_array
    cdef double[::1] box_mark = box_mark_array
    # The boxes in chunks of about equal numbers of points, the units of work
    # of the threads, each with its own sums of moves. Their number is fixed
    # so that the result does not depend on the number of threads.
    cdef Py_ssize_t t
    cdef Py_ssize_t n_chunks = min(_CHUNKS, n_boxes, max(8, _CHUNK_SUMS_MAX // (k * (d + 1))))
    chunk_box_array = np.searchsorted(
        np.asarray(box_start), np.arange(n_chunks + 1) * n // n_chunks
    ).astype(np.intp)
    chunk_box_array[n_chunks] = n_boxes
    delta_sums_array = np.zeros((n_chunks, k, d))
    delta_counts_array = np.zeros((n_chunks, k))
    chunk_moved_array = np.zeros(n_chunks, dtype=np.intp)
    cdef Py_ssize_t[::1] chunk_box = chunk_box_array
    cdef double[:, :, ::1] delta_sums = delta_sums_array
    cdef double[:, ::1] delta_counts = delta_counts_array
    cdef Py_ssize_t[::1] chunk_moved = chunk_moved_array
    with nogil:
        for t in prange(
            n_chunks, schedule="dynamic", chunksize=1, num_threads=n_threads
        ):
            chunk_moved[t] = _enter_boxes(
                chunk_box[t],
                chunk_box[t + 1],
                points,
                weights,
                box_start,
                indptr,
                indices,
                floors,
                outside,
                centers,
                state,
                travel,
                drift,
                mark,
                box_mark,
                delta_sums[t],
                delta_counts[t],
                reach,
                margin,
            )
        searched = _merge(chunk_moved, delta_sums, delta_counts, sums, counts) > 0
        while True:
            if not searched:
                for t in prange(
                    n_chunks, schedule="dynamic", chunksize=1, num_threads=n_threads
                ):
                    chunk_moved[t] = _assign_boxes(
                        chunk_box[t],
                        chunk_box[t + 1],
                        points,
                        weights,
                        box_start,
                        indptr,
                        indices,
                        floors,
                        outside,
                        centers,
                        state,
                        travel,
                        drift,
                        shift,
                        mark,
                        box_mark,
                        delta_sums[t],
                        delta_counts[t],
                        reach,
                        margin,
                    )
                moved = _merge(chunk_moved, delta_sums, delta_counts, sums, counts)
                if moved == 0 and not overshot:
                    fixed = True
                    break
                if moved == 0:
                    # Past the means: land on them with plain updates.
                    relaxed_passes = n_passes
            searched = False
            if settled or n_passes >= max_passes:
                break
            # The extra step past the mean (none in a plain update).
            step = relaxation - 1.0 if n_passes < relaxed_passes else 0.0
            total_shift = 0.0
            any_step = False
            for j in range(k):
                shift[j] = 0.0
                if counts[j] <= 0:
                    continue
                shift_sq = 0.0
                # Lloyd's slow tail is centroids creeping the same way pass
                # after pass: only those are sped up, not those that swing.
                align = 0.0
                for f in range(d):
                    align += (sums[j, f] / counts[j] - centers[j, f]) * last_move[j, f]
                step_j = step if align > 0 else 0.0
                any_step = any_step or step_j != 0.0
                for f in range(d):
                    mean = sums[j, f] / counts[j]
                    mean += step_j * (mean - centers[j, f])
                    diff = mean - centers[j, f]
                    last_move[j, f] = diff
                    shift_sq += diff * diff
                    centers[j, f] = mean
                shift[j] = sqrt(shift_sq)
                travel[j] += shift[j]
                total_shift += shift_sq
                if _sq_distance(centers, j, anchor, j) > reach * reach:
                    reanchor = True
            n_passes += 1
            settled = total_shift <= tol
            overshot = any_step and not settled
            if reanchor:
                # The lists end here. Their candidates' last shifts go in the
                # drift; a centroid off a list was outside - reach away or
                # more, less however far past the reach it has now gone.
                excess = 0.0
                for j in range(k):
                    excess = max(excess, sqrt(_sq_distance(centers, j, anchor, j)) - reach)
                for c in range(n_boxes):
                    drift[c] += _largest_shift(indptr, indices, shift, c) + excess
                break
    return (
        n_passes,
        bool(fixed),
        bool(settled),
        bool(reanchor),
        max(relaxed_passes - n_passes, 0),
        bool(overshot),
    )


cdef double _trial(
    const double[:, ::1] points,
    const double[::1] weights,
    const double[::1] closest,
    Py_ssize_t candidate,
    double[::1] trial,
) noexcept nogil:
    """Squared distances to the nearest centroid if ``candidate`` were added
    (in ``trial``), and their weighted sum."""
    cdef Py_ssize_t i
    cdef double sq, potential = 0.0
    for i in range(points.shape[0]):
        sq = _sq_distance(points, i, points, candidate)
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
    cdef Py_ssize_t n = points.shape[0], n_trials = draws.shape[1]
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
            closest[i] = _sq_distance(points, i, points, first)
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


ctypedef fused table_t:
    unsigned char
    unsigned short
    unsigned int
    double


def distinct_colors(const unsigned char[:, ::1] colors, int n_threads=1):
    """The keys of the distinct colors, sorted, and how often each occurs.

    A key is a color's bytes read big-endian; at most 3 channels. RGB colors
    are first split by their first channel (red), so that the counts of each
    part fit in a 64k table in the processor's cache: two passes over the
    colors, where sorting the keys of tens of millions of pixels takes a good
    part of a second and counting them in one 16M table misses the cache at
    every pixel. Both passes run on ``n_threads`` threads, in fixed chunks:
    the result does not depend on the number of threads.

    Returns
    -------
    keys : ndarray of shape (n_distinct,), uint32
    counts : ndarray of shape (n_distinct,), float64
    """
    cdef Py_ssize_t n = colors.shape[0], d = colors.shape[1]
    if d < 3:
        return _distinct_small_colors(colors)
    cdef Py_ssize_t i, t, part, group, rest, position, lo, hi, n_distinct = 0
    cdef Py_ssize_t n_chunks = _CHUNKS, n_groups = _CHUNKS
    cdef Py_ssize_t parts_per_group = 256 // _CHUNKS
    chunk_start_array = (np.arange(n_chunks + 1) * n // n_chunks).astype(np.intp)
    # cursor[t, part]: where chunk t writes its next color of that part.
    cursor_array = np.zeros((n_chunks, 256), dtype=np.intp)
    part_start_array = np.zeros(257, dtype=np.intp)
    rest_array = np.empty(n, dtype=np.uint16)
    tables_array = np.zeros((n_groups, 1 << 16), dtype=np.intp)
    # Each part's distinct colors go first to a slot of its own.
    slot_array = np.zeros(257, dtype=np.intp)
    found_array = np.zeros(256, dtype=np.intp)
    cdef Py_ssize_t[::1] chunk_start = chunk_start_array
    cdef Py_ssize_t[:, ::1] cursor = cursor_array
    cdef Py_ssize_t[::1] part_start = part_start_array
    cdef unsigned short[::1] rest_of = rest_array
    cdef Py_ssize_t[:, ::1] tables = tables_array
    cdef Py_ssize_t[::1] slot = slot_array
    cdef Py_ssize_t[::1] found = found_array
    for t in prange(n_chunks, nogil=True, schedule="dynamic", num_threads=n_threads):
        for i in range(chunk_start[t], chunk_start[t + 1]):
            cursor[t, colors[i, 0]] += 1
    position = 0
    for part in range(256):
        part_start[part] = position
        for t in range(n_chunks):
            position, cursor[t, part] = position + cursor[t, part], position
    part_start[256] = position
    for part in range(256):
        slot[part + 1] = slot[part] + min(part_start[part + 1] - part_start[part], 1 << 16)
    keys_array = np.empty(slot[256], dtype=np.uint32)
    counts_array = np.empty(slot[256])
    cdef unsigned int[::1] keys = keys_array
    cdef double[::1] counts = counts_array
    for t in prange(n_chunks, nogil=True, schedule="dynamic", num_threads=n_threads):
        for i in range(chunk_start[t], chunk_start[t + 1]):
            part = colors[i, 0]
            rest_of[cursor[t, part]] = (colors[i, 1] << 8) | colors[i, 2]
            cursor[t, part] += 1
    for group in prange(n_groups, nogil=True, schedule="dynamic", num_threads=n_threads):
        for part in range(group * parts_per_group, (group + 1) * parts_per_group):
            for i in range(part_start[part], part_start[part + 1]):
                tables[group, rest_of[i]] += 1
            position = slot[part]
            for rest in range(1 << 16):
                if tables[group, rest]:
                    keys[position] = <unsigned int> ((part << 16) | rest)
                    counts[position] = tables[group, rest]
                    position = position + 1
                    tables[group, rest] = 0
            found[part] = position - slot[part]
    # The parts' slots, packed.
    with nogil:
        for part in range(256):
            lo = slot[part]
            hi = lo + found[part]
            for i in range(lo, hi):
                keys[n_distinct] = keys[i]
                counts[n_distinct] = counts[i]
                n_distinct += 1
    return keys_array[:n_distinct].copy(), counts_array[:n_distinct].copy()


def _distinct_small_colors(const unsigned char[:, ::1] colors):
    """:func:`distinct_colors` of colors of 1 or 2 channels: one table."""
    cdef Py_ssize_t n = colors.shape[0], d = colors.shape[1], i, f, key
    cdef Py_ssize_t n_keys = 1 << (8 * d), n_distinct = 0
    table_array = np.zeros(n_keys, dtype=np.intp)
    cdef Py_ssize_t[::1] table = table_array
    with nogil:
        for i in range(n):
            key = 0
            for f in range(d):
                key = (key << 8) | colors[i, f]
            table[key] += 1
    keys_array = np.flatnonzero(table_array)
    return keys_array.astype(np.uint32), table_array[keys_array].astype(np.float64)


def look_up_colors(
    const unsigned char[:, ::1] colors, const table_t[::1] table, int n_threads=1
):
    """``table[key]`` for the key of each color (see :func:`distinct_colors`),
    on ``n_threads`` threads."""
    cdef Py_ssize_t n = colors.shape[0], d = colors.shape[1], i, f
    cdef size_t key
    out_array = np.empty(n, dtype=np.asarray(table).dtype)
    cdef table_t[::1] out = out_array
    for i in prange(
        n, nogil=True, schedule="dynamic", chunksize=_ROWS_PER_GRAB, num_threads=n_threads
    ):
        key = 0
        for f in range(d):
            key = (key << 8) | colors[i, f]
        out[i] = table[key]
    return out_array


ctypedef fused code_t:
    unsigned char
    unsigned short


def take_colors(
    const unsigned char[:, ::1] palette, const code_t[::1] codes, int n_threads=1
):
    """``palette[codes]``: the color of each code, on ``n_threads`` threads.

    Raises
    ------
    IndexError
        If a code is not a row of ``palette``.
    """
    cdef Py_ssize_t n = codes.shape[0], d = palette.shape[1], i, f
    cdef Py_ssize_t n_colors = palette.shape[0], n_bad = 0
    cdef const unsigned char* color
    cdef unsigned char* pixel
    out_array = np.empty((n, d), dtype=np.uint8)
    cdef unsigned char[:, ::1] out = out_array
    if n == 0 or d == 0:
        return out_array
    for i in prange(
        n, nogil=True, schedule="dynamic", chunksize=_ROWS_PER_GRAB, num_threads=n_threads
    ):
        if codes[i] >= n_colors:
            n_bad += 1
            continue
        color = &palette[codes[i], 0]
        pixel = &out[i, 0]
        for f in range(d):
            pixel[f] = color[f]
    if n_bad:
        largest = np.asarray(codes).max()
        raise IndexError(f"code {largest} is out of bounds for {n_colors} colors")
    return out_array
