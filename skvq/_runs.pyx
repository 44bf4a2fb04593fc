# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""Compiled expansion of the run-coded index maps of ``skvq.format``.

The run flags hold one bit per pixel, most significant bit first, each row
padded to whole bytes; a set bit starts a new run. A table of running bit
counts per flag byte gives the run of each of its eight pixels, so the
codes come out eight at a time with no branch.
"""

import numpy as np

ctypedef fused code_t:
    unsigned char
    unsigned short

# _RUNNING[b][k]: the set bits among the first k + 1 bits of byte b.
cdef unsigned char _RUNNING[256][8]


cdef void _fill_table() noexcept nogil:
    cdef int b, k, count
    for b in range(256):
        count = 0
        for k in range(8):
            count += (b >> (7 - k)) & 1
            _RUNNING[b][k] = count


_fill_table()


def count_runs(const unsigned char[:, ::1] flags, Py_ssize_t width):
    """Number of set flags among the first ``width`` bits of each row."""
    cdef Py_ssize_t y, b, n = 0, whole = width >> 3, rest = width & 7
    with nogil:
        for y in range(flags.shape[0]):
            for b in range(whole):
                n += _RUNNING[flags[y, b]][7]
            if rest:
                n += _RUNNING[flags[y, whole]][rest - 1]
    return n


def expand_runs(
    const unsigned char[:, ::1] flags, Py_ssize_t width, const code_t[::1] values
):
    """The code of each pixel, row by row: ``values[r]`` in run ``r``.

    ``values`` holds one code per set flag (:func:`count_runs`), and the
    first flag must be set.
    """
    cdef Py_ssize_t height = flags.shape[0], y, b, k, base
    cdef Py_ssize_t whole = width >> 3, rest = width & 7, run = -1
    cdef const unsigned char* running
    out_array = np.empty(height * width, dtype=np.asarray(values).dtype)
    cdef code_t[::1] out = out_array
    with nogil:
        for y in range(height):
            base = y * width
            for b in range(whole):
                running = _RUNNING[flags[y, b]]
                for k in range(8):
                    out[base + k] = values[run + running[k]]
                run += running[7]
                base += 8
            if rest:
                running = _RUNNING[flags[y, whole]]
                for k in range(rest):
                    out[base + k] = values[run + running[k]]
                run += running[rest - 1]
    return out_array
