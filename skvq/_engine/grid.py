"""A grid of the data space for the nearest-codeword search.

Nearest codewords are found through a grid: a codeword is a candidate for a
cell only if it may be nearest to some row in the cell, which leaves a dozen
per cell instead of K (``_grid.pyx``). The candidate lists of a cell are made
from those of its enclosing cell in coarser grids (a pyramid).

Rows fall in cells by their integer coordinates (:class:`Coordinates`): the
rows themselves for 8-bit colors, the level of each value for images stored
as floats or 16-bit integers, or a fine quantization of any other data of at
most four features. Each cell's box is that of the rows it holds, so the
search is exact whatever the coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _colors, _grid, threads
from .colors import PACKABLE_MAX_FEATURES, group_sums

# Levels per channel (as a power of two) of the finest grid of the
# nearest-codeword search, and the number of coarser grids whose candidate
# lists narrow those of the next finer one.
GRID_BITS = 5
POOL_LEVELS = 2
# Bits per feature of the coordinates of rows that are not levels.
_FINE_BITS = 16


@dataclass(frozen=True)
class Coordinates:
    """Where rows fall on the grid.

    Attributes
    ----------
    codes : ndarray of shape (n_rows, n_features), unsigned, or None
        Integer coordinates of ``bits`` bits per feature, increasing with
        the values: the cell of a row in a grid of ``2**b`` levels per
        feature is given by the top ``b`` bits of its codes. None for rows
        of more than four features, which all fall in one cell.
    bits : int
    level : float
        What one level of 256 per feature spans, in the units of the values
        (1 for 8-bit colors): the unit of how far codewords move between
        candidate lists.
    """

    codes: np.ndarray | None
    bits: int
    level: float

    @classmethod
    def of(cls, rows):
        """The coordinates of uint8 rows (themselves) or of any rows."""
        if rows.dtype == np.uint8 and rows.shape[1] <= PACKABLE_MAX_FEATURES:
            return cls(rows, 8, 1.0)
        return cls.quantized(rows)

    @classmethod
    def quantized(cls, values):
        """Coordinates of 16 bits per feature, one scale for all features."""
        if values.shape[1] > PACKABLE_MAX_FEATURES or len(values) == 0:
            return cls(None, _FINE_BITS, _span(values) / 256)
        lo, hi = column_ranges(values)
        span = float(np.max(hi - lo.astype(np.float64)))
        scale = 2**_FINE_BITS / span if span > 0 else 0.0
        codes = np.empty(values.shape, dtype=np.uint16)
        for j in range(values.shape[1]):
            scaled = (values[:, j] - lo[j]) * scale
            np.clip(scaled, 0, 2**_FINE_BITS - 1, out=scaled)
            codes[:, j] = scaled  # the cast truncates: the floor
        return cls(codes, _FINE_BITS, span / 256)

    def coarsened(self, bits):
        """The coordinates of the cells of a grid of ``2**bits`` levels."""
        return Coordinates(
            (self.codes >> (self.bits - bits)).astype(_code_dtype(bits)),
            bits,
            self.level,
        )


def _span(values):
    """The largest range of a feature."""
    if len(values) == 0:
        return 0.0
    lo, hi = column_ranges(values)
    return float(np.max(hi - lo.astype(np.float64)))


def column_ranges(values):
    """The least and the greatest value of each feature (``values.min(axis=0)``
    and ``values.max(axis=0)``).

    Column by column: numpy reduces a tall array of few columns along axis 0
    several times slower than each of its columns.
    """
    lo = np.array([column.min() for column in values.T], dtype=values.dtype)
    hi = np.array([column.max() for column in values.T], dtype=values.dtype)
    return lo, hi


def _code_dtype(bits):
    return np.uint8 if bits <= 8 else np.uint16


def cell_ids(coordinates, bits):
    """Index of each row's cell in a grid of ``2**bits`` levels per feature."""
    codes = coordinates.codes
    shift = coordinates.bits - bits
    ids = np.zeros(len(codes), dtype=np.intp)
    for j in range(codes.shape[1]):
        ids <<= bits
        ids |= codes[:, j] >> shift
    return ids


def occupied_cells(coordinates, bits):
    """Sorted ids of the grid cells holding the rows, and each row's cell index."""
    ids = cell_ids(coordinates, bits)
    n_ids = 2 ** (bits * coordinates.codes.shape[1])
    if n_ids > 16 * len(ids):
        occupied, inverse = np.unique(ids, return_inverse=True)
        return occupied, inverse.reshape(-1)
    # Small dtypes: these tables are large, and filling fresh pages is
    # most of their cost.
    is_occupied = np.zeros(n_ids, dtype=bool)
    is_occupied[ids] = True
    occupied = np.flatnonzero(is_occupied)
    index = np.empty(n_ids, dtype=np.min_scalar_type(len(occupied)))
    index[occupied] = np.arange(len(occupied))
    return occupied, index[ids].astype(np.intp)


def cell_coordinates(cells, bits, n_features):
    """The coordinates of cells from their ids."""
    codes = np.empty((len(cells), n_features), dtype=_code_dtype(bits))
    for j in range(n_features):
        codes[:, j] = (cells >> (bits * (n_features - 1 - j))) & (2**bits - 1)
    return codes


