"""Images to a codebook and codes: the encoder's policy, without Pillow.

One place decides how the pixels of one or more frames become the codebook
and codes a ``.vq`` file stores and :func:`skvq.quantize_image` returns: a
palette reused as is, a shared codebook, or a codebook fitted by K-Means;
codes of the nearest codeword, or dithered. The Pillow plugin,
:func:`skvq.save`, the batch runner and the CLI all go through it.

How colors are compared: plain images (no alpha, ``color_space="rgb"``)
are fitted and coded as :class:`~skvq.VectorQuantizer` does it on the
pixel values, codes of the nearest centroid, the tutorial's accounting.

Otherwise colors are compared in *features*: the colors themselves, or
their OkLab coordinates (``color_space="oklab"``), scaled to 0..255. With
alpha (the last channel), colors are premultiplied, ``features * alpha /
255`` followed by alpha, as libimagequant compares them: the color error of
a pixel counts in proportion to its opacity, so faint edge pixels do not
pull the colors of opaque ones. Fully transparent pixels are all the same
point: they get one reserved codeword (0, 0, 0, 0) and are left out of the
fit; fully opaque pixels are fitted in clusters of their own and coded only
with opaque codewords, so they stay exactly opaque. The codes are then the
exact nearest codeword, in features, among the *rounded* codewords that the
file stores; dithering diffuses each pixel's error over its neighbors but
never across a transparent pixel, nor between opaque and translucent ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import colorspace

if TYPE_CHECKING:  # scikit-learn is imported when quantizing only
    from .quantizer import VectorQuantizer

__all__ = [
    "COLOR_SPACES",
    "QUANTIZER_OPTIONS",
    "Encoding",
    "check_options",
    "common_color_mode",
    "encode",
]

COLOR_SPACES = ("rgb", "oklab")
# Options of encode that go to VectorQuantizer; it validates them.
QUANTIZER_OPTIONS = ("random_state", "init", "n_init", "max_iter", "tol", "algorithm")
# OkLab coordinates times this, plus _OKLAB_OFFSET, lie in 0..255 like
# levels: K-Means and the nearest-codeword search then use their grid.
_OKLAB_SCALE = 255.0
_OKLAB_OFFSET = np.array([0.0, 127.5, 127.5])
# Fitting alpha images, opaque pixels get this much more in an extra
# feature: the squared gap (4.2e6) exceeds any distance between colors
# (at most 4 * 255**2), so no cluster mixes opaque and translucent pixels.
_OPAQUE_GAP = 2048.0


@dataclass(frozen=True)
class Encoding:
    """Codebook and codes of one or more frames.

    Attributes
    ----------
    centroids : ndarray of shape (n_codes, channels), float64
        The codebook in the image's values (0..255), before rounding: the
        K-Means centroids for plain images, else the colors chosen.
    codes : ndarray of shape (n_frames, height, width)
        Index of each pixel's codeword, uint8 or uint16 (wider for more
        than 65,536 codes).
    quantizer : VectorQuantizer or None
        The estimator fitted here, or the codebook given; None when a
        palette was reused.
    """

    centroids: np.ndarray
    codes: np.ndarray
    quantizer: VectorQuantizer | None = None

    @property
    def codebook(self) -> np.ndarray:
        """The codebook as stored: centroids rounded to uint8."""
        return round_colors(self.centroids)


def round_colors(values) -> np.ndarray:
    """Values rounded to the nearest level (not truncated), clipped, uint8."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


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


def check_options(
    n_clusters=16, *, codebook=None, dither=False, color_space="rgb", **params
):
    """Check encoding options before any work; the dithering method.

    Parameters
    ----------
    n_clusters, codebook, dither, color_space, **params
        As for :func:`encode`.

    Returns
    -------
    str or None
        The dithering method's name, None for no dithering.

    Raises
    ------
    ValueError
        Naming the option and what it accepts.
    """
    if color_space not in COLOR_SPACES:
        raise ValueError(
            f"color_space must be one of {', '.join(map(repr, COLOR_SPACES))}, "
            f"got {color_space!r}."
        )
    make_quantizer(n_clusters, **params)  # checked even when not fitting
    return dither_method(dither)


def fitting(frames, *, alpha=False, dither=False, color_space="rgb", **params):
    """Frames ready to be fitted with any number of colors (see :class:`Fitting`).

    Parameters
    ----------
    frames, alpha, dither, color_space, **params
        As for :func:`encode`.

    Returns
    -------
    Fitting
    """
    method = check_options(dither=dither, color_space=color_space, **params)
    frames = np.asarray(frames)
    return Fitting(
        frames, _Metric(frames.shape[-1], alpha, color_space), method, params
    )


