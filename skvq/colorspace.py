"""sRGB <-> OkLab, the perceptual color space skvq can fit images in.

OkLab (Björn Ottosson, 2020, https://bottosson.github.io/posts/oklab/) is
built so that Euclidean distances follow perceived color differences better
than in sRGB, with hue lines that stay straight, and it is cheap: decode
sRGB's transfer curve to linear light, one 3x3 matrix to cone responses
(LMS), a cube root, one more 3x3 matrix. ``L`` runs from 0 (black) to 1
(white); ``a`` (green-red) and ``b`` (blue-yellow) lie within about
+-0.32 for sRGB colors.

Values are sRGB-encoded 8-bit levels (0..255), as images store them.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "linear_to_srgb",
    "oklab_to_srgb",
    "srgb_to_linear",
    "srgb_to_oklab",
]

# Ottosson's matrices: linear sRGB -> LMS, then cube-rooted LMS -> Lab.
_RGB_TO_LMS = np.array(
    [
        [0.4122214708, 0.5363325363, 0.0514459929],
        [0.2119034982, 0.6806995451, 0.1073969566],
        [0.0883024619, 0.2817188376, 0.6299787005],
    ]
)
_LMS_TO_LAB = np.array(
    [
        [0.2104542553, 0.7936177850, -0.0040720468],
        [1.9779984951, -2.4285922050, 0.4505937099],
        [0.0259040371, 0.7827717662, -0.8086757660],
    ]
)
# The exact inverses (the published inverse matrices are rounded to 10
# digits): a color goes to OkLab and back to within 1e-9 of a level.
_LMS_TO_RGB = np.linalg.inv(_RGB_TO_LMS)
_LAB_TO_LMS = np.linalg.inv(_LMS_TO_LAB)


def srgb_to_linear(values) -> np.ndarray:
    """sRGB-encoded levels (0..255) to linear light (0..1), IEC 61966-2-1.

    Parameters
    ----------
    values : array-like
        Levels, integers or floats.

    Returns
    -------
    ndarray of float64, same shape
    """
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return _LINEAR_OF_LEVEL[values]
    x = values / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values) -> np.ndarray:
    """Linear light (0..1) to sRGB-encoded levels (0..255, not rounded).

    Values outside 0..1 (colors outside the sRGB gamut) are clipped.

    Parameters
    ----------
    values : array-like

    Returns
    -------
    ndarray of float64, same shape
    """
    x = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    return 255.0 * np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


_LINEAR_OF_LEVEL = srgb_to_linear(np.arange(256.0))


def srgb_to_oklab(rgb) -> np.ndarray:
    """sRGB colors (0..255) to OkLab.

    Parameters
    ----------
    rgb : array-like of shape (..., 3)
        sRGB-encoded levels.

    Returns
    -------
    ndarray of shape (..., 3), float64
        ``L``, ``a``, ``b``.

    Examples
    --------
    >>> srgb_to_oklab([255, 255, 255]).round(6) + 0.0
    array([1., 0., 0.])
    >>> srgb_to_oklab([255, 0, 0]).round(4)
    array([0.628 , 0.2249, 0.1258])
    """
    lms = srgb_to_linear(rgb) @ _RGB_TO_LMS.T
    return np.cbrt(lms) @ _LMS_TO_LAB.T


def oklab_to_srgb(lab) -> np.ndarray:
    """OkLab colors to sRGB levels (0..255, clipped to the gamut, not rounded).

    Parameters
    ----------
    lab : array-like of shape (..., 3)

    Returns
    -------
    ndarray of shape (..., 3), float64
    """
    lms = (np.asarray(lab, dtype=np.float64) @ _LAB_TO_LMS.T) ** 3
    return linear_to_srgb(lms @ _LMS_TO_RGB.T)
