"""Rich display in Jupyter: images side by side with their PSNR and bit rate.

Needs Pillow (to encode PNGs) and numpy only. The HTML embeds each image as
a base64 PNG, so a saved notebook shows it without the original files.
"""

from __future__ import annotations

import base64
import io
from html import escape

import numpy as np

from .imaging import QuantizedImage, image_to_array, quantize_image
from .metrics import psnr

__all__ = ["Comparison", "compare", "compare_k"]


class Comparison:
    """Images shown side by side, each with a caption.

    Jupyter renders it as HTML (a row of images that wraps on narrow
    screens). Build one with :func:`compare` or :func:`compare_k` rather
    than directly.

    Parameters
    ----------
    images : list of ndarray of shape (height, width, channels), uint8
        The images, in display order.
    captions : list of str
        One caption per image.
    width : int, default=320
        Displayed width of each image in CSS pixels. Images wider than
        twice that (enough for high-density screens) are embedded downscaled
        to it, so that a notebook stays small; narrower ones are embedded
        pixel for pixel.

    Attributes
    ----------
    images : list of ndarray
    captions : list of str
    width : int
    """

    def __init__(self, images, captions, *, width=320):
        if len(images) != len(captions):
            raise ValueError(f"Got {len(images)} images but {len(captions)} captions.")
        self.images = [image_to_array(image) for image in images]
        self.captions = list(captions)
        self.width = width

    def __repr__(self) -> str:
        return f"Comparison({', '.join(self.captions)})"

    def _repr_html_(self) -> str:
        figures = "".join(
            _figure_html(image, caption, self.width)
            for image, caption in zip(self.images, self.captions, strict=True)
        )
        return (
            "<div class='skvq-comparison' style='display:flex;flex-wrap:wrap;"
            f"gap:1em;align-items:flex-start'>{figures}</div>"
        )


def compare(original, *reconstructions, labels=None, width=320) -> Comparison:
    """Show an image next to its reconstructions, captioned with their quality.

    Each reconstruction is captioned with its PSNR against ``original``;
    a :class:`~skvq.QuantizedImage` also with its K and bits per pixel.

    Parameters
    ----------
    original : PIL.Image.Image or array-like
        The reference image.
    *reconstructions : QuantizedImage, PIL.Image.Image or array-like
        Images of the same shape as ``original``.
    labels : list of str, optional
        A label per reconstruction, put first in its caption. Defaults to
        ``"K = ..."`` for a QuantizedImage and ``"Reconstruction i"`` otherwise.
    width : int, default=320
        Displayed width of each image in CSS pixels.

    Returns
    -------
    Comparison
        Displays as HTML in Jupyter.

    See Also
    --------
    compare_k : Quantize an image at several K and compare.

    Examples
    --------
    >>> from sklearn.datasets import load_sample_image
    >>> from skvq import quantize_image
    >>> from skvq.display import compare
    >>> china = load_sample_image("china.jpg")
    >>> comparison = compare(china, quantize_image(china, 16, random_state=0))
    >>> comparison.captions[0]
    'Original · 24 bits per pixel'
    >>> comparison.captions[1].startswith("K = 16 · ")
    True
    """
    original = image_to_array(original)
    if labels is None:
        labels = [None] * len(reconstructions)
    elif len(labels) != len(reconstructions):
        raise ValueError(
            f"Got {len(labels)} labels for {len(reconstructions)} reconstructions."
        )
    images = [original]
    captions = [f"Original · {8 * original.shape[2]} bits per pixel"]
    for index, (reconstruction, label) in enumerate(
        zip(reconstructions, labels, strict=True), start=1
    ):
        report = None
        if isinstance(reconstruction, QuantizedImage):
            report = reconstruction.report
            label = label or f"K = {report.n_codes}"
            reconstruction = reconstruction.reconstruction
        reconstruction = image_to_array(reconstruction)
        if reconstruction.shape != original.shape:
            raise ValueError(
                f"Reconstruction {index} has shape {reconstruction.shape}, "
                f"the original {original.shape}."
            )
        parts = [label or f"Reconstruction {index}"]
        parts.append(f"{psnr(original, reconstruction):.2f} dB")
        if report is not None:
            parts.append(f"{report.bits_per_pixel:.2f} bits per pixel")
        images.append(reconstruction)
        captions.append(" · ".join(parts))
    return Comparison(images, captions, width=width)


def compare_k(image, n_clusters=(2, 3, 6, 16), *, width=320, **params) -> Comparison:
    """Quantize an image at several K and show the results side by side.

    The default reproduces the tutorial's grid, K = 2, 3, 6 and 16.

    Parameters
    ----------
    image : PIL.Image.Image or array-like
        The image to quantize.
    n_clusters : sequence of int, default=(2, 3, 6, 16)
        The values of K, one reconstruction each.
    width : int, default=320
        Displayed width of each image in CSS pixels.
    **params
        Other :class:`~skvq.VectorQuantizer` parameters, e.g.
        ``random_state``.

    Returns
    -------
    Comparison
        The original followed by one reconstruction per K.

    Examples
    --------
    >>> from sklearn.datasets import load_sample_image
    >>> from skvq.display import compare_k
    >>> comparison = compare_k(load_sample_image("china.jpg"), (2, 16), random_state=0)
    >>> [caption.split(" · ")[0] for caption in comparison.captions]
    ['Original', 'K = 2', 'K = 16']
    """
    n_clusters = list(n_clusters)
    if not n_clusters:
        raise ValueError("n_clusters must hold at least one K.")
    original = image_to_array(image)
    results = [quantize_image(original, k, **params) for k in n_clusters]
    return compare(original, *results, width=width)


# Embedded images are at most this many times their displayed width.
_PIXELS_PER_CSS_PIXEL = 2


def _png_data_uri(image: np.ndarray, max_width: int) -> str:
    from PIL import Image

    if image.shape[2] == 1:
        image = image[:, :, 0]  # Pillow wants (height, width) for grayscale
    picture = Image.fromarray(image)
    if picture.width > max_width:
        height = max(1, round(picture.height * max_width / picture.width))
        picture = picture.resize((max_width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _figure_html(image: np.ndarray, caption: str, width: int) -> str:
    source = _png_data_uri(image, _PIXELS_PER_CSS_PIXEL * int(width))
    return (
        f"<figure style='margin:0;width:{int(width)}px'>"
        f"<img src='{source}' alt='{escape(caption)}' "
        "style='width:100%;height:auto'>"
        f"<figcaption style='text-align:center'>{escape(caption)}</figcaption>"
        "</figure>"
    )


def _quantized_image_html(result: QuantizedImage, width=320) -> str:
    """The reconstruction next to its bit table, for ``QuantizedImage``."""
    report = result.report
    caption = (
        f"K = {report.n_codes} · {result.psnr:.2f} dB · "
        f"{report.bits_per_pixel:.2f} bits per pixel"
    )
    return (
        "<div class='skvq-quantized-image' style='display:flex;flex-wrap:wrap;"
        "gap:1em;align-items:flex-start'>"
        f"{_figure_html(image_to_array(result.reconstruction), caption, width)}"
        f"{report._repr_html_()}</div>"
    )
