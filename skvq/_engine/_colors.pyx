# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""Compiled colour utilities: distinct colours, lookups, gathers, group sums.

Colours here are rows of at most 4 uint8 values; a colour's key is its
bytes read big-endian (``colors.pack``).
"""

from cython.parallel cimport prange

import numpy as np

from skvq._engine._common cimport CHUNKS

# Colors per piece of a parallel lookup or gather.
cdef enum:
    _ROWS_PER_GRAB = 1 << 15


ctypedef fused row_t:
    unsigned char
    double


def group_by_box(
    const row_t[:, ::1] rows,
    const double[::1] weights,
    const Py_ssize_t[::1] box_of_row,
    Py_ssize_t n_boxes,
):
    """The rows and weights in the order of their boxes (a counting sort).

    Returns
    -------
    order : ndarray of shape (n_rows,), intp
        The row at each position.
    box_start : ndarray of shape (n_boxes + 1,), intp
        Box ``c`` holds positions ``box_start[c]:box_start[c+1]``.
    points : ndarray of shape (n_rows, n_features), float64
    point_weights : ndarray of shape (n_rows,), float64
    """
    cdef Py_ssize_t n = rows.shape[0], d = rows.shape[1], i, f, c, position
    order_array = np.empty(n, dtype=np.intp)
    box_start_array = np.zeros(n_boxes + 1, dtype=np.intp)
    points_array = np.empty((n, d))
    point_weights_array = np.empty(n)
    cdef Py_ssize_t[::1] order = order_array
    cdef Py_ssize_t[::1] box_start = box_start_array
    cdef double[:, ::1] points = points_array
    cdef double[::1] point_weights = point_weights_array
    fill_array = np.empty(n_boxes, dtype=np.intp)
    cdef Py_ssize_t[::1] fill = fill_array
    with nogil:
        for i in range(n):
            box_start[box_of_row[i] + 1] += 1
        for c in range(n_boxes):
            box_start[c + 1] += box_start[c]
            fill[c] = box_start[c]
        for i in range(n):
            c = box_of_row[i]
            position = fill[c]
            fill[c] += 1
            order[position] = i
            point_weights[position] = weights[i]
            for f in range(d):
                points[position, f] = rows[i, f]
    return order_array, box_start_array, points_array, point_weights_array


def group_sums(
    const row_t[:, ::1] rows,
    const double[::1] weights,
    const Py_ssize_t[::1] group_of_row,
    Py_ssize_t n_groups,
):
    """Weighted sum of the rows of each group, and the group's total weight.

    In row order, in one pass (``np.bincount`` takes one per feature and
    one for the weights).

    Returns
    -------
    sums : ndarray of shape (n_groups, n_features), float64
    totals : ndarray of shape (n_groups,), float64
    """
    cdef Py_ssize_t n = rows.shape[0], d = rows.shape[1], i, f, g
    cdef double w
    sums_array = np.zeros((n_groups, d))
    totals_array = np.zeros(n_groups)
    cdef double[:, ::1] sums = sums_array
    cdef double[::1] totals = totals_array
    with nogil:
        for i in range(n):
            g = group_of_row[i]
            w = weights[i]
            totals[g] += w
            for f in range(d):
                sums[g, f] += w * rows[i, f]
    return sums_array, totals_array


def group_bounds(
    const row_t[:, ::1] lo_rows,
    const row_t[:, ::1] hi_rows,
    const Py_ssize_t[::1] group_of_row,
    Py_ssize_t n_groups,
):
    """The least of ``lo_rows`` and the greatest of ``hi_rows`` in each group,
    feature by feature (the bounding box of each group's rows when both are
    the rows). Every group must have a row.

    Returns
    -------
    lo, hi : ndarray of shape (n_groups, n_features), float64
    """
    cdef Py_ssize_t n = lo_rows.shape[0], d = lo_rows.shape[1], i, f, g
    lo_array = np.full((n_groups, d), np.inf)
    hi_array = np.full((n_groups, d), -np.inf)
    cdef double[:, ::1] lo = lo_array
    cdef double[:, ::1] hi = hi_array
    with nogil:
        for i in range(n):
            g = group_of_row[i]
            for f in range(d):
                lo[g, f] = min(lo[g, f], <double> lo_rows[i, f])
                hi[g, f] = max(hi[g, f], <double> hi_rows[i, f])
    return lo_array, hi_array


ctypedef fused table_t:
    unsigned char
    unsigned short
    unsigned int
    double


def distinct_colors(const unsigned char[:, ::1] colors, int n_threads=1):
    """The keys of the distinct colors, sorted, and how often each occurs.

    A key is a color's bytes read big-endian; at most 3 channels. RGB colors
    are first split by their first channel (red), so that the counts of each
    part fit in a 64k table in the processor's cache: two passes over the
    colors, where sorting the keys of tens of millions of pixels takes a good
    part of a second and counting them in one 16M table misses the cache at
    every pixel. Both passes run on ``n_threads`` threads, in fixed chunks:
    the result does not depend on the number of threads.

    Returns
    -------
    keys : ndarray of shape (n_distinct,), uint32
    counts : ndarray of shape (n_distinct,), float64
    """
    cdef Py_ssize_t n = colors.shape[0], d = colors.shape[1]
    if d < 3:
        return _distinct_small_colors(colors)
    cdef Py_ssize_t i, t, part, group, rest, position, lo, hi, n_distinct = 0
    cdef Py_ssize_t n_chunks = CHUNKS, n_groups = CHUNKS
    cdef Py_ssize_t parts_per_group = 256 // CHUNKS
    chunk_start_array = (np.arange(n_chunks + 1) * n // n_chunks).astype(np.intp)
    # cursor[t, part]: where chunk t writes its next color of that part.
    cursor_array = np.zeros((n_chunks, 256), dtype=np.intp)
    part_start_array = np.zeros(257, dtype=np.intp)
    rest_array = np.empty(n, dtype=np.uint16)
    tables_array = np.zeros((n_groups, 1 << 16), dtype=np.intp)
    # Each part's distinct colors go first to a slot of its own.
    slot_array = np.zeros(257, dtype=np.intp)
    found_array = np.zeros(256, dtype=np.intp)
    cdef Py_ssize_t[::1] chunk_start = chunk_start_array
    cdef Py_ssize_t[:, ::1] cursor = cursor_array
    cdef Py_ssize_t[::1] part_start = part_start_array
    cdef unsigned short[::1] rest_of = rest_array
    cdef Py_ssize_t[:, ::1] tables = tables_array
    cdef Py_ssize_t[::1] slot = slot_array
    cdef Py_ssize_t[::1] found = found_array
    for t in prange(n_chunks, nogil=True, schedule="dynamic", num_threads=n_threads):
        for i in range(chunk_start[t], chunk_start[t + 1]):
            cursor[t, colors[i, 0]] += 1
    position = 0
    for part in range(256):
        part_start[part] = position
        for t in range(n_chunks):
            position, cursor[t, part] = position + cursor[t, part], position
    part_start[256] = position
    for part in range(256):
        slot[part + 1] = slot[part] + min(part_start[part + 1] - part_start[part], 1 << 16)
    keys_array = np.empty(slot[256], dtype=np.uint32)
    counts_array = np.empty(slot[256])
    cdef unsigned int[::1] keys = keys_array
    cdef double[::1] counts = counts_array
    for t in prange(n_chunks, nogil=True, schedule="dynamic", num_threads=n_threads):
        for i in range(chunk_start[t], chunk_start[t + 1]):
            part = colors[i, 0]
            rest_of[cursor[t, part]] = (colors[i, 1] << 8) | colors[i, 2]
            cursor[t, part] += 1
    for group in prange(n_groups, nogil=True, schedule="dynamic", num_threads=n_threads):
        for part in range(group * parts_per_group, (group + 1) * parts_per_group):
            for i in range(part_start[part], part_start[part + 1]):
                tables[group, rest_of[i]] += 1
            position = slot[part]
            for rest in range(1 << 16):
                if tables[group, rest]:
                    keys[position] = <unsigned int> ((part << 16) | rest)
                    counts[position] = tables[group, rest]
                    position = position + 1
                    tables[group, rest] = 0
            found[part] = position - slot[part]
    # The parts' slots, packed.
    with nogil:
        for part in range(256):
            lo = slot[part]
            hi = lo + found[part]
            for i in range(lo, hi):
                keys[n_distinct] = keys[i]
                counts[n_distinct] = counts[i]
                n_distinct += 1
    return keys_array[:n_distinct].copy(), counts_array[:n_distinct].copy()


def _distinct_small_colors(const unsigned char[:, ::1] colors):
    """:func:`distinct_colors` of colors of 1 or 2 channels: one table."""
    cdef Py_ssize_t n = colors.shape[0], d = colors.shape[1], i, f, key
    cdef Py_ssize_t n_keys = 1 << (8 * d), n_distinct = 0
    table_array = np.zeros(n_keys, dtype=np.intp)
    cdef Py_ssize_t[::1] table = table_array
    with nogil:
        for i in range(n):
            key = 0
            for f in range(d):
                key = (key << 8) | colors[i, f]
            table[key] += 1
    keys_array = np.flatnonzero(table_array)
    return keys_array.astype(np.uint32), table_array[keys_array].astype(np.float64)


def look_up_colors(
    const unsigned char[:, ::1] colors, const table_t[::1] table, int n_threads=1
):
    """``table[key]`` for the key of each color (see :func:`distinct_colors`),
    on ``n_threads`` threads."""
    cdef Py_ssize_t n = colors.shape[0], d = colors.shape[1], i, f
    cdef size_t key
    out_array = np.empty(n, dtype=np.asarray(table).dtype)
    cdef table_t[::1] out = out_array
    for i in prange(
        n, nogil=True, schedule="dynamic", chunksize=_ROWS_PER_GRAB, num_threads=n_threads
    ):
        key = 0
        for f in range(d):
            key = (key << 8) | colors[i, f]
        out[i] = table[key]
    return out_array


ctypedef fused code_t:
    unsigned char
    unsigned short


def take_colors(
    const unsigned char[:, ::1] palette, const code_t[::1] codes, int n_threads=1
):
    """``palette[codes]``: the color of each code, on ``n_threads`` threads.

    Raises
    ------
    IndexError
        If a code is not a row of ``palette``.
    """
    cdef Py_ssize_t n = codes.shape[0], d = palette.shape[1], i, f
    cdef Py_ssize_t n_colors = palette.shape[0], n_bad = 0
    cdef const unsigned char* color
    cdef unsigned char* pixel
    out_array = np.empty((n, d), dtype=np.uint8)
    cdef unsigned char[:, ::1] out = out_array
    if n == 0 or d == 0:
        return out_array
    for i in prange(
        n, nogil=True, schedule="dynamic", chunksize=_ROWS_PER_GRAB, num_threads=n_threads
    ):
        if codes[i] >= n_colors:
            n_bad += 1
            continue
        color = &palette[codes[i], 0]
        pixel = &out[i, 0]
        for f in range(d):
            pixel[f] = color[f]
    if n_bad:
        largest = np.asarray(codes).max()
        raise IndexError(f"code {largest} is out of bounds for {n_colors} colors")
    return out_array
