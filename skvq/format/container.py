"""The .vq container: signature, chunks and their CRCs, errors.

A .vq file is a signature followed by chunks, as in PNG: a 4-byte length, a
4-byte type, the data and a CRC32 of type and data. Chunk types starting
with a lowercase letter are ancillary and skipped by readers that do not
know them.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

#: The first bytes of every .vq file. As in PNG's signature, the high-bit
#: first byte catches 7-bit transfers, CR LF catches line-ending conversion
#: either way, and 0x1A stops ``type`` on DOS.
SIGNATURE = b"\x8eSKVQ\r\n\x1a\n"

#: Largest chunk data length (as in PNG).
MAX_CHUNK_LENGTH = 2**31 - 1


CHUNK_HEAD = struct.Struct(">I4s")  # length, type
CRC = struct.Struct(">I")
# Unknown chunks are CRC-checked in blocks of this size, never read whole.
_CHECK_BLOCK = 1 << 16


class FormatError(OSError):
    """The bytes are not a valid .vq file; the message says what is wrong."""


class TruncatedFileError(FormatError):
    """The file ends before the data its chunks announce."""


class PixelLimitError(FormatError):
    """The file announces more pixels than the reader's ``max_pixels``."""


def chunk(chunk_type: bytes, data: bytes) -> bytes:
    """A whole chunk: length, type, data and the CRC of type and data."""
    crc = zlib.crc32(data, zlib.crc32(chunk_type))
    return CHUNK_HEAD.pack(len(data), chunk_type) + data + CRC.pack(crc)


class ChunkReader:
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
        length, chunk_type = CHUNK_HEAD.unpack(
            self.read_exact(CHUNK_HEAD.size, "a chunk header")
        )
        if not (chunk_type.isascii() and chunk_type.isalpha()):
            raise FormatError(
                f"damaged chunk header at byte {self.file.tell() - CHUNK_HEAD.size}: "
                f"type {chunk_type!r} is not 4 ASCII letters."
            )
        if length > MAX_CHUNK_LENGTH:
            raise FormatError(
                f"damaged {chunk_name(chunk_type)} chunk: length {length} exceeds "
                f"{MAX_CHUNK_LENGTH}."
            )
        return chunk_type, length

    def read_data(self, chunk_type: bytes, length: int, *, partial=False) -> bytes:
        """The chunk's data, its CRC checked; the file is left after the chunk.

        With ``partial=True`` a chunk cut short by the end of the file returns
        the bytes present, unchecked, instead of raising.
        """
        if partial and length + CRC.size > self.remaining():
            # Not read(length): buffered files allocate the size asked for
            # up front, and this length is not backed by the file.
            return self.file.read(max(min(length, self.remaining()), 0))
        self._check_present(chunk_type, length)
        data = self.file.read(length)
        (stored_crc,) = CRC.unpack(self.file.read(CRC.size))
        if zlib.crc32(data, zlib.crc32(chunk_type)) != stored_crc:
            raise FormatError(
                f"CRC mismatch in {chunk_name(chunk_type)} chunk: the file is corrupt."
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
        (stored_crc,) = CRC.unpack(self.file.read(CRC.size))
        if crc != stored_crc:
            raise FormatError(
                f"CRC mismatch in {chunk_name(chunk_type)} chunk: the file is corrupt."
            )

    def skip_data(self, chunk_type: bytes, length: int) -> None:
        """Skip the chunk without reading it."""
        self._check_present(chunk_type, length)
        self.file.seek(length + CRC.size, io.SEEK_CUR)

    def _check_present(self, chunk_type: bytes, length: int) -> None:
        if length + CRC.size > self.remaining():
            raise TruncatedFileError(
                f"file truncated: {chunk_name(chunk_type)} chunk announces {length} "
                f"bytes, {max(self.remaining() - CRC.size, 0)} present."
            )


def chunk_name(chunk_type: bytes) -> str:
    """The chunk type as messages quote it."""
    return repr(chunk_type.decode("latin-1"))


def is_critical(chunk_type: bytes) -> bool:
    """Critical chunks (uppercase first letter) must be understood."""
    return chunk_type[:1].isupper()


@contextmanager
def open_source(source) -> Iterator[BinaryIO]:
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
