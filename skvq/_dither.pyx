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
The grid has two levels: a cell's list is made from the list of the coarse
cell (twice as wide along each axis) around it, which holds every entry
that may be nearest to a point of the cell, so fine cells (short lists to
scan) cost a pass over a short list, not over the palette. A value outside
the grid is compared with every entry.

The diffusion is serpentine Floyd–Steinberg, with the error each pixel
receives damped and optionally bounded: see ``diffuse``.
"""

from libc.math cimport INFINITY, floor, sqrt
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memset

cimport cython
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
    # Fine cells per coarse cell along each axis.
    SPLIT = 2


cdef struct Candidate:
    double floor  # squared distance from the entry to the cell's box
    int index


cdef inline bint _before(const Candidate* x, const Candidate* y) noexcept nogil:
    return x.floor < y.floor or (x.floor == y.floor and x.index < y.index)


cdef int[8] GAPS
GAPS[:] = [701, 301, 132, 57, 23, 10, 4, 1]  # Ciura's


cdef void _sort_by_floor(Candidate* items, Py_ssize_t n) noexcept nogil:
    """Shell sort by floor, then index: libc's qsort calls a function per
    comparison, and the lists are short (tens of entries)."""
    cdef Py_ssize_t g, gap, i, j
    cdef Candidate item
    for g in range(8):
        gap = GAPS[g]
        for i in range(gap, n):
            item = items[i]
            j = i
            while j >= gap and _before(&item, &items[j - gap]):
                items[j] = items[j - gap]
                j -= gap
            items[j] = item


@cython.final
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
    # A coarser grid, ``split`` times coarser along each axis: a cell's list
    # is made from the list of the coarse cell around it.
    cdef int split
    cdef double coarse_step[MAX_CHANNELS]
    cdef Py_ssize_t coarse_stride[MAX_CHANNELS]
    cdef Py_ssize_t* coarse_start
    cdef int* coarse_count
    cdef Candidate* pool
    cdef Py_ssize_t pool_size, pool_capacity
    cdef Candidate* scratch

    def __cinit__(self, palette, lo, hi, Py_ssize_t n_queries=0):
        cdef const double[:, ::1] entries = np.ascontiguousarray(palette, np.float64)
        cdef const double[::1] low = np.ascontiguousarray(lo, np.float64)
        cdef const double[::1] high = np.ascontiguousarray(hi, np.float64)
        cdef Py_ssize_t k = entries.shape[0], d = entries.shape[1], c, total = 1
        cdef Py_ssize_t per_axis, coarse_total
        if not 1 <= d <= MAX_CHANNELS or k < 1 or k > 65536:
            raise ValueError("1 to 4 channels and 1 to 65,536 entries expected")
        self.n_codes, self.channels = k, d
        self.palette = <double*> malloc(k * d * sizeof(double))
        self.scratch = <Candidate*> malloc(k * sizeof(Candidate))
        if self.palette == NULL or self.scratch == NULL:
            raise MemoryError()
        for c in range(k * d):
            self.palette[c] = entries[c // d, c % d]
        # About two coarse cells per palette spacing along each axis, and
        # SPLIT times finer cells.
        per_axis = <Py_ssize_t> (2.0 * (<double> k) ** (1.0 / d) + 1.0)
        per_axis = min(per_axis, <Py_ssize_t> ((<double> MAX_CELLS) ** (1.0 / d)))
        if n_queries > 0:  # about 16 values per cell at least
            per_axis = min(per_axis, <Py_ssize_t> ((n_queries / 16.0) ** (1.0 / d)))
        per_axis = max(4, per_axis)
        self.split = SPLIT
        if (<double> (SPLIT * per_axis)) ** d > MAX_CELLS or (
            n_queries > 0 and (<double> (SPLIT * per_axis)) ** d > n_queries / 16.0
        ):
            self.split = 1
        coarse_total = 1
        for c in range(d):
            self.lo[c], self.hi[c] = low[c], high[c]
            if not high[c] > low[c]:
                self.hi[c] = low[c] + 1.0
            self.coarse_step[c] = (self.hi[c] - self.lo[c]) / per_axis
            self.coarse_stride[c] = coarse_total
            coarse_total *= per_axis
            self.n_cells[c] = per_axis * self.split
            self.step[c] = (self.hi[c] - self.lo[c]) / self.n_cells[c]
            self.inverse_step[c] = self.n_cells[c] / (self.hi[c] - self.lo[c])
            self.cell_stride[c] = total
            total *= self.n_cells[c]
        self.cell_start = <Py_ssize_t*> malloc(total * sizeof(Py_ssize_t))
        self.cell_count = <int*> malloc(total * sizeof(int))
        self.coarse_start = <Py_ssize_t*> malloc(coarse_total * sizeof(Py_ssize_t))
        self.coarse_count = <int*> malloc(coarse_total * sizeof(int))
        if (
            self.cell_start == NULL or self.cell_count == NULL
            or self.coarse_start == NULL or self.coarse_count == NULL
        ):
            raise MemoryError()
        for c in range(total):
            self.cell_start[c] = -1
        for c in range(coarse_total):
            self.coarse_start[c] = -1
        self.pool_capacity = 4 * k + 4096
        self.pool = <Candidate*> malloc(self.pool_capacity * sizeof(Candidate))
        if self.pool == NULL:
            raise MemoryError()
        self.pool_size = 0

    def __dealloc__(self):
        free(self.palette)
        free(self.scratch)
        free(self.cell_start)
        free(self.cell_count)
        free(self.coarse_start)
        free(self.coarse_count)
        free(self.pool)

    cdef Py_ssize_t _make_list(
        self, const Py_ssize_t* index, const double* step,
        const Candidate* source, int n_source, int* count_out,
    ) noexcept nogil:
        """The candidate list of the cell ``index`` of a grid of ``step``.

        Candidates are taken from ``source`` (every entry if NULL): it must
        hold every entry that may be nearest to a point of the cell. Returns
        where the list starts in the pool, -1 when out of memory.
        """
        cdef int k = self.n_codes, d = self.channels, i, j, c, count = 0
        cdef double box_lo, box_hi, p, near, far, slack, floor_sum, ceiling_sum
        cdef double least_ceiling = INFINITY
        cdef const double* entry
        cdef Candidate* grown
        cdef Py_ssize_t capacity, start
        if source != NULL:
            k = n_source
        for i in range(k):
            j = source[i].index if source != NULL else i
            entry = self.palette + j * d
            floor_sum = 0.0
            ceiling_sum = 0.0
            for c in range(d):
                # Widened a little: a value that rounds into this cell is inside.
                slack = 1e-9 * step[c]
                box_lo = self.lo[c] + index[c] * step[c] - slack
                box_hi = self.lo[c] + (index[c] + 1) * step[c] + slack
                p = entry[c]
                near = box_lo - p if p < box_lo else (p - box_hi if p > box_hi else 0.0)
                far = p - box_lo if p - box_lo > box_hi - p else box_hi - p
                floor_sum += near * near
                ceiling_sum += far * far
            self.scratch[i].floor = floor_sum
            self.scratch[i].index = j
            if ceiling_sum < least_ceiling:
                least_ceiling = ceiling_sum
        for i in range(k):
            if self.scratch[i].floor <= least_ceiling:
                self.scratch[count] = self.scratch[i]
                count += 1
        _sort_by_floor(self.scratch, count)
        if self.pool_size + count > self.pool_capacity:
            capacity = 2 * (self.pool_size + count)
            grown = <Candidate*> realloc(self.pool, capacity * sizeof(Candidate))
            if grown == NULL:
                return -1
            self.pool, self.pool_capacity = grown, capacity
        start = self.pool_size
        for i in range(count):
            self.pool[start + i] = self.scratch[i]
        self.pool_size += count
        count_out[0] = count
        return start

    cdef int _make_cell(self, Py_ssize_t cell, const Py_ssize_t* index) noexcept nogil:
        """Fill the list of a cell (and its coarse cell's); -1 when out of memory."""
        cdef Py_ssize_t coarse = 0, start
        cdef Py_ssize_t coarse_index[MAX_CHANNELS]
        cdef int c, count
        if self.split == 1:
            start = self._make_list(index, self.step, NULL, 0, &count)
        else:
            for c in range(self.channels):
                coarse_index[c] = index[c] // self.split
                coarse += coarse_index[c] * self.coarse_stride[c]
            if self.coarse_start[coarse] < 0:
                start = self._make_list(
                    coarse_index, self.coarse_step, NULL, 0, &count
                )
                if start < 0:
                    return -1
                self.coarse_start[coarse], self.coarse_count[coarse] = start, count
            # The pool may move while the list is made: the source is read first.
            start = self._make_list(
                index, self.step, self.pool + self.coarse_start[coarse],
                self.coarse_count[coarse], &count,
            )
        if start < 0:
            return -1
        self.cell_start[cell], self.cell_count[cell] = start, count
        return 0

    cdef inline int nearest(self, const double* value, int guess, int d) noexcept nogil:
        """Index of the nearest entry to ``value``; -1 when out of memory.

        ``guess``, an entry likely to be near (the previous pixel's) or -1,
        bounds the distance from the start, so that the scan of the cell's
        list stops sooner; the answer is the same. ``d`` is the number of
        channels (a constant where the caller knows it, for the compiler).
        """
        cdef int c, j, n, best = 0
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
        if self.cell_start[cell] < 0 and self._make_cell(cell, index) < 0:
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
                j = self.nearest(value, -1, d)
                if j < 0:
                    break
                out[i] = j
        if j < 0:
            raise MemoryError()


cdef inline bint _diffuse_rows(
    NearestSearch search,
    const pixel_t[:, :, ::1] pixels,
    code_t[:, ::1] codes,
    const unsigned char[:, ::1] mask,
    double level,
    double max_error,
    bint bounded,
    bint alpha,
    double[:, :, ::1] targets,
    double* this_row,
    double* next_row,
    int d,
) noexcept nogil:
    """The loop of ``diffuse``; True when out of memory."""
    cdef Py_ssize_t height = pixels.shape[0], width = pixels.shape[1]
    cdef int c, j = -1  # j: the last code, a guess
    cdef Py_ssize_t row, col, step, slot, end
    cdef bint has_mask = mask is not None, has_targets = targets is not None
    cdef bint clamped = max_error < INFINITY
    cdef double value[MAX_CHANNELS]
    cdef double shift[MAX_CHANNELS]
    cdef double target[MAX_CHANNELS]
    cdef double sent[MAX_CHANNELS]
    cdef double norm, ratio, limit, weight
    cdef const double* entry
    cdef double* swap
    cdef bint failed = False
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
            j = search.nearest(target, j, d)
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
    return failed


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
    cdef Py_ssize_t width = pixels.shape[1]
    cdef int d = pixels.shape[2]
    cdef double* this_row = <double*> malloc((width + 2) * d * sizeof(double))
    cdef double* next_row = <double*> malloc((width + 2) * d * sizeof(double))
    cdef bint failed
    if this_row == NULL or next_row == NULL:
        free(this_row)
        free(next_row)
        raise MemoryError()
    memset(this_row, 0, (width + 2) * d * sizeof(double))
    with nogil:
        if d == 3:  # the common case, with loops the compiler unrolls
            failed = _diffuse_rows(
                search, pixels, codes, mask, level, max_error, bounded, alpha,
                targets, this_row, next_row, 3,
            )
        else:
            failed = _diffuse_rows(
                search, pixels, codes, mask, level, max_error, bounded, alpha,
                targets, this_row, next_row, d,
            )
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
cdef long long INTEGER_TAPS[5]
INTEGER_TAPS[:] = [1, 4, 6, 4, 1]


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
    cdef Py_ssize_t row, col, r, s, j, out, first, last
    cdef int dy, dx
    cdef long long weight
    cdef double v
    cdef bint has_mask = mask is not None
    # Rows of the values blurred across (masked values count as 0), five
    # kept at a time, for the rows blurred down.
    across_array = np.zeros((5, width, d), np.float64)
    cdef double[:, :, ::1] across = across_array
    padded_array = np.zeros((width + 4, d), np.float64)
    cdef double[:, ::1] padded = padded_array
    cdef Py_ssize_t slot
    cdef Py_ssize_t ring[5]
    # The gram in 256ths (the weights are integers over 256): exact, and
    # integer additions do not wait on each other as long as float ones.
    pairs_array = np.zeros((n_codes, n_codes), np.int64)
    cdef long long[:, ::1] pairs = pairs_array
    blurred_array = np.zeros((n_codes, d), np.float64)
    counts_array = np.zeros(n_codes, np.float64)
    sums_array = np.zeros((n_codes, d), np.float64)
    cdef double[:, ::1] blurred = blurred_array
    cdef double[::1] counts = counts_array
    cdef double[:, ::1] sums = sums_array
    with nogil:
        for row in range(height + 2):
            # Rows outside the image stay zero (the ring starts zeroed).
            slot = row % 5
            for col in range(width + 4):
                for c in range(d):
                    padded[col, c] = 0.0
            if row < height:
                for col in range(width):
                    if not (has_mask and not mask[row, col]):
                        for c in range(d):
                            padded[col + 2, c] = values[row, col, c]
            for col in range(width):
                for c in range(d):
                    across[slot, col, c] = (
                        TAPS[0] * (padded[col, c] + padded[col + 4, c])
                        + TAPS[1] * (padded[col + 1, c] + padded[col + 3, c])
                        + TAPS[2] * padded[col + 2, c]
                    )
            out = row - 2  # the row whose 5 rows around are now across
            if out < 0:
                continue
            for dy in range(5):
                ring[dy] = (out + dy + 3) % 5  # the slot of row out + dy - 2
            for col in range(width):
                if has_mask and not mask[out, col]:
                    continue
                j = codes[out, col]
                counts[j] += 1.0
                for c in range(d):
                    sums[j, c] += values[out, col, c]
                    blurred[j, c] += (
                        TAPS[0] * (across[ring[0], col, c] + across[ring[4], col, c])
                        + TAPS[1] * (across[ring[1], col, c] + across[ring[3], col, c])
                        + TAPS[2] * across[ring[2], col, c]
                    )
            # Each pair of pixels once, one offset at a time (the pair of a
            # pixel with itself below, the transpose adds the other half).
            for dy in range(0, 3):
                r = out + dy
                if r >= height:
                    break
                for dx in range(-2, 3):
                    if dy == 0 and dx <= 0:
                        continue
                    weight = INTEGER_TAPS[dy + 2] * INTEGER_TAPS[dx + 2]
                    first = 0 if dx >= 0 else -dx
                    last = width - dx if dx >= 0 else width
                    if has_mask:
                        for col in range(first, last):
                            if mask[out, col] and mask[r, col + dx]:
                                pairs[codes[out, col], codes[r, col + dx]] += weight
                    else:
                        for col in range(first, last):
                            pairs[codes[out, col], codes[r, col + dx]] += weight
    gram_array = (pairs_array + pairs_array.T) / 256.0
    gram_array[np.diag_indices(n_codes)] += TAPS[2] * TAPS[2] * counts_array
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


cdef inline double _dot(const double* x, const double* y, Py_ssize_t n) noexcept nogil:
    """Sum of x[i] * y[i], in four running sums (one sum waits on each
    addition; four keep the floating-point unit busy)."""
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    cdef Py_ssize_t i = 0
    while i + 4 <= n:
        s0 += x[i] * y[i]
        s1 += x[i + 1] * y[i + 1]
        s2 += x[i + 2] * y[i + 2]
        s3 += x[i + 3] * y[i + 3]
        i += 4
    while i < n:
        s0 += x[i] * y[i]
        i += 1
    return (s0 + s1) + (s2 + s3)


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
            total = matrix[j, j] - _dot(&matrix[j, 0], &matrix[j, 0], j)
            if not total > 0.0:
                positive = False
                break
            matrix[j, j] = sqrt(total)
            for i in range(j + 1, n):
                total = matrix[i, j] - _dot(&matrix[i, 0], &matrix[j, 0], j)
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
