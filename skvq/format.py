"""Reading and writing the .vq image file format, version 1 (spec revision 1.1).

The byte layout is specified in ``docs/format.md``; this module is that
specification in code and needs nothing but numpy, the standard library and
``zstandard`` (the Pillow glue lives in :mod:`skvq.pillow_plugin`).

Index codings: "raw" packs each code in ``ceil(log2 K)`` bits; "zstd" and
"bz2" store runs of equal codes as two compressed streams (run-start flags
and run codes), usually smaller than an optimized PNG-8 of the same pixels.

A .vq file is a signature followed by chunks, as in PNG: a 4-byte length, a
4-byte type, the data and a CRC32 of type and data. ``HEAD`` holds the image
geometry, ``BOOK`` the codebook, one ``INDX`` chunk per frame the codes and
``DONE`` ends the file. Chunk types starting with a lowercase letter are
ancillary (metadata) and skipped by readers that do not know them.

Readers check every length against the bytes actually present before they
read or allocate anything sized by it, verify every CRC they read and raise
:class:`FormatError` (an :class:`OSError`) rather than decode a wrong image.
"""

from __future__ import annotations

import bz2
import io
import os
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

import numpy as np
import zstandard

from . import _runs
from ._atomic import atomic_write
from .bits import bits_per_code

__all__ = [
    "AUTO_CODINGS",
    "CODINGS",
    "MAX_CHUNK_LENGTH",
    "MAX_CODES",
    "MAX_DIMENSION",
    "MAX_PIXELS",
    "MODES",
    "SIGNATURE",
    "VERSION",
    "FormatError",
    "PixelLimitError",
    "TruncatedFileError",
    "VqHeader",
    "VqInfo",
    "encode_vq",
    "frame_offsets",
    "pack_codes",
    "read_frame",
    "read_header",
    "read_info",
    "read_vq",
    "unpack_codes",
    "verify_vq",
    "write_vq",
]

#: The first bytes of every .vq file. As in PNG's signature, the high-bit
#: first byte catches 7-bit transfers, CR LF catches line-ending conversion
#: either way, and 0x1A stops ``type`` on DOS.
SIGNATURE = b"\x8eSKVQ\r\n\x1a\n"
#: The format version this module reads and writes.
VERSION = 1
#: Largest codebook: codes fit in 16 bits.
MAX_CODES = 65_536
#: Largest width or height, and largest chunk data length (as in PNG).
MAX_DIMENSION = 2**31 - 1
MAX_CHUNK_LENGTH = 2**31 - 1
#: Default limit of the readers that decode pixels: frames of more pixels
#: raise :class:`PixelLimitError` before anything is allocated for them. With
#: ``K = 1`` no index data backs the size a header announces, so without a
#: limit a 100-byte file could ask for terabytes (Pillow's
#: ``Image.MAX_IMAGE_PIXELS`` plays this role for ``Image.open``).
MAX_PIXELS = 2**28

#: Source modes: mode name -> (id stored in HEAD, allowed codebook channels,
#: largest codebook). "1" and "P" are stored as their colors: gray levels
#: for "1", the palette's RGB or RGBA entries for "P".
MODES: dict[str, tuple[int, tuple[int, ...], int]] = {
    "L": (0, (1,), MAX_CODES),
    "LA": (1, (2,), MAX_CODES),
    "RGB": (2, (3,), MAX_CODES),
    "RGBA": (3, (4,), MAX_CODES),
    "1": (4, (1,), 2),
    "P": (5, (3, 4), 256),
}
_MODE_NAMES = {mode_id: name for name, (mode_id, _, _) in MODES.items()}


_CHUNK_HEAD = struct.Struct(">I4s")  # length, type
# Unknown chunks are CRC-checked in blocks of this size, never read whole.
_CHECK_BLOCK = 1 << 16
_CRC = struct.Struct(">I")
_HEAD = struct.Struct(">BIIBBIBBI")
_DENSITY = struct.Struct(">dd")

# Metadata chunks (ancillary, lowercase) and the metadata key each one holds.
_METADATA_CHUNKS = {b"iccp": "icc_profile", b"exif": "exif", b"dens": "dpi"}


class FormatError(OSError):
    """The bytes are not a valid .vq file; the message says what is wrong."""


class TruncatedFileError(FormatError):
    """The file ends before the data its chunks announce."""


class PixelLimitError(FormatError):
    """The file announces more pixels than the reader's ``max_pixels``."""


