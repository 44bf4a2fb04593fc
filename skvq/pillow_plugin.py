"""Pillow plugin for .vq files: ``Image.open``, ``save`` and ``save_all``.

Importing :mod:`skvq` registers the "VQ" format, so after ``import skvq``::

    im.save("photo.vq", k=16, random_state=0)      # K-Means to 16 colors
    with Image.open("photo.vq") as vq_im:            # mode "P", 16-color palette
        rgb = vq_im.convert("RGB")

Save options (``im.save(..., k=..., ...)``):

``k``
    Number of colors, 1 to 65,536 (default 16). A "P" image using at most
    ``k`` palette entries is stored with those entries, not re-quantized.
``psnr``
    Instead of ``k``: the fewest colors whose stored image (rounded, and
    dithered with ``dither``) reaches this PSNR in dB, every channel
    counted; e.g. ``im.save("photo.vq", psnr=38)``. See
    :func:`skvq.choose_n_clusters`.
``max_bytes``
    Instead of ``k``: the most colors whose file, in the ``coding`` asked
    for and with its metadata, fits in this many bytes (the best quality
    that fits; at least 90 % of the budget unless no number of colors
    gives a file that size: sizes jump with K on some images, and the
    lossless file may be smaller).
``random_state``, ``init``, ``n_init``, ``max_iter``, ``tol``, ``algorithm``
    Passed to :class:`~skvq.VectorQuantizer`.
``codebook``
    A fitted :class:`~skvq.VectorQuantizer` whose codebook is used as is,
    instead of fitting one: the way to give a collection one shared
    codebook (see ``skvq fit-codebook``). ``k`` and the K-Means options are
    then ignored; the quantizer must have been fitted on as many channels
    as the image has (3 for RGB, 4 for RGBA, 1 for L).
``dither``
    False (default): each pixel gets its nearest color. True: error
    diffusion by the library's best method; or a method's name (see
    :mod:`skvq.dither`). A fitted codebook is then fitted again to the
    dithered image (:func:`skvq.dither.fit_palette`), except with alpha.
``color_space``
    "rgb" (default): K-Means fits the pixel values, the tutorial's way.
    "oklab": colors are fitted and matched in OkLab, where distances follow
    perceived differences; the file still stores sRGB colors, and each
    pixel's code is its exact nearest (in OkLab) stored color.
``coding``
    Index coding: "auto" (default) stores the smaller of "raw" and "zstd";
    "raw" is exactly ``ceil(log2 K)`` bits per pixel, as the tutorial
    counts; "zstd" and "bz2" code runs of equal codes and are usually
    smaller than an optimized PNG-8 of the same pixels ("bz2" is smallest
    for large ``K`` but decodes several times slower). See
    ``docs/format.md``.
``icc_profile``, ``exif``, ``dpi``
    Metadata to store; by default the image's own ``info`` values.
``append_images``
    With ``save_all=True``, more frames. All frames share one codebook,
    fitted on all of them, and must have the same size.

Any other option raises :class:`ValueError` naming the valid ones
(:data:`SAVE_OPTIONS`): a misspelled ``K=32`` or ``n_clusters=32`` would
otherwise silently write 16 colors.

Images with alpha keep fully transparent pixels exactly transparent (one
codeword, whatever their invisible colors) and fully opaque pixels exactly
opaque; translucent pixels are matched with their color weighted by their
opacity (see :mod:`skvq.encoder`).

Supported modes are RGB, RGBA, L, LA, P, PA and 1; whether an image has
alpha is decided by :func:`skvq.imaging.color_mode`, as for
:func:`skvq.quantize_image`. Files with at most 256 colors open in mode "P"
with the codebook as palette (RGBA for sources with alpha); larger codebooks
open in the source mode (PA sources in RGBA).

Options are validated and the whole file is encoded before the first byte
is written, so a bad option raises :class:`ValueError` with nothing written
to a file object. Saving to a path is different: ``im.save(path)`` makes
Pillow truncate an existing file before any plugin runs (for every format),
so a failed save leaves it empty. :func:`skvq.save` is the safe way: it
writes a temporary file and renames it over ``path`` only when complete::

    skvq.save(im, "photo.vq", k=16, overwrite=True)  # all or nothing

Reading checks every length against the file size before using it, every
CRC, and every header field; damaged files raise :class:`OSError`, never
decode into a wrong image (see ``docs/robustness.md``).
"""

