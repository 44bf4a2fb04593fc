# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""Compiled error diffusion on an exact nearest-codeword search (see ``dither.py``).

The search: the color space around the pixels and the palette is cut into a
grid of cells. The first time a value falls in a cell, the cell gets its
candidate list: every palette entry whose distance to the cell's box may be
the smallest distance of some point of the box (its distance to the box is
at most the least, over all entries, of the distance to the box's farthest
corner), nearest to the box first. A search scans its cell's list and stops
at the first entry whose distance to the box exceeds the best distance
found, so it is exact (ties go to the lower index, as ``argmin``) and costs
a few distances per pixel. Lists are made only for the cells that values
fall in, so a palette of 65,536 entries costs time only where it is used.
A value outside the grid is compared with every entry.

The diffusion is serpentine Floyd–Steinberg, with the error each pixel
receives damped and optionally bounded: see ``diffuse``.
"""

from libc.math cimport INFINITY, floor, sqrt
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memset

import numpy as np

ctypedef fused pixel_t:
    unsigned char
    float
    double

ctypedef fused code_t:
    unsigned char
    unsigned short

cdef enum:
    MAX_CHANNELS = 4
    # Cells of the grid at most; a cell costs 12 bytes until it is used.
    MAX_CELLS = 1 << 21


cdef struct Candidate:
    double floor  # squared distance from the entry to the cell's box
    int index


cdef int _by_floor(const void* a, const void* b) noexcept nogil:
    cdef const Candidate* x = <const Candidate*> a
    cdef const Candidate* y = <const Candidate*> b
    if x.floor < y.floor:
        return -1
    if x.floor > y.floor:
        return 1
    return (x.index > y.index) - (x.index < y.index)


cdef class NearestSearch:
    """Exact nearest palette entry (squared Euclidean, lowest index on ties).

    Parameters
    ----------
    palette : ndarray of shape (n_codes, channels), float64
    lo, hi : ndarray of shape (channels,), float64
        The box the grid covers; values outside it are searched by brute force.
    n_queries : int, optional
        How many values will be searched, if few: a list costs a pass over
        the palette, so a few values get a coarser grid.
    """

    cdef double* palette
    cdef int n_codes, channels
    cdef double lo[MAX_CHANNELS]
    cdef double hi[MAX_CHANNELS]
    cdef double step[MAX_CHANNELS]
    cdef double inverse_step[MAX_CHANNELS]
    cdef Py_ssize_t n_cells[MAX_CHANNELS]
    cdef Py_ssize_t cell_stride[MAX_CHANNELS]
    cdef Py_ssize_t* cell_start  # -1 until the cell's list is made
    cdef int* cell_count
    cdef Candidate* pool
    cdef Py_ssize_t pool_size, pool_capacity
    cdef Candidate* scratch
    cdef double* ceiling

    def __cinit__(self, palette, lo, hi, Py_ssize_t n_queries=0):
        cdef const double[:, ::1] entries = np.ascontiguousarray(palette, np.float64)
        cdef const double[::1] low = np.ascontiguousarray(lo, np.float64)
        cdef const double[::1] high = np.ascontiguousarray(hi, np.float64)
        cdef Py_ssize_t k = entries.shape[0], d = entries.shape[1], c, total = 1
        cdef Py_ssize_t per_axis
        if not 1 <= d <= MAX_CHANNELS or k < 1 or k > 65536:
            raise ValueError("1 to 4 channels and 1 to 65,536 entries expected")
        self.n_codes, self.channels = k, d
        self.palette = <double*> malloc(k * d * sizeof(double))
        self.scratch = <Candidate*> malloc(k * sizeof(Candidate))
        self.ceiling = <double*> malloc(k * sizeof(double))
        if self.palette == NULL or self.scratch == NULL or self.ceiling == NULL:
            raise MemoryError()
        for c in range(k * d):
            self.palette[c] = entries[c // d, c % d]
        # About two cells per palette spacing along each axis.
        per_axis = <Py_ssize_t> (2.0 * (<double> k) ** (1.0 / d) + 1.0)
        per_axis = min(per_axis, <Py_ssize_t> ((<double> MAX_CELLS) ** (1.0 / d)))
        if n_queries > 0:  # about 16 values per cell at least
            per_axis = min(per_axis, <Py_ssize_t> ((n_queries / 16.0) ** (1.0 / d)))
        per_axis = max(4, per_axis)
        for c in range(d):
            self.lo[c], self.hi[c] = low[c], high[c]
            if not high[c] > low[c]:
                self.hi[c] = low[c] + 1.0
            self.n_cells[c] = per_axis
            self.step[c] = (self.hi[c] - self.lo[c]) / per_axis
            self.inverse_step[c] = per_axis / (self.hi[c] - self.lo[c])
            self.cell_stride[c] = total
            total *= per_axis
        self.cell_start = <Py_ssize_t*> malloc(total * sizeof(Py_ssize_t))
        self.cell_count = <int*> malloc(total * sizeof(int))
        if self.cell_start == NULL or self.cell_count == NULL:
            raise MemoryError()
        for c in range(total):
            self.cell_start[c] = -1
        self.pool_capacity = 4 * k + 4096
        self.pool = <Candidate*> malloc(self.pool_capacity * sizeof(Candidate))
        if self.pool == NULL:
            raise MemoryError()
        self.pool_size = 0

    def __dealloc__(self):
        free(self.palette)
        free(self.scratch)
        free(self.ceiling)
        free(self.cell_start)
        free(self.cell_count)
        free(self.pool)

    cdef int _make_list(self, Py_ssize_t cell, const Py_ssize_t* index) noexcept nogil:
        """Fill the candidate list of a cell; -1 when out of memory."""
        cdef int k = self.n_codes, d = self.channels, j, c, count = 0
        cdef double box_lo, box_hi, p, near, far, slack, floor_sum, ceiling_sum
        cdef double least_ceiling = INFINITY
        cdef const double* entry
        cdef Candidate* grown
        cdef Py_ssize_t capacity
        for j in range(k):
            entry = self.palette + j * d
            floor_sum = 0.0
            ceiling_sum = 0.0
            for c in range(d):
                # Widened a little: a value that rounds into this cell is inside.
                slack = 1e-9 * self.step[c]
                box_lo = self.lo[c] + index[c] * self.step[c] - slack
                box_hi = self.lo[c] + (index[c] + 1) * self.step[c] + slack
                p = entry[c]
                near = box_lo - p if p < box_lo else (p - box_hi if p > box_hi else 0.0)
                far = p - box_lo if p - box_lo > box_hi - p else box_hi - p
                floor_sum += near * near
                ceiling_sum += far * far
            self.scratch[j].floor = floor_sum
            self.scratch[j].index = j
            self.ceiling[j] = ceiling_sum
            if ceiling_sum < least_ceiling:
                least_ceiling = ceiling_sum
        for j in range(k):
            if self.scratch[j].floor <= least_ceiling:
                self.scratch[count] = self.scratch[j]
                count += 1
        qsort(self.scratch, count, sizeof(Candidate), _by_floor)
        if self.pool_size + count > self.pool_capacity:
            capacity = 2 * (self.pool_size + count)
            grown = <Candidate*> realloc(self.pool, capacity * sizeof(Candidate))
            if grown == NULL:
                return -1
            self.pool, self.pool_capacity = grown, capacity
        for j in range(count):
            self.pool[self.pool_size + j] = self.scratch[j]
        self.cell_start[cell] = self.pool_size
        self.cell_count[cell] = count
        self.pool_size += count
        return 0

    cdef int nearest(self, const double* value, int guess=-1) noexcept nogil:
        """Index of the nearest entry to ``value``; -1 when out of memory.

        ``guess``, an entry likely to be near (the previous pixel's), bounds
        the distance from the start, so that the scan of the cell's list
        stops sooner; the answer is the same.
        """
        cdef int d = self.channels, c, j, n, best = 0
        cdef Py_ssize_t cell = 0, start
        cdef Py_ssize_t index[MAX_CHANNELS]
        cdef double best_distance = INFINITY, distance, diff, position
        cdef const double* entry
        cdef const Candidate* candidate
        if guess >= 0:
            entry = self.palette + guess * d
            best_distance = 0.0
            for c in range(d):
                diff = value[c] - entry[c]
                best_distance += diff * diff
            best = guess
        for c in range(d):
            position = (value[c] - self.lo[c]) * self.inverse_step[c]
            if not (position >= 0.0 and position <= self.n_cells[c]):  # NaN too
                return self._brute_force(value)
            index[c] = <Py_ssize_t> position
            if index[c] == self.n_cells[c]:
                index[c] -= 1
            cell += index[c] * self.cell_stride[c]
        if self.cell_start[cell] < 0 and self._make_list(cell, index) < 0:
            return -1
        start, n = self.cell_start[cell], self.cell_count[cell]
        for j in range(n):
            candidate = self.pool + start + j
            if candidate.floor > best_distance:
                break
            entry = self.palette + candidate.index * d
            distance = 0.0
            for c in range(d):
                diff = value[c] - entry[c]
                distance += diff * diff
            if distance < best_distance or (
                distance == best_distance and candidate.index < best
            ):
                best_distance, best = distance, candidate.index
        return best

    cdef int _brute_force(self, const double* value) noexcept nogil:
        cdef int d = self.channels, c, j, best = 0
        cdef double best_distance = INFINITY, distance, diff
        for j in range(self.n_codes):
            distance = 0.0
            for c in range(d):
                diff = value[c] - self.palette[j * d + c]
                distance += diff * diff
            if distance < best_distance:
                best_distance, best = distance, j
        return best

    def nearest_codes(self, const pixel_t[:, ::1] values, code_t[::1] out):
        """The nearest entry of every row of ``values``, into ``out``."""
        cdef Py_ssize_t i, n = values.shape[0]
        cdef int c, d = self.channels, j = 0
        cdef double value[MAX_CHANNELS]
        with nogil:
            for i in range(n):
                for c in range(d):
                    value[c] = values[i, c]
                j = self.nearest(value)
                if j < 0:
                    break
                out[i] = j
        if j < 0:
            raise MemoryError()


def diffuse(
    NearestSearch search,
    const pixel_t[:, :, ::1] pixels,
    code_t[:, ::1] codes,
    const unsigned char[:, ::1] mask,
    double level,
    double max_error,
    bint bounded,
    bint alpha,
    double[:, :, ::1] targets,
):
    """Serpentine Floyd–Steinberg error diffusion.

    Each pixel's target is its value plus the error it received times
    ``level``, that error shortened to at most ``max_error`` (Euclidean) and,
    with ``bounded``, so that the target stays in the search's box. The code
    is the nearest entry to the target. The error sent on is target - entry,
    its color channels times alpha / 255 with ``alpha`` (the last channel).
    Pixels where ``mask`` is 0 get code 0 and neither receive nor send error.
    ``targets``, if given, receives every target (for tests).
    """
    cdef Py_ssize_t height = pixels.shape[0], width = pixels.shape[1]
    cdef int d = pixels.shape[2], c, j = -1  # j: the last code, a guess
    cdef Py_ssize_t row, col, step, slot, end
    cdef bint has_mask = mask is not None, has_targets = targets is not None
    cdef bint clamped = max_error < INFINITY
    cdef double value[MAX_CHANNELS]
    cdef double shift[MAX_CHANNELS]
    cdef double target[MAX_CHANNELS]
    cdef double sent[MAX_CHANNELS]
    cdef double norm, ratio, limit, weight
    cdef const double* entry
    cdef double* this_row = <double*> malloc((width + 2) * d * sizeof(double))
    cdef double* next_row = <double*> malloc((width + 2) * d * sizeof(double))
    cdef double* swap
    cdef bint failed = False
    if this_row == NULL or next_row == NULL:
        free(this_row)
        free(next_row)
        raise MemoryError()
    memset(this_row, 0, (width + 2) * d * sizeof(double))
    with nogil:
        for row in range(height):
            memset(next_row, 0, (width + 2) * d * sizeof(double))
            if row % 2 == 0:
                col, end, step = 0, width, 1
            else:
                col, end, step = width - 1, -1, -1
            while col != end:
                slot = (col + 1) * d
                if has_mask and not mask[row, col]:
                    codes[row, col] = 0
                    if has_targets:
                        for c in range(d):
                            targets[row, col, c] = pixels[row, col, c]
                    col += step
                    continue
                norm = 0.0
                for c in range(d):
                    value[c] = pixels[row, col, c]
                    shift[c] = this_row[slot + c] * level
                    norm += shift[c] * shift[c]
                if clamped and norm > max_error * max_error:
                    ratio = max_error / sqrt(norm)
                    for c in range(d):
                        shift[c] *= ratio
                if bounded:
                    ratio = 1.0
                    for c in range(d):
                        if value[c] + shift[c] > search.hi[c]:
                            limit = (search.hi[c] - value[c]) / shift[c]
                            ratio = limit if limit < ratio else ratio
                        elif value[c] + shift[c] < search.lo[c]:
                            limit = (search.lo[c] - value[c]) / shift[c]
                            ratio = limit if limit < ratio else ratio
                    if ratio < 1.0:
                        ratio = ratio if ratio > 0.0 else 0.0
                        for c in range(d):
                            shift[c] *= ratio
                for c in range(d):
                    target[c] = value[c] + shift[c]
                j = search.nearest(target, j)
                if j < 0:
                    failed = True
                    break
                codes[row, col] = j
                entry = search.palette + j * d
                for c in range(d):
                    sent[c] = target[c] - entry[c]
                    if has_targets:
                        targets[row, col, c] = target[c]
                if alpha:
                    weight = value[d - 1] * (1.0 / 255.0)
                    weight = 0.0 if weight < 0.0 else (1.0 if weight > 1.0 else weight)
                    for c in range(d - 1):
                        sent[c] *= weight
                for c in range(d):
                    this_row[slot + step * d + c] += sent[c] * (7.0 / 16.0)
                    next_row[slot - step * d + c] += sent[c] * (3.0 / 16.0)
                    next_row[slot + c] += sent[c] * (5.0 / 16.0)
                    next_row[slot + step * d + c] += sent[c] * (1.0 / 16.0)
                col += step
            if failed:
                break
            swap = this_row
            this_row = next_row
            next_row = swap
    free(this_row)
    free(next_row)
    if failed:
        raise MemoryError()


def bounds(const pixel_t[:, ::1] values):
    """The least and greatest value of each column (``values`` not empty)."""
    cdef Py_ssize_t n = values.shape[0], d = values.shape[1], i, c
    lo_array = np.empty(d, np.float64)
    hi_array = np.empty(d, np.float64)
    cdef double[::1] lo = lo_array
    cdef double[::1] hi = hi_array
    cdef double v
    with nogil:
        for c in range(d):
            lo[c] = values[0, c]
            hi[c] = values[0, c]
        for i in range(1, n):
            for c in range(d):
                v = values[i, c]
                if v < lo[c]:
                    lo[c] = v
                elif v > hi[c]:
                    hi[c] = v
    return lo_array, hi_array


def bin_sums(
    const pixel_t[:, ::1] values,
    const unsigned char[::1] mask,
    const double[::1] lo,
    const double[::1] scale,
    int bins,
    bint alpha,
):
    """Pixels counted in a grid of ``bins`` per channel over ``lo + [0, bins) / scale``.

    Returns the count of each bin, the sum of each channel (color channels
    times alpha / 255 with ``alpha``), and the sum of those weights: arrays
    of ``bins ** channels`` rows. Pixels where ``mask`` is 0 are left out.
    """
    cdef Py_ssize_t n = values.shape[0], i, cell, index
    cdef int d = values.shape[1], c
    cdef Py_ssize_t n_bins = 1
    for c in range(d):
        n_bins *= bins
    counts_array = np.zeros(n_bins, np.float64)
    sums_array = np.zeros((n_bins, d), np.float64)
    opacity_array = np.zeros(n_bins, np.float64)
    cdef double[::1] counts = counts_array
    cdef double[:, ::1] sums = sums_array
    cdef double[::1] opacity = opacity_array
    cdef bint has_mask = mask is not None
    cdef double weight, v
    with nogil:
        for i in range(n):
            if has_mask and not mask[i]:
                continue
            cell = 0
            for c in range(d):
                index = <Py_ssize_t> ((values[i, c] - lo[c]) * scale[c])
                index = 0 if index < 0 else (bins - 1 if index >= bins else index)
                cell = cell * bins + index
            weight = 1.0
            if alpha:
                weight = values[i, d - 1] * (1.0 / 255.0)
                weight = 0.0 if weight < 0.0 else (1.0 if weight > 1.0 else weight)
            counts[cell] += 1.0
            opacity[cell] += weight
            for c in range(d):
                v = values[i, c]
                sums[cell, c] += v * weight if alpha and c < d - 1 else v
    return counts_array, sums_array, opacity_array



cdef double TAPS[5]
TAPS[:] = [1.0 / 16, 4.0 / 16, 6.0 / 16, 4.0 / 16, 1.0 / 16]


def blurred_sums(
    const double[:, :, ::1] values,
    const code_t[:, ::1] codes,
    const unsigned char[:, ::1] mask,
    Py_ssize_t n_codes,
):
    """The sums of the least-squares fit of a palette to an image, through a blur.

    With the codes fixed, the palette P that minimises the squared distance
    between the image and its coded version, both blurred by the 3 x 3
    binomial filter B (zero outside the image), solves ``gram @ P = blurred``:
    ``gram[j, k]`` sums ``(B B)(p - q)`` (5 x 5 binomial weights) over the
    pixels p coded j and q coded k, ``blurred[j]`` sums
    ``(B B)(p - q) * values[q]`` over the pixels p coded j and all q. Also
    returns each code's count and the sum of its pixels' values. Pixels where
    ``mask`` is 0 are left out.
    """
    cdef Py_ssize_t height = values.shape[0], width = values.shape[1]
    cdef int d = values.shape[2], c
    cdef Py_ssize_t row, col, r, s, j, out
    cdef int dy, dx
    cdef double v
    cdef bint has_mask = mask is not None
    # Rows of the values blurred across (masked values count as 0), five
    # kept at a time, for the rows blurred down.
    across_array = np.zeros((5, width, d), np.float64)
    cdef double[:, :, ::1] across = across_array
    gram_array = np.zeros((n_codes, n_codes), np.float64)
    blurred_array = np.zeros((n_codes, d), np.float64)
    counts_array = np.zeros(n_codes, np.float64)
    sums_array = np.zeros((n_codes, d), np.float64)
    cdef double[:, ::1] gram = gram_array
    cdef double[:, ::1] blurred = blurred_array
    cdef double[::1] counts = counts_array
    cdef double[:, ::1] sums = sums_array
    with nogil:
        for row in range(height + 2):
            if row < height:
                for col in range(width):
                    for c in range(d):
                        across[row % 5, col, c] = 0.0
                    for dx in range(-2, 3):
                        s = col + dx
                        if s < 0 or s >= width or (has_mask and not mask[row, s]):
                            continue
                        for c in range(d):
                            across[row % 5, col, c] += TAPS[dx + 2] * values[row, s, c]
            out = row - 2  # the row whose 5 rows around are now across
            if out < 0:
                continue
            for col in range(width):
                if has_mask and not mask[out, col]:
                    continue
                j = codes[out, col]
                counts[j] += 1.0
                gram[j, j] += TAPS[2] * TAPS[2] * 0.5  # the pair (p, p) once
                for c in range(d):
                    sums[j, c] += values[out, col, c]
                    v = 0.0
                    for dy in range(-2, 3):
                        r = out + dy
                        if 0 <= r < height:
                            v = v + TAPS[dy + 2] * across[r % 5, col, c]
                    blurred[j, c] += v
                # Each other pair once here; the transpose adds the other half.
                for dy in range(0, 3):
                    r = out + dy
                    if r >= height:
                        break
                    for dx in range(-2, 3):
                        if dy == 0 and dx <= 0:
                            continue
                        s = col + dx
                        if s < 0 or s >= width or (has_mask and not mask[r, s]):
                            continue
                        gram[j, codes[r, s]] += TAPS[dy + 2] * TAPS[dx + 2]
    gram_array += gram_array.T
    return gram_array, blurred_array, counts_array, sums_array


def blurred_error(
    const double[:, :, ::1] values,
    const code_t[:, ::1] codes,
    const double[:, ::1] palette,
    const unsigned char[:, ::1] mask,
    double pointwise,
):
    """How far a coded image is from ``values``, seen through a blur.

    The sum over pixels of the squared error blurred by the 3 x 3 binomial
    filter (zero outside the image), plus ``pointwise`` times the sum of the
    squared error itself. Pixels where ``mask`` is 0 have no error.
    """
    cdef Py_ssize_t height = values.shape[0], width = values.shape[1]
    cdef int d = values.shape[2], c
    cdef Py_ssize_t row, col, r, out
    cdef int dy
    cdef double total = 0.0, plain = 0.0, e
    cdef bint has_mask = mask is not None
    cdef double taps[3]
    taps[:] = [0.25, 0.5, 0.25]
    # One row of errors (a zero column each side), and the last three rows
    # blurred across.
    error_array = np.zeros((width + 2, d), np.float64)
    across_array = np.zeros((3, width, d), np.float64)
    cdef double[:, ::1] error = error_array
    cdef double[:, :, ::1] across = across_array
    with nogil:
        for row in range(height + 1):
            if row < height:
                for col in range(width):
                    for c in range(d):
                        e = 0.0
                        if not (has_mask and not mask[row, col]):
                            e = values[row, col, c] - palette[codes[row, col], c]
                        error[col + 1, c] = e
                        plain += e * e
                for col in range(width):
                    for c in range(d):
                        across[row % 3, col, c] = (
                            0.25 * error[col, c]
                            + 0.5 * error[col + 1, c]
                            + 0.25 * error[col + 2, c]
                        )
            out = row - 1
            if out < 0:
                continue
            for col in range(width):
                for c in range(d):
                    e = 0.0
                    for dy in range(-1, 2):
                        r = out + dy
                        if 0 <= r < height:
                            e = e + taps[dy + 1] * across[r % 3, col, c]
                    total += e * e
    return total + pointwise * plain


def solve_positive(double[:, ::1] matrix, double[:, ::1] rhs):
    """Solve ``matrix @ x = rhs`` in place (x into ``rhs``), ``matrix`` positive definite.

    A Cholesky factorisation in one thread: for the small systems of
    ``dither.py`` (one unknown color per palette entry) a threaded BLAS only
    waits for its threads. Returns False if ``matrix`` is not positive
    definite.
    """
    cdef Py_ssize_t n = matrix.shape[0], m = rhs.shape[1], i, j, k, c
    cdef double total
    cdef bint positive = True
    with nogil:
        for j in range(n):  # matrix's lower triangle becomes L, L L^T = matrix
            total = matrix[j, j]
            for k in range(j):
                total -= matrix[j, k] * matrix[j, k]
            if not total > 0.0:
                positive = False
                break
            matrix[j, j] = sqrt(total)
            for i in range(j + 1, n):
                total = matrix[i, j]
                for k in range(j):
                    total -= matrix[i, k] * matrix[j, k]
                matrix[i, j] = total / matrix[j, j]
    if not positive:
        return False
    with nogil:
        for c in range(m):
            for i in range(n):  # L y = rhs
                total = rhs[i, c]
                for k in range(i):
                    total -= matrix[i, k] * rhs[k, c]
                rhs[i, c] = total / matrix[i, i]
            for i in range(n - 1, -1, -1):  # L^T x = y
                total = rhs[i, c]
                for k in range(i + 1, n):
                    total -= matrix[k, i] * rhs[k, c]
                rhs[i, c] = total / matrix[i, i]
    return True