def cell_means(values, weights, coordinates, bits):
    """Weighted mean row and total weight of each occupied cell at ``bits``.

    Returns the means, the totals and the coordinates of the cells.
    """
    occupied, inverse = occupied_cells(coordinates, bits)
    sums, totals = group_sums(values, weights, inverse, len(occupied))
    cells = cell_coordinates(occupied, bits, coordinates.codes.shape[1])
    return sums / totals[:, None], totals, Coordinates(cells, bits, coordinates.level)


@dataclass(frozen=True)
class Grid:
    """The cells of the rows and the pyramid of coarser grids above them.

    Attributes
    ----------
    cell_of_row : ndarray of shape (n_rows,), intp
    n_cells : int
    parents : list of ndarray or None, finest first
        For each grid but the coarsest, the index of each of its cells'
        cell in the next coarser grid; None for the coarsest.
    """

    cell_of_row: np.ndarray
    n_cells: int
    parents: list

    def boxes(self, rows):
        """The boxes of the cells of each grid, finest first: a pyramid.

        A cell's box bounds its rows; a coarser cell's bounds those of its
        cells. Each level is ``((box_lo, box_hi), parent_of_box)``.
        """
        rows = np.ascontiguousarray(rows)
        return self.pyramid(
            *_colors.group_bounds(rows, rows, self.cell_of_row, self.n_cells)
        )

    def pyramid(self, lo, hi):
        """The pyramid of boxes (see :meth:`boxes`) above the finest boxes."""
        pyramid = []
        for parent_of_box in self.parents:
            pyramid.append(((lo, hi), parent_of_box))
            if parent_of_box is None:
                break
            n_parents = int(parent_of_box.max()) + 1
            lo, hi = _colors.group_bounds(lo, hi, parent_of_box, n_parents)
        return pyramid


def build(coordinates, n_rows):
    """The grid of rows at ``coordinates``.

    Rows of at most 4 features fall in the cells of a grid with up to
    ``2**GRID_BITS`` levels per feature (fewer for fewer rows); each coarser
    grid, down to ``POOL_LEVELS`` more, halves the levels. Other rows all
    fall in one cell.
    """
    if coordinates.codes is None:
        return Grid(np.zeros(n_rows, dtype=np.intp), min(n_rows, 1), [None])
    n_features = coordinates.codes.shape[1]
    bits = min(GRID_BITS, coordinates.bits)
    # Fewer rows get a coarser grid: lists for cells of one row cost more
    # than they save.
    while bits > POOL_LEVELS and 2 ** (bits * n_features) > n_rows:
        bits -= 1
    cells, cell_of_row = occupied_cells(coordinates, bits)
    side = cell_coordinates(cells, bits, n_features).astype(np.intp)
    parents = []
    for level_bits in range(bits, max(bits - POOL_LEVELS, 0), -1):
        side = side >> 1
        parent_ids = np.zeros(len(side), dtype=np.intp)
        for j in range(n_features):
            parent_ids = (parent_ids << (level_bits - 1)) | side[:, j]
        _, first, parent_of_box = np.unique(
            parent_ids, return_index=True, return_inverse=True
        )
        parents.append(parent_of_box.reshape(-1).astype(np.intp))
        side = side[first]
    parents.append(None)
    cell_of_row = np.ascontiguousarray(cell_of_row, dtype=np.intp)
    return Grid(cell_of_row, len(cells), parents)


def layout(rows, coordinates=None):
    """The cell of each row, and the pyramid of boxes of the grid of ``rows``."""
    if coordinates is None:
        coordinates = Coordinates.of(rows)
    cells = build(coordinates, len(rows))
    return cells.cell_of_row, cells.boxes(as_points(rows))


def as_points(rows):
    """Rows as the compiled loops read them: uint8 or float64."""
    return rows if rows.dtype == np.uint8 else rows.astype(np.float64, copy=False)


def candidates(pyramid, centers, slack):
    """Candidate lists of the finest grid's cells (see :func:`_grid.candidates`).

    The lists of the coarsest boxes are made first, from all centroids; each
    finer box then considers only the candidates of its enclosing box. Only
    the finest lists, those searched, are sorted.
    """
    (boxes, _) = pyramid[-1]
    finest = len(pyramid) == 1
    lists = _grid.candidates(
        *boxes,
        centers,
        slack,
        ordered=finest,
        n_threads=threads.for_work(len(boxes[0]), threads.GRID_CELLS),
    )
    for level, (boxes, parent_of_box) in reversed(list(enumerate(pyramid[:-1]))):
        lists = _grid.candidates(
            *boxes,
            centers,
            slack,
            parent_of_box,
            *lists[:2],
            ordered=level == 0,
            n_threads=threads.for_work(len(boxes[0]), threads.GRID_CELLS),
        )
    return lists


def nearest(rows, centers, coordinates=None):
    """Index of and distance to the nearest centroid of each row.

    On ties, the lowest index.
    """
    cell_of_row, pyramid = layout(rows, coordinates)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    indptr, indices, floors, _ = candidates(pyramid, centers, 0.0)
    return _grid.nearest(
        np.ascontiguousarray(rows, dtype=np.float64),
        cell_of_row,
        indptr,
        indices,
        floors,
        centers,
    )
