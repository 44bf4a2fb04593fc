"""Moves between Lloyd fixed points: split, remove, breathing k-means, and
Hartigan's single-row moves.

Lloyd's algorithm stops at the first fixed point it reaches. Two moves
change which clusters there are, and exact weighted Lloyd passes over the
distinct rows then settle everything else:

- *split* the clusters of largest error: each gets a second codeword, the
  two placed along the cluster's principal axis, where 2-means of the
  cluster would put them;
- *remove* the codewords of least utility: the utility of a codeword is how
  much the error would grow if its rows went to their runner-up codeword
  (Fritzke's utility).

Breathing k-means (B. Fritzke, "Breathing K-Means", 2021) alternates ``m``
splits and ``m`` removals from Lloyd's result while that lowers the error,
then tries again with ``m - 1``, down to 1: a better optimum than Lloyd's,
from a handful of warm-started Lloyd runs. Splits and removals alone grow or
shrink a fitted codebook to a nearby size (:mod:`skvq.target`).

Hartigan's moves (:func:`hartigan`) keep the clusters and move one row at a
time, wherever that lowers the error once both means have moved.

Everything here works on weighted distinct rows (``unique_rows``), on which
Lloyd's passes are those over every sample.
"""

from __future__ import annotations

import numpy as np

from . import _refine
from . import lloyd as _lloyd
from .colors import group_sums

# Codewords added and removed by a breath at first (Fritzke's default).
BREATHS = 5
# Where 2-means puts the two means of a Gaussian cluster: sqrt(2 / pi)
# standard deviations either side of its mean, along its principal axis.
_SPLIT_OFFSET = np.sqrt(2 / np.pi)
# A breath is kept if it lowers the error by more than this fraction:
# the rounding of the sums, not an improvement.
_GAIN = 1e-12
# Lloyd passes after the splits of a breath (the removals get a full run).
_GROWN_PASSES = 10
# Codewords listed as neighbors of each for the runner-up search.
_NEIGHBORS = 32


def lloyd(rows, weights, centers, max_iter=300, coordinates=None):
    """Exact weighted Lloyd passes from ``centers`` to a fixed point.

    The engine's Lloyd (over-relaxed, then plain to the fixed point);
    ``coordinates`` place the rows on its search grid (see
    :func:`skvq._engine.lloyd.run`).

    Returns
    -------
    centers : ndarray of shape (n_codes, n_features), float64
    inertia : float
    n_iter : int
    labels : ndarray of shape (n_rows,), intp
    """
    return _lloyd.run(
        rows,
        weights,
        centers,
        max_iter,
        0.0,
        relaxation=_lloyd.RELAXATION,
        return_labels=True,
        coordinates=coordinates,
    )


def cluster_errors(rows, weights, centers, labels):
    """Weighted squared error of each row, and summed by cluster."""
    diff = rows - centers[labels]
    errors = weights * np.einsum("ij,ij->i", diff, diff)
    return errors, np.bincount(labels, errors, minlength=len(centers))


def split(rows, weights, centers, labels, n_new):
    """``centers`` with the ``n_new`` clusters of largest error split in two.

    Each split cluster's codeword is replaced by two, at
    ``mean -/+ sqrt(2 / pi) * std * axis`` along the principal axis of its
    rows. Clusters without error (one distinct row) are never split, so
    fewer than ``n_new`` codewords are added when fewer clusters have error.

    Returns
    -------
    ndarray of shape (n_codes + n_split, n_features)
    """
    _, errors = cluster_errors(rows, weights, centers, labels)
    n_new = min(n_new, int(np.count_nonzero(errors > 0)))
    if n_new <= 0:
        return centers
    # The n_new largest errors; ties (rare) go to the lowest index.
    chosen = np.sort(np.argsort(-errors, kind="stable")[:n_new])
    slot = np.full(len(centers), -1)
    slot[chosen] = np.arange(n_new)
    members = np.flatnonzero(slot[labels] >= 0)
    group = slot[labels[members]]
    points, w = rows[members].astype(np.float64), weights[members]
    totals = np.bincount(group, w, minlength=n_new)
    means = (
        np.column_stack(
            [
                np.bincount(group, w * points[:, j], minlength=n_new)
                for j in range(rows.shape[1])
            ]
        )
        / totals[:, None]
    )
    deviation = points - means[group]
    n_features = rows.shape[1]
    covariance = np.empty((n_new, n_features, n_features))
    for a in range(n_features):
        for b in range(a, n_features):
            moment = np.bincount(
                group, w * deviation[:, a] * deviation[:, b], minlength=n_new
            )
            covariance[:, a, b] = covariance[:, b, a] = moment / totals
    variances, axes = np.linalg.eigh(covariance)
    step = _SPLIT_OFFSET * np.sqrt(np.maximum(variances[:, -1], 0))[:, None]
    step = step * axes[:, :, -1]
    grown = np.concatenate([centers, means + step])
    grown[chosen] = means - step
    return grown


