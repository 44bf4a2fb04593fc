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