def dither_method(dither) -> str | None:
    """The dithering method ``dither`` names: None for False or None.

    :mod:`skvq.dither` is imported only when dithering is asked for.
    """
    if dither is None or dither is False:
        return None
    from . import dither as kernel

    return kernel.resolve_method(dither)


def encode(
    frames,
    *,
    alpha=False,
    n_clusters=16,
    codebook=None,
    indices=None,
    dither=False,
    color_space="rgb",
    max_codes=None,
    **params,
) -> Encoding:
    """Codebook and codes of frames of pixels.

    Parameters
    ----------
    frames : ndarray of shape (n_frames, height, width, channels), uint8
        The frames' colors, all in one color mode.
    alpha : bool, default=False
        Whether the last channel is alpha.
    n_clusters : int, default=16
        Codebook size ``K`` to fit. With alpha and fully transparent pixels,
        one of the ``K`` codewords is (0, 0, 0, 0) and ``K - 1`` are fitted.
    codebook : VectorQuantizer, optional
        A fitted quantizer whose codebook is used as is instead of fitting
        one (its centroids rounded to integers).
    indices : ndarray of shape (n_frames, height, width), optional
        Palette indices of the frames, when they are "P" images sharing one
        palette: if they use at most ``n_clusters`` entries, those entries
        are the codebook, unchanged (no quantization, no dithering).
    dither : bool or str, default=False
        Error diffusion (see :mod:`skvq.dither`): True for the best method,
        or a method's name. The codebook is fitted as without dithering.
    color_space : {"rgb", "oklab"}, default="rgb"
        Where colors are fitted and compared: the pixel values, or OkLab.
    max_codes : int, optional
        Largest ``codebook`` the caller can store.
    **params
        :class:`~skvq.VectorQuantizer` parameters, e.g. ``random_state``.

    Returns
    -------
    Encoding
    """
    method = check_options(
        n_clusters, codebook=codebook, dither=dither, color_space=color_space, **params
    )
    frames = np.asarray(frames)
    metric = _Metric(frames.shape[-1], alpha, color_space)
    pixels = frames.reshape(-1, frames.shape[-1])
    if codebook is None:
        if indices is not None and len(np.unique(indices)) <= n_clusters:
            return _palette_encoding(indices, frames)
        # The fit of the color histogram: seeded and first converged on
        # coarse histograms (see VectorQuantizer.fit), fast on any image.
        fitting = Fitting(frames, metric, method, params)
        return fitting.result(*fitting.fit(n_clusters)).encoding
    centroids = _given_codebook(codebook, frames.shape[-1], max_codes)
    if metric.plain and method is None and _codebook_is_exact(codebook):
        codes = codebook.transform(pixels)
        return Encoding(centroids, codes.reshape(frames.shape[:-1]), codebook)
    colors = round_colors(centroids)
    if method is None:
        codes = _assign(pixels, colors, metric).reshape(frames.shape[:-1])
    else:
        codes = np.stack([_dither(frame, colors, metric, method) for frame in frames])
    return Encoding(centroids, codes, codebook)


def _palette_encoding(indices, frames) -> Encoding:
    """The used palette entries as codebook, in palette order."""
    _, first_use, codes = np.unique(
        indices.ravel(), return_index=True, return_inverse=True
    )
    # The color of each used entry, as Pillow expands it (transparency too).
    colors = frames.reshape(-1, frames.shape[-1])[first_use]
    codes = codes.astype(np.uint8).reshape(indices.shape)
    return Encoding(colors.astype(np.float64), codes)


def _codebook_is_exact(codebook) -> bool:
    """Whether ``codebook`` is a quantizer fitted on the pixel values."""
    return not hasattr(codebook, "_skvq_centroids") or (
        codebook._skvq_centroids[0] is not codebook.codebook_
    )


