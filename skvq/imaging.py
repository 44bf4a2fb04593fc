"""Images as arrays; quantize an image in one call, and read its label map as a
segmentation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import encoder
from ._engine.colors import take_colors
from .bits import BitReport
from .metrics import psnr

if TYPE_CHECKING:  # imported when used: Image.open needs no scikit-learn
    from .quantizer import VectorQuantizer

__all__ = [
    "QuantizedImage",
    "color_mode",
    "image_to_array",
    "quantize_image",
    "reconstruct",
    "segment_image",
]


# The mode of the colors of each supported source mode, before alpha.
_COLOR_MODES = {
    "1": "L",
    "L": "L",
    "LA": "LA",
    "P": "RGB",
    "PA": "RGBA",
    "RGB": "RGB",
    "RGBA": "RGBA",
}


class UnsupportedModeError(ValueError):
    """An image mode skvq does not quantize ("CMYK", "I;16", ...)."""


def color_mode(image) -> str:
    """The mode that holds a PIL image's colors: "L", "LA", "RGB" or "RGBA".

    The one rule by which :func:`image_to_array`, :func:`quantize_image` and
    the .vq writer decide whether an image has alpha: Pillow's
    :attr:`~PIL.Image.Image.has_transparency_data`, true for an alpha band,
    a transparent color or palette index (``info["transparency"]``, as
    PNG's tRNS chunk gives it) and an RGBA palette. "P" and "PA" images
    give their palette's colors, "1" images gray levels.

    Parameters
    ----------
    image : PIL.Image.Image
        An image of mode 1, L, LA, P, PA, RGB or RGBA.

    Returns
    -------
    str

    Raises
    ------
    UnsupportedModeError
        A :class:`ValueError`, for other modes ("I;16", "CMYK", ...), which
        need a conversion the caller should choose.

    Examples
    --------
    >>> from PIL import Image
    >>> image = Image.new("P", (2, 2))
    >>> color_mode(image)
    'RGB'
    >>> image.info["transparency"] = 0
    >>> color_mode(image)
    'RGBA'
    """
    mode = image.mode
    if mode not in _COLOR_MODES:
        raise UnsupportedModeError(
            f"Image mode {mode!r} is not supported; supported modes are "
            f"{', '.join(_COLOR_MODES)}. Convert the image first, e.g. with "
            "image.convert('RGB')."
        )
    colors = _COLOR_MODES[mode]
    if image.has_transparency_data and not colors.endswith("A"):
        colors += "A"
    return colors


def image_to_array(image) -> np.ndarray:
    """An image as a uint8 array of shape (height, width, channels).

    Parameters
    ----------
    image : PIL.Image.Image, path or array-like
        A PIL image, converted to the mode :func:`color_mode` gives (P
        images become RGB or RGBA, with alpha whenever they have
        transparency); the path of an image file, opened with Pillow (its
        first frame); or an array of shape (height, width) or (height,
        width, channels) with values in 0..255.

    Returns
    -------
    ndarray of shape (height, width, channels), uint8

    Raises
    ------
    ValueError
        For unsupported modes, values outside 0..255, and arrays that are
        not images, such as the ``(n_pixels, channels)`` pixel lists
        :class:`~skvq.VectorQuantizer` takes.
    """
    return _image_array(image)[0]


def _image_array(image) -> tuple[np.ndarray, tuple[int, ...]]:
    """The image as (height, width, channels) uint8, and its array's shape."""
    if isinstance(image, (str, os.PathLike)):
        from PIL import Image

        with Image.open(image) as opened:
            return _image_array(opened)
    is_pil = hasattr(image, "has_transparency_data")  # duck-typed: no Pillow
    if is_pil:
        mode = color_mode(image)
        if image.mode != mode:
            image = image.convert(mode)
    array = np.asarray(image)
    shape = array.shape
    if array.ndim == 2 and not is_pil and 1 <= shape[1] <= 4 < shape[0]:
        raise ValueError(
            f"An array of shape {shape} looks like a list of pixels (n_pixels, "
            "channels), not an image: pass the image, of shape (height, width, "
            "channels) (e.g. pixels.reshape(height, width, channels)), or fit a "
            "VectorQuantizer on the pixels. A gray image this narrow needs an "
            f"explicit channel axis: shape {(*shape, 1)}."
        )
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if array.ndim != 3 or array.shape[2] < 1:
        raise ValueError(
            "An image array must have shape (height, width) or "
            f"(height, width, channels); got shape {array.shape}."
        )
    if array.dtype != np.uint8:
        numeric = array.dtype.kind in "iuf"
        if not numeric or (
            array.size
            and (not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 255)
        ):
            raise ValueError("Image values must be numbers in 0..255.")
        if array.dtype.kind == "f" and np.any(array != np.round(array)):
            raise ValueError(
                "Image values must be integers in 0..255; scale float images "
                "to 0..255 and round them first."
            )
        array = array.astype(np.uint8)
    return array, shape


@dataclass(frozen=True)
class QuantizedImage:
    """The result of :func:`quantize_image`.

    Attributes
    ----------
    reconstruction : ndarray, uint8
        Each pixel replaced by its codebook color, rounded to the nearest
        integer; the shape of the image's array (``(height, width)`` for a
        2-D gray array or an "L" image), so ``Image.fromarray`` takes it.
    codes : ndarray of shape (height, width)
        The label map: the index of each pixel's codebook color.
    codebook : ndarray of shape (n_codes, channels), float64
        The colors, before rounding: the K-Means centroids; with
        ``color_space="oklab"``, alpha or dithering, the colors chosen, in
        the image's values.
    report : BitReport
        The bit accounting.
    quantizer : VectorQuantizer
        The fitted estimator (or the ``codebook`` given), reusable on other
        images with ``quantize_image(image, codebook=result.quantizer)``.
        With ``color_space="oklab"`` or alpha it was fitted on the features
        :mod:`skvq.encoder` describes, not on the pixel values.
    psnr : float
        PSNR of the reconstruction against the image, in dB (every channel,
        alpha included; peak 255).
    """

    reconstruction: np.ndarray
    codes: np.ndarray
    codebook: np.ndarray
    report: BitReport
    quantizer: VectorQuantizer
    psnr: float

    def _repr_html_(self) -> str:
        from .display import _quantized_image_html  # Pillow only when displayed

        return _quantized_image_html(self)


def quantize_image(
    image, n_clusters=16, *, codebook=None, dither=False, color_space="rgb", **params
) -> QuantizedImage:
    """Quantize an image to ``n_clusters`` colors in one call.

    Parameters
    ----------
    image : PIL.Image.Image, path or array-like
        See :func:`image_to_array`. Arrays of 2 or 4 channels are gray or
        RGB with alpha, as for :func:`PIL.Image.fromarray`.
    n_clusters : int, default=16
        Number of colors ``K``. With alpha and fully transparent pixels,
        one color is reserved for them (see :mod:`skvq.encoder`).
    codebook : VectorQuantizer, optional
        Reuse a fitted quantizer's codebook instead of fitting one, e.g.
        ``result.quantizer`` of another image (whatever its ``color_space``)
        or one from ``skvq fit-codebook``; ``n_clusters`` and ``**params``
        are then ignored.
    dither : bool or str, default=False
        False: each pixel gets its nearest color, the tutorial's way. True:
        error diffusion by the library's best method, or a method's name
        (see :mod:`skvq.dither`); smoother gradients, less banding, at a
        lower PSNR. The fitted codebook is then fitted again to the
        dithered image (:func:`skvq.dither.fit_palette`), except with alpha.
    color_space : {"rgb", "oklab"}, default="rgb"
        Where colors are fitted and matched: the pixel values (the
        tutorial's K-Means), or OkLab, where distances follow perceived
        color differences. The codebook is sRGB either way.
    **params
        Other :class:`VectorQuantizer` parameters, e.g. ``random_state``.

    Returns
    -------
    QuantizedImage
        Reconstruction, codes, codebook, bit report and the fitted quantizer.

    See Also
    --------
    reconstruct : Colors of codes, rounded to uint8.

    Examples
    --------
    >>> from sklearn.datasets import load_sample_image
    >>> result = quantize_image(load_sample_image("china.jpg"), 16, random_state=0)
    >>> result.reconstruction.shape, result.codes.shape
    ((427, 640, 3), (427, 640))
    >>> result.report.compressed_bits
    1093504
    """
    array, shape = _image_array(image)
    height, width, channels = array.shape
    alpha = channels in (2, 4)
    encoding = encoder.encode(
        array[np.newaxis],
        alpha=alpha,
        n_clusters=n_clusters,
        codebook=codebook,
        dither=dither,
        color_space=color_space,
        **params,
    )
    codes = encoding.codes[0]
    reconstruction = reconstruct(encoding.centroids, codes).reshape(array.shape)
    return QuantizedImage(
        reconstruction=reconstruction.reshape(shape),
        codes=codes,
        codebook=encoding.centroids,
        report=BitReport(height * width, channels, len(encoding.centroids)),
        quantizer=encoding.quantizer,
        psnr=psnr(array, reconstruction),
    )


def reconstruct(codebook, codes) -> np.ndarray:
    """Codebook colors of ``codes``, rounded (not truncated) to uint8.

    :meth:`VectorQuantizer.inverse_transform` gives the codebook rows as
    they are, float64; this is the image a file stores and
    :func:`quantize_image` returns, ready for ``Image.fromarray``.

    Parameters
    ----------
    codebook : ndarray of shape (n_codes, channels)
        Colors, e.g. ``quantizer.codebook_``.
    codes : ndarray of integers, any shape
        E.g. the output of :meth:`VectorQuantizer.transform`.

    Returns
    -------
    ndarray of shape ``codes.shape[:-1] + (channels,)`` if the last axis of
    ``codes`` has length 1, else ``codes.shape + (channels,)``; uint8.

    Examples
    --------
    >>> import numpy as np
    >>> from skvq import VectorQuantizer
    >>> pixels = np.array([[0, 0, 0], [0, 0, 1], [250, 251, 255]], np.uint8)
    >>> vq = VectorQuantizer(2, random_state=0).fit(pixels)
    >>> vq.inverse_transform(vq.transform(pixels))[0]
    array([0. , 0. , 0.5])
    >>> reconstruct(vq.codebook_, vq.transform(pixels))
    array([[  0,   0,   0],
           [  0,   0,   0],
           [250, 251, 255]], dtype=uint8)
    """
    palette = encoder.round_colors(codebook)
    codes = np.asarray(codes)
    if codes.ndim >= 1 and codes.shape[-1] == 1:
        codes = codes[..., 0]
    if codes.dtype in (np.uint8, np.uint16):
        # The compiled gather runs on threads, about 3 times faster than np.take.
        flat = take_colors(palette, np.ascontiguousarray(codes).reshape(-1))
        return flat.reshape(codes.shape + palette.shape[1:])
    # take along axis 0 gathers rows 2-3 times faster than fancy indexing.
    return np.take(palette, codes, axis=0)


def segment_image(image, n_clusters=16, **params) -> np.ndarray:
    """Segment an image in color space: the label of each pixel.

    K-Means on the colors alone ignores where pixels are, so segments are
    groups of similar colors, not necessarily connected regions.

    Parameters
    ----------
    image : PIL.Image.Image, path or array-like
        See :func:`image_to_array`.
    n_clusters : int, default=16
        Number of segments.
    **params
        Other :class:`VectorQuantizer` parameters, e.g. ``random_state``.

    Returns
    -------
    ndarray of shape (height, width)
        Labels in ``0 .. n_clusters - 1``.
    """
    return quantize_image(image, n_clusters, **params).codes
