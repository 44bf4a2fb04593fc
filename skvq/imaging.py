"""Images as arrays; quantize an image in one call, and read its label map as a
segmentation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import _lloyd
from .bits import BitReport

if TYPE_CHECKING:  # imported when used: Image.open needs no scikit-learn
    from .quantizer import VectorQuantizer

__all__ = [
    "QuantizedImage",
    "color_mode",
    "image_to_array",
    "quantize_image",
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
    ValueError
        For other modes ("I;16", "CMYK", ...), which need a conversion the
        caller should choose.

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
        raise ValueError(
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
    image : PIL.Image.Image or array-like
        A PIL image, converted to the mode :func:`color_mode` gives (P
        images become RGB or RGBA, with alpha whenever they have
        transparency), or an array of shape (height, width) or (height,
        width, channels) with values in 0..255.

    Returns
    -------
    ndarray of shape (height, width, channels), uint8
    """
    if hasattr(image, "has_transparency_data"):  # duck-typed: no Pillow needed
        mode = color_mode(image)
        if image.mode != mode:
            image = image.convert(mode)
    array = np.asarray(image)
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
    return array


@dataclass(frozen=True)
class QuantizedImage:
    """The result of :func:`quantize_image`.

    Attributes
    ----------
    reconstruction : ndarray of shape (height, width, channels), uint8
        Each pixel replaced by its codebook color, rounded to the nearest
        integer.
    codes : ndarray of shape (height, width)
        The label map: the index of each pixel's codebook color.
    codebook : ndarray of shape (n_codes, channels), float64
        The colors (K-Means centroids).
    report : BitReport
        The bit accounting.
    quantizer : VectorQuantizer
        The fitted estimator, reusable on other images.
    """

    reconstruction: np.ndarray
    codes: np.ndarray
    codebook: np.ndarray
    report: BitReport
    quantizer: VectorQuantizer

    def _repr_html_(self) -> str:
        from .display import _quantized_image_html  # Pillow only when displayed

        return _quantized_image_html(self)


def quantize_image(image, n_clusters=16, **params) -> QuantizedImage:
    """Quantize an image to ``n_clusters`` colors in one call.

    Parameters
    ----------
    image : PIL.Image.Image or array-like
        See :func:`image_to_array`.
    n_clusters : int, default=16
        Number of colors ``K``.
    **params
        Other :class:`VectorQuantizer` parameters, e.g. ``random_state``.

    Returns
    -------
    QuantizedImage
        Reconstruction, codes, codebook, bit report and the fitted quantizer.

    Examples
    --------
    >>> from sklearn.datasets import load_sample_image
    >>> result = quantize_image(load_sample_image("china.jpg"), 16, random_state=0)
    >>> result.reconstruction.shape, result.codes.shape
    ((427, 640, 3), (427, 640))
    >>> result.report.compressed_bits
    1093504
    """
    from .quantizer import VectorQuantizer

    array = image_to_array(image)
    height, width, channels = array.shape
    pixels = array.reshape(-1, channels)
    quantizer = VectorQuantizer(n_clusters=n_clusters, **params)
    codes = quantizer.fit_transform(pixels)
    reconstruction = reconstruct(quantizer.codebook_, codes).reshape(array.shape)
    return QuantizedImage(
        reconstruction=reconstruction,
        codes=codes.reshape(height, width),
        codebook=quantizer.codebook_,
        report=quantizer.bit_report(height * width),
        quantizer=quantizer,
    )


def reconstruct(codebook, codes) -> np.ndarray:
    """Codebook colors of ``codes``, rounded (not truncated) to uint8.

    Parameters
    ----------
    codebook : ndarray of shape (n_codes, channels)
    codes : ndarray of integers, any shape

    Returns
    -------
    ndarray of shape ``codes.shape[:-1] + (channels,)`` if the last axis of
    ``codes`` has length 1, else ``codes.shape + (channels,)``; uint8.
    """
    palette = np.clip(np.rint(codebook), 0, 255).astype(np.uint8)
    codes = np.asarray(codes)
    if codes.ndim >= 1 and codes.shape[-1] == 1:
        codes = codes[..., 0]
    if codes.dtype in (np.uint8, np.uint16):
        # The compiled gather runs on threads, about 3 times faster than np.take.
        flat = _lloyd.take_colors(palette, np.ascontiguousarray(codes).reshape(-1))
        return flat.reshape(codes.shape + palette.shape[1:])
    # take along axis 0 gathers rows 2-3 times faster than fancy indexing.
    return np.take(palette, codes, axis=0)


def segment_image(image, n_clusters=16, **params) -> np.ndarray:
    """Segment an image in color space: the label of each pixel.

    K-Means on the colors alone ignores where pixels are, so segments are
    groups of similar colors, not necessarily connected regions.

    Parameters
    ----------
    image : PIL.Image.Image or array-like
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
