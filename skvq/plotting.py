"""Matplotlib plots: the rate-distortion curve over K and the K grid.

Matplotlib is an optional dependency (``pip install "skvq[plot]"``); it is
imported only when a plot is drawn.
"""

from __future__ import annotations

import math

import numpy as np

from .imaging import image_to_array, quantize_image
from .metrics import psnr

__all__ = ["RateDistortionDisplay", "plot_k_grid"]


def _require_matplotlib(caller: str):
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            f"{caller} requires matplotlib, an optional dependency of skvq. "
            'Install it with: pip install "skvq[plot]"'
        ) from error
    return plt


class RateDistortionDisplay:
    """Rate-distortion curve: PSNR and bits per pixel against K.

    PSNR rises quickly for small K and then flattens (the elbow), while the
    bit rate grows by one bit per doubling of K. The curve shows where more
    colors stop paying for their bits.

    Follows scikit-learn's Display API: build it with :meth:`from_image`,
    or from precomputed values and call :meth:`plot`.

    Parameters
    ----------
    n_clusters : array-like of int
        The values of K.
    psnr : array-like of float
        PSNR in dB of the reconstruction at each K.
    bits_per_pixel : array-like of float
        Bits per pixel (codes plus codebook) at each K.
    name : str, optional
        Name of the image, used in the title.

    Attributes
    ----------
    ax_ : matplotlib.axes.Axes
        Axes with the PSNR curve (left axis).
    ax_bits_ : matplotlib.axes.Axes
        Twin axes with the bits-per-pixel curve (right axis).
    figure_ : matplotlib.figure.Figure
        Figure holding the axes.
    psnr_line_ : matplotlib.lines.Line2D
        The PSNR curve.
    bits_line_ : matplotlib.lines.Line2D
        The bits-per-pixel curve.

    See Also
    --------
    skvq.metrics.smallest_k_reaching : Choose K by cross-validated PSNR.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_sample_image
    >>> from skvq.plotting import RateDistortionDisplay
    >>> china = load_sample_image("china.jpg")
    >>> display = RateDistortionDisplay.from_image(china, [2, 4, 8], random_state=0)
    >>> display.bits_per_pixel.round(2)
    array([1., 2., 3.])
    >>> plt.show()
    """

    def __init__(self, *, n_clusters, psnr, bits_per_pixel, name=None):
        self.n_clusters = np.asarray(n_clusters)
        self.psnr = np.asarray(psnr, dtype=float)
        self.bits_per_pixel = np.asarray(bits_per_pixel, dtype=float)
        self.name = name
        if not len(self.n_clusters) == len(self.psnr) == len(self.bits_per_pixel):
            raise ValueError(
                "n_clusters, psnr and bits_per_pixel must have the same length, "
                f"got {len(self.n_clusters)}, {len(self.psnr)} and "
                f"{len(self.bits_per_pixel)}."
            )

    @classmethod
    def from_image(
        cls, image, n_clusters=(2, 4, 8, 16, 32, 64), *, ax=None, name=None, **params
    ):
        """Quantize an image at each K and plot PSNR and bits per pixel.

        Parameters
        ----------
        image : PIL.Image.Image or array-like
            The image to quantize.
        n_clusters : sequence of int, default=(2, 4, 8, 16, 32, 64)
            The values of K.
        ax : matplotlib.axes.Axes, optional
            Axes to draw on; a new figure is created if None.
        name : str, optional
            Name of the image, used in the title.
        **params
            Other :class:`~skvq.VectorQuantizer` parameters, e.g.
            ``random_state``.

        Returns
        -------
        RateDistortionDisplay
            The plotted display.
        """
        _require_matplotlib(f"{cls.__name__}.from_image")
        n_clusters = sorted(n_clusters)
        if not n_clusters:
            raise ValueError("n_clusters must hold at least one K.")
        original = image_to_array(image)
        psnrs, rates = [], []
        for k in n_clusters:
            result = quantize_image(original, k, **params)
            psnrs.append(psnr(original, result.reconstruction))
            rates.append(result.report.bits_per_pixel)
        display = cls(
            n_clusters=n_clusters, psnr=psnrs, bits_per_pixel=rates, name=name
        )
        return display.plot(ax=ax)

    def plot(self, ax=None, *, name=None):
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on; a new figure is created if None.
        name : str, optional
            Name of the image, used in the title; overrides ``self.name``.

        Returns
        -------
        RateDistortionDisplay
            ``self``, with the artists stored as attributes.
        """
        plt = _require_matplotlib(f"{type(self).__name__}.plot")
        if ax is None:
            _, ax = plt.subplots()
        name = name if name is not None else self.name
        (self.psnr_line_,) = ax.plot(
            self.n_clusters, self.psnr, "o-", color="C0", label="PSNR"
        )
        ax.set_xscale("log", base=2)
        ax.set_xticks(self.n_clusters, [str(k) for k in self.n_clusters])
        ax.minorticks_off()
        ax.set_xlabel("Number of colors K")
        ax.set_ylabel("PSNR (dB)", color="C0")
        ax.grid(True, alpha=0.3)

        ax_bits = ax.twinx()
        (self.bits_line_,) = ax_bits.plot(
            self.n_clusters,
            self.bits_per_pixel,
            "s--",
            color="C1",
            label="Bits per pixel",
        )
        ax_bits.set_ylabel("Bits per pixel", color="C1")
        ax.legend(handles=[self.psnr_line_, self.bits_line_], loc="lower right")
        ax.set_title(
            f"Rate and distortion of {name}" if name else "Rate and distortion"
        )

        self.ax_, self.ax_bits_, self.figure_ = ax, ax_bits, ax.figure
        return self


def plot_k_grid(
    image,
    n_clusters=(2, 3, 6, 16),
    *,
    include_original=False,
    n_cols=None,
    axes=None,
    **params,
):
    """Reconstructions at several K in a grid, as in the tutorial's figure.

    Each panel is titled with its K, PSNR and bits per pixel.

    Parameters
    ----------
    image : PIL.Image.Image or array-like
        The image to quantize.
    n_clusters : sequence of int, default=(2, 3, 6, 16)
        The values of K, one panel each.
    include_original : bool, default=False
        Show the original image in the first panel.
    n_cols : int, optional
        Number of columns; by default the grid is about square.
    axes : array-like of matplotlib.axes.Axes, optional
        Axes to draw on, at least one per panel; a new figure is created if
        None.
    **params
        Other :class:`~skvq.VectorQuantizer` parameters, e.g.
        ``random_state``.

    Returns
    -------
    ndarray of matplotlib.axes.Axes
        The axes of the grid, one per panel, flattened in reading order.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_sample_image
    >>> from skvq.plotting import plot_k_grid
    >>> axes = plot_k_grid(load_sample_image("china.jpg"), random_state=0)
    >>> [ax.get_title().split(" · ")[0] for ax in axes]
    ['K = 2', 'K = 3', 'K = 6', 'K = 16']
    >>> plt.show()
    """
    plt = _require_matplotlib("plot_k_grid")
    n_clusters = list(n_clusters)
    if not n_clusters:
        raise ValueError("n_clusters must hold at least one K.")
    original = image_to_array(image)
    panels = []
    if include_original:
        panels.append((original, f"Original · {8 * original.shape[2]} bits per pixel"))
    for k in n_clusters:
        result = quantize_image(original, k, **params)
        title = (
            f"K = {k} · {psnr(original, result.reconstruction):.2f} dB · "
            f"{result.report.bits_per_pixel:.2f} bpp"
        )
        panels.append((result.reconstruction, title))

    if axes is None:
        n_cols = n_cols or math.ceil(math.sqrt(len(panels)))
        n_rows = math.ceil(len(panels) / n_cols)
        height, width = original.shape[:2]
        _, axes = plt.subplots(
            n_rows,
            n_cols,
            figsize=(4 * n_cols, n_rows * (4 * height / width + 0.4)),
            squeeze=False,
            layout="constrained",
        )
    axes = np.asarray(axes, dtype=object).ravel()
    if len(axes) < len(panels):
        raise ValueError(f"Got {len(axes)} axes for {len(panels)} panels.")
    for ax, (panel, title) in zip(axes, panels, strict=False):
        cmap = "gray" if panel.shape[2] == 1 else None
        ax.imshow(panel.squeeze(axis=2) if cmap else panel, cmap=cmap, vmin=0, vmax=255)
        ax.set_title(title, fontsize="medium")
    for ax in axes:
        ax.set_axis_off()
    return axes[: len(panels)]
