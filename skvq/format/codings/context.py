"""The context coding: each pixel modelled from its neighbours, range coded.

The model and the range coder are compiled (:mod:`skvq._context`); this
module lays out the INDX data and runs the stripes on threads. The index map
is cut into stripes of whole rows, each coded on its own (its own model and
range coder, as an image of its own), so that encoding and decoding use the
machine's cores. INDX data (``docs/format.md``, "Context coding"):

- rows per stripe ``R``, u32, 1 to the height;
- the byte length of each of the ``ceil(height / R)`` stripes, u32 each;
- the stripes' bytes, in order.
"""

from __future__ import annotations

import os
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ... import _context
from ..container import FormatError
from .base import Coding, damaged_unless

_U32 = struct.Struct(">I")
# Pixels per stripe the encoder aims at. Each stripe learns its statistics
# anew, which costs size: on the sample photos (0.2 to 0.9 megapixels),
# stripes of 2**18 pixels cost 0 to 0.7 % (median 0: most are one stripe),
# 2**17 pixels 0.6 % and 2**16 pixels 1.5 % (medians).
STRIPE_PIXELS = 1 << 18
# Codebooks up to this size code escapes by rank (the rank tables are K x K).
_RANKED_CODES = 256
_NO_TABLE = np.zeros((1, 1), np.uint8)
_Status = _context.Status


def stripe_rows(height: int, width: int) -> int:
    """Rows per stripe the encoder writes: about :data:`STRIPE_PIXELS` pixels."""
    n_stripes = max(1, min(height, round(height * width / STRIPE_PIXELS)))
    return -(-height // n_stripes)


def _tables(codebook: np.ndarray):
    """The palette as int32 in 4 columns and its nearest-entry tables."""
    palette = np.zeros((len(codebook), 4), np.int32)
    palette[:, : codebook.shape[1]] = codebook
    if len(palette) > _RANKED_CODES:
        return palette, _NO_TABLE, _NO_TABLE
    return palette, *_context.nearest_entries(palette)


def _code_type(n_codes: int) -> type:
    return np.uint8 if n_codes <= 256 else np.uint16


def _workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _map(function, items: list) -> list:
    """``function`` on each item, on threads when there are several."""
    if len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(min(len(items), _workers())) as pool:
        return list(pool.map(function, items))


def _encode(codes: np.ndarray, codebook: np.ndarray) -> bytes:
    palette, nearest, positions = _tables(codebook)
    height, width = codes.shape
    rows = stripe_rows(height, width)
    codes = np.ascontiguousarray(codes, _code_type(len(codebook)))
    stripes = _map(
        lambda start: _context.encode_stripe(
            codes[start : start + rows], palette, nearest, positions
        ),
        list(range(0, height, rows)),
    )
    lengths = struct.pack(f">{len(stripes)}I", *map(len, stripes))
    return b"".join([_U32.pack(rows), lengths, *stripes])


def _decode(
    data: bytes, shape: tuple[int, int], codebook: np.ndarray, partial: bool
) -> np.ndarray:
    height = shape[0]
    if len(data) < _U32.size:
        damaged_unless(partial, f"{len(data)} bytes hold no stripe table")
        return np.zeros(shape, _code_type(len(codebook)))
    (rows,) = _U32.unpack_from(data)
    if not 1 <= rows <= height:
        raise FormatError(
            f"damaged index data: {rows} rows per stripe in {height} rows."
        )
    n_stripes = -(-height // rows)
    table_end = _U32.size * (1 + n_stripes)
    if table_end > len(data):
        damaged_unless(partial, f"a table of {n_stripes} stripes in {len(data)} bytes")
        return np.zeros(shape, _code_type(len(codebook)))
    lengths = np.frombuffer(data, ">u4", n_stripes, _U32.size).astype(np.int64)
    ends = table_end + np.cumsum(lengths)
    cut = ends[-1] > len(data)  # allowed in a partial read only
    if lengths.min() == 0 or ends[-1] < len(data) or (cut and not partial):
        raise FormatError(
            f"damaged index data: stripes of {int(lengths.sum())} bytes in "
            f"{len(data) - table_end} bytes."
        )
    # Allocated once the table is checked: a damaged one allocates nothing.
    codes = np.zeros(shape, _code_type(len(codebook)))
    palette, nearest, positions = _tables(codebook)
    stream = np.frombuffer(data, np.uint8)

    def decode(stripe: int) -> None:
        start = int(ends[stripe] - lengths[stripe])
        present = stream[start : int(ends[stripe])]
        target = codes[stripe * rows : (stripe + 1) * rows]
        status, done = _context.decode_stripe(
            present, target, palette, nearest, positions, int(lengths[stripe])
        )
        if status == _Status.OK:
            return
        if status == _Status.NO_MEMORY:
            raise MemoryError("out of memory decoding a stripe")
        if status == _Status.TRUNCATED and len(present) < lengths[stripe]:
            target.reshape(-1)[done:] = 0  # only the pixels before are exact
            return
        problem = {
            _Status.BAD_RANK: "a rank beyond the codebook",
            _Status.BAD_INDEX: "an index beyond the codebook",
        }.get(status, "a stripe that does not end where its length says")
        raise FormatError(f"damaged index data: stripe {stripe} codes {problem}.")

    _map(decode, list(range(n_stripes)))
    return codes


CONTEXT = Coding("context", _encode, _decode, lambda n_pixels, n_codes: None)
