# cython: language_level=3
"""The search for a point's nearest centroids in its box's candidate list,
inline in each module that searches (the grid's and Lloyd's passes)."""

from libc.math cimport INFINITY

from skvq._engine._common cimport sq_distance

# Each candidate list starts with its HEAD least floors in ascending order;
# the rest, all no less, follow in any order (see ``_grid._order``).
cdef enum:
    HEAD = 16


cdef inline Py_ssize_t nearest_three(
    const double* x,
    Py_ssize_t d,
    const Py_ssize_t* indices,
    const double* floors,
    Py_ssize_t start,
    Py_ssize_t end,
    const double* centers,
    Py_ssize_t* runner_up,
    double* dist,
) noexcept nogil:
    """Nearest of the candidates ``indices[start:end]`` to point ``x`` (the
    lowest index on ties), the next one, and the three least squared
    distances (``dist[0] <= dist[1] <= dist[2]``; infinite when fewer).

    ``floors`` are lower bounds on the candidates' squared distances,
    ascending over the list's head, no less beyond: the search stops at the
    first one of the head above the third distance, and skips those of the
    rest.
    """
    cdef Py_ssize_t p, j, best = -1, second = -1, head_end = min(start + HEAD, end)
    cdef double sq, d1 = INFINITY, d2 = INFINITY, d3 = INFINITY
    for p in range(start, end):
        # No candidate of floor above d3 can be among the three, nor tie
        # with the nearest (a tie's floor is at most d1 <= d3); in the
        # head, no later one can either.
        if floors[p] > d3:
            if p < head_end:
                break
            continue
        j = indices[p]
        sq = sq_distance(x, &centers[j * d], d)
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
    if best < 0:
        # Every distance NaN (values beyond 1e154 overflow): a label is
        # still a centroid.
        best = indices[start]
    runner_up[0] = second
    dist[0] = d1
    dist[1] = d2
    dist[2] = d3
    return best