from __future__ import annotations

import difflib
import itertools
import warnings
from numbers import Integral

import numpy as np
from PIL import Image, ImageFile, ImagePalette, ImageSequence
from PIL._util import DeferredError

from . import encoder
from . import format as vq
from .imaging import color_mode, image_to_array

__all__ = ["SAVE_OPTIONS", "VqImageFile", "register"]

FORMAT = "VQ"
MIME_TYPE = "image/x-vq"
EXTENSION = ".vq"
DEFAULT_K = 16
DEFAULT_CODING = "auto"
# Save options of :func:`skvq.encoder.encode` besides k.
_ENCODER_OPTIONS = ("codebook", "dither", "color_space", *encoder.QUANTIZER_OPTIONS)
# Save options that choose k for a target.
_TARGET_OPTIONS = ("psnr", "max_bytes")
#: Every save option of the format.
SAVE_OPTIONS = (
    "k",
    *_TARGET_OPTIONS,
    "coding",
    *_ENCODER_OPTIONS,
    "icc_profile",
    "exif",
    "dpi",
)
# Pillow's own options of every format that saves sequences (Image.save
# removes save_all before a plugin runs, unless it was set in encoderinfo).
_PILLOW_OPTIONS = ("save_all", "append_images")
# Names people reach for, and the option they mean.
_OTHER_NAMES = {
    "n_clusters": "the number of colors is k in save options",
    "K": "the number of colors is k, lowercase",
    "n_colors": "the number of colors is k",
    "colors": "the number of colors is k",
}
# Largest codebook that opens as a "P" image.
_MAX_PALETTE = 256


def _accept(prefix: bytes) -> bool | str:
    if prefix.startswith(vq.SIGNATURE):
        return True
    if prefix[1:5] == b"SKVQ":  # Pillow warns with this text, then gives up
        return "VQ signature damaged: was the file transferred in text mode?"
    return False


class VqImageFile(ImageFile.ImageFile):
    """A .vq file opened by Pillow: the header is read, pixels on ``load()``."""

    format = FORMAT
    format_description = "Vector-quantized image (skvq)"

    def _open(self) -> None:
        header = vq.read_header(self.fp)  # OSError saying what is damaged
        self._header = header
        self._size = (header.width, header.height)
        if header.n_codes <= _MAX_PALETTE:
            self._mode = "P"
            palette_mode, palette = _palette(header.codebook, header.codebook_mode)
            self.palette = ImagePalette.raw(palette_mode, palette)
            self.palette.mode = palette_mode  # as Image.putpalette does
        else:
            self._mode = header.codebook_mode
        self.info.update(header.metadata)
        self.n_frames = header.n_frames
        self.is_animated = header.n_frames > 1
        # The other frames are located on the first load or seek; open reads
        # the header only.
        self._frame_offsets = [header.index_offset]
        self._frames_walked = False
        self._frame = 0
        if self.is_animated:
            self._fp = self.fp  # kept open between frames, closed by close()
            self._close_exclusive_fp_after_loading = False
        self._set_tile()

    def _set_tile(self) -> None:
        offset = self._frame_offsets[self._frame]
        self.tile = [ImageFile._Tile("vq", (0, 0, *self.size), offset, (self._header,))]

    def seek(self, frame: int) -> None:
        """Go to ``frame`` (0-based); ``load()`` then decodes it."""
        if not self._seek_check(frame):
            return
        if isinstance(self._fp, DeferredError):  # the image was closed
            raise self._fp.ex
        self.fp = self._fp
        if frame >= len(self._frame_offsets):
            self._walk_frames()
        self._frame = frame
        self._set_tile()

    def load_prepare(self) -> None:
        super().load_prepare()
        # A file cut or damaged after its last INDX chunk (DONE missing or
        # bad) must fail to load, not only to seek; a truncated file is what
        # LOAD_TRUNCATED_IMAGES accepts.
        if not ImageFile.LOAD_TRUNCATED_IMAGES:
            self._walk_frames()

    def _walk_frames(self) -> None:
        """Read every chunk header up to DONE (no pixel data), once."""
        if not self._frames_walked:
            self._frame_offsets = vq.frame_offsets(self.fp, self._header)
            self._frames_walked = True

    def tell(self) -> int:
        """The current frame."""
        return self._frame

    def verify(self) -> None:
        """Check the whole file: structure, every CRC, every code.

        As for every Pillow format, call it right after ``Image.open``; the
        image cannot be loaded afterwards.
        """
        if self.fp is None:
            raise RuntimeError("verify must be called directly after open")
        self.fp.seek(0)
        # Image.open applied Image.MAX_IMAGE_PIXELS already.
        vq.verify_vq(self.fp, max_pixels=None)
        super().verify()


