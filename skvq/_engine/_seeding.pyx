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
