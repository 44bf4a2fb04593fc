"""The protocol every index coding follows."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..container import FormatError


class Coding(NamedTuple):
    """How one index coding encodes and decodes a frame's codes."""

    name: str
    # (codes of shape (height, width), bits) -> bytes
    encode: Callable[[np.ndarray, int], bytes]
    # (data, (height, width), bits, partial) -> the height * width codes. With
    # partial=True the data may be cut short and the missing codes decode as 0.
    decode: Callable[[bytes, tuple[int, int], int, bool], np.ndarray]
    # (n_pixels, bits) -> the exact data size, or None if it depends on the
    # codes; readers check INDX lengths against it before decoding anything.
    size: Callable[[int, int], int | None]


def damaged_unless(partial: bool, problem: str) -> None:
    """Raise for a problem that only a partial (truncated) decode accepts."""
    if not partial:
        raise FormatError(f"damaged index data: {problem}.")