def _palette(codebook: np.ndarray, color_mode: str) -> tuple[str, bytes]:
    """A Pillow palette for the codebook: RGB, or RGBA with alpha."""
    if color_mode in ("L", "LA"):  # Pillow has no gray palettes
        gray = np.repeat(codebook[:, :1], 3, axis=1)
        codebook = np.hstack([gray, codebook[:, 1:]])
    return ("RGBA" if color_mode.endswith("A") else "RGB"), codebook.tobytes()


class VqDecoder(ImageFile.PyDecoder):
    """Decodes one frame's INDX chunk: the codes in mode "P", else colors."""

    _pulls_fd = True

    def decode(self, buffer) -> tuple[int, int]:
        assert self.fd is not None
        (header,) = self.args
        codes = vq.read_frame(
            self.fd,
            header,
            self.fd.tell(),
            partial=ImageFile.LOAD_TRUNCATED_IMAGES,
            max_pixels=None,  # Image.open applied Image.MAX_IMAGE_PIXELS
        )
        if self.mode == "P":
            self.set_as_raw(codes.tobytes(), "P")
        else:
            self.set_as_raw(header.codebook[codes].tobytes(), self.mode)
        return -1, 0


def _save(im: Image.Image, fp, filename) -> None:
    _write(im, [im], fp)


def _save_all(im: Image.Image, fp, filename) -> None:
    sequences = itertools.chain([im], im.encoderinfo.get("append_images", []))
    _write(im, [frame for sequence in sequences for frame in _frames(sequence)], fp)


def _frames(sequence: Image.Image) -> list[Image.Image]:
    """Every frame of ``sequence``, copied; the sequence is left where it was."""
    current = sequence.tell()
    frames = [frame.copy() for frame in ImageSequence.Iterator(sequence)]
    sequence.seek(current)
    return frames


def _write(im: Image.Image, frames: list[Image.Image], fp) -> None:
    """Validate, quantize, encode, then write: nothing is written on error."""
    options = im.encoderinfo
    encode_options, target = _check_options(options)
    size = frames[0].size
    for frame in frames:
        if frame.size != size:
            raise ValueError(
                f"All frames must have the same size; got {frame.size} and {size}."
            )
    mode = encoder.common_color_mode(color_mode(frame) for frame in frames)
    colors = np.stack([image_to_array(frame.convert(mode)) for frame in frames])

    def file_bytes(encoding):
        return _file_bytes(im, frames, mode, encoding)

    if target:
        from . import target as search

        fitting = encoder.fitting(colors, alpha=mode.endswith("A"), **encode_options)
        found = search.search(
            fitting, file_bytes=file_bytes, max_clusters=vq.MAX_CODES, **target
        )
        # A size target wrote the file to measure it; a PSNR target did not.
        fp.write(found.data if found.data is not None else file_bytes(found.encoding))
        return
    with warnings.catch_warnings():
        # Fewer distinct colors than k is fine for a file: K is just smaller.
        warnings.filterwarnings("ignore", message="X has .* distinct rows")
        encoding = encoder.encode(
            colors,
            alpha=mode.endswith("A"),
            indices=_shared_palette_indices(frames),
            max_codes=vq.MAX_CODES,
            **encode_options,
        )
    fp.write(file_bytes(encoding))


def _file_bytes(im, frames, mode, encoding) -> bytes:
    """The .vq file of an encoding of ``frames`` (in color ``mode``)."""
    codebook = encoding.codebook
    modes = {frame.mode for frame in frames}
    source_mode = modes.pop() if len(modes) == 1 else mode
    _, channels, max_codes = vq.MODES.get(source_mode, (None, (), 0))
    if codebook.shape[1] not in channels or len(codebook) > max_codes:
        # E.g. RGB with a transparent color, P frames with many palettes, or
        # PA, which the format stores as RGBA.
        source_mode = mode
    width, height = frames[0].size
    return vq.encode_vq(
        width,
        height,
        source_mode,
        codebook,
        encoding.codes,
        metadata=_metadata(im),
        coding=im.encoderinfo.get("coding", DEFAULT_CODING),
    )


