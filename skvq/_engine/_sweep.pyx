# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""Compiled sweeps over rows left where they are (driven by ``sweep.py``).

For data too big to copy: the rows (float32 or float64, at most four
features) are read in place, cell by cell of a grid through a permutation
(``uint32``), and nothing is kept per row but that permutation and a label.
"""

from cython.parallel cimport prange
from libc.math cimport floor as c_floor

import numpy as np

from skvq._engine._common cimport CHUNKS
from skvq._engine._grid cimport nearest_three

# The sums of the chunks of a pass take at most this many values, as in
# _lloyd.pyx (fewer chunks for large codebooks).
cdef enum:
    _CHUNK_SUMS_MAX = 1 << 21

ctypedef fused value_t:
    float
    double

ctypedef fused label_t:
    unsigned char
    unsigned short
    unsigned int

cdef enum:
    _MAX_FEATURES = 4


cdef inline Py_ssize_t _cell(
    const value_t* x, Py_ssize_t d, const double* lo, double scale, int bits
) noexcept nogil:
    """The index of the row ``x``'s cell in a dense grid of ``2**bits``
    levels per feature."""
    cdef Py_ssize_t f, cell = 0, top = (1 << bits) - 1, level
    cdef double scaled
    for f in range(d):
        scaled = c_floor((x[f] - lo[f]) * scale)
        level = <Py_ssize_t> min(max(scaled, 0.0), <double> top)
        cell = (cell << bits) | level
    return cell


def cell_sums(
    const value_t[:, ::1] X,
    const double[::1] weights,
    const double[::1] lo,
    double scale,
    int bits,
    bint with_sums=True,
):
    """The total weight (and weighted sum of the rows) of each cell of a
    dense grid of ``2**bits`` levels per feature (``weights`` None: 1 each).

    Returns
    -------
    totals : ndarray of shape (2**(bits * n_features),), float64
    sums : ndarray of shape (2**(bits * n_features), n_features), float64
        Zero-sized without ``with_sums``.
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], i, f, c
    cdef Py_ssize_t n_cells = 1 << (bits * d)
    cdef bint weighted = weights is not None
    cdef double w = 1.0
    totals_array = np.zeros(n_cells)
    sums_array = np.zeros((n_cells if with_sums else 0, d))
    cdef double[::1] totals = totals_array
    cdef double[:, ::1] sums = sums_array
    with nogil:
        for i in range(n):
            c = _cell(&X[i, 0], d, &lo[0], scale, bits)
            if weighted:
                w = weights[i]
            totals[c] += w
            if with_sums:
                for f in range(d):
                    sums[c, f] += w * X[i, f]
    return totals_array, sums_array


