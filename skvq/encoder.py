"""Images to a codebook and codes: the encoder's policy, without Pillow.

One place decides how the pixels of one or more frames become the codebook
and codes a ``.vq`` file stores: a palette reused as is, a shared codebook,
or a codebook fitted by K-Means. The Pillow plugin, :func:`skvq.save`, the
batch runner and the CLI all go through it.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # scikit-learn is imported when quantizing only
    from .quantizer import VectorQuantizer

__all__ = ["common_color_mode", "encode"]

# Options of encode that go to VectorQuantizer; it validates them.
QUANTIZER_OPTIONS = ("random_state", "init", "n_init", "max_iter", "tol")


def common_color_mode(modes) -> str:
    """The smallest of L, LA, RGB, RGBA that holds colors of every mode given.

    Parameters
    ----------
    modes : iterable of str
        Color modes ("L", "LA", "RGB" or "RGBA"), one per frame.

    Returns
    -------
    str
    """
    modes = set(modes)
    has_color = any(mode.startswith("RGB") for mode in modes)
    has_alpha = any(mode.endswith("A") for mode in modes)
    return ("RGB" if has_color else "L") + ("A" if has_alpha else "")


def make_quantizer(n_clusters, **params) -> VectorQuantizer:
    """An unfitted VectorQuantizer, its parameters checked before any work."""
    from .quantizer import VectorQuantizer

    quantizer = VectorQuantizer(n_clusters=n_clusters, **params)
    quantizer._validate_params()  # a bad option fails here, before any work
    return quantizer


def encode(colors, quantizer, *, codebook=None, indices=None, max_codes=None):
    """Codebook and codes of frames of pixels.

    Parameters
    ----------
    colors : ndarray of shape (n_frames, height, width, channels), uint8
        The frames' colors, all in one color mode.
    quantizer : VectorQuantizer
        Unfitted, from :func:`make_quantizer`; fitted here unless the
        palette or ``codebook`` is used.
    codebook : VectorQuantizer, optional
        A fitted quantizer whose codebook is used instead of fitting one.
    indices : ndarray of shape (n_frames, height, width), optional
        Palette indices of the frames, when they are "P" images sharing one
        palette: if they use at most ``n_clusters`` entries, those entries
        are the codebook, with no quantization.
    max_codes : int, optional
        Largest ``codebook`` the caller can store.

    Returns
    -------
    codebook : ndarray of shape (n_codes, channels), uint8
    codes : ndarray of shape (n_frames * height * width,) or (..., 1)
    """
    if codebook is not None:
        return _shared_codes(codebook, colors, max_codes)
    if indices is not None:
        quantized = _palette_codes(indices, colors, quantizer.n_clusters)
        if quantized is not None:
            return quantized
    return _quantize(quantizer, colors)


def _palette_codes(indices, colors: np.ndarray, k: int):
    """Codebook and codes of palette indices without quantizing, or None.

    Only when the indices use at most ``k`` entries; the used entries become
    the codebook, in palette order.
    """
    used, first_use, codes = np.unique(
        indices.ravel(), return_index=True, return_inverse=True
    )
    if len(used) > k:
        return None
    # The color of each used entry, as Pillow expands it (transparency too).
    codebook = colors.reshape(-1, colors.shape[-1])[first_use]
    return codebook, codes.astype(np.uint8)


def _quantize(quantizer: VectorQuantizer, colors: np.ndarray):
    """Codebook (uint8) and codes of the colors, by K-Means."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        # Fewer distinct colors than k is fine for a file: K is just smaller.
        warnings.filterwarnings(
            "ignore", message=".*distinct rows", category=ConvergenceWarning
        )
        codes = quantizer.fit_transform(colors.reshape(-1, colors.shape[-1]))
    return _rounded_codebook(quantizer), codes


def _shared_codes(quantizer, colors: np.ndarray, max_codes):
    """Codebook (uint8) and codes of the colors in a fitted quantizer's codebook."""
    from sklearn.utils.validation import check_is_fitted

    from .quantizer import VectorQuantizer

    if not isinstance(quantizer, VectorQuantizer):
        raise ValueError(
            "codebook must be a fitted skvq.VectorQuantizer, got "
            f"{type(quantizer).__name__}."
        )
    check_is_fitted(quantizer)
    if quantizer.n_features_in_ != colors.shape[-1]:
        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[colors.shape[-1]]
        raise ValueError(
            f"The codebook was fitted on {quantizer.n_features_in_} channels but "
            f"the image has {colors.shape[-1]} ({mode})."
        )
    if max_codes is not None and quantizer.n_codes_ > max_codes:
        raise ValueError(
            f"The codebook has {quantizer.n_codes_} rows; VQ files hold at most "
            f"{max_codes}."
        )
    return _rounded_codebook(quantizer), quantizer.transform(
        colors.reshape(-1, colors.shape[-1])
    )


def _rounded_codebook(quantizer: VectorQuantizer):
    """The codebook rounded as skvq.imaging rounds reconstructions, as uint8."""
    from .imaging import reconstruct

    all_codes = np.arange(quantizer.n_codes_)[:, np.newaxis]
    return reconstruct(quantizer.codebook_, all_codes)
