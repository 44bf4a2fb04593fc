"""The .vq header: HEAD fields, the codebook, metadata chunks, their checks."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from ..bits import bits_per_code
from .codings import CODINGS_BY_ID
from .container import MAX_CHUNK_LENGTH, FormatError, chunk

#: The format version this module reads and writes.
VERSION = 1
#: Largest codebook: codes fit in 16 bits.
MAX_CODES = 65_536
#: Largest width or height (as in PNG).
MAX_DIMENSION = 2**31 - 1

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

# version, width, height, mode id, channels, n_codes, bits, coding id, frames
HEAD = struct.Struct(">BIIBBIBBI")
_DENSITY = struct.Struct(">dd")

# Metadata chunks (ancillary, lowercase) and the metadata key each one holds.
METADATA_CHUNKS = {b"iccp": "icc_profile", b"exif": "exif", b"dens": "dpi"}


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


def parse_head(data: bytes) -> tuple[dict, tuple[int, int]]:
    """The VqHeader fields in HEAD, and the codebook shape it announces."""
    (version, width, height, mode_id, channels, n_codes, bits, coding_id, n_frames) = (
        HEAD.unpack(data)
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
    if coding_id not in CODINGS_BY_ID:
        raise FormatError(f"unsupported index coding {coding_id}.")
    if n_frames < 1:
        raise FormatError("damaged header: no frames.")
    fields = dict(
        width=width,
        height=height,
        mode=mode,
        bits_per_code=bits,
        coding=CODINGS_BY_ID[coding_id].name,
        n_frames=n_frames,
        version=version,
    )
    return fields, (n_codes, channels)


def parse_codebook(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """The codebook in BOOK, checked against the shape HEAD announces."""
    n_codes, channels = shape
    if len(data) != n_codes * channels:
        raise FormatError(
            f"damaged header: BOOK is {len(data)} bytes, expected {n_codes} codes "
            f"x {channels} channels = {n_codes * channels}."
        )
    return np.frombuffer(data, np.uint8).reshape(n_codes, channels)


def parse_metadata(chunk_type: bytes, data: bytes):
    """The value a metadata chunk holds."""
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


def metadata_chunks(metadata: dict) -> list[bytes]:
    """The chunks of the metadata a writer stores, validated."""
    chunks = []
    for chunk_type, key in METADATA_CHUNKS.items():
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
        chunks.append(chunk(chunk_type, data))
    return chunks