def _given_codebook(codebook, n_channels, max_codes) -> np.ndarray:
    """The colors of a fitted quantizer's codebook (float64, 0..255), checked."""
    from sklearn.utils.validation import check_is_fitted

    from .quantizer import VectorQuantizer

    if not isinstance(codebook, VectorQuantizer):
        raise ValueError(
            "codebook must be a fitted skvq.VectorQuantizer, got "
            f"{type(codebook).__name__}."
        )
    check_is_fitted(codebook)
    centroids = codebook.codebook_
    if not _codebook_is_exact(codebook):  # fitted in features by encode
        centroids = codebook._skvq_centroids[1]
    if centroids.shape[1] != n_channels:
        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(n_channels)
        raise ValueError(
            f"The codebook was fitted on {centroids.shape[1]} channels but "
            f"the image has {n_channels}" + (f" ({mode})." if mode else ".")
        )
    if max_codes is not None and len(centroids) > max_codes:
        raise ValueError(
            f"The codebook has {len(centroids)} rows; VQ files hold at most "
            f"{max_codes}."
        )
    return centroids


class _Metric:
    """How colors are compared: the features they are fitted and coded in."""

    def __init__(self, n_channels, alpha, color_space):
        self.alpha = bool(alpha)
        self.n_colors = n_channels - self.alpha
        self.oklab = color_space == "oklab"
        if self.oklab and self.n_colors not in (1, 3):
            raise ValueError(
                "color_space='oklab' needs gray or RGB colors (with or without "
                f"alpha); the image has {n_channels} channels."
            )
        self.plain = not self.alpha and not self.oklab

    def color_features(self, colors) -> np.ndarray:
        """Features of colors (levels, without alpha), float64."""
        if not self.oklab:
            return np.asarray(colors, dtype=np.float64)
        if self.n_colors == 1:  # gray: OkLab's lightness alone
            lab = colorspace.srgb_to_oklab(np.repeat(colors, 3, axis=-1))
            return _OKLAB_SCALE * lab[..., :1]
        return _OKLAB_SCALE * colorspace.srgb_to_oklab(colors) + _OKLAB_OFFSET

    def colors_of(self, features) -> np.ndarray:
        """Colors (float levels, clipped) of color features."""
        if not self.oklab:
            return np.clip(features, 0, 255)
        if self.n_colors == 1:
            lab = np.zeros((*features.shape[:-1], 3))
            lab[..., 0] = features[..., 0] / _OKLAB_SCALE
            return colorspace.oklab_to_srgb(lab).mean(axis=-1, keepdims=True)
        return colorspace.oklab_to_srgb((features - _OKLAB_OFFSET) / _OKLAB_SCALE)

    def _offset(self):
        return _OKLAB_OFFSET if self.oklab and self.n_colors == 3 else 0.0

    def features(self, pixels) -> np.ndarray:
        """Features of pixels: color features, premultiplied by alpha."""
        if not self.alpha:
            return self.color_features(pixels)
        opacity = pixels[..., -1:] / 255.0
        offset = self._offset()
        colors = (self.color_features(pixels[..., :-1]) - offset) * opacity + offset
        return np.concatenate([colors, pixels[..., -1:].astype(np.float64)], axis=-1)

    def pixels_of(self, features) -> np.ndarray:
        """Pixels (float levels) of features: alpha-weighted mean colors."""
        if not self.alpha:
            return self.colors_of(features)
        opacity = np.clip(features[:, self.n_colors], 0, 255)
        offset = self._offset()
        colors = np.zeros((len(features), self.n_colors))
        seen = opacity > 0
        colors[seen] = (features[seen, : self.n_colors] - offset) * (
            255.0 / opacity[seen, np.newaxis]
        ) + offset
        return np.column_stack([self.colors_of(colors), opacity])


