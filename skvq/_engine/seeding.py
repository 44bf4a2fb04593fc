"""Seeding: k-means++ or random, the best of ``n_init`` as in KMeans."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

from . import _seeding, grid, lloyd, progress, threads

# The trials of a seeding look only near their candidate (at most four
# features) from this many points times clusters on, or from
# _GRID_MIN_SMALL_WORK on for _GRID_MIN_CLUSTERS clusters or more. Measured
# on photo colors: the grid took 0.18 to 0.75 times the greedy loop's time
# at K = 64 to 1,024 on 2,000 to 40,000 points (hubble_deep_field's 61,594
# colors at K = 256: 66 ms instead of 274), but 1.1 to 2 times at K = 16 to
# 48, where the greedy loop's trials are few.
_GRID_MIN_WORK = 20_000_000
_GRID_MIN_CLUSTERS = 64
_GRID_MIN_SMALL_WORK = 100_000


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


def best_of(
    points,
    weights,
    n_clusters,
    *,
    init,
    n_init,
    random_state,
    refine,
    coordinates=None,
    samples=None,
):
    """The best of ``n_init`` seedings refined, as in KMeans.

    ``n_init="auto"`` runs one k-means++ seeding or ten random ones, like
    :class:`~sklearn.cluster.KMeans`; "random" draws distinct points with
    probability proportional to their weight. The seedings draw one after
    the other from ``random_state``, as KMeans's do. ``refine(centers)``
    returns a tuple whose second item is the inertia; the one with the
    least is returned. ``coordinates`` (:class:`~skvq._engine.grid.Coordinates`)
    place the points on the grid of the seeding, if it takes one.
    ``samples`` (see :func:`kmeans_plusplus`) make k-means++ draw as KMeans
    draws on the samples the points stand for.
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
            chosen = kmeans_plusplus(
                points, weights, n_clusters, random_state, coordinates, samples
            )
        else:
            chosen = random_state.choice(
                len(points), n_clusters, replace=False, p=weights / weights.sum()
            )
        result = refine(points[chosen])
        if best is None or result[1] < best[1]:
            best = result
    return best


