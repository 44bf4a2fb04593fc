"""Histograms: the distinct rows of samples and their weights (mergeable)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import grid
from .colors import levels, unique_rows


@dataclass(frozen=True)
class Histogram:
    """The distinct rows of some samples and the weight of each.

    K-Means on the distinct rows weighted by their counts is K-Means on the
    samples: same objective, same iterations from the same seeds (the
    seeds of a fit on the samples are drawn over the samples in their
    order, as KMeans draws them, where a histogram has only its rows).
    Histograms of parts of a collection add up (:meth:`merge`) to that of
    the whole, whatever the order, so they can be made where the images
    are (joblib or dask workers) and reduced to one fit.

    Attributes
    ----------
    rows : ndarray of shape (n_distinct, n_features)
        Sorted as :func:`~skvq._engine.colors.unique_rows` sorts them:
        uint8 for 8-bit levels, float64 values for other levels, else in
        the dtype of the samples.
    weights : ndarray of shape (n_distinct,), float64
        Positive.
    coordinates : :class:`~skvq._engine.grid.Coordinates` or None
        Where the rows fall on the grid, from their level codes, when their
        values are levels.
    """

    rows: np.ndarray
    weights: np.ndarray
    coordinates: grid.Coordinates | None = field(default=None, compare=False)

    @classmethod
    def of(cls, X, sample_weight=None):
        """The histogram of ``X``, from its level codes when its values are
        levels (:func:`~skvq._engine.colors.levels`), else from its rows."""
        found = levels(X)
        if found is not None:
            return cls.of_levels(found, sample_weight)
        rows, weights = unique_rows(np.asarray(X), sample_weight)
        keep = weights > 0
        return cls(rows[keep], weights[keep])

    @classmethod
    def of_levels(cls, found, sample_weight=None):
        """The histogram of samples whose values are the levels ``found``."""
        codes, weights = unique_rows(found.codes, sample_weight)
        keep = weights > 0
        codes, weights = codes[keep], weights[keep]
        coordinates = grid.Coordinates(codes, found.bits, found.level)
        return cls(found.values(codes), weights, coordinates)

    @classmethod
    def merge(cls, histograms):
        """The histogram of all the samples of ``histograms``."""
        histograms = list(histograms)
        if len(histograms) == 1:
            return histograms[0]
        dtypes = {h.rows.dtype for h in histograms}
        dtype = dtypes.pop() if len(dtypes) == 1 else np.float64
        rows = np.concatenate([h.rows.astype(dtype, copy=False) for h in histograms])
        return cls.of(rows, np.concatenate([h.weights for h in histograms]))

    @property
    def n_samples(self):
        return float(self.weights.sum())
