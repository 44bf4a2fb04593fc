"""The raw coding: codes of ``ceil(log2 K)`` bits in one MSB-first stream.

The stream is padded only at its end, to a whole byte, so the size of a frame
is the tutorial's bit accounting exactly.
"""

from __future__ import annotations

import numpy as np

from ...bits import bits_per_code
from .base import Coding

# Codes are packed in blocks; a block is a multiple of 8 codes, so it fills
# whole bytes and the blocks concatenate into one stream.
_BLOCK_CODES = 1 << 20


def pack_codes(codes, bits: int) -> bytes:
    """Pack codes into one MSB-first bit stream of ``bits`` bits each.

    The stream is padded with zero bits only at its end, to a whole byte, so
    its length is ``ceil(codes.size * bits / 8)``.

    Parameters
    ----------
    codes : array-like of non-negative integers
        Codes below ``2**bits``, any shape (flattened in C order).
    bits : int
        Bits per code, 0 to 16.

    Returns
    -------
    bytes

    Examples
    --------
    >>> pack_codes([1, 0, 3], bits=2).hex()  # 01 00 11 + 2 padding bits
    '4c'
    """
    codes = np.ravel(codes)
    if bits == 0:
        return b""
    if bits == 8:
        return codes.astype(np.uint8, copy=False).tobytes()
    if bits == 16:
        return codes.astype(">u2", copy=False).tobytes()
    return b"".join(
        _pack_block(codes[start : start + _BLOCK_CODES], bits)
        for start in range(0, codes.size, _BLOCK_CODES)
    )


def _pack_block(codes: np.ndarray, bits: int) -> bytes:
    # Eight codes of `bits` bits are exactly `bits` bytes. Codes 0-3 are
    # shifted into the top of one 64-bit word and 4-7 into another; the two
    # 4*bits-bit halves are then joined into a 128-bit big-endian pair.
    n_codes = codes.size
    n_groups = -(-n_codes // 8)
    padded = np.zeros(n_groups * 8, np.uint64)
    padded[:n_codes] = codes
    groups = padded.reshape(n_groups, 8)
    first = np.zeros(n_groups, np.uint64)
    second = np.zeros(n_groups, np.uint64)
    for position in range(4):
        shift = np.uint64(64 - bits * (position + 1))
        first |= groups[:, position] << shift
        second |= groups[:, position + 4] << shift
    half = np.uint64(4 * bits)
    words = np.empty((n_groups, 2), ">u8")
    words[:, 0] = first | (second >> half)
    words[:, 1] = second << (np.uint64(64) - half)
    stream = words.view(np.uint8)[:, :bits].tobytes()
    return stream[: -(-n_codes * bits // 8)]


def unpack_codes(data, bits: int, count: int) -> np.ndarray:
    """Read ``count`` codes of ``bits`` bits from an MSB-first bit stream.

    Parameters
    ----------
    data : bytes-like
        At least ``ceil(count * bits / 8)`` bytes; the rest is ignored.
    bits : int
        Bits per code, 0 to 16.
    count : int
        Number of codes.

    Returns
    -------
    ndarray of shape (count,)
        uint8 when ``bits <= 8``, else uint16.

    Examples
    --------
    >>> unpack_codes(bytes.fromhex("4c"), bits=2, count=3)
    array([1, 0, 3], dtype=uint8)
    """
    dtype = np.uint8 if bits <= 8 else np.uint16
    needed = -(-count * bits // 8)
    stream = np.frombuffer(data, np.uint8)
    if stream.size < needed:
        raise ValueError(
            f"{count} codes of {bits} bits need {needed} bytes, got {stream.size}."
        )
    if bits == 0:
        return np.zeros(count, dtype)
    if bits == 8:
        return stream[:count].copy()
    if bits == 4:  # the run codings' common case: two codes a byte
        stream = stream[:needed]
        codes = np.empty(2 * needed, dtype)
        np.right_shift(stream, 4, out=codes[0::2])
        np.bitwise_and(stream, 15, out=codes[1::2])
        return codes[:count]
    if bits == 16:
        return stream[: 2 * count].view(">u2").astype(np.uint16)
    codes = np.empty(count, dtype)
    block_bytes = _BLOCK_CODES * bits // 8
    for block, start in enumerate(range(0, count, _BLOCK_CODES)):
        n_codes = min(_BLOCK_CODES, count - start)
        offset = block * block_bytes
        chunk = stream[offset : offset + -(-n_codes * bits // 8)]
        codes[start : start + n_codes] = _unpack_block(chunk, bits, n_codes)
    return codes


def _unpack_block(stream: np.ndarray, bits: int, n_codes: int) -> np.ndarray:
    # The inverse of _pack_block: each group of `bits` bytes becomes two
    # 64-bit words holding codes 0-3 and 4-7 at their top.
    n_groups = -(-n_codes // 8)
    grouped = np.zeros(n_groups * bits, np.uint8)
    grouped[: stream.size] = stream
    pair = np.zeros((n_groups, 16), np.uint8)
    pair[:, :bits] = grouped.reshape(n_groups, bits)
    words = pair.view(">u8").astype(np.uint64)
    half = np.uint64(4 * bits)
    first = words[:, 0]
    second = (first << half) | (words[:, 1] >> (np.uint64(64) - half))
    mask = np.uint64((1 << bits) - 1)
    groups = np.empty((n_groups, 8), np.uint16)
    for position in range(4):
        shift = np.uint64(64 - bits * (position + 1))
        groups[:, position] = (first >> shift) & mask
        groups[:, position + 4] = (second >> shift) & mask
    return groups.ravel()[:n_codes]


def _index_size(n_pixels: int, n_codes: int) -> int:
    return -(-n_pixels * bits_per_code(n_codes) // 8)


def _encode_raw(codes: np.ndarray, codebook: np.ndarray) -> bytes:
    return pack_codes(codes, bits_per_code(len(codebook)))


def _decode_raw(
    data: bytes, shape: tuple[int, int], codebook: np.ndarray, partial: bool
) -> np.ndarray:
    n_pixels = shape[0] * shape[1]
    bits = bits_per_code(len(codebook))
    if len(data) == _index_size(n_pixels, len(codebook)):
        return unpack_codes(data, bits, n_pixels)
    # A truncated stream (partial): the whole codes present, then zeros.
    codes = np.zeros(n_pixels, np.uint8 if bits <= 8 else np.uint16)
    present = len(data) * 8 // bits
    codes[:present] = unpack_codes(data, bits, present)
    return codes


RAW = Coding("raw", _encode_raw, _decode_raw, _index_size)
