"""Seeding: k-means++ or random, the best of ``n_init`` as in KMeans."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from . import _seeding, lloyd, progress, threads


def seed(points, weights, n_clusters, *, init, n_init, max_iter, tol, random_state):
    """Lloyd's fixed point from the best of ``n_init`` seedings, as in KMeans."""

    def refine(centers):
        return lloyd.run(points, weights, centers, max_iter, tol)

    best = best_of(
        points,
        weights,
        n_clusters,
        init=init,
        n_init=n_init,
        random_state=random_state,
        refine=refine,
    )
    return best[0]


def best_of(points, weights, n_clusters, *, init, n_init, random_state, refine):
    """The best of ``n_init`` seedings refined, as in KMeans.

    ``n_init="auto"`` runs one k-means++ seeding or ten random ones, like
    :class:`~sklearn.cluster.KMeans`; "random" draws distinct points with
    probability proportional to their weight. The seedings draw one after
    the other from ``random_state``, as KMeans's do. ``refine(centers)``
    returns a tuple whose second item is the inertia; the one with the
    least is returned.
    """
    random_state = check_random_state(random_state)
    if n_init == "auto":
        n_init = 1 if init == "k-means++" else 10
    best = None
    for attempt in range(n_init):
        progress.say(
            f"seeding {attempt + 1} of {n_init} ({init}): {n_clusters:,} centroids "
            f"on {len(points):,} points"
        )
        if init == "k-means++":
            chosen = kmeans_plusplus(points, weights, n_clusters, random_state)
        else:
            chosen = random_state.choice(
                len(points), n_clusters, replace=False, p=weights / weights.sum()
            )
        result = refine(points[chosen])
        if best is None or result[1] < best[1]:
            best = result
    return best


def kmeans_plusplus(points, weights, n_clusters, random_state):
    """Greedy k-means++ seeding, as :func:`sklearn.cluster.kmeans_plusplus`.

    Same algorithm and number of trials per centroid (``2 + log(k)``); the
    compiled loop costs a few milliseconds where scikit-learn's Python loop
    costs about a quarter of a millisecond per centroid.
    """
    first = random_state.choice(len(points), p=weights / weights.sum())
    draws = random_state.uniform(size=(n_clusters - 1, 2 + int(np.log(n_clusters))))
    return _seeding.greedy_kmeans_plusplus(
        np.ascontiguousarray(points, dtype=np.float64),
        np.ascontiguousarray(weights, dtype=np.float64),
        first,
        draws,
        threads.for_work(len(points), threads.SEEDING_POINTS),
    )
