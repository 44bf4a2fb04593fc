# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""Compiled candidate lists of a grid's boxes, and the nearest-centroid search.

Points fall in boxes (cells of a grid). For each box, a candidate list holds
the centroids that may be nearest to one of its points, nearest to the box
first; the search for a point's nearest centroid scans only its box's list
and stops early (``_grid.pxd``).
"""

from cython.parallel cimport prange
from libc.math cimport INFINITY, fabs, sqrt
from libc.stdlib cimport calloc, free, malloc, realloc

import numpy as np

from skvq._engine._common cimport CHUNKS


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


# How many of the least floors start each candidate list in order.
HEAD_LENGTH = HEAD


cdef struct Candidate:
    double floor
    Py_ssize_t index


cdef inline bint _before(const Candidate* x, const Candidate* y) noexcept nogil:
    """The order of candidates: by floor, then index."""
    return x.floor < y.floor or (x.floor == y.floor and x.index < y.index)


cdef void _insertion_sort(Candidate* found, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t p, q
    cdef Candidate moving
    for p in range(1, n):
        moving = found[p]
        q = p
        while q > 0 and _before(&moving, &found[q - 1]):
            found[q] = found[q - 1]
            q -= 1
        found[q] = moving


cdef void _order(Candidate* found, Py_ssize_t n) noexcept nogil:
    """Put the ``HEAD`` first candidates (by floor, then index) first, in
    order; the others follow in any order.

    A search rarely goes past the first few candidates: a full sort of the
    thousands of a large codebook's lists took most of the time of making
    them. The head comes from a quickselect (median of three).
    """
    cdef Py_ssize_t lo = 0, hi = n, i, j, mid
    cdef Candidate pivot
    # Narrow [lo, hi) down to a few that hold the boundary of the head.
    while hi - lo > 16:
        mid = (lo + hi) // 2
        if _before(&found[mid], &found[lo]):
            found[lo], found[mid] = found[mid], found[lo]
        if _before(&found[hi - 1], &found[lo]):
            found[lo], found[hi - 1] = found[hi - 1], found[lo]
        if _before(&found[hi - 1], &found[mid]):
            found[mid], found[hi - 1] = found[hi - 1], found[mid]
        pivot = found[mid]
        i, j = lo, hi - 1
        while True:
            while _before(&found[i], &pivot):
                i += 1
            while _before(&pivot, &found[j]):
                j -= 1
            if i >= j:
                break
            found[i], found[j] = found[j], found[i]
            i += 1
            j -= 1
        # found[lo:j + 1] come before or at the pivot, found[j + 1:hi] after.
        if HEAD <= j + 1:
            hi = j + 1
        else:
            lo = j + 1
    _insertion_sort(&found[lo], hi - lo)
    _insertion_sort(found, min(HEAD, n))


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
            _order(&found[start], count - start)
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
        point of the box while it stays within ``slack / 2`` of where it is.
        Each list starts with its ``HEAD`` least floors, ascending, then the
        others (see ``_grid.pxd``), so that a search can stop at the first
        floor of the head above the third least distance it has found.
    outside : ndarray of shape (n_boxes,), float64
        A lower bound on the distance of any point of the box to any centroid
        that is not a candidate.
    """
    cdef Py_ssize_t n_boxes = box_lo.shape[0], n_chunks = 1
    cdef Py_ssize_t t, p, offset, total
    cdef bint pooled = pool_of_box is not None
    if n_threads > 1:
        n_chunks = CHUNKS
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
    cdef Py_ssize_t n = points.shape[0], d = points.shape[1], i, second, cell
    cdef double dist[3]
    labels_array = np.empty(n, dtype=np.intp)
    distance_array = np.empty(n)
    three_array = np.empty((n if return_three else 0, 3))
    cdef Py_ssize_t[::1] labels = labels_array
    cdef double[::1] distance = distance_array
    cdef double[:, ::1] three = three_array
    with nogil:
        for i in range(n):
            cell = cell_of_point[i]
            labels[i] = nearest_three(
                &points[i, 0], d, &indices[0], &floors[0], indptr[cell],
                indptr[cell + 1], &centers[0, 0], &second, dist,
            )
            distance[i] = sqrt(dist[0])
            if return_three:
                three[i, 0] = dist[0]
                three[i, 1] = dist[1]
                three[i, 2] = dist[2]
    if return_three:
        return labels_array, distance_array, three_array
    return labels_array, distance_array
