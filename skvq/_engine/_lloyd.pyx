# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""Compiled Lloyd passes with bounds, epoch by epoch (driven by ``lloyd.py``).

Points are grouped by box (cells of a grid, ``grid.py``); each box has a
list of the centroids that may be nearest to its points (``_grid.pyx``).
The lists are valid while no centroid is farther than ``reach`` from where
it was when they were made (its anchor): an epoch. :class:`LloydPasses`
runs the passes of one epoch per call, and returns when a centroid leaves
that reach; the driver then makes new lists.

Each point keeps bounds in the manner of Hamerly's, so that a pass costs one
comparison for most points and a search for the few near a cluster boundary.
"""

from cython.parallel cimport prange
from libc.math cimport INFINITY, sqrt
from libc.string cimport memset

import numpy as np

from skvq._engine._common cimport CHUNKS, skvq_prefetch, sq_distance
from skvq._engine._grid cimport nearest_three

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

# The sums of moves of the chunks take at most this many values (fewer
# chunks for large codebooks); points checked per batch.
cdef enum:
    _CHUNK_SUMS_MAX = 1 << 21
    _BATCH = 16


cdef struct Epoch:
    # What an assignment step reads and writes, for the helpers below. The
    # points, grouped by box, and the candidate lists of the epoch (IN):
    const double* points  # (n, d)
    const double* weights  # (n,)
    const Py_ssize_t* box_start  # (n_boxes + 1,)
    Py_ssize_t n
    Py_ssize_t d
    Py_ssize_t k
    Py_ssize_t n_boxes
    const Py_ssize_t* indptr  # (n_boxes + 1,)
    const Py_ssize_t* indices
    const double* floors
    const double* outside  # (n_boxes,)
    double reach
    double margin
    # The centroids and how far they have moved (IN):
    const double* centers  # (k, d)
    const double* travel  # (k,) distance travelled since the first pass
    const double* shift  # (k,) the last update's moves
    # Each point's bounds and labels, each box's drift, the marks (IN/OUT):
    PointState* state  # (n,)
    double* drift  # (n_boxes,)
    double* mark  # (n,)
    double* box_mark  # (n_boxes,)


cdef inline void _move(
    const Epoch* e,
    Py_ssize_t i,
    Py_ssize_t old,
    Py_ssize_t new,
    double* delta_sums,
    double* delta_counts,
) noexcept nogil:
    cdef Py_ssize_t f, d = e.d
    cdef double w = e.weights[i]
    for f in range(d):
        delta_sums[old * d + f] -= w * e.points[i * d + f]
        delta_sums[new * d + f] += w * e.points[i * d + f]
    delta_counts[old] -= w
    delta_counts[new] += w


cdef inline Py_ssize_t _search(
    const Epoch* e, Py_ssize_t i, Py_ssize_t c, Py_ssize_t* runner_up, double* dist
) noexcept nogil:
    """Point ``i``'s nearest candidate of box ``c`` (see ``nearest_three``)."""
    return nearest_three(
        &e.points[i * e.d], e.d, e.indices, e.floors, e.indptr[c], e.indptr[c + 1],
        e.centers, runner_up, dist,
    )


