"""Distinct rows and their counts, and lookups by row.

Lloyd's algorithm on the distinct rows of ``X`` weighted by how often each
occurs has the same objective, the same iterations and the same fixed points
as Lloyd on every sample, and images repeat colors a lot. Rows of at most
four uint8 values (colors) pack into one uint32 key, so that their distinct
values come from sorting keys, never from comparing rows; for millions of
RGB pixels, from counting them in cache-sized tables
(``_colors.distinct_colors``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _colors, threads

# Rows of at most 4 uint8 (uint16) values pack into one uint32 (uint64) key;
# up to 3 uint8 values (24-bit keys) also index a dense table of counts or
# codes.
PACKABLE_MAX_FEATURES = 4
_DENSE_MAX_FEATURES = 3
# From this many samples on, distinct colors come from counting them in
# dense tables rather than from sorting their keys.
DENSE_COUNT_MIN_SAMPLES = 2**22
# levels() first looks at so many rows.
_SAMPLE_ROWS = 4096


def pack(X):
    """One key per row of uint8 (uint32 keys) or uint16 values (uint64 keys).

    Keys sort like the rows (lexicographically).
    """
    width = 8 * X.dtype.itemsize
    key_type = np.uint32 if width == 8 else np.uint64
    keys = X[:, 0].astype(key_type)
    for j in range(1, X.shape[1]):
        keys <<= key_type(width)
        keys |= X[:, j]
    return keys


def unpack(keys, n_features, dtype=np.uint8):
    """The rows of keys made by :func:`pack`."""
    width = 8 * np.dtype(dtype).itemsize
    rows = np.empty((keys.shape[0], n_features), dtype=dtype)
    for j in range(n_features):
        rows[:, j] = (keys >> (width * (n_features - 1 - j))) & (2**width - 1)
    return rows


def is_packable(X):
    return X.dtype in (np.uint8, np.uint16) and 1 <= X.shape[1] <= PACKABLE_MAX_FEATURES


def _is_dense(X):
    return X.dtype == np.uint8 and is_packable(X) and X.shape[1] <= _DENSE_MAX_FEATURES


def _counts_densely(X):
    return _is_dense(X) and len(X) >= DENSE_COUNT_MIN_SAMPLES


def distinct_keys(X):
    """Sorted keys of the distinct rows of packable ``X``."""
    if _counts_densely(X):
        return _distinct_colors(X)[0]
    keys = np.sort(pack(X))
    return keys[run_starts(keys)]


def _distinct_colors(X):
    return _colors.distinct_colors(
        np.ascontiguousarray(X), threads.for_work(len(X), threads.COLORS)
    )


def as_uint8_if_exact(X):
    """Float ``X`` as uint8 when it holds only integers 0..255, else ``X``.

    Such images then take the uint8 path (packed keys, color histograms),
    with the same result as their uint8 form.
    """
    if X.dtype.kind != "f" or not 1 <= X.shape[1] <= PACKABLE_MAX_FEATURES:
        return X
    # Written so that NaN fails the test too; out-of-range casts would warn.
    if len(X) == 0 or not (X.min() >= 0 and X.max() <= 255):
        return X
    as_uint8 = X.astype(np.uint8)
    return as_uint8 if np.array_equal(as_uint8, X) else X


def run_starts(sorted_keys):
    """Index of the first element of each run of equal values."""
    change = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
    return np.concatenate(([0], change))


def unique_rows(X, sample_weight=None):
    """Distinct rows of ``X`` and their summed weights.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,) or None

    Returns
    -------
    rows : ndarray of shape (n_distinct, n_features), same dtype as ``X``
        Sorted lexicographically.
    weights : ndarray of shape (n_distinct,), float64
        Summed sample weights (counts when ``sample_weight`` is None).
    """
    if not is_packable(X):
        rows, inverse = np.unique(X, axis=0, return_inverse=True)
        weights = np.bincount(
            inverse.reshape(-1), weights=sample_weight, minlength=len(rows)
        )
        return rows, weights.astype(np.float64, copy=False)
    if sample_weight is None and _counts_densely(X):
        keys, counts = _distinct_colors(X)
        return unpack(keys, X.shape[1]), counts
    keys = pack(X)
    if sample_weight is None:
        keys.sort()
        starts = run_starts(keys)
        weights = np.diff(starts, append=len(keys)).astype(np.float64)
    else:
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        starts = run_starts(keys)
        weights = np.add.reduceat(sample_weight[order], starts)
    return unpack(keys[starts], X.shape[1], X.dtype), weights


def look_up(X, distinct, values):
    """``values[i]`` for each row of packable ``X`` whose key is ``distinct[i]``.

    ``distinct`` are sorted and hold the keys of all rows of ``X``.
    """
    if _is_dense(X):
        table = np.empty(2 ** (8 * X.shape[1]), dtype=values.dtype)
        table[distinct] = values
        return _colors.look_up_colors(
            np.ascontiguousarray(X),
            table,
            threads.for_work(len(X), threads.COLORS),
        )
    return values[np.searchsorted(distinct, pack(X))]


def group_sums(rows, weights, group_of_row, n_groups):
    """Weighted sum of the rows of each group, and the group's total weight."""
    return _colors.group_sums(
        np.ascontiguousarray(rows),
        np.ascontiguousarray(weights, dtype=np.float64),
        np.ascontiguousarray(group_of_row, dtype=np.intp),
        n_groups,
    )