@dataclass(frozen=True, eq=False)
class VqHeader:
    """Everything in a .vq file before its index data.

    Attributes
    ----------
    width, height : int
        Size of each frame in pixels.
    mode : str
        Mode of the source image: "L", "LA", "RGB", "RGBA", "1" or "P".
    codebook : ndarray of shape (n_codes, channels), uint8
        The colors.
    bits_per_code : int
        ``ceil(log2(n_codes))``.
    coding : str
        Index coding: one of :data:`CODINGS`.
    n_frames : int
        Number of frames.
    metadata : dict
        ``"icc_profile"`` (bytes), ``"exif"`` (bytes) and ``"dpi"``
        (tuple of two floats), for those present.
    index_offset : int
        File position of the first ``INDX`` chunk.
    version : int
        Format version.
    """

    width: int
    height: int
    mode: str
    codebook: np.ndarray
    bits_per_code: int
    coding: str
    n_frames: int
    metadata: dict = field(default_factory=dict)
    index_offset: int = 0
    version: int = VERSION

    @property
    def n_codes(self) -> int:
        """Codebook size ``K``."""
        return len(self.codebook)

    @property
    def codebook_mode(self) -> str:
        """Pillow mode of the codebook colors: "L", "LA", "RGB" or "RGBA"."""
        return ("L", "LA", "RGB", "RGBA")[self.codebook.shape[1] - 1]

    @property
    def frame_pixels(self) -> int:
        """Pixels per frame."""
        return self.width * self.height


@dataclass(frozen=True)
class VqInfo:
    """A summary of a .vq file, read without decoding its pixels.

    Attributes
    ----------
    width, height : int
        Size of each frame in pixels.
    mode : str
        Mode of the source image.
    n_codes : int
        Codebook size ``K``.
    n_channels : int
        Values per codebook entry (3 for RGB, 4 with alpha, 1 for L...).
    bits_per_code : int
        ``ceil(log2 K)``.
    coding : str
        Index coding.
    n_frames : int
        Number of frames.
    file_size : int
        Size of the file in bytes.
    index_bytes : int
        Bytes of index data, summed over frames.
    bits_per_pixel : float
        ``8 * file_size`` divided by the number of pixels of all frames:
        what each pixel costs on disk, headers and codebook included.
    """

    width: int
    height: int
    mode: str
    n_codes: int
    n_channels: int
    bits_per_code: int
    coding: str
    n_frames: int
    file_size: int
    index_bytes: int
    bits_per_pixel: float


# ---------------------------------------------------------------------------
# Raw bit packing: one most-significant-bit-first stream, padded at its end.

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


