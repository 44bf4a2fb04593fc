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

import numpy as np

from . import _colors, threads

# Rows of at most 4 uint8 values pack into one uint32 key; up to 3 of them
# (24-bit keys) also index a dense table of counts or codes.
PACKABLE_MAX_FEATURES = 4
_DENSE_MAX_FEATURES = 3
# From this many samples on, distinct colors come from counting them in
# dense tables rather than from sorting their keys.
DENSE_COUNT_MIN_SAMPLES = 2**22


def pack_uint8(X):
    """One uint32 key per row; keys sort like the rows (lexicographically)."""
    keys = X[:, 0].astype(np.uint32)
    for j in range(1, X.shape[1]):
        keys <<= np.uint32(8)
        keys |= X[:, j]
    return keys


def unpack_uint8(keys, n_features):
    rows = np.empty((keys.shape[0], n_features), dtype=np.uint8)
    for j in range(n_features):
        rows[:, j] = (keys >> (8 * (n_features - 1 - j))) & 0xFF
    return rows


def is_packable(X):
    return X.dtype == np.uint8 and 1 <= X.shape[1] <= PACKABLE_MAX_FEATURES


def _is_dense(X):
    return is_packable(X) and X.shape[1] <= _DENSE_MAX_FEATURES


def _counts_densely(X):
    return _is_dense(X) and len(X) >= DENSE_COUNT_MIN_SAMPLES


def distinct_keys(X):
    """Sorted keys of the distinct rows of packable ``X``."""
    if _counts_densely(X):
        return _distinct_colors(X)[0]
    keys = np.sort(pack_uint8(X))
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
        return unpack_uint8(keys, X.shape[1]), counts
    keys = pack_uint8(X)
    if sample_weight is None:
        keys.sort()
        starts = run_starts(keys)
        weights = np.diff(starts, append=len(keys)).astype(np.float64)
    else:
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        starts = run_starts(keys)
        weights = np.add.reduceat(sample_weight[order], starts)
    return unpack_uint8(keys[starts], X.shape[1]), weights


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
    return values[np.searchsorted(distinct, pack_uint8(X))]


def group_sums(rows, weights, group_of_row, n_groups):
    """Weighted sum of the rows of each group, and the group's total weight."""
    return _colors.group_sums(
        np.ascontiguousarray(rows),
        np.ascontiguousarray(weights, dtype=np.float64),
        np.ascontiguousarray(group_of_row, dtype=np.intp),
        n_groups,
    )


def take_colors(palette, codes):
    """``palette[codes]``: the color of each code, on threads for many codes.

    ``palette`` is (n_codes, channels) uint8, ``codes`` 1-D uint8 or uint16;
    a code beyond the palette raises IndexError.
    """
    n_threads = threads.for_work(len(codes), threads.COLORS)
    return _colors.take_colors(palette, codes, n_threads)