def remove(rows, weights, centers, labels, n_remove):
    """``centers`` without the ``n_remove`` codewords of least utility.

    The utility of a codeword is the growth of the error if its rows went to
    their runner-up codeword. The utilities assume one removal at a time,
    so a codeword that would take most of the rows of one removed is kept
    in the same step (Fritzke's freezing): two neighbors are not removed at
    once.

    Returns
    -------
    ndarray of shape (n_codes - n_remove, n_features)
    """
    n_codes = len(centers)
    n_remove = min(n_remove, n_codes - 1)
    if n_remove <= 0:
        return centers
    runner_up, gain = _runner_up(rows, centers, labels)
    utility = np.bincount(labels, weights * gain, minlength=n_codes)
    # The codeword that takes most of each cluster's weight were it removed.
    pairs = labels * n_codes + runner_up
    heir_weight = np.bincount(pairs, weights, minlength=n_codes * n_codes)
    heir = heir_weight.reshape(n_codes, n_codes).argmax(axis=1)
    removed = np.zeros(n_codes, dtype=bool)
    frozen = np.zeros(n_codes, dtype=bool)
    n_removed = 0
    for j in np.argsort(utility, kind="stable"):
        if frozen[j]:
            continue
        removed[j] = True
        frozen[heir[j]] = True
        n_removed += 1
        if n_removed == n_remove:
            break
    return centers[~removed]


def _runner_up(rows, centers, labels):
    """Each row's second nearest codeword and how much farther it is (squared)."""
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    neighbors, distance = _neighbors(centers)
    if rows.dtype != np.uint8:
        rows = rows.astype(np.float64, copy=False)
    runner_up, sq_distance = _refine.runner_up(
        np.ascontiguousarray(rows),
        centers,
        np.ascontiguousarray(labels, dtype=np.intp),
        neighbors,
        distance,
    )
    diff = rows - centers[labels]
    own_sq = np.einsum("ij,ij->i", diff, diff)
    return runner_up, np.maximum(sq_distance - own_sq, 0.0)


def _neighbors(centers):
    """The nearest ``_NEIGHBORS`` other codewords of each, nearest first."""
    from scipy.spatial import cKDTree

    n_neighbors = min(_NEIGHBORS, len(centers) - 1)
    distance, index = cKDTree(centers).query(centers, k=n_neighbors + 1)
    # Each codeword is its own nearest, unless another one coincides.
    own = index == np.arange(len(centers))[:, None]
    keep = ~own
    keep[~own.any(axis=1), -1] = False
    shape = (len(centers), n_neighbors)
    return (
        np.ascontiguousarray(index[keep].reshape(shape), dtype=np.intp),
        np.ascontiguousarray(distance[keep].reshape(shape)),
    )