@dataclass(frozen=True)
class Levels:
    """Rows whose values are levels: integer codes and the value of each.

    An image stored as floats in [0, 1] or as 16-bit integers repeats its
    colors as its 8-bit source does: its values are a few levels per
    channel. Each value is then a function of an integer code per feature,
    so that rows repeat exactly when their codes do, and distinct rows come
    from the codes as fast as for 8-bit colors.

    Attributes
    ----------
    codes : ndarray of shape (n_samples, n_features), uint8 or uint16
        Increasing with the values, feature by feature.
    bits : int
        8 or 16.
    tables : list of ndarray or None
        For each feature, the value of each code (float64); None when the
        codes are the values.
    level : float
        What one level of 256 per feature spans, in the units of the values.
    """

    codes: np.ndarray
    bits: int
    tables: list | None
    level: float

    def values(self, codes):
        """The values of rows of codes (8-bit codes that are their own
        values stay uint8)."""
        if self.tables is None:
            return codes if codes.dtype == np.uint8 else codes.astype(np.float64)
        values = np.empty(codes.shape)
        for j, table in enumerate(self.tables):
            values[:, j] = table[codes[:, j]]
        return values


def levels(X):
    """The :class:`Levels` of ``X``, or None if its values are not levels.

    Levels are: uint8 values; uint16 values (multiples of 257, an 8-bit
    image scaled to 16 bits, have 8-bit codes); floats holding only
    integers 0..255 or 0..65535; floats in [0, 1] that take at most one
    value per multiple of 1/255, or else of 1/65535 (an 8- or 16-bit image
    divided by its maximum, however rounded). At most four features.
    """
    if not 1 <= X.shape[1] <= PACKABLE_MAX_FEATURES or len(X) == 0:
        return None
    if X.dtype == np.uint8:
        return Levels(X, 8, None, 1.0)
    if len(X) > _SAMPLE_ROWS and levels(X[:_SAMPLE_ROWS]) is None:
        # Rows that are not all levels are seen in the first few, mostly:
        # then no copy of all of X is made to find out.
        return None
    if X.dtype.kind == "f":
        X = as_uint8_if_exact(X)
        if X.dtype == np.uint8:
            return Levels(X, 8, None, 1.0)
        # Written so that NaN fails the tests too.
        if not (X.min() >= 0 and X.max() <= 65535):
            return None
        if X.max() > 1:
            as_uint16 = X.astype(np.uint16)
            if not np.array_equal(as_uint16, X):
                return None
            X = as_uint16
        else:
            return _fraction_levels(X)
    if X.dtype != np.uint16:
        return None
    if not np.any(X % 257):
        tables = [np.arange(256) * 257.0] * X.shape[1]
        return Levels((X // 257).astype(np.uint8), 8, tables, 257.0)
    return Levels(X, 16, None, 256.0)


def _fraction_levels(X):
    """Levels of floats in [0, 1] at multiples of 1/255 or of 1/65535."""
    for bits in (8, 16):
        top = 2**bits - 1
        dtype = np.uint8 if bits == 8 else np.uint16
        codes = np.empty(X.shape, dtype=dtype)
        tables = []
        for j in range(X.shape[1]):
            np.rint(X[:, j] * top, out=codes[:, j], casting="unsafe")
            table = np.zeros(top + 1)
            table[codes[:, j]] = X[:, j]
            # One value per code, or these are not levels of this step.
            if not np.array_equal(table[codes[:, j]], X[:, j]):
                break
            tables.append(table)
        else:
            return Levels(codes, bits, tables, 2 ** (bits - 8) / top)
    return None


def take_colors(palette, codes):
    """``palette[codes]``: the color of each code, on threads for many codes.

    ``palette`` is (n_codes, channels) uint8, ``codes`` 1-D uint8 or uint16;
    a code beyond the palette raises IndexError.
    """
    n_threads = threads.for_work(len(codes), threads.COLORS)
    return _colors.take_colors(palette, codes, n_threads)
