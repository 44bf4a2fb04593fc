"""Reading .vq files: header, frame offsets, frames, verification, summary.

Readers check every length against the bytes actually present before they
read or allocate anything sized by it, verify every CRC they read and raise
:class:`~.container.FormatError` (an :class:`OSError`) rather than decode a
wrong image.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from .codings import coding_named
from .container import (
    CHUNK_HEAD,
    SIGNATURE,
    ChunkReader,
    FormatError,
    PixelLimitError,
    chunk_name,
    is_critical,
    open_source,
)
from .header import (
    HEAD,
    MAX_PIXELS,
    METADATA_CHUNKS,
    VqHeader,
    VqInfo,
    parse_codebook,
    parse_head,
    parse_metadata,
)


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
    reader = ChunkReader(file)
    signature = file.read(len(SIGNATURE))
    if signature != SIGNATURE:
        hint = (
            " (damaged by a text-mode transfer?)" if signature[1:5] == b"SKVQ" else ""
        )
        raise FormatError(f"not a .vq file: bad signature{hint}.")
    chunk_type, length = reader.next_chunk()
    if chunk_type != b"HEAD":
        raise FormatError(f"damaged header: first chunk is {chunk_name(chunk_type)}.")
    if length != HEAD.size:
        raise FormatError(
            f"damaged header: HEAD is {length} bytes, expected {HEAD.size}."
        )
    fields, codebook_shape = parse_head(reader.read_data(chunk_type, length))
    codebook = None
    metadata = {}
    while True:
        chunk_type, length = reader.next_chunk()
        if chunk_type == b"BOOK":
            if codebook is not None:
                raise FormatError("damaged header: two BOOK chunks.")
            data = reader.read_data(chunk_type, length)
            codebook = parse_codebook(data, codebook_shape)
        elif chunk_type in METADATA_CHUNKS:
            data = reader.read_data(chunk_type, length)
            metadata[METADATA_CHUNKS[chunk_type]] = parse_metadata(chunk_type, data)
        elif chunk_type == b"INDX":
            break
        elif is_critical(chunk_type):
            raise FormatError(
                f"damaged header: unexpected critical chunk {chunk_name(chunk_type)} "
                "before the index data."
            )
        else:  # an ancillary chunk of a later version
            reader.check_data(chunk_type, length)
    if codebook is None:
        raise FormatError("damaged header: no BOOK chunk before the index data.")
    header = VqHeader(
        codebook=codebook,
        metadata=metadata,
        index_offset=file.tell() - CHUNK_HEAD.size,
        **fields,
    )
    _check_index_length(header, length)
    file.seek(header.index_offset)
    return header


def _check_index_length(header: VqHeader, length: int) -> None:
    # For codings of known size this bounds the frame size by the bytes the
    # file announces, so a damaged width or height fails before anything is
    # allocated for it.
    coding = coding_named(header.coding)
    expected = coding.size(header.frame_pixels, header.n_codes)
    if expected is not None and length != expected:
        raise FormatError(
            f"damaged file: an INDX chunk holds {length} bytes; {header.width} x "
            f"{header.height} codes of {header.bits_per_code} bits in "
            f"{header.coding} coding need {expected}."
        )


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
    reader = ChunkReader(file)
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
        elif is_critical(chunk_type):
            raise FormatError(
                f"unexpected critical chunk {chunk_name(chunk_type)} among the frames."
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
    reader = ChunkReader(file)
    file.seek(header.index_offset if offset is None else offset)
    chunk_type, length = reader.next_chunk()
    if chunk_type != b"INDX":
        raise FormatError(f"expected an INDX chunk, found {chunk_name(chunk_type)}.")
    _check_index_length(header, length)
    data = reader.read_data(chunk_type, length, partial=partial)
    decode = coding_named(header.coding).decode
    shape = (header.height, header.width)
    # Only data actually cut short decodes partially: a whole chunk, its CRC
    # checked, is damaged if its coding finds anything wrong.
    codes = decode(data, shape, header.codebook, len(data) < length)
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
    with open_source(source) as file:
        header = read_header(file)
        _check_pixel_limit(header.frame_pixels * header.n_frames, max_pixels)
        offsets = frame_offsets(file, header)
        # Allocated once a frame has decoded: damaged index data whose size
        # does not bound the frame (the context coding) allocates nothing.
        first = read_frame(file, header, offsets[0], max_pixels=None)
        codes = np.empty((len(offsets), *first.shape), first.dtype)
        codes[0] = first
        for number, offset in enumerate(offsets[1:], 1):
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
    with open_source(source) as file:
        start = file.tell()
        header = read_header(file)
        # In all, as for read_vq: frames are decoded one at a time, but a
        # small file must not make it decode thousands of large frames.
        _check_pixel_limit(header.frame_pixels * header.n_frames, max_pixels)
        frame_offsets(file, header)  # the structure: frame count, DONE
        file.seek(start + len(SIGNATURE))
        reader = ChunkReader(file)
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
    with open_source(source) as file:
        start = file.tell()
        header = read_header(file)
        offsets = frame_offsets(file, header)
        reader = ChunkReader(file)
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