def kmeans_plusplus(
    points, weights, n_clusters, random_state, coordinates=None, samples=None
):
    """Greedy k-means++ seeding, as :func:`sklearn.cluster.kmeans_plusplus`.

    Same algorithm, number of trials per centroid (``2 + log(k)``) and
    draws; the compiled loop costs a few milliseconds where scikit-learn's
    Python loop costs about a quarter of a millisecond per centroid. With
    many points or many clusters (at most four features), each trial looks
    only at the points near its candidate (``_seeding.grid_kmeans_plusplus``).

    ``samples = (point_of_sample, sample_weight)``, when the points are the
    distinct rows of samples (``sample_weight`` None for unit weights),
    makes the draws those KMeans makes on the samples themselves: the first
    centroid is drawn among the samples, the candidates by the cumulative
    potential over the samples in their order. On integer data (8-bit
    images) every distance and every cumulative sum is exact, so the seeds
    are KMeans's, for the same ``random_state``; the trials are still
    weighed on the distinct rows.
    """
    if samples is None:
        first = random_state.choice(len(points), p=weights / weights.sum())
    else:
        point_of_sample, sample_weight = samples
        p = None if sample_weight is None else sample_weight / sample_weight.sum()
        sample = _seeding.first_sample(
            len(point_of_sample), random_state.random_sample(), p
        )
        first = point_of_sample[sample]
    draws = random_state.uniform(size=(n_clusters - 1, 2 + int(np.log(n_clusters))))
    points = np.ascontiguousarray(points, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    n_threads = threads.for_work(len(points), threads.SEEDING_POINTS)
    work = len(points) * (n_clusters - 1)
    if points.shape[1] <= 4 and (
        work > _GRID_MIN_WORK
        or (n_clusters >= _GRID_MIN_CLUSTERS and work >= _GRID_MIN_SMALL_WORK)
    ):
        layout = _blocks_of_cells(points, coordinates)
        if samples is not None:
            # The kernel keeps the points cell by cell.
            position = np.empty_like(layout[0])
            position[layout[0]] = np.arange(len(points))
            samples = (position[samples[0]], samples[1])
        return _seeding.grid_kmeans_plusplus(
            points,
            weights,
            first,
            draws,
            *layout,
            n_threads,
            _sample_order(samples, len(points)),
        )
    return _seeding.greedy_kmeans_plusplus(
        points, weights, first, draws, n_threads, _sample_order(samples, len(points))
    )


def kmeans_plusplus_by_products(points, weights, n_clusters, random_state):
    """k-means++ seeding as :class:`~sklearn.cluster.KMeans` computes it.

    For many features, where distances are best taken as matrix products:
    the same draws, the same products (``numpy.matmul``, on the same BLAS)
    and the same roundings after them as scikit-learn's ``_kmeans_plusplus``,
    so the same seeds bit for bit, with the per-centroid work in between
    compiled (``_seeding.draw_candidates``, ``_seeding.trial_distances``):
    about half of scikit-learn's time on ``load_digits`` at K = 8. KMeans
    seeds the samples less their mean: ``points`` must be those.

    Returns
    -------
    ndarray of shape (n_clusters,), intp
        The indices of the seeds in ``points``.
    """
    points = np.ascontiguousarray(points, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    first = random_state.choice(len(points), p=weights / weights.sum())
    draws = random_state.uniform(size=(n_clusters - 1, 2 + int(np.log(n_clusters))))
    norms = _row_norms(points)
    cumulative = np.empty(len(points))
    chosen = np.empty(n_clusters, dtype=np.intp)
    chosen[0] = first
    candidates = np.array([first])
    closest = np.full(len(points), np.inf)
    column = weights.reshape(-1, 1)
    for c in range(n_clusters):
        rows = points[candidates]
        trials = rows @ points.T
        _seeding.trial_distances(trials, _row_norms(rows), norms, closest)
        potentials = trials @ column
        best = np.argmin(potentials)
        chosen[c], potential, closest = candidates[best], potentials[best], trials[best]
        if c + 1 < n_clusters:
            candidates = _seeding.draw_candidates(
                closest, weights, draws[c] * potential, cumulative
            )
    return chosen


def _row_norms(rows):
    """Squared norms of ``rows``, as scikit-learn's ``row_norms`` takes them."""
    return np.einsum("ij,ij->i", rows, rows)


def _sample_order(samples, n_points):
    """The kernels' view of ``samples = (position, sample_weight)``: the
    position of each sample's point, the weights, and the samples grouped
    by position."""
    if samples is None:
        return None
    position, sample_weight = samples
    position = np.ascontiguousarray(position, dtype=np.intp)
    weight = (
        np.ones(len(position))
        if sample_weight is None
        else np.ascontiguousarray(sample_weight, dtype=np.float64)
    )
    return position, weight, *_seeding.samples_by_position(position, n_points)


def _blocks_of_cells(points, coordinates=None):
    """The points cell by cell, the cells block by block, and their boxes.

    Cells are those of the finest grid of :func:`grid.build` (of the points
    at ``coordinates``, by default their own), blocks those of its coarsest.
    """
    if coordinates is None:
        coordinates = grid.Coordinates.of(points)
    cells = grid.build(coordinates, len(points))
    pyramid = cells.boxes(points)
    (cell_lo, cell_hi), _ = pyramid[0]
    (block_lo, block_hi), _ = pyramid[-1]
    block_of_cell = np.arange(cells.n_cells)
    for parent_of_box in cells.parents[:-1]:
        block_of_cell = parent_of_box[block_of_cell]
    cell_order = np.argsort(block_of_cell, kind="stable")
    new_cell = np.empty_like(cell_order)
    new_cell[cell_order] = np.arange(len(cell_order))
    cell_of_point = new_cell[cells.cell_of_row]
    point_of = np.argsort(cell_of_point, kind="stable")

    def starts(groups, n_groups):
        return np.concatenate(([0], np.cumsum(np.bincount(groups, minlength=n_groups))))

    return (
        point_of,
        starts(cell_of_point, cells.n_cells),
        np.ascontiguousarray(cell_lo[cell_order]),
        np.ascontiguousarray(cell_hi[cell_order]),
        starts(block_of_cell, len(block_lo)),
        block_lo,
        block_hi,
    )