class Fitting:
    """Frames ready to be fitted with any number of colors.

    What :func:`encode` does once ``n_clusters`` is known, in steps: the
    distinct colors and the features they are fitted in are found once; then
    :meth:`fit` fits a codebook of any size, from scratch or from given
    centroids (a warm start), and :meth:`result` gives what :func:`encode`
    would store for it. :mod:`skvq.target` searches the number of colors
    with it.

    Parameters
    ----------
    frames : ndarray of shape (n_frames, height, width, channels), uint8
    metric : _Metric
    method : str or None
        The dithering method, None for no dithering.
    params : dict
        :class:`~skvq.VectorQuantizer` parameters.
    """

    def __init__(self, frames, metric, method, params):
        from ._engine.colors import unique_rows

        self.frames = np.asarray(frames)
        self.metric = metric
        self.method = method
        self.params = params
        self.pixels = self.frames.reshape(-1, self.frames.shape[-1])
        # Sorted like their packed keys, which find each pixel's row.
        self.rows, self.counts = unique_rows(self.pixels)
        self._data = {}

    def fitted_rows(self, n_clusters):
        """The rows fitted for ``n_clusters`` colors, their weights, and whether
        one of the colors is reserved for transparent pixels.

        With alpha, fully transparent pixels get one reserved codeword
        (unless ``n_clusters`` is 1 or every pixel is transparent) and are
        left out of the fit; opaque pixels get an extra feature that keeps
        them in clusters of their own.
        """
        rows, counts = self.rows, self.counts
        reserve = False
        if self.metric.alpha:
            transparent = rows[:, -1] == 0
            reserve = bool(
                n_clusters > 1 and transparent.any() and not transparent.all()
            )
        if reserve not in self._data:
            if reserve:
                rows, counts = rows[~transparent], counts[~transparent]
            self._data[reserve] = (self._features(rows), counts)
        return *self._data[reserve], reserve

    def _features(self, rows):
        metric = self.metric
        if metric.plain:
            return rows
        if not metric.alpha:
            return metric.color_features(rows)
        opaque = rows[:, -1] == 255
        if opaque.all():
            colors = rows[:, :-1]
            return colors if not metric.oklab else metric.color_features(colors)
        features = metric.features(rows)
        if opaque.any():
            features = np.column_stack([features, _OPAQUE_GAP * opaque])
        return features

    def fit(self, n_clusters, init=None):
        """Fit ``n_clusters`` colors; the quantizer and the cluster of each row.

        Parameters
        ----------
        n_clusters : int
            Colors, the reserved transparent one included.
        init : ndarray of shape (n_fitted, n_features), optional
            Initial centroids in the fitted rows' features (``n_fitted`` is
            ``n_clusters``, less the reserved color): Lloyd's iterations
            start from them instead of from seeds.

        Returns
        -------
        quantizer : VectorQuantizer
            Fitted on :meth:`fitted_rows`.
        labels : ndarray of shape (n_rows,)
            The cluster of each fitted row.
        """
        features, weights, reserve = self.fitted_rows(n_clusters)
        params = dict(self.params)
        if init is not None:
            params.update(init=init, n_init=1)
        quantizer = make_quantizer(n_clusters - reserve, **params)
        labels = quantizer.fit_transform(features, sample_weight=weights)
        quantizer._skvq_reserved = reserve
        return quantizer, labels[:, 0]

    def centroids(self, quantizer) -> np.ndarray:
        """The colors (float levels) of a quantizer from :meth:`fit`."""
        metric = self.metric
        codebook = quantizer.codebook_
        n_channels = self.pixels.shape[1]
        if not metric.alpha:
            centroids = metric.colors_of(codebook)
        elif codebook.shape[1] == n_channels - 1:  # fitted on opaque colors
            centroids = metric.colors_of(codebook)
            centroids = np.column_stack([centroids, np.full(len(centroids), 255.0)])
        else:
            centroids = metric.pixels_of(codebook)
            if codebook.shape[1] > n_channels:  # with the opaque feature
                centroids[codebook[:, -1] > _OPAQUE_GAP / 2, -1] = 255.0
        reserved = np.zeros((int(quantizer._skvq_reserved), n_channels))
        return np.concatenate([reserved, centroids])

    def result(self, quantizer, labels) -> FitResult:
        """What :func:`encode` stores for a fit of :meth:`fit`."""
        metric, method = self.metric, self.method
        centroids = self.centroids(quantizer)
        if metric.plain and method is None:
            # Codes of the nearest centroid, as VectorQuantizer codes them.
            return FitResult(self, quantizer, centroids, row_codes=labels)
        if method is not None and not metric.alpha:
            centroids = _refined(self.frames, centroids, metric, method)
        # The colors stored for this fit, for codebook=quantizer later.
        quantizer._skvq_centroids = (quantizer.codebook_, centroids)
        colors = round_colors(centroids)
        if method is None:
            return FitResult(
                self, quantizer, centroids, _assign_rows(self.rows, colors, metric)
            )
        codes = np.stack(
            [_dither(frame, colors, metric, method) for frame in self.frames]
        )
        return FitResult(self, quantizer, centroids, codes=codes)

    def pixel_codes(self, row_codes) -> np.ndarray:
        """Codes of the frames' pixels from the codes of the distinct rows."""
        from ._engine.colors import look_up, pack

        codes = look_up(self.pixels, pack(self.rows), row_codes)
        return codes.reshape(self.frames.shape[:-1])


