"""Run codings: a frame as run flags and run codes, each stream compressed.

A flag per pixel says whether it starts a run, that is whether its code
differs from the one before it in raster order; the code of each run follows
in a second stream. Flags are packed row by row, so an edge running down the
image repeats at a fixed byte distance for the compressor's matches. Neither
stream depends on the codebook order (matches compare codes for equality,
entropy coders count them), so the codes stay the codebook's own.
"""

from __future__ import annotations

import bz2
import struct

import numpy as np
import zstandard

from ... import _runs
from ...bits import bits_per_code
from ..container import FormatError
from .base import Coding, damaged_unless
from .raw import pack_codes, unpack_codes

_STREAM_LENGTH = struct.Struct(">I")
# zstd frames may use windows up to this size: a decoder need not allocate
# more than 8 MiB for a crafted frame, and level 15 (as the levels up to 17)
# never asks for more.
_ZSTD_MAX_WINDOW = 1 << 23
_ZSTD_LEVEL = 15


def _run_code_bits(bits: int) -> int:
    """Width of a stored run code: a nibble, a byte or two bytes."""
    return 4 if bits <= 4 else 8 if bits <= 8 else 16


def _encode_runs(codes: np.ndarray, bits: int, compress) -> bytes:
    flat = codes.ravel()
    starts = np.ones(flat.size, bool)
    np.not_equal(flat[1:], flat[:-1], out=starts[1:])
    flags = np.packbits(starts.reshape(codes.shape), axis=1).tobytes()
    run_codes = pack_codes(flat[starts], _run_code_bits(bits))
    packed_flags = compress(flags)
    return _STREAM_LENGTH.pack(len(packed_flags)) + packed_flags + compress(run_codes)


def _decode_runs(
    data: bytes, shape: tuple[int, int], bits: int, partial: bool, decompress
) -> np.ndarray:
    height, width = shape
    if len(data) < _STREAM_LENGTH.size:
        damaged_unless(partial, f"{len(data)} bytes hold no run flags")
        data = bytes(_STREAM_LENGTH.size)
    (flags_length,) = _STREAM_LENGTH.unpack_from(data)
    flags_end = _STREAM_LENGTH.size + flags_length
    if flags_end > len(data):
        damaged_unless(
            partial, f"run flags of {flags_length} bytes in {len(data)} bytes"
        )
    row_bytes = -(-width // 8)
    flags = decompress(data[_STREAM_LENGTH.size : flags_end], height * row_bytes)
    if len(flags) < height * row_bytes:  # partial: missing flags start runs
        flags += b"\xff" * (height * row_bytes - len(flags))
    flags = np.frombuffer(flags, np.uint8).reshape(height, row_bytes)
    if not flags[0, 0] & 0x80:
        raise FormatError("damaged index data: the first pixel starts no run.")
    n_runs = _runs.count_runs(flags, width)
    code_bits = _run_code_bits(bits)
    n_bytes = -(-n_runs * code_bits // 8)
    run_codes = decompress(data[flags_end:], n_bytes)
    if len(run_codes) < n_bytes:  # partial: missing runs are code 0
        run_codes += bytes(n_bytes - len(run_codes))
    return _runs.expand_runs(flags, width, unpack_codes(run_codes, code_bits, n_runs))


def _check_decompressed(
    data: bytes, size: int, complete: bool, trailing: bytes, partial: bool
) -> bytes:
    """The decompressed ``data``, if exactly ``size`` bytes of one whole stream."""
    if len(data) > size:
        raise FormatError(
            f"damaged index data: a stream decompresses to more than the {size} "
            "bytes expected."
        )
    if not complete:
        damaged_unless(partial, "a compressed stream ends early")
    elif trailing:
        raise FormatError("damaged index data: bytes after a compressed stream.")
    elif len(data) < size:
        raise FormatError(
            f"damaged index data: a stream decompresses to {len(data)} bytes, "
            f"expected {size}."
        )
    return data


def _zstd_compress(data: bytes) -> bytes:
    # The frame records its content size, which readers check first.
    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(data)


def _zstd_decompressor(partial: bool):
    def decompress(data: bytes, size: int) -> bytes:
        try:
            declared = zstandard.get_frame_parameters(data).content_size
        except zstandard.ZstdError:
            damaged_unless(partial, "not a zstd frame")
            return b""
        if declared != size:
            raise FormatError(
                f"damaged index data: a zstd frame declares {declared} bytes, "
                f"expected {size}."
            )
        # zstd stops at the declared content size, so the output is bounded.
        stream = zstandard.ZstdDecompressor(
            max_window_size=_ZSTD_MAX_WINDOW
        ).decompressobj()
        try:
            output = stream.decompress(data)
        except zstandard.ZstdError as error:
            raise FormatError(f"damaged index data: zstd: {error}.") from None
        return _check_decompressed(
            output, size, stream.eof, stream.unused_data, partial
        )

    return decompress


def _bz2_compress(data: bytes) -> bytes:
    return bz2.compress(data, 9)


def _bz2_decompressor(partial: bool):
    def decompress(data: bytes, size: int) -> bytes:
        stream = bz2.BZ2Decompressor()
        try:
            # One byte more than expected is enough to see a stream too long.
            output = stream.decompress(data, max_length=size + 1)
        except OSError as error:
            raise FormatError(f"damaged index data: bzip2: {error}.") from None
        return _check_decompressed(
            output, size, stream.eof, stream.unused_data, partial
        )

    return decompress


def _run_coding(name: str, compress, decompressor) -> Coding:
    return Coding(
        name,
        lambda codes, codebook: _encode_runs(
            codes, bits_per_code(len(codebook)), compress
        ),
        lambda data, shape, codebook, partial: _decode_runs(
            data, shape, bits_per_code(len(codebook)), partial, decompressor(partial)
        ),
        lambda n_pixels, n_codes: None,
    )


ZSTD = _run_coding("zstd", _zstd_compress, _zstd_decompressor)
BZ2 = _run_coding("bz2", _bz2_compress, _bz2_decompressor)