def _check_options(options) -> tuple[dict, dict]:
    """Check save options before any work.

    Returns :func:`skvq.encoder.encode`'s share, and the target (``psnr`` or
    ``max_bytes``, empty without one). Raises ValueError for an unknown
    option (with the valid ones), a bad value, or options that contradict
    each other.
    """
    unknown = sorted(set(options) - set(SAVE_OPTIONS) - set(_PILLOW_OPTIONS))
    if unknown:
        raise ValueError(_unknown_options_message(unknown))
    _check_coding(options.get("coding", DEFAULT_CODING))
    target = {key: options[key] for key in _TARGET_OPTIONS if key in options}
    encode_options = {"n_clusters": _check_k(options.get("k", DEFAULT_K))}
    encode_options.update(
        (key, options[key]) for key in _ENCODER_OPTIONS if key in options
    )
    if target:
        from .target import check_target

        _check_target_options(options, target)
        check_target(**target)
        del encode_options["n_clusters"]
    encoder.check_options(**encode_options)
    return encode_options, target


def _check_target_options(options, target) -> None:
    """A target chooses k and fits a codebook: neither may be given too."""
    (name, *others) = target
    if others:
        raise ValueError(
            "psnr and max_bytes are two targets; give one: psnr for the fewest "
            "colors reaching a quality, max_bytes for the best quality that fits."
        )
    for given in ("k", "codebook"):
        if given in options:
            chooses = "chooses k" if given == "k" else "fits the codebook"
            raise ValueError(
                f"{given}= and {name}= contradict each other: {name}= {chooses}; "
                f"give one of them."
            )


def _unknown_options_message(unknown: list[str]) -> str:
    valid = sorted({*SAVE_OPTIONS, *_PILLOW_OPTIONS})
    hints = []
    for name in unknown:
        if name in _OTHER_NAMES:
            hints.append(f"{name!r}: {_OTHER_NAMES[name]}")
        else:
            close = difflib.get_close_matches(name.lower(), valid, n=1)
            if close:
                hints.append(f"{name!r}: did you mean {close[0]!r}?")
    names = ", ".join(map(repr, unknown))
    return (
        f"Unknown VQ save option{'s' if len(unknown) > 1 else ''} {names}"
        + (f" ({'; '.join(hints)})" if hints else "")
        + f". Valid options: {', '.join(valid)}."
    )


def _check_coding(coding) -> str:
    choices = (*vq.CODINGS, "auto")
    if coding not in choices:
        raise ValueError(
            f"coding must be one of {', '.join(map(repr, choices))}, got {coding!r}."
        )
    return coding


def _check_k(k) -> int:
    if (
        isinstance(k, bool)
        or not isinstance(k, Integral)
        or not (1 <= k <= vq.MAX_CODES)
    ):
        raise ValueError(f"k must be an integer from 1 to {vq.MAX_CODES}, got {k!r}.")
    return int(k)


def _shared_palette_indices(frames: list[Image.Image]):
    """The frames' palette indices if they are "P" images sharing one palette."""
    first = frames[0]
    if any(
        frame.mode != "P"
        or frame.palette.mode != first.palette.mode
        or frame.palette.tobytes() != first.palette.tobytes()
        or frame.info.get("transparency") != first.info.get("transparency")
        for frame in frames
    ):
        return None
    return np.stack([np.asarray(frame) for frame in frames])


def _metadata(im: Image.Image) -> dict:
    """ICC profile, EXIF and DPI from the save options, else from ``im.info``."""
    metadata = {}
    for key in ("icc_profile", "exif", "dpi"):
        value = im.encoderinfo.get(key, im.info.get(key))
        if isinstance(value, Image.Exif):
            value = value.tobytes()
        if value:
            metadata[key] = value
    return metadata


def register() -> None:
    """Register the VQ format with Pillow; idempotent.

    ``import skvq`` already does this; the function is for code that prefers
    explicit registration, or that needs it again after resetting Pillow's
    registries.
    """
    Image.register_open(FORMAT, VqImageFile, _accept)
    Image.register_decoder("vq", VqDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_save_all(FORMAT, _save_all)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME_TYPE)


register()