def _raw_index_size(n_pixels: int, bits: int) -> int:
    return -(-n_pixels * bits // 8)


def _encode_raw(codes: np.ndarray, bits: int) -> bytes:
    return pack_codes(codes, bits)


def _decode_raw(
    data: bytes, shape: tuple[int, int], bits: int, partial: bool
) -> np.ndarray:
    n_pixels = shape[0] * shape[1]
    if len(data) == _raw_index_size(n_pixels, bits):
        return unpack_codes(data, bits, n_pixels)
    # A truncated stream (partial): the whole codes present, then zeros.
    codes = np.zeros(n_pixels, np.uint8 if bits <= 8 else np.uint16)
    present = len(data) * 8 // bits
    codes[:present] = unpack_codes(data, bits, present)
    return codes


class _Coding(NamedTuple):
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


# ---------------------------------------------------------------------------
# Run codings: a frame as run flags and run codes, each stream compressed.
#
# A flag per pixel says whether it starts a run, that is whether its code
# differs from the one before it in raster order; the code of each run
# follows in a second stream. Flags are packed row by row, so an edge
# running down the image repeats at a fixed byte distance for the
# compressor's matches. Neither stream depends on the codebook order
# (matches compare codes for equality, entropy coders count them), so the
# codes stay the codebook's own.

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
        _damaged_unless(partial, f"{len(data)} bytes hold no run flags")
        data = bytes(_STREAM_LENGTH.size)
    (flags_length,) = _STREAM_LENGTH.unpack_from(data)
    flags_end = _STREAM_LENGTH.size + flags_length
    if flags_end > len(data):
        _damaged_unless(
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


def _damaged_unless(partial: bool, problem: str) -> None:
    if not partial:
        raise FormatError(f"damaged index data: {problem}.")


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
        _damaged_unless(partial, "a compressed stream ends early")
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
            _damaged_unless(partial, "not a zstd frame")
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


def _run_coding(name: str, compress, decompressor) -> _Coding:
    return _Coding(
        name,
        lambda codes, bits: _encode_runs(codes, bits, compress),
        lambda data, shape, bits, partial: _decode_runs(
            data, shape, bits, partial, decompressor(partial)
        ),
        lambda n_pixels, bits: None,
    )


# Coding id stored in HEAD -> coding.
_CODINGS: dict[int, _Coding] = {
    0: _Coding("raw", _encode_raw, _decode_raw, _raw_index_size),
    1: _run_coding("zstd", _zstd_compress, _zstd_decompressor),
    2: _run_coding("bz2", _bz2_compress, _bz2_decompressor),
}
#: Index codings: name -> id stored in HEAD.
CODINGS: dict[str, int] = {coding.name: id_ for id_, coding in _CODINGS.items()}
#: The codings ``coding="auto"`` chooses from: those that decode about as fast
#: as PNG does.
AUTO_CODINGS = ("raw", "zstd")


# ---------------------------------------------------------------------------
# Writing


def encode_vq(
    width: int,
    height: int,
    mode: str,
    codebook,
    frames: Sequence,
    *,
    metadata: dict | None = None,
    coding: str = "raw",
) -> bytes:
    """The bytes of a .vq file.

    Everything is validated before any byte is produced.

    Parameters
    ----------
    width, height : int
        Frame size in pixels, 1 to 2**31 - 1.
    mode : {"L", "LA", "RGB", "RGBA", "1", "P"}
        Mode of the source image.
    codebook : array-like of shape (n_codes, channels), uint8 values
        The colors, ``1 <= n_codes <= 65536`` (2 for mode "1", 256 for
        "P"). ``channels`` is that of ``mode`` (3 or 4 for "P").
    frames : sequence of array-like of shape (height, width)
        The codes of each frame, integers below ``n_codes``; at least one.
    metadata : dict, optional
        ``"icc_profile"`` (bytes), ``"exif"`` (bytes), ``"dpi"`` (two
        positive numbers); other keys are ignored.
    coding : {"raw", "zstd", "bz2", "auto"}, default="raw"
        Index coding (see ``docs/format.md``). "raw" is exactly
        ``ceil(log2 K)`` bits per pixel; "zstd" and "bz2" code runs of equal
        codes, typically smaller than PNG-8; "auto" takes the smaller of
        "raw" and "zstd" (the codings that decode about as fast as PNG).

    Returns
    -------
    bytes
    """
    if mode not in MODES:
        raise ValueError(
            f"Mode {mode!r} cannot be stored in a .vq file; "
            f"supported modes are {', '.join(MODES)}."
        )
    if coding not in CODINGS and coding != "auto":
        raise ValueError(
            f"Unknown coding {coding!r}; known: {', '.join(CODINGS)} and 'auto'."
        )
    for name, value in (("width", width), ("height", height)):
        if (
            isinstance(value, bool)
            or int(value) != value
            or not (1 <= value <= MAX_DIMENSION)
        ):
            raise ValueError(f"{name} must be an integer in 1..{MAX_DIMENSION}.")
    width, height = int(width), int(height)
    codebook = _check_codebook(codebook, mode)
    n_codes = len(codebook)
    bits = bits_per_code(n_codes)
    if len(frames) == 0:
        raise ValueError("A .vq file needs at least one frame.")
    frames = [
        _check_codes(frame, (height, width), n_codes, number)
        for number, frame in enumerate(frames)
    ]
    coding, indices = _encode_frames(frames, bits, coding)
    index_chunks = []
    for number, data in enumerate(indices):
        if len(data) > MAX_CHUNK_LENGTH:
            raise ValueError(
                f"Frame {number} needs {len(data)} bytes of index data, more "
                f"than the {MAX_CHUNK_LENGTH} a chunk holds."
            )
        index_chunks.append(_chunk(b"INDX", data))
    head = _HEAD.pack(
        VERSION,
        width,
        height,
        MODES[mode][0],
        codebook.shape[1],
        n_codes,
        bits,
        CODINGS[coding],
        len(frames),
    )
    return b"".join(
        [
            SIGNATURE,
            _chunk(b"HEAD", head),
            *_metadata_chunks(metadata or {}),
            _chunk(b"BOOK", codebook.tobytes()),
            *index_chunks,
            _chunk(b"DONE", b""),
        ]
    )


def _encode_frames(
    frames: list[np.ndarray], bits: int, coding: str
) -> tuple[str, list[bytes]]:
    """The coding used and each frame's index data in it.

    "auto" keeps the smallest file of :data:`AUTO_CODINGS`, the first one on
    a tie. A coding whose size is known in advance (raw) is encoded only if
    it is kept.
    """
    if coding != "auto":
        encode = _CODINGS[CODINGS[coding]].encode
        return coding, [encode(codes, bits) for codes in frames]
    best = None
    for name in AUTO_CODINGS:
        sizes = [_CODINGS[CODINGS[name]].size(codes.size, bits) for codes in frames]
        encoded = None
        if None in sizes:
            encoded = _encode_frames(frames, bits, name)[1]
            sizes = list(map(len, encoded))
        if best is None or sum(sizes) < best[1]:  # the first one on a tie
            best = (name, sum(sizes), encoded)
    name, _, encoded = best
    if encoded is None:
        encoded = _encode_frames(frames, bits, name)[1]
    return name, encoded


def write_vq(target, *args, **kwargs) -> int:
    """Write a .vq file; the arguments after ``target`` are :func:`encode_vq`'s.

    The whole file is encoded and validated in memory first, so an invalid
    argument raises before ``target`` is opened or written. A path is
    written atomically (a temporary file renamed over it once complete), so
    a failed write leaves an existing file as it was.

    Parameters
    ----------
    target : str, os.PathLike or binary file object
        Where to write; an existing file is replaced.
    *args, **kwargs
        Passed to :func:`encode_vq`.

    Returns
    -------
    int
        Number of bytes written.
    """
    data = encode_vq(*args, **kwargs)
    if isinstance(target, (str, os.PathLike)):
        with atomic_write(target, overwrite=True) as file:
            file.write(data)
    else:
        target.write(data)
    return len(data)


def _check_codebook(codebook, mode: str) -> np.ndarray:
    codebook = np.asarray(codebook)
    _, channels, max_codes = MODES[mode]
    if codebook.ndim != 2 or codebook.shape[1] not in channels:
        raise ValueError(
            f"A mode {mode!r} codebook must have shape (n_codes, "
            f"{' or '.join(map(str, channels))}), got {codebook.shape}."
        )
    if not 1 <= len(codebook) <= max_codes:
        raise ValueError(
            f"A mode {mode!r} codebook must have 1 to {max_codes} entries, "
            f"got {len(codebook)}."
        )
    if codebook.dtype != np.uint8:
        if (
            codebook.dtype.kind not in "iu"
            or codebook.min() < 0
            or codebook.max() > 255
        ):
            raise ValueError("Codebook values must be integers in 0..255.")
        codebook = codebook.astype(np.uint8)
    return np.ascontiguousarray(codebook)


def _check_codes(frame, shape: tuple[int, int], n_codes: int, number: int):
    codes = np.asarray(frame)
    if codes.shape != shape:
        raise ValueError(
            f"Frame {number} has shape {codes.shape}, expected (height, width) "
            f"= {shape}."
        )
    if codes.dtype.kind not in "iu":
        raise ValueError(f"Frame {number} codes must be integers, got {codes.dtype}.")
    if codes.size and (codes.min() < 0 or codes.max() >= n_codes):
        raise ValueError(
            f"Frame {number} codes must lie in 0..{n_codes - 1}, got values in "
            f"{codes.min()}..{codes.max()}."
        )
    return codes


def _metadata_chunks(metadata: dict) -> list[bytes]:
    chunks = []
    for chunk_type, key in _METADATA_CHUNKS.items():
        value = metadata.get(key)
        if value is None:
            continue
        if key == "dpi":
            dpi = tuple(float(v) for v in value)
            if len(dpi) != 2 or not all(0 < v < float("inf") for v in dpi):
                raise ValueError(f"dpi must be two positive numbers, got {value!r}.")
            data = _DENSITY.pack(*dpi)
        else:
            data = bytes(value)
        if len(data) > MAX_CHUNK_LENGTH:
            raise ValueError(f"{key} is too large for a chunk ({len(data)} bytes).")
        chunks.append(_chunk(chunk_type, data))
    return chunks


def _chunk(chunk_type: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(chunk_type))
    return _CHUNK_HEAD.pack(len(data), chunk_type) + data + _CRC.pack(crc)


# ---------------------------------------------------------------------------
# Reading


class _ChunkReader:
    """Reads chunks from a binary file, checking lengths against its size."""

    def __init__(self, file: BinaryIO):
        self.file = file
        position = file.tell()
        self.size = file.seek(0, io.SEEK_END)
        file.seek(position)

    def remaining(self) -> int:
        return self.size - self.file.tell()

    def read_exact(self, count: int, what: str) -> bytes:
        data = self.file.read(count)
        if len(data) < count:
            raise TruncatedFileError(
                f"file truncated: {what} needs {count} bytes, {len(data)} present."
            )
        return data

    def next_chunk(self) -> tuple[bytes, int]:
        """Type and data length of the next chunk; the file is left at its data."""
        length, chunk_type = _CHUNK_HEAD.unpack(
            self.read_exact(_CHUNK_HEAD.size, "a chunk header")
        )
        if not (chunk_type.isascii() and chunk_type.isalpha()):
            raise FormatError(
                f"damaged chunk header at byte {self.file.tell() - _CHUNK_HEAD.size}: "
                f"type {chunk_type!r} is not 4 ASCII letters."
            )
        if length > MAX_CHUNK_LENGTH:
            raise FormatError(
                f"damaged {_name(chunk_type)} chunk: length {length} exceeds "
                f"{MAX_CHUNK_LENGTH}."
            )
        return chunk_type, length

    def read_data(self, chunk_type: bytes, length: int, *, partial=False) -> bytes:
        """The chunk's data, its CRC checked; the file is left after the chunk.

        With ``partial=True`` a chunk cut short by the end of the file returns
        the bytes present, unchecked, instead of raising.
        """
        if partial and length + _CRC.size > self.remaining():
            # Not read(length): buffered files allocate the size asked for
            # up front, and this length is not backed by the file.
            return self.file.read(max(min(length, self.remaining()), 0))
        self._check_present(chunk_type, length)
        data = self.file.read(length)
        (stored_crc,) = _CRC.unpack(self.file.read(_CRC.size))
        if zlib.crc32(data, zlib.crc32(chunk_type)) != stored_crc:
            raise FormatError(
                f"CRC mismatch in {_name(chunk_type)} chunk: the file is corrupt."
            )
        return data

    def check_data(self, chunk_type: bytes, length: int) -> None:
        """Pass over the chunk, its CRC checked, reading it in blocks.

        For unknown ancillary chunks: their size costs no memory, and damage
        that turns a known chunk into an unknown one (a flipped bit in
        "iccp") is still detected rather than dropping its data silently.
        """
        self._check_present(chunk_type, length)
        crc = zlib.crc32(chunk_type)
        for start in range(0, length, _CHECK_BLOCK):
            block = self.file.read(min(_CHECK_BLOCK, length - start))
            crc = zlib.crc32(block, crc)
        (stored_crc,) = _CRC.unpack(self.file.read(_CRC.size))
        if crc != stored_crc:
            raise FormatError(
                f"CRC mismatch in {_name(chunk_type)} chunk: the file is corrupt."
            )

    def skip_data(self, chunk_type: bytes, length: int) -> None:
        """Skip the chunk without reading it."""
        self._check_present(chunk_type, length)
        self.file.seek(length + _CRC.size, io.SEEK_CUR)

    def _check_present(self, chunk_type: bytes, length: int) -> None:
        if length + _CRC.size > self.remaining():
            raise TruncatedFileError(
                f"file truncated: {_name(chunk_type)} chunk announces {length} "
                f"bytes, {max(self.remaining() - _CRC.size, 0)} present."
            )


def _name(chunk_type: bytes) -> str:
    return repr(chunk_type.decode("latin-1"))


def _is_critical(chunk_type: bytes) -> bool:
    return chunk_type[:1].isupper()


def read_header(file: BinaryIO) -> VqHeader:
    """Parse a .vq file up to its first index data, without reading pixels.

    Parameters
    ----------
    file : binary file object
        Seekable, positioned at the signature. Left at the first ``INDX``
        chunk.

    Returns
    -------
    VqHeader

    Raises
    ------
    FormatError
        If the signature is wrong, a chunk is damaged or inconsistent, or a
        CRC does not match.
    TruncatedFileError
        If the file ends inside the header.
    """
    reader = _ChunkReader(file)
    signature = file.read(len(SIGNATURE))
    if signature != SIGNATURE:
        hint = (
            " (damaged by a text-mode transfer?)" if signature[1:5] == b"SKVQ" else ""
        )
        raise FormatError(f"not a .vq file: bad signature{hint}.")
    chunk_type, length = reader.next_chunk()
    if chunk_type != b"HEAD":
        raise FormatError(f"damaged header: first chunk is {_name(chunk_type)}.")
    if length != _HEAD.size:
        raise FormatError(
            f"damaged header: HEAD is {length} bytes, expected {_HEAD.size}."
        )
    fields, codebook_shape = _parse_head(reader.read_data(chunk_type, length))
    codebook = None
    metadata = {}
    while True:
        chunk_type, length = reader.next_chunk()
        if chunk_type == b"BOOK":
            if codebook is not None:
                raise FormatError("damaged header: two BOOK chunks.")
            data = reader.read_data(chunk_type, length)
            codebook = _parse_codebook(data, codebook_shape)
        elif chunk_type in _METADATA_CHUNKS:
            data = reader.read_data(chunk_type, length)
            metadata[_METADATA_CHUNKS[chunk_type]] = _parse_metadata(chunk_type, data)
        elif chunk_type == b"INDX":
            break
        elif _is_critical(chunk_type):
            raise FormatError(
                f"damaged header: unexpected critical chunk {_name(chunk_type)} "
                "before the index data."
            )
        else:  # an ancillary chunk of a later version
            reader.check_data(chunk_type, length)
    if codebook is None:
        raise FormatError("damaged header: no BOOK chunk before the index data.")
    header = VqHeader(
        codebook=codebook,
        metadata=metadata,
        index_offset=file.tell() - _CHUNK_HEAD.size,
        **fields,
    )
    _check_index_length(header, length)
    file.seek(header.index_offset)
    return header


def _check_index_length(header: VqHeader, length: int) -> None:
    # For codings of known size this bounds the frame size by the bytes the
    # file announces, so a damaged width or height fails before anything is
    # allocated for it.
    coding = _CODINGS[CODINGS[header.coding]]
    expected = coding.size(header.frame_pixels, header.bits_per_code)
    if expected is not None and length != expected:
        raise FormatError(
            f"damaged file: an INDX chunk holds {length} bytes; {header.width} x "
            f"{header.height} codes of {header.bits_per_code} bits in "
            f"{header.coding} coding need {expected}."
        )


def _parse_head(data: bytes) -> tuple[dict, tuple[int, int]]:
    """The VqHeader fields in HEAD, and the codebook shape it announces."""
    (version, width, height, mode_id, channels, n_codes, bits, coding_id, n_frames) = (
        _HEAD.unpack(data)
    )
    if version != VERSION:
        raise FormatError(
            f"unsupported .vq version {version}; this reader knows version {VERSION}."
        )
    if not (1 <= width <= MAX_DIMENSION and 1 <= height <= MAX_DIMENSION):
        raise FormatError(f"damaged header: invalid size {width} x {height}.")
    if mode_id not in _MODE_NAMES:
        raise FormatError(f"damaged header: unknown mode id {mode_id}.")
    mode = _MODE_NAMES[mode_id]
    _, allowed_channels, max_codes = MODES[mode]
    if channels not in allowed_channels:
        raise FormatError(
            f"damaged header: {channels} codebook channels for mode {mode!r}."
        )
    if not 1 <= n_codes <= max_codes:
        raise FormatError(
            f"damaged header: {n_codes} codes for mode {mode!r} (1..{max_codes})."
        )
    if bits != bits_per_code(n_codes):
        raise FormatError(
            f"damaged header: {bits} bits per code for {n_codes} codes, expected "
            f"{bits_per_code(n_codes)}."
        )
    if coding_id not in _CODINGS:
        raise FormatError(f"unsupported index coding {coding_id}.")
    if n_frames < 1:
        raise FormatError("damaged header: no frames.")
    fields = dict(
        width=width,
        height=height,
        mode=mode,
        bits_per_code=bits,
        coding=_CODINGS[coding_id].name,
        n_frames=n_frames,
        version=version,
    )
    return fields, (n_codes, channels)


def _parse_codebook(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    n_codes, channels = shape
    if len(data) != n_codes * channels:
        raise FormatError(
            f"damaged header: BOOK is {len(data)} bytes, expected {n_codes} codes "
            f"x {channels} channels = {n_codes * channels}."
        )
    return np.frombuffer(data, np.uint8).reshape(n_codes, channels)


def _parse_metadata(chunk_type: bytes, data: bytes):
    if chunk_type != b"dens":
        return data
    if len(data) != _DENSITY.size:
        raise FormatError(f"damaged 'dens' chunk: {len(data)} bytes, expected 16.")
    dpi = _DENSITY.unpack(data)
    # What the writer accepts: NaN or negative dpi would fail later, in
    # whatever code saves the image again (PNG, TIFF, JPEG all reject them).
    if not all(0 < value < float("inf") for value in dpi):
        raise FormatError(f"damaged 'dens' chunk: dpi {dpi} are not positive.")
    return dpi


def frame_offsets(file: BinaryIO, header: VqHeader) -> list[int]:
    """File positions of the ``INDX`` chunk of every frame.

    Walks the chunk headers after :attr:`VqHeader.index_offset` without
    reading their data.

    Parameters
    ----------
    file : binary file object
        The file ``header`` was read from.
    header : VqHeader

    Returns
    -------
    list of int
        ``header.n_frames`` offsets.

    Raises
    ------
    FormatError
        If the number of ``INDX`` chunks differs from ``header.n_frames`` or a
        chunk is damaged; :class:`TruncatedFileError` if the file ends early.
    """
    reader = _ChunkReader(file)
    file.seek(header.index_offset)
    offsets = []
    while True:
        offset = file.tell()
        chunk_type, length = reader.next_chunk()
        if chunk_type == b"DONE":
            if length:
                raise FormatError(f"damaged DONE chunk: {length} bytes, expected 0.")
            reader.read_data(chunk_type, length)  # its CRC
            break
        if chunk_type == b"INDX":
            _check_index_length(header, length)
            offsets.append(offset)
            reader.skip_data(chunk_type, length)  # read_frame checks it
        elif _is_critical(chunk_type):
            raise FormatError(
                f"unexpected critical chunk {_name(chunk_type)} among the frames."
            )
        else:
            reader.check_data(chunk_type, length)
    if len(offsets) != header.n_frames:
        raise FormatError(
            f"the header announces {header.n_frames} frames, the file holds "
            f"{len(offsets)}."
        )
    return offsets


def read_frame(
    file: BinaryIO,
    header: VqHeader,
    offset: int | None = None,
    *,
    partial=False,
    max_pixels: int | None = MAX_PIXELS,
) -> np.ndarray:
    """Decode the codes of one frame.

    Parameters
    ----------
    file : binary file object
        The file ``header`` was read from.
    header : VqHeader
    offset : int, optional
        Position of the frame's ``INDX`` chunk (see :func:`frame_offsets`);
        the first frame by default.
    partial : bool, default=False
        Decode a frame cut short by the end of the file, its missing codes
        0, instead of raising :class:`TruncatedFileError`.
    max_pixels : int or None, default=MAX_PIXELS
        Largest frame decoded; None for no limit (for files you trust, or
        when the caller applies its own limit).

    Returns
    -------
    ndarray of shape (height, width)
        The codes, uint8 when ``n_codes <= 256``, else uint16.

    Raises
    ------
    FormatError
        If the chunk is damaged, its CRC does not match or a code is not
        below ``n_codes``.
    PixelLimitError
        If the frame has more than ``max_pixels`` pixels.
    """
    _check_pixel_limit(header.frame_pixels, max_pixels)
    reader = _ChunkReader(file)
    file.seek(header.index_offset if offset is None else offset)
    chunk_type, length = reader.next_chunk()
    if chunk_type != b"INDX":
        raise FormatError(f"expected an INDX chunk, found {_name(chunk_type)}.")
    _check_index_length(header, length)
    data = reader.read_data(chunk_type, length, partial=partial)
    decode = _CODINGS[CODINGS[header.coding]].decode
    shape = (header.height, header.width)
    codes = decode(data, shape, header.bits_per_code, partial)
    # Codes of b bits reach 2**b - 1, past the codebook unless K is 2**b.
    if codes.size and int(codes.max()) >= header.n_codes:
        raise FormatError(
            f"damaged index data: code {int(codes.max())} is not below "
            f"n_codes = {header.n_codes}."
        )
    dtype = np.uint8 if header.n_codes <= 256 else np.uint16
    return codes.astype(dtype, copy=False).reshape(header.height, header.width)


def _check_pixel_limit(n_pixels: int, max_pixels: int | None) -> None:
    if max_pixels is not None and n_pixels > max_pixels:
        raise PixelLimitError(
            f"the file announces {n_pixels:,} pixels, more than max_pixels = "
            f"{max_pixels:,}; pass a larger max_pixels (or None) to read it "
            "if you trust it."
        )


def read_vq(
    source, *, max_pixels: int | None = MAX_PIXELS
) -> tuple[VqHeader, np.ndarray]:
    """Read a whole .vq file: its header and the codes of every frame.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
    max_pixels : int or None, default=MAX_PIXELS
        Largest number of pixels decoded, all frames together; None for no
        limit.

    Returns
    -------
    header : VqHeader
    codes : ndarray of shape (n_frames, height, width)

    Raises
    ------
    FormatError
        If the file is damaged (:class:`TruncatedFileError` if it ends
        early).
    PixelLimitError
        If the frames have more than ``max_pixels`` pixels in all.
    """
    with _open_source(source) as file:
        header = read_header(file)
        _check_pixel_limit(header.frame_pixels * header.n_frames, max_pixels)
        offsets = frame_offsets(file, header)
        dtype = np.uint8 if header.n_codes <= 256 else np.uint16
        codes = np.empty((len(offsets), header.height, header.width), dtype)
        for number, offset in enumerate(offsets):
            codes[number] = read_frame(file, header, offset, max_pixels=None)
    return header, codes


def verify_vq(source, *, max_pixels: int | None = MAX_PIXELS) -> VqHeader:
    """Check a whole .vq file: structure, every CRC and every frame.

    Unlike :func:`read_header`, unknown ancillary chunks are checked too.
    Frames are decoded one at a time, to check their codes.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
    max_pixels : int or None, default=MAX_PIXELS
        Largest number of pixels decoded, all frames together; None for no
        limit.

    Returns
    -------
    VqHeader

    Raises
    ------
    FormatError
        On the first problem found.
    PixelLimitError
        If the frames have more than ``max_pixels`` pixels in all.
    """
    with _open_source(source) as file:
        start = file.tell()
        header = read_header(file)
        # In all, as for read_vq: frames are decoded one at a time, but a
        # small file must not make it decode thousands of large frames.
        _check_pixel_limit(header.frame_pixels * header.n_frames, max_pixels)
        frame_offsets(file, header)  # the structure: frame count, DONE
        file.seek(start + len(SIGNATURE))
        reader = _ChunkReader(file)
        chunk_type = None
        while chunk_type != b"DONE":
            offset = file.tell()
            chunk_type, length = reader.next_chunk()
            # CRC and code range. Empty index data (raw, K = 1) holds no code
            # to check: decoding its frame would only allocate zeros, which
            # a small file with many large frames would make very costly.
            if chunk_type == b"INDX" and length:
                read_frame(file, header, offset, max_pixels=None)
            else:
                reader.read_data(chunk_type, length)
    return header


def read_info(source) -> VqInfo:
    """Summarize a .vq file without decoding its pixels.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object

    Returns
    -------
    VqInfo

    Examples
    --------
    >>> data = encode_vq(4, 2, "L", [[0], [255]], [[[0, 1, 1, 0], [1, 1, 0, 0]]])
    >>> info = read_info(data)
    >>> info.n_codes, info.bits_per_code, info.index_bytes
    (2, 1, 1)
    """
    with _open_source(source) as file:
        start = file.tell()
        header = read_header(file)
        offsets = frame_offsets(file, header)
        reader = _ChunkReader(file)
        index_bytes = 0
        for offset in offsets:
            file.seek(offset)
            index_bytes += reader.next_chunk()[1]
        file_size = reader.size - start
    return VqInfo(
        width=header.width,
        height=header.height,
        mode=header.mode,
        n_codes=header.n_codes,
        n_channels=header.codebook.shape[1],
        bits_per_code=header.bits_per_code,
        coding=header.coding,
        n_frames=header.n_frames,
        file_size=file_size,
        index_bytes=index_bytes,
        bits_per_pixel=8 * file_size / (header.frame_pixels * header.n_frames),
    )


@contextmanager
def _open_source(source) -> Iterator[BinaryIO]:
    """A binary file for a path, bytes or an open file.

    A file opened here is closed on exit; a caller's file is left open.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(source)
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as file:
            yield file
    else:
        yield source