class FitResult:
    """The stored codebook and codes of one fit (see :meth:`Fitting.result`).

    Codes of the distinct colors are spread to the pixels only when the
    :attr:`encoding` is asked for; without dithering the error is summed
    over the distinct colors.
    """

    def __init__(self, fitting, quantizer, centroids, row_codes=None, codes=None):
        self._fitting = fitting
        self.quantizer = quantizer
        self.centroids = centroids
        self._row_codes = row_codes
        self._codes = codes

    @property
    def encoding(self) -> Encoding:
        if self._codes is None:
            self._codes = self._fitting.pixel_codes(self._row_codes)
        return Encoding(self.centroids, self._codes, self.quantizer)

    @property
    def squared_error(self) -> float:
        """Sum of squared differences of the stored image from the frames."""
        colors = round_colors(self.centroids)
        fitting = self._fitting
        if self._row_codes is None:
            stored = colors[self._codes.reshape(-1)].astype(np.float64)
            return float(np.sum((stored - fitting.pixels) ** 2))
        diff = colors[self._row_codes].astype(np.float64) - fitting.rows
        return float(np.dot(fitting.counts, np.einsum("ij,ij->i", diff, diff)))


def _nearest(features, palette) -> np.ndarray:
    """Index of the nearest palette row of each feature row, exactly."""
    from ._engine.kmeans import assign

    return assign(features, np.ascontiguousarray(palette), return_distance=False)[0]


def _assign(pixels, colors, metric) -> np.ndarray:
    """Codes of the exact nearest of ``colors`` (uint8) in the metric."""
    from ._engine.colors import look_up, pack, unique_rows

    rows, _ = unique_rows(pixels)
    return look_up(pixels, pack(rows), _assign_rows(rows, colors, metric))


def _assign_rows(rows, colors, metric) -> np.ndarray:
    """Codes of the exact nearest of ``colors`` to each distinct row."""
    dtype = np.min_scalar_type(max(len(colors) - 1, 0))
    if not metric.alpha:
        codes = _nearest(metric.color_features(rows), metric.color_features(colors))
        return codes.astype(dtype)
    codes = np.empty(len(rows), dtype=dtype)
    palette = metric.features(colors)
    opaque = rows[:, -1] == 255
    opaque_codes = np.flatnonzero(colors[:, -1] == 255)
    if not len(opaque_codes):  # opaque pixels too take the nearest color
        opaque[:] = False
    features = metric.features(rows)
    codes[~opaque] = _nearest(features[~opaque], palette)
    codes[opaque] = opaque_codes[_nearest(features[opaque], palette[opaque_codes])]
    return codes


def _refined(frames, centroids, metric, method):
    """A codebook fitted to the dithered frames, if the kernel offers one.

    See :func:`skvq.dither.fit_palette`: plain colors mix in linear light,
    OkLab features in OkLab.
    """
    from . import dither as kernel

    fit = getattr(kernel, "fit_palette", None)
    if fit is None:
        return centroids
    stacked = frames.reshape(-1, *frames.shape[2:])  # frames one above another
    if metric.plain:
        palette = fit(stacked, round_colors(centroids), method=method, srgb=True)
        return palette.astype(float)
    palette = fit(
        metric.color_features(stacked),
        metric.color_features(round_colors(centroids)),
        method=method,
    )
    return metric.colors_of(np.asarray(palette, dtype=np.float64))


def _dither(frame, colors, metric, method) -> np.ndarray:
    """Dithered codes of one frame (height, width, channels)."""
    from . import dither as kernel

    if not metric.alpha:
        pixels = frame if metric.plain else metric.color_features(frame)
        palette = colors if metric.plain else metric.color_features(colors)
        return kernel.dither_codes(pixels, palette, method=method)
    opacity = frame[..., -1]
    # Transparent pixels take the codeword nearest to transparency, with no
    # error in or out; opaque and translucent pixels are dithered apart.
    transparent_code = _assign(np.zeros((1, frame.shape[-1]), np.uint8), colors, metric)
    codes = np.full(frame.shape[:2], transparent_code[0])
    opaque = opacity == 255
    opaque_codes = np.flatnonzero(colors[:, -1] == 255)
    if not len(opaque_codes):
        opaque[:] = False
    translucent = (opacity > 0) & ~opaque
    if opaque.any():
        sub = kernel.dither_codes(
            metric.color_features(frame[..., :-1]),
            metric.color_features(colors[opaque_codes, :-1]),
            method=method,
            mask=opaque,
        )
        codes[opaque] = opaque_codes[sub[opaque]]
    if translucent.any():
        sub = kernel.dither_codes(
            metric.features(frame),
            metric.features(colors),
            method=method,
            mask=translucent,
        )
        codes[translucent] = sub[translucent]
    return codes