cdef Py_ssize_t _check_points(
    const Epoch* e,
    const Py_ssize_t* pending,
    Py_ssize_t n_pending,
    Py_ssize_t c,
    double limit,
    double* least_gap,
    double* delta_sums,
    double* delta_counts,
) noexcept nogil:
    """Check the points ``pending`` of box ``c`` whose marks failed.

    Each is reassigned if its bounds no longer hold apart, and gets a new
    mark; returns how many changed cluster.
    """
    cdef Py_ssize_t q, i, a, b, r, moved = 0, d = e.d
    cdef double own, other, rest, margin = e.margin
    cdef PointState* point
    cdef double dist[3]
    for q in range(n_pending):
        i = pending[q]
        point = &e.state[i]
        a = point.label
        r = point.runner_up
        own = point.upper + e.travel[a]
        rest = point.lower_rest - e.drift[c]
        other = rest
        if r >= 0:
            other = min(other, point.lower_runner_up - e.travel[r])
        if own > other:
            own = sqrt(sq_distance(&e.points[i * d], &e.centers[a * d], d))
            point.upper = own + margin - e.travel[a]
            if own > rest:
                b = _search(e, i, c, &r, dist)
                own = sqrt(dist[0])
                point.runner_up = r
                point.upper = own + margin - e.travel[b]
                if r >= 0:
                    point.lower_runner_up = sqrt(dist[1]) - margin + e.travel[r]
                rest = min(sqrt(dist[2]) - margin, e.outside[c] - e.reach)
                point.lower_rest = rest + e.drift[c]
                other = min(rest, sqrt(dist[1]) - margin)
            elif r >= 0 and own > point.lower_runner_up - e.travel[r]:
                other = sqrt(sq_distance(&e.points[i * d], &e.centers[r * d], d))
                b = a
                if other < own or (other == own and r < a):
                    # The runner-up is nearer (or as near, with a lower
                    # index), and the rest farther than the old centroid.
                    b = r
                    point.runner_up = a
                    own, other = other, own
                    point.upper = own + margin - e.travel[b]
                point.lower_runner_up = other - margin + e.travel[point.runner_up]
                other = min(other - margin, rest)
            else:
                b = a
            own += margin
            if b != a:
                _move(e, i, a, b, delta_sums, delta_counts)
                point.label = b
                moved += 1
        e.mark[i] = other - own + limit
        least_gap[0] = min(least_gap[0], e.mark[i])
    return moved


cdef inline double _largest_shift(const Epoch* e, Py_ssize_t c) noexcept nogil:
    """The largest last shift of the candidates of box ``c``."""
    cdef Py_ssize_t p
    cdef double largest = 0.0
    for p in range(e.indptr[c], e.indptr[c + 1]):
        largest = max(largest, e.shift[e.indices[p]])
    return largest


