# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""Compiled loop of :mod:`skvq._engine.refine`: each row's runner-up codeword."""

from libc.math cimport INFINITY, sqrt

import numpy as np

ctypedef fused row_t:
    unsigned char
    double


cdef inline double _sq_distance(
    const row_t[:, ::1] rows, Py_ssize_t i, const double[:, ::1] centers, Py_ssize_t j
) noexcept nogil:
    cdef Py_ssize_t f
    cdef double diff, total = 0.0
    for f in range(rows.shape[1]):
        diff = rows[i, f] - centers[j, f]
        total += diff * diff
    return total


def runner_up(
    const row_t[:, ::1] rows,
    const double[:, ::1] centers,
    const Py_ssize_t[::1] labels,
    const Py_ssize_t[:, ::1] neighbors,
    const double[:, ::1] neighbor_distance,
):
    """The nearest codeword of each row other than its own, exactly.

    ``neighbors[a]`` lists codewords other than ``a`` by increasing distance
    ``neighbor_distance[a]`` from codeword ``a`` (the nearest few, or all).
    A codeword ``j`` at distance ``D`` from a row's own codeword, itself at
    distance ``d`` from the row, is at least ``D - d`` from the row (the
    triangle inequality): the scan of the list stops as soon as ``D - d``
    reaches the least distance found. Rows whose list runs out first are
    searched over every codeword. On ties, the first found.

    Returns
    -------
    runner_up : ndarray of shape (n_rows,), intp
        -1 when there is a single codeword.
    sq_distance : ndarray of shape (n_rows,), float64
        Squared distance to it (infinite when there is none).
    """
    cdef Py_ssize_t n = rows.shape[0], k = centers.shape[0], width = neighbors.shape[1]
    cdef Py_ssize_t i, p, j, own, best
    cdef double own_distance, sq, best_sq
    cdef bint exhausted
    best_array = np.empty(n, dtype=np.intp)
    sq_array = np.empty(n)
    cdef Py_ssize_t[::1] best_of = best_array
    cdef double[::1] sq_of = sq_array
    with nogil:
        for i in range(n):
            own = labels[i]
            own_distance = sqrt(_sq_distance(rows, i, centers, own))
            best, best_sq = -1, INFINITY
            exhausted = True
            for p in range(width):
                if neighbor_distance[own, p] - own_distance >= sqrt(best_sq):
                    exhausted = False
                    break
                j = neighbors[own, p]
                sq = _sq_distance(rows, i, centers, j)
                if sq < best_sq:
                    best, best_sq = j, sq
            if exhausted and width < k - 1:
                for j in range(k):
                    if j != own:
                        sq = _sq_distance(rows, i, centers, j)
                        if sq < best_sq:
                            best, best_sq = j, sq
            best_of[i] = best
            sq_of[i] = best_sq
    return best_array, sq_array


def single_moves(
    const double[:, ::1] rows,
    const double[::1] weights,
    Py_ssize_t[::1] labels,
    double[:, ::1] centers,
    double[::1] sizes,
    long long[::1] seen,
    long long[::1] changed,
    Py_ssize_t[::1] later,
    Py_ssize_t[::1] earlier,
    long long clock,
    double gain,
):
    """One pass of Hartigan's single-row moves over the rows, in order.

    Each row in turn goes to the cluster where it costs least, if that
    lowers the error: a row ``x`` of weight ``w`` in cluster ``a`` (total
    weight ``W_a``, mean ``c_a``) moves to ``b`` when
    ``W_b / (W_b + w) |x - c_b|^2 < W_a / (W_a - w) |x - c_a|^2``, which
    lowers the error by the difference, and both means are updated at once.
    A move must lower it by more than the fraction ``gain`` (the rounding
    of the sums is no improvement). Rows of no weight go to their nearest
    codeword (the lowest index on ties). ``labels``, ``centers`` and
    ``sizes`` (each cluster's total weight) are updated in place.

    Two things skip work, exactly:

    - the live sets of Hartigan and Wong: a row whose cluster has not
      changed since the row was last looked at (``seen``, on a ``clock``
      that counts the rows looked at) can only move to a cluster that has
      (``changed``): those are kept most recent first in a doubly linked
      list (``later``, ``earlier``; -1 ends it; ``later[k]`` is its head);
    - each distance is summed feature by feature and abandoned as soon as
      it is too large for its cluster to beat the best move found (a
      partial distance search).

    Returns
    -------
    moves : int
        Rows moved.
    clock : int
        The clock at the end of the pass.
    """
    cdef Py_ssize_t n = rows.shape[0], k = centers.shape[0], d = rows.shape[1]
    cdef Py_ssize_t row, j, f, own, best, n_moved = 0
    cdef double w, leave, best_enter, bound, total, diff, share
    cdef bint everywhere
    with nogil:
        for row in range(n):
            clock += 1
            w = weights[row]
            own = labels[row]
            if w <= 0:
                best, best_enter = own, _sq_distance(rows, row, centers, own)
                for j in range(k):
                    total = _sq_distance(rows, row, centers, j)
                    if total < best_enter or (total == best_enter and j < best):
                        best, best_enter = j, total
                labels[row] = best
                continue
            if sizes[own] <= w:
                seen[row] = clock
                continue  # alone in its cluster, at distance 0
            everywhere = changed[own] > seen[row]
            leave = sizes[own] / (sizes[own] - w) * _sq_distance(rows, row, centers, own)
            best, best_enter = -1, leave * (1 - gain)
            j = -1
            while True:
                # Every cluster, or those changed since the row was seen.
                if everywhere:
                    j += 1
                    if j == k:
                        break
                else:
                    j = later[k] if j < 0 else later[j]
                    if j < 0 or changed[j] <= seen[row]:
                        break
                if j == own:
                    continue
                # The squared distance at which j's cost equals the best's.
                if sizes[j] > 0:
                    bound = best_enter * (sizes[j] + w) / sizes[j]
                else:
                    bound = INFINITY
                total = 0.0
                for f in range(d):
                    diff = rows[row, f] - centers[j, f]
                    total += diff * diff
                    if total >= bound:
                        break
                if total < bound:
                    best, best_enter = j, sizes[j] / (sizes[j] + w) * total
            seen[row] = clock
            if best < 0:
                continue
            share = w / (sizes[own] - w)
            for f in range(d):
                centers[own, f] += share * (centers[own, f] - rows[row, f])
            share = w / (sizes[best] + w)
            for f in range(d):
                centers[best, f] += share * (rows[row, f] - centers[best, f])
            sizes[own] -= w
            sizes[best] += w
            labels[row] = best
            n_moved += 1
            _to_front(own, clock, changed, later, earlier, k)
            _to_front(best, clock, changed, later, earlier, k)
    return n_moved, clock


cdef inline void _to_front(
    Py_ssize_t j,
    long long clock,
    long long[::1] changed,
    Py_ssize_t[::1] later,
    Py_ssize_t[::1] earlier,
    Py_ssize_t k,
) noexcept nogil:
    """Mark cluster ``j`` changed now: first of the list (head ``later[k]``)."""
    changed[j] = clock
    if later[k] == j:
        return
    # Unlink j (earlier[j] is not -1: j is not the head) ...
    later[earlier[j]] = later[j]
    if later[j] >= 0:
        earlier[later[j]] = earlier[j]
    # ... and put it first.
    later[j] = later[k]
    earlier[later[k]] = j
    earlier[j] = k
    later[k] = j
