"""Exact weighted Lloyd iteration: the driver of the compiled passes.

Python drives the loop, one epoch per call of the compiled
:class:`~skvq._engine._lloyd.LloydPasses`: it groups the rows by grid cell,
makes the candidate lists of each epoch, and computes the final means and
inertia. Bounds only skip work: every assignment is that of a brute-force
search (the lowest index on ties).
"""

from __future__ import annotations

import numpy as np

from . import _colors, _lloyd, grid, progress, threads
from .colors import group_sums

# How far, in levels of 256 per feature (colors: in color levels), centroids
# may move before the candidate centroids of each grid cell are recomputed;
# less for codebooks larger than REACH_CLUSTERS, whose centroids are closer
# together (each cell's list is then shorter, and the lists are remade a
# little more often: 10 to 20 % faster at K = 4096).
REACH = 6.0
REACH_CLUSTERS = 256
# Over-relaxed updates move a centroid that keeps heading the same way this
# many times the way to its mean: past the seeding (with tol=0), Lloyd's
# slow tail then takes a third to a half fewer passes to a fixed point.
RELAXATION = 1.8


def run(
    rows,
    weights,
    centers,
    max_iter,
    tol,
    relaxation=1.0,
    return_labels=False,
    on_epoch=None,
    coordinates=None,
):
    """Weighted Lloyd passes from ``centers``.

    Stops when no row changes cluster (the centroids are then the means of
    their rows: a fixed point), when the squared centroid shift summed over
    clusters is at most ``tol`` times the mean per-feature variance, as in
    :class:`~sklearn.cluster.KMeans`, or after ``max_iter`` passes; in the
    last two cases the rows are assigned to the final centroids. With
    ``return_labels``, also returns the cluster of each row.

    With ``relaxation > 1``, up to the first ``max_iter // 2`` updates are
    over-relaxed: a centroid whose way to its mean heads the way of its last
    move goes ``relaxation`` times that way. The momentum restarts with each
    epoch (below): its first update is plain. Once no row changes cluster,
    plain updates follow until one leaves every row in place: the end is a
    fixed point of plain Lloyd.

    The passes run in epochs during which no centroid moves farther than
    ``REACH`` from where it was at the start of the epoch; each epoch gets
    candidate lists for the grid cells made with that much slack.
    ``on_epoch``, if given, is called after each with the
    :class:`~skvq._engine._lloyd.LloydPasses` and the passes done so far.

    ``coordinates`` (:class:`~skvq._engine.grid.Coordinates`) place the
    rows on the grid; by default, uint8 rows are their own coordinates and
    others are quantized to 16 bits.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features), float64
    inertia : float
    n_iter : int
        Centroid updates done.
    labels : ndarray of shape (n_rows,), intp
        Only with ``return_labels``.
    """
    if coordinates is None:
        coordinates = grid.Coordinates.of(rows)
    reach = (
        REACH * coordinates.level * min(1.0, (REACH_CLUSTERS / len(centers)) ** (1 / 6))
    )
    cells = grid.build(coordinates, len(rows))
    rows = np.ascontiguousarray(grid.as_points(rows))
    pyramid = cells.boxes(rows)
    # The passes take the rows grouped by cell.
    order, box_start, points, weights = _colors.group_by_box(
        rows,
        np.ascontiguousarray(weights, dtype=np.float64),
        cells.cell_of_row,
        cells.n_cells,
    )
    (cell_lo, cell_hi), _ = pyramid[0]
    passes = _lloyd.LloydPasses(
        points,
        weights,
        box_start,
        centers,
        reach=reach,
        margin=_bound_margin(cell_lo, cell_hi, reach),
        relaxation=relaxation,
        # The last update is then a plain one, even at max_iter.
        relaxed_passes=max_iter // 2 if relaxation != 1 else 0,
        tol=tol * _mean_variance(points, weights) if tol > 0 else 0.0,
        n_threads=threads.for_work(len(rows), threads.LLOYD_ROWS),
    )
    n_iter, settled = 0, False
    while True:
        lists = grid.candidates(pyramid, passes.centers, 2 * reach)
        n_iter += passes.run_epoch(*lists, 0 if settled else max_iter - n_iter)
        settled = settled or passes.settled
        if on_epoch is not None:
            on_epoch(passes, n_iter)
        progress.say(f"Lloyd on {len(rows):,} points: {n_iter} passes", level=2)
        if not passes.reanchor:
            break
    labels, centers = passes.labels, passes.centers
    if passes.fixed:
        # Recompute the means in one pass so that they carry no rounding
        # accumulated by the incremental updates (with float weights).
        sums, counts = group_sums(points, weights, labels, len(centers))
        centers = _means(centers, sums, counts)
    inertia = _lloyd.inertia(points, weights, centers, labels)
    progress.say(
        f"Lloyd on {len(rows):,} points: "
        + ("fixed point" if passes.fixed else "stopped by tol or max_iter")
        + f" after {n_iter} passes, inertia {inertia:.6g}"
    )
    if not return_labels:
        return centers, inertia, n_iter
    labels_of_rows = np.empty_like(labels)
    labels_of_rows[order] = labels
    return centers, inertia, n_iter, labels_of_rows


def _means(centers, sums, counts):
    """Cluster means; empty clusters keep their centroid."""
    filled = counts > 0
    means = centers.copy()
    means[filled] = sums[filled] / counts[filled, None]
    return means


def _bound_margin(cell_lo, cell_hi, reach):
    """How much the passes loosen each bound (see ``LloydPasses``).

    A billionth of the extent of the grid's cells and of the reach: far
    more than the rounding of the sums of centroid moves the bounds keep,
    far less than any distance that matters.
    """
    extent = float((cell_hi.max(axis=0) - cell_lo.min(axis=0)).max())
    return 1e-9 * max(extent, reach)


def _mean_variance(points, weights):
    """Weighted variance of the features, averaged over features."""
    # einsum, not BLAS: OpenBLAS threads would then spin next to the passes'.
    mean = np.einsum("i,ij->j", weights, points) / weights.sum()
    variance = np.einsum("i,ij->", weights, (points - mean) ** 2) / weights.sum()
    return float(variance) / points.shape[1]