def hartigan(rows, weights, centers, labels, max_passes):
    """Hartigan's single-row moves from a Lloyd fixed point, to their own.

    Lloyd's iteration moves a row only to a nearer codeword. Moving one row
    also moves the two means, and Hartigan and Wong's criterion counts that:
    a row of weight ``w`` leaves cluster ``a`` for ``b`` when
    ``W_b / (W_b + w) |x - c_b|^2 < W_a / (W_a - w) |x - c_a|^2`` (``W``:
    the clusters' total weights), which lowers the error by the difference
    even when ``c_b`` is farther than ``c_a``. Passes over the rows in order
    make such moves until a pass makes none or ``max_passes`` are done.
    Every Hartigan fixed point is a Lloyd fixed point, and on exact ties
    (integer features) it also decides which way a row should go: a tie is
    never stable.

    Returns
    -------
    centers : ndarray of shape (n_codes, n_features), float64
        The means of the new clusters, recomputed from their rows.
    labels : ndarray of shape (n_rows,), intp
    n_passes : int
        Passes made (the last one moved no row unless ``max_passes`` ran out).
    """
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    labels = np.array(labels, dtype=np.intp)
    # The criterion holds for clusters at their means: Lloyd's passes that
    # stopped at max_iter or at tol may have left them a little away.
    centers, sizes = _means(rows, weights, labels, centers)
    k = len(centers)
    # Hartigan and Wong's live sets: when each row was last looked at and
    # each cluster last changed, on a clock of rows looked at, and the
    # clusters most recently changed first (a linked list headed at k).
    seen = np.full(len(rows), -1, dtype=np.int64)
    changed = np.zeros(k, dtype=np.int64)
    later = np.append(np.arange(1, k + 1), 0)
    later[k - 1] = -1
    earlier = np.append(np.arange(-1, k - 1), -1)
    earlier[0] = k
    clock = 0
    n_passes = 0
    while n_passes < max_passes:
        n_passes += 1
        n_moved, clock = _refine.single_moves(
            rows,
            weights,
            labels,
            centers,
            sizes,
            seen,
            changed,
            later,
            earlier,
            clock,
            _GAIN,
        )
        if n_moved == 0:
            break
    # The means moved by one row at a time: recomputed, without their drift.
    centers, _ = _means(rows, weights, labels, centers)
    return centers, labels, n_passes


def _means(rows, weights, labels, centers):
    """The weighted mean of each cluster's rows (``centers`` where it has
    none, as a C-contiguous copy), and the clusters' total weights."""
    sums, sizes = group_sums(rows, weights, labels, len(centers))
    means = _lloyd._means(np.asarray(centers, dtype=np.float64), sums, sizes)
    return np.ascontiguousarray(means), sizes


def breathe(
    rows,
    weights,
    centers,
    labels,
    inertia,
    *,
    breaths=BREATHS,
    max_iter=300,
    coordinates=None,
):
    """Breathing k-means from a Lloyd fixed point.

    Alternates ``m`` splits and ``m`` removals, each followed by Lloyd's
    passes, while that lowers the inertia, then tries ``m - 1``, down to 1
    (Fritzke, 2021). Ends at the best fixed point found, with as many
    codewords as ``centers``.

    Parameters
    ----------
    rows : ndarray of shape (n_rows, n_features)
    weights : ndarray of shape (n_rows,)
    centers : ndarray of shape (n_codes, n_features)
        A Lloyd fixed point of the rows (as ``fit_codebook`` returns).
    labels : ndarray of shape (n_rows,)
        The cluster of each row.
    inertia : float
        The inertia of ``centers``.
    breaths : int, default=BREATHS
        ``m`` at first.
    max_iter : int, default=300
        Lloyd passes per run, at most.
    coordinates : grid.Coordinates, optional
        Where the rows fall on the search grid (the default suits uint8
        rows and any others).

    Returns
    -------
    centers, inertia, n_iter, labels
        ``n_iter`` counts every Lloyd pass of the breaths.
    """
    n_iter = 0
    m = min(breaths, len(centers) - 1)
    while m > 0:
        # The grown codebook only ranks codewords for removal: a few passes do.
        grown, _, passes, grown_labels = lloyd(
            rows,
            weights,
            split(rows, weights, centers, labels, m),
            min(max_iter, _GROWN_PASSES),
            coordinates,
        )
        n_iter += passes
        shrunk = remove(rows, weights, grown, grown_labels, len(grown) - len(centers))
        trial, trial_inertia, passes, trial_labels = lloyd(
            rows, weights, shrunk, max_iter, coordinates
        )
        n_iter += passes
        if trial_inertia < inertia * (1 - _GAIN) and len(trial) == len(centers):
            centers, inertia, labels = trial, trial_inertia, trial_labels
        else:
            m -= 1
    return centers, inertia, n_iter, labels