cdef Py_ssize_t _assign_boxes(
    const Epoch* e,
    Py_ssize_t first_box,
    Py_ssize_t last_box,
    double* delta_sums,
    double* delta_counts,
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
        e.drift[c] += _largest_shift(e, c)
        limit = 2 * e.drift[c]
        if e.box_mark[c] >= limit:
            continue
        least_gap = INFINITY
        n_pending = 0
        for i in range(e.box_start[c], e.box_start[c + 1]):
            if e.mark[i] >= limit:
                least_gap = min(least_gap, e.mark[i])
                continue
            # The points to check are gathered and their data fetched ahead:
            # their cache misses then overlap instead of coming one by one.
            skvq_prefetch(&e.state[i])
            skvq_prefetch(&e.points[i * e.d])
            pending[n_pending] = i
            n_pending += 1
            if n_pending == _BATCH:
                moved += _check_points(
                    e, pending, n_pending, c, limit, &least_gap, delta_sums, delta_counts
                )
                n_pending = 0
        moved += _check_points(
            e, pending, n_pending, c, limit, &least_gap, delta_sums, delta_counts
        )
        e.box_mark[c] = least_gap
    return moved


cdef Py_ssize_t _enter_boxes(
    const Epoch* e,
    Py_ssize_t first_box,
    Py_ssize_t last_box,
    double* delta_sums,
    double* delta_counts,
) noexcept nogil:
    """The points of boxes ``first_box:last_box`` on entry to an epoch.

    Points never assigned are searched and added to ``delta_sums`` and
    ``delta_counts``; returns how many. The others' bound on the rest
    takes in the centroids off the new list. Every point gets its mark, so
    that the first pass checks only those it must.
    """
    cdef Py_ssize_t c, i, a, r, f, searched = 0, d = e.d
    cdef double rest, own, other, least_gap, margin = e.margin
    cdef double dist[3]
    cdef PointState* point
    for c in range(first_box, last_box):
        least_gap = INFINITY
        for i in range(e.box_start[c], e.box_start[c + 1]):
            point = &e.state[i]
            if point.label < 0:
                a = _search(e, i, c, &r, dist)
                point.label = a
                point.runner_up = r
                own = sqrt(dist[0]) + margin
                point.upper = own - e.travel[a]
                if r >= 0:
                    point.lower_runner_up = sqrt(dist[1]) - margin + e.travel[r]
                rest = sqrt(dist[2]) - margin
                other = sqrt(dist[1]) - margin
                searched += 1
                delta_counts[a] += e.weights[i]
                for f in range(d):
                    delta_sums[a * d + f] += e.weights[i] * e.points[i * d + f]
            else:
                # The runner-up's bound holds whether or not it is on the
                # new list: it is kept, and only the rest's bound shrinks.
                own = point.upper + e.travel[point.label]
                rest = point.lower_rest - e.drift[c]
                r = point.runner_up
                other = INFINITY
                if r >= 0:
                    other = point.lower_runner_up - e.travel[r]
            # A centroid off the list stays at least outside - reach away.
            rest = min(rest, e.outside[c] - e.reach)
            point.lower_rest = rest + e.drift[c]
            e.mark[i] = min(other, rest) - own + 2 * e.drift[c]
            least_gap = min(least_gap, e.mark[i])
        e.box_mark[c] = least_gap
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


cdef class LloydPasses:
    """Weighted Lloyd passes, one epoch per call of :meth:`run_epoch`.

    Alternates assigning each point to its nearest centroid (the lowest
    index on ties) and moving each centroid to the weighted mean of its
    points (an empty cluster keeps its centroid), starting with an
    assignment. Up to ``relaxed_passes`` updates are over-relaxed: a
    centroid whose way to the mean of its points heads the way of its last
    move in this epoch (a positive dot product) goes ``relaxation`` times
    that way. When no point changes cluster after such an update
    (``overshot``), the next updates are plain ones. The iteration stops
    when no point changes cluster after a plain update (``fixed``), when
    the squared centroid shifts of an update sum to at most ``tol``
    (``settled``), or after ``max_passes`` updates.

    Each point keeps bounds on its distance to its centroid, to the
    runner-up centroid found by its last search and to all others. They
    are stored so that no pass updates them: the first two relative to how
    far their centroid has travelled in all, the last relative to the
    box's drift, the sum over passes of the largest shift of the box's
    candidates. A point is searched again only when the rest may be nearer
    than its centroid; when only the runner-up may be, one distance settles
    it. Every bound is loosened by ``margin`` when it is set, more than the
    rounding of the sums that make it: a point whose nearest centroids tie
    is checked, so that it goes to the lowest index, as a brute-force
    search does. A box is skipped whole while its drift since it was last
    visited cannot have closed the least gap between its points' bounds.

    The assignment steps run on ``n_threads`` OpenMP threads over chunks of
    boxes, each chunk with its own sums of moves, merged in a fixed order:
    the result does not depend on the number of threads.

    Parameters
    ----------
    points : ndarray of shape (n_points, n_features), float64
        Grouped by box: those of box ``c`` are
        ``points[box_start[c]:box_start[c+1]]``.
    weights : ndarray of shape (n_points,), float64
    box_start : ndarray of shape (n_boxes + 1,), intp
    centers : ndarray of shape (n_clusters, n_features), float64
        The starting centroids (copied).
    reach : float
        How far a centroid may go from its anchor in an epoch; the
        candidate lists must be made with a slack of ``2 * reach``.
    margin, relaxation, relaxed_passes, tol, n_threads
        As above.

    Attributes
    ----------
    centers, sums, counts : ndarray
        The centroids, and the weighted sums and weights of their points
        (of the last assignment).
    labels : ndarray of shape (n_points,), intp
        Each point's centroid.
    fixed, settled, reanchor, overshot : bool
        After the last call: no point changed cluster in the last
        assignment, which followed a plain update; the last update was
        within ``tol``; a centroid left the reach (the last update was done
        but the points were not reassigned: call again with new lists); the
        last update was over-relaxed.
    """

    cdef readonly object centers, sums, counts
    cdef object _points, _weights, _box_start, _state, _travel, _drift, _shift
    cdef object _mark, _box_mark, _last_move, _anchor, _chunk_box
    cdef object _delta_sums, _delta_counts, _chunk_moved
    cdef Epoch _epoch
    cdef int _n_threads
    cdef double _relaxation, _tol
    cdef Py_ssize_t _relaxed_passes
    cdef readonly bint fixed, settled, reanchor, overshot
    cdef bint _started

    def __init__(
        self,
        const double[:, ::1] points,
        const double[::1] weights,
        const Py_ssize_t[::1] box_start,
        centers,
        *,
        double reach,
        double margin,
        double relaxation=1.0,
        Py_ssize_t relaxed_passes=0,
        double tol=0.0,
        int n_threads=1,
    ):
        cdef Py_ssize_t n = points.shape[0], d = points.shape[1]
        cdef Py_ssize_t n_boxes = box_start.shape[0] - 1
        self.centers = np.array(centers, dtype=np.float64, order="C", copy=True)
        cdef Py_ssize_t k = self.centers.shape[0]
        self.sums = np.zeros((k, d))
        self.counts = np.zeros(k)
        self._points, self._weights, self._box_start = points, weights, box_start
        self._state = np.empty(n, dtype=POINT_STATE)
        self._state["label"] = -1
        self._state["runner_up"] = -1
        self._travel = np.zeros(k)
        self._drift = np.zeros(n_boxes)
        # Each centroid's shift in the last update, and its move (none yet).
        self._shift = np.zeros(k)
        self._last_move = np.zeros((k, d))
        self._anchor = np.empty((k, d))
        # A point's bounds hold apart until its box's drift reaches half its
        # mark: the gap between them when last checked plus twice the drift
        # then. Each box's mark is the least of its points'. Both are set on
        # entry to each epoch.
        self._mark = np.empty(n)
        self._box_mark = np.empty(n_boxes)
        # The boxes in chunks of about equal numbers of points.
        n_chunks = min(CHUNKS, n_boxes, max(8, _CHUNK_SUMS_MAX // (k * (d + 1))))
        self._chunk_box = np.searchsorted(
            np.asarray(box_start), np.arange(n_chunks + 1) * n // n_chunks
        ).astype(np.intp)
        self._chunk_box[n_chunks] = n_boxes
        self._delta_sums = np.zeros((n_chunks, k, d))
        self._delta_counts = np.zeros((n_chunks, k))
        self._chunk_moved = np.zeros(n_chunks, dtype=np.intp)
        self._n_threads = n_threads
        self._relaxation = relaxation
        self._relaxed_passes = relaxed_passes
        self._tol = tol
        self._started = False

        cdef Epoch* e = &self._epoch
        cdef PointState[::1] state = self._state
        cdef double[::1] travel = self._travel, drift = self._drift
        cdef double[::1] shift = self._shift, mark = self._mark
        cdef double[::1] box_mark = self._box_mark
        cdef double[:, ::1] center_rows = self.centers
        e.points = &points[0, 0]
        e.weights = &weights[0]
        e.box_start = &box_start[0]
        e.n, e.d, e.k, e.n_boxes = n, d, k, n_boxes
        e.reach = reach
        e.margin = margin
        e.centers = &center_rows[0, 0]
        e.travel = &travel[0]
        e.shift = &shift[0]
        e.state = &state[0]
        e.drift = &drift[0]
        e.mark = &mark[0]
        e.box_mark = &box_mark[0]

    @property
    def labels(self):
        return np.ascontiguousarray(self._state["label"])

    def bounds(self):
        """The bounds each point keeps, as distances to the current centroids.

        Returns
        -------
        upper : ndarray of shape (n_points,)
            At least the distance to its centroid.
        runner_up : ndarray of shape (n_points,), intp
            The runner-up of its last search (-1 if none).
        lower_runner_up : ndarray of shape (n_points,)
            At most the distance to the runner-up.
        lower_rest : ndarray of shape (n_points,)
            At most the distance to any other centroid.
        """
        state = self._state
        runner_up = np.ascontiguousarray(state["runner_up"])
        box_of_point = np.repeat(
            np.arange(len(self._drift)), np.diff(np.asarray(self._box_start))
        )
        return (
            state["upper"] + self._travel[state["label"]],
            runner_up,
            state["lower_runner_up"] - np.where(runner_up >= 0, self._travel[runner_up], 0),
            state["lower_rest"] - self._drift[box_of_point],
        )

    def run_epoch(
        self,
        const Py_ssize_t[::1] indptr,
        const Py_ssize_t[::1] indices,
        const double[::1] floors,
        const double[::1] outside,
        Py_ssize_t max_passes,
    ):
        """Passes while the candidate lists hold: at most ``max_passes`` updates.

        The lists (see ``_grid.candidates``) must have been made from the
        current centroids with a slack of ``2 * reach``. On the first call,
        every point is searched in full.

        Returns
        -------
        n_passes : int
            Centroid updates done.
        """
        cdef Epoch* e = &self._epoch
        e.indptr = &indptr[0]
        e.indices = &indices[0]
        e.floors = &floors[0]
        e.outside = &outside[0]
        cdef Py_ssize_t k = e.k, d = e.d, n_boxes = e.n_boxes
        cdef double reach = e.reach
        cdef double[:, ::1] centers = self.centers
        cdef double[:, ::1] sums = self.sums
        cdef double[::1] counts = self.counts
        cdef double[::1] travel = self._travel
        cdef double[::1] drift = self._drift
        cdef double[::1] shift = self._shift
        cdef double[:, ::1] last_move = self._last_move
        cdef double[:, ::1] anchor = self._anchor
        cdef Py_ssize_t[::1] chunk_box = self._chunk_box
        cdef double[:, :, ::1] delta_sums = self._delta_sums
        cdef double[:, ::1] delta_counts = self._delta_counts
        cdef Py_ssize_t[::1] chunk_moved = self._chunk_moved
        cdef Py_ssize_t n_chunks = chunk_moved.shape[0], t, j, f, c
        cdef int n_threads = self._n_threads
        cdef double relaxation = self._relaxation, tol = self._tol
        cdef Py_ssize_t relaxed_passes = self._relaxed_passes
        cdef bint overshot = self.overshot
        cdef Py_ssize_t n_passes = 0, moved
        cdef double mean, diff, shift_sq, total_shift, excess, step, align, step_j
        cdef bint any_step, searched
        cdef bint fixed = False, settled = False, reanchor = False
        # The momentum restarts with each epoch, from where it starts.
        anchor[:, :] = centers
        last_move[:, :] = 0.0
        shift[:] = 0.0
        with nogil:
            for t in prange(
                n_chunks, schedule="dynamic", chunksize=1, num_threads=n_threads
            ):
                chunk_moved[t] = _enter_boxes(
                    e, chunk_box[t], chunk_box[t + 1],
                    &delta_sums[t, 0, 0], &delta_counts[t, 0],
                )
            searched = _merge(chunk_moved, delta_sums, delta_counts, sums, counts) > 0
            while True:
                if not searched:
                    for t in prange(
                        n_chunks, schedule="dynamic", chunksize=1, num_threads=n_threads
                    ):
                        chunk_moved[t] = _assign_boxes(
                            e, chunk_box[t], chunk_box[t + 1],
                            &delta_sums[t, 0, 0], &delta_counts[t, 0],
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
                    # Lloyd's slow tail is centroids creeping the same way
                    # pass after pass: only those are sped up, not those
                    # that swing.
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
                    if sq_distance(&centers[j, 0], &anchor[j, 0], d) > reach * reach:
                        reanchor = True
                n_passes += 1
                settled = total_shift <= tol
                overshot = any_step and not settled
                if reanchor:
                    # The lists end here. Their candidates' last shifts go in
                    # the drift; a centroid off a list was outside - reach
                    # away or more, less however far past the reach it has
                    # now gone.
                    excess = 0.0
                    for j in range(k):
                        excess = max(
                            excess, sqrt(sq_distance(&centers[j, 0], &anchor[j, 0], d)) - reach
                        )
                    for c in range(n_boxes):
                        drift[c] += _largest_shift(e, c) + excess
                    break
        self.fixed, self.settled, self.reanchor = fixed, settled, reanchor
        self.overshot = overshot
        self._relaxed_passes = max(relaxed_passes - n_passes, 0)
        return n_passes


def inertia(
    const double[:, ::1] points,
    const double[::1] weights,
    const double[:, ::1] centers,
    const Py_ssize_t[::1] labels,
):
    """Weighted sum of squared distances of the points to their centroid."""
    cdef Py_ssize_t i, d = points.shape[1]
    cdef double total = 0.0
    with nogil:
        for i in range(points.shape[0]):
            total += weights[i] * sq_distance(&points[i, 0], &centers[labels[i], 0], d)
    return total
