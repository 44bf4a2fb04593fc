"""Writing .vq files: validate everything, then encode in memory."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .._atomic import atomic_write
from ..bits import bits_per_code
from .codings import AUTO_CODINGS, CODINGS, coding_named
from .container import MAX_CHUNK_LENGTH, SIGNATURE, chunk
from .header import HEAD, MAX_DIMENSION, MODES, VERSION, metadata_chunks


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
    coding, indices = _encode_frames(frames, codebook, coding)
    index_chunks = []
    for number, data in enumerate(indices):
        if len(data) > MAX_CHUNK_LENGTH:
            raise ValueError(
                f"Frame {number} needs {len(data)} bytes of index data, more "
                f"than the {MAX_CHUNK_LENGTH} a chunk holds."
            )
        index_chunks.append(chunk(b"INDX", data))
    head = HEAD.pack(
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
            chunk(b"HEAD", head),
            *metadata_chunks(metadata or {}),
            chunk(b"BOOK", codebook.tobytes()),
            *index_chunks,
            chunk(b"DONE", b""),
        ]
    )


def _encode_frames(
    frames: list[np.ndarray], codebook: np.ndarray, coding: str
) -> tuple[str, list[bytes]]:
    """The coding used and each frame's index data in it.

    "auto" keeps the smallest file of :data:`AUTO_CODINGS`, the first one on
    a tie. A coding whose size is known in advance (raw) is encoded only if
    it is kept.
    """
    if coding != "auto":
        encode = coding_named(coding).encode
        return coding, [encode(codes, codebook) for codes in frames]
    best = None
    for name in AUTO_CODINGS:
        sizes = [coding_named(name).size(codes.size, len(codebook)) for codes in frames]
        encoded = None
        if None in sizes:
            encoded = _encode_frames(frames, codebook, name)[1]
            sizes = list(map(len, encoded))
        if best is None or sum(sizes) < best[1]:  # the first one on a tie
            best = (name, sum(sizes), encoded)
    name, _, encoded = best
    if encoded is None:
        encoded = _encode_frames(frames, codebook, name)[1]
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
