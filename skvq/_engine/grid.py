"""A grid of the color space for the nearest-codeword search.

Nearest codewords are found through a color grid: a codeword is a candidate
for a cell only if it may be nearest to some color in the cell, which leaves
a dozen per cell instead of K (``_grid.pyx``). The candidate lists of a cell
are made from those of its enclosing cell in coarser grids (a pyramid).
"""

from __future__ import annotations

import numpy as np

from . import _grid, threads
from .colors import PACKABLE_MAX_FEATURES, group_sums

# Levels per channel (as a power of two) of the finest grid of the
# nearest-codeword search, and the number of coarser grids whose candidate
# lists narrow those of the next finer one.
GRID_BITS = 5
POOL_LEVELS = 2


def cell_ids(rows, bits):
    """Index of each row's cell in a grid of ``2**bits`` levels per axis.

    ``rows`` are uint8, or floats in ``[0, 256)``.
    """
    if rows.dtype != np.uint8:
        rows = rows.astype(np.uint8)  # truncation is the floor here
    shift = 8 - bits
    ids = np.zeros(len(rows), dtype=np.intp)
    for j in range(rows.shape[1]):
        ids <<= bits
        ids |= rows[:, j] >> shift
    return ids


def occupied_cells(rows, bits):
    """Sorted ids of the grid cells holding ``rows``, and each row's cell index."""
    ids = cell_ids(rows, bits)
    n_ids = 2 ** (bits * rows.shape[1])
    if n_ids > 16 * len(rows):
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


def cell_means(rows, weights, bits):
    """Weighted mean row and total weight of each occupied grid cell."""
    occupied, inverse = occupied_cells(rows, bits)
    sums, totals = group_sums(rows, weights, inverse, len(occupied))
    return sums / totals[:, None], totals


def build(rows):
    """The cell of each row, and the boxes of the cells and of coarser grids.

    Rows of at most 4 values in ``[0, 256)`` fall in the cells of a grid with
    up to ``2**GRID_BITS`` levels per feature (fewer for fewer rows); each
    coarser grid, down to ``POOL_LEVELS`` more, halves the levels. Other
    rows all fall in one cell, their bounding box.

    Returns
    -------
    cell_of_row : ndarray of shape (n_rows,), intp
    pyramid : list of (boxes, parent_of_box), finest first
        ``boxes`` are (box_lo, box_hi), each of shape (n_boxes, n_features),
        float64: the lowest and highest coordinates of the rows each box may
        hold; ``parent_of_box`` the index of each box's box in the next
        coarser grid (None for the coarsest).
    """
    on_grid = rows.shape[1] <= PACKABLE_MAX_FEATURES and (
        rows.dtype == np.uint8 or (rows.min() >= 0 and rows.max() < 256)
    )
    if not on_grid:
        points = rows.astype(np.float64)
        box = (points.min(axis=0)[None], points.max(axis=0)[None])
        return np.zeros(len(rows), dtype=np.intp), [(box, None)]
    bits = GRID_BITS
    # Fewer rows get a coarser grid: lists for cells of one row cost more
    # than they save.
    while bits > POOL_LEVELS and 2 ** (bits * rows.shape[1]) > len(rows):
        bits -= 1
    cells, cell_of_row = occupied_cells(rows, bits)
    n_features = rows.shape[1]
    side = np.empty((len(cells), n_features), dtype=np.intp)
    for j in range(n_features):
        side[:, j] = (cells >> (bits * (n_features - 1 - j))) & (2**bits - 1)
    # Integer rows reach the last level of their cell, floats up to its end.
    inclusive = rows.dtype == np.uint8
    pyramid = []
    for level_bits in range(bits, bits - POOL_LEVELS - 1, -1):
        boxes = _boxes(side, 8 - level_bits, inclusive)
        if level_bits == bits - POOL_LEVELS:
            pyramid.append((boxes, None))
            break
        side = side >> 1
        parent_ids = np.zeros(len(side), dtype=np.intp)
        for j in range(n_features):
            parent_ids = (parent_ids << (level_bits - 1)) | side[:, j]
        _, first, parent_of_box = np.unique(
            parent_ids, return_index=True, return_inverse=True
        )
        pyramid.append((boxes, parent_of_box.reshape(-1).astype(np.intp)))
        side = side[first]
    return np.ascontiguousarray(cell_of_row, dtype=np.intp), pyramid


def _boxes(side, shift, inclusive):
    size = 2**shift
    lo = (side * size).astype(np.float64)
    return lo, lo + (size - 1 if inclusive else size)


def candidates(pyramid, centers, slack):
    """Candidate lists of the grid's cells (see :func:`_grid.candidates`).

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


def nearest(rows, centers):
    """Index of and distance to the nearest centroid of each row."""
    cell_of_row, pyramid = build(rows)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    indptr, indices, floors, _ = candidates(pyramid, centers, 0.0)
    return _grid.nearest(
        rows.astype(np.float64), cell_of_row, indptr, indices, floors, centers
    )
