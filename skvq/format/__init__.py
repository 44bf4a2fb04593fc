"""Reading and writing the .vq image file format, version 1 (spec revision 1.1).

The byte layout is specified in ``docs/format.md``; this package is that
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

One module per job: :mod:`~skvq.format.container` (signature, chunks, CRCs,
errors), :mod:`~skvq.format.header` (HEAD, BOOK, metadata),
:mod:`~skvq.format.codings` (one module per index coding and their registry),
:mod:`~skvq.format.reader` and :mod:`~skvq.format.writer`.
"""

from .codings import AUTO_CODINGS, CODINGS
from .codings.raw import pack_codes, unpack_codes
from .container import (
    MAX_CHUNK_LENGTH,
    SIGNATURE,
    FormatError,
    PixelLimitError,
    TruncatedFileError,
)
from .header import (
    MAX_CODES,
    MAX_DIMENSION,
    MAX_PIXELS,
    MODES,
    VERSION,
    VqHeader,
    VqInfo,
)
from .reader import (
    frame_offsets,
    read_frame,
    read_header,
    read_info,
    read_vq,
    verify_vq,
)
from .writer import encode_vq, write_vq

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