def cell_order(
    const value_t[:, ::1] X,
    const double[::1] lo,
    double scale,
    int bits,
    const Py_ssize_t[::1] start_of_dense,
):
    """The rows cell by cell: ``start_of_dense[c]`` is where the rows of dense
    cell ``c`` start (a counting sort, in row order within each cell).

    Returns
    -------
    order : ndarray of shape (n_rows,), uint32
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], i, c
    fill_array = np.array(start_of_dense, dtype=np.intp)
    order_array = np.empty(n, dtype=np.uint32)
    cdef Py_ssize_t[::1] fill = fill_array
    cdef unsigned int[::1] order = order_array
    with nogil:
        for i in range(n):
            c = _cell(&X[i, 0], d, &lo[0], scale, bits)
            order[fill[c]] = <unsigned int> i
            fill[c] += 1
    return order_array


def cell_boxes(
    const value_t[:, ::1] X,
    const unsigned int[::1] order,
    const Py_ssize_t[::1] cell_start,
):
    """The bounding box of the rows of each cell (see :func:`cell_order`)."""
    cdef Py_ssize_t n_cells = cell_start.shape[0] - 1, d = X.shape[1], c, p, f, i
    lo_array = np.full((n_cells, d), np.inf)
    hi_array = np.full((n_cells, d), -np.inf)
    cdef double[:, ::1] lo = lo_array
    cdef double[:, ::1] hi = hi_array
    with nogil:
        for c in range(n_cells):
            for p in range(cell_start[c], cell_start[c + 1]):
                i = order[p]
                for f in range(d):
                    lo[c, f] = min(lo[c, f], <double> X[i, f])
                    hi[c, f] = max(hi[c, f], <double> X[i, f])
    return lo_array, hi_array


cdef Py_ssize_t _assign_cells(
    const value_t[:, ::1] X,
    const double[::1] weights,
    bint weighted,
    const unsigned int[::1] order,
    const Py_ssize_t[::1] cell_start,
    Py_ssize_t first_cell,
    Py_ssize_t last_cell,
    const Py_ssize_t[::1] indptr,
    const Py_ssize_t[::1] indices,
    const double[::1] floors,
    const double[:, ::1] centers,
    label_t[::1] labels,
    bint first,
    double* sums,
    double* counts,
    double* inertia,
) noexcept nogil:
    """Assign the rows of cells ``first_cell:last_cell``; returns how many
    changed cluster."""
    cdef Py_ssize_t c, p, i, f, a, second, moved = 0, d = X.shape[1]
    cdef double w = 1.0, total = 0.0
    cdef double x[_MAX_FEATURES]
    cdef double dist[3]
    for c in range(first_cell, last_cell):
        for p in range(cell_start[c], cell_start[c + 1]):
            i = order[p]
            for f in range(d):
                x[f] = X[i, f]
            a = nearest_three(
                x, d, &indices[0], &floors[0], indptr[c], indptr[c + 1],
                &centers[0, 0], &second, dist,
            )
            if first or labels[i] != a:
                moved += 1
                labels[i] = <label_t> a
            if weighted:
                w = weights[i]
            counts[a] += w
            for f in range(d):
                sums[a * d + f] += w * x[f]
            total += w * dist[0]
    inertia[0] = total
    return moved


def assign(
    const value_t[:, ::1] X,
    const double[::1] weights,
    const unsigned int[::1] order,
    const Py_ssize_t[::1] cell_start,
    const Py_ssize_t[::1] indptr,
    const Py_ssize_t[::1] indices,
    const double[::1] floors,
    const double[:, ::1] centers,
    label_t[::1] labels,
    bint first,
    int n_threads=1,
):
    """Assign every row to its nearest centroid (the lowest index on ties).

    The candidate lists (``_grid.candidates`` of the cells' boxes) must
    hold each row's nearest centroid. The cells are split in ``CHUNKS``
    chunks of about equal numbers of rows, each with its own sums, added in
    a fixed order: the result does not depend on the number of threads.

    Returns
    -------
    moved : int
        Rows whose label changed (all of them if ``first``).
    sums : ndarray of shape (n_clusters, n_features), float64
        Weighted sum of each cluster's rows.
    counts : ndarray of shape (n_clusters,), float64
    inertia : float
        Weighted sum of squared distances to the nearest centroid.
    """
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1], k = centers.shape[0]
    cdef Py_ssize_t n_cells = cell_start.shape[0] - 1, t
    # Fewer chunks for large codebooks: their sums take (k, d + 1) values each.
    cdef Py_ssize_t n_chunks = min(
        CHUNKS, n_cells, max(8, _CHUNK_SUMS_MAX // (k * (d + 1)))
    )
    cdef bint weighted = weights is not None
    if not weighted:
        weights = np.zeros(1)
    chunk_cell_array = np.searchsorted(
        np.asarray(cell_start), np.arange(n_chunks + 1) * n // n_chunks
    ).astype(np.intp)
    chunk_cell_array[n_chunks] = n_cells
    chunk_sums_array = np.zeros((n_chunks, k, d))
    chunk_counts_array = np.zeros((n_chunks, k))
    chunk_inertia_array = np.zeros(n_chunks)
    chunk_moved_array = np.zeros(n_chunks, dtype=np.intp)
    cdef Py_ssize_t[::1] chunk_cell = chunk_cell_array
    cdef double[:, :, ::1] chunk_sums = chunk_sums_array
    cdef double[:, ::1] chunk_counts = chunk_counts_array
    cdef double[::1] chunk_inertia = chunk_inertia_array
    cdef Py_ssize_t[::1] chunk_moved = chunk_moved_array
    with nogil:
        for t in prange(n_chunks, schedule="dynamic", chunksize=1, num_threads=n_threads):
            chunk_moved[t] = _assign_cells(
                X, weights, weighted, order, cell_start, chunk_cell[t],
                chunk_cell[t + 1], indptr, indices, floors, centers, labels, first,
                &chunk_sums[t, 0, 0], &chunk_counts[t, 0], &chunk_inertia[t],
            )
    # Summed chunk by chunk, in order.
    sums = np.zeros((k, d))
    counts = np.zeros(k)
    inertia = 0.0
    for t in range(n_chunks):
        sums += chunk_sums_array[t]
        counts += chunk_counts_array[t]
        inertia += chunk_inertia_array[t]
    return int(chunk_moved_array.sum()), sums, counts, inertia
