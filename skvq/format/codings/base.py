"""The protocol every index coding follows."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..container import FormatError


class Coding(NamedTuple):
    """How one index coding encodes and decodes a frame's codes.

    The codebook (``(n_codes, channels)`` uint8) is given to both ways: the
    codes are below ``n_codes`` and a coding may model the colours.
    """

    name: str
    # (codes of shape (height, width), codebook) -> bytes
    encode: Callable[[np.ndarray, np.ndarray], bytes]
    # (data, (height, width), codebook, partial) -> the height * width codes,
    # uint8 or uint16, possibly flat. With partial=True the data may be cut
    # short: the codes it does not determine decode as 0.
    decode: Callable[[bytes, tuple[int, int], np.ndarray, bool], np.ndarray]
    # (n_pixels, n_codes) -> the exact data size, or None if it depends on
    # the codes; readers check INDX lengths against it before decoding.
    size: Callable[[int, int], int | None]


def damaged_unless(partial: bool, problem: str) -> None:
    """Raise for a problem that only a partial (truncated) decode accepts."""
    if not partial:
        raise FormatError(f"damaged index data: {problem}.")
