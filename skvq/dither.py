"""Error diffusion on the exact nearest-codeword search.

Dithering trades banding for fine noise: each pixel's quantization error is
spread to the pixels not yet coded, so that areas keep their mean color. It
needs the pixel layout, so it works on images, not on the rows the estimator
sees; :class:`~skvq.VectorQuantizer`'s ``transform`` stays exact
nearest-codeword.

Every pixel gets the code of the palette entry nearest (squared Euclidean,
lowest index on ties) to its error-adjusted value, found by an exact grid
search (``_dither.pyx``): no approximate lookup, for palettes of up to
65,536 entries. The functions are color-space agnostic: pass pixels and
palette in the same space (sRGB values, or OkLab, ...).

Methods (``METHODS``, the first is what ``dither=True`` means):

``"adaptive"``
    Serpentine Floyd–Steinberg whose error is bounded: the error a pixel
    receives is damped (7/8), shortened to an eighth of the color range, and
    kept so that the adjusted value stays within 5 % of that range around
    the colors present. Unbounded error is what paints isolated far colors
    (specks) into flat areas whose color lies outside the palette's hull.
``"floyd-steinberg"``
    Textbook serpentine Floyd–Steinberg, every error passed on whole.

``dither=True`` in the encoder dithers with a palette fitted to how the
dithered image looks (:func:`fit_palette`, starting from the K-Means
codebook; :func:`dither_image` does both steps on any image and palette).

The adaptive method's settings were chosen by SSIMULACRA2 on sample photos
and generated gradients (``benchmarks/bench_dither.py``,
``docs/dithering.md``).
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _dither
from .colorspace import linear_to_srgb, srgb_to_linear

__all__ = [
    "METHODS",
    "dither_codes",
    "dither_image",
    "fit_palette",
    "refine_palette",
    "resolve_method",
]

METHODS: tuple[str, ...] = ("adaptive", "floyd-steinberg")

# The adaptive method, in fractions of the color range of pixels and palette.
_LEVEL = 7 / 8
_MAX_ERROR = 1 / 8
_MARGIN = 1 / 20
# refine_palette: colors are counted in this many bins per channel, and a bin
# of n pixels weighs n ** (1 - _FLATTEN) instead of n.
_BINS = 32
_FLATTEN = 0.5
# dither_image judges a dithered image by its squared error blurred by a
# 3 x 3 binomial filter (what the eye averages) plus this much of the plain
# squared error (what it sees of the grain).
_POINTWISE = 0.3
# Its least-squares step solves one equation per palette entry, on a dense
# system: only for palettes up to this size.
_FIT_MAX_CODES = 1024
# fit_palette works on every n-th pixel of every n-th row: n = 2, or 4 from
# _SPARSE_SAMPLE entries on (where a search costs more per pixel and the
# coarser sample scores as well), and starts from the given palette too from
# _BOTH_STARTS entries on (SSIMULACRA2 and specks, docs/dithering.md).
_SPARSE_SAMPLE = 64
_BOTH_STARTS = 128


def resolve_method(dither) -> str | None:
    """The dithering method that a ``dither`` option names.

    Parameters
    ----------
    dither : bool, None or str
        ``False`` or ``None``: no dithering; ``True``: the best method
        (``METHODS[0]``); a name in :data:`METHODS`: that method.

    Returns
    -------
    str or None
        The method's name, or None for no dithering.

    Raises
    ------
    ValueError
        If ``dither`` is none of these.

    Examples
    --------
    >>> resolve_method(True), resolve_method(False), resolve_method("floyd-steinberg")
    ('adaptive', None, 'floyd-steinberg')
    """
    if dither is None or isinstance(dither, (bool, np.bool_)):
        return METHODS[0] if dither else None
    if isinstance(dither, str) and dither in METHODS:
        return dither
    raise ValueError(
        f"dither must be True, False, None or one of {', '.join(map(repr, METHODS))}; "
        f"got {dither!r}."
    )


def dither_codes(pixels, palette, *, method=True, mask=None, alpha=False) -> np.ndarray:
    """The codes of an image's pixels, dithered by error diffusion.

    Parameters
    ----------
    pixels : array-like of shape (height, width, channels)
        The image, 1 to 4 channels, uint8 or float, in any color space.
    palette : array-like of shape (n_codes, channels)
        The palette in the same space, ``1 <= n_codes <= 65536``.
    method : bool, None or str, default=True
        See :func:`resolve_method`. ``False`` gives each pixel its nearest
        entry, without dithering.
    mask : array-like of shape (height, width), bool, optional
        Pixels where it is False (fully transparent ones) neither receive
        nor pass on error; their code is 0.
    alpha : bool, default=False
        Whether the last channel is alpha, on the scale 0..255. The color
        error a pixel passes on is then weighted by its opacity (as
        libimagequant does with premultiplied colors), so that the color of
        faint pixels does not bleed into their neighbors.

    Returns
    -------
    ndarray of shape (height, width)
        uint8 if ``n_codes <= 256``, else uint16.

    Raises
    ------
    ValueError
        If the shapes do not match, a value is not finite, or ``method`` is
        not a method.

    Examples
    --------
    A grey ramp in black and white: undithered it is half black, half
    white; dithered, the share of white follows the ramp.

    >>> import numpy as np
    >>> ramp = np.linspace(0, 255, 8)[None, :, None].repeat(2, axis=0)
    >>> dither_codes(ramp, [[0], [255]], method=False)
    array([[0, 0, 0, 0, 1, 1, 1, 1],
           [0, 0, 0, 0, 1, 1, 1, 1]], dtype=uint8)
    >>> dither_codes(ramp, [[0], [255]], method="floyd-steinberg")
    array([[0, 0, 0, 1, 0, 1, 1, 1],
           [0, 0, 0, 1, 0, 1, 1, 1]], dtype=uint8)
    """
    method = resolve_method(method)
    pixels, palette, mask = _validate(pixels, palette, mask)
    search, lo, hi = _search(pixels, palette)
    codes = np.zeros(pixels.shape[:2], _code_dtype(len(palette)))
    if method is None:
        flat = pixels.reshape(-1, pixels.shape[2])
        search.nearest_codes(flat, codes.reshape(-1))
        if mask is not None:
            codes[mask == 0] = 0
        return codes
    _diffuse(search, pixels, codes, method, mask, alpha, lo, hi)
    return codes


def refine_palette(
    pixels, palette, *, method=True, mask=None, alpha=False, n_passes=4
) -> np.ndarray:
    """A palette better suited to dithering.

    K-Means spends colors where pixels are many, and leaves wide gaps
    between the colors of sparse regions (the ends of a gradient, small
    bright objects). Undithered, a gap costs only the few pixels in it;
    dithered, it shows as coarse noise over the whole region, which the eye
    (and SSIMULACRA2) notices. A few Lloyd passes in which colors weigh less
    where they are common (a bin of ``n`` similar pixels counts as
    ``n ** 0.5`` pixels) even out the gaps.

    Parameters
    ----------
    pixels : array-like of shape (height, width, channels)
        The image, as for :func:`dither_codes`.
    palette : array-like of shape (n_codes, channels)
        The starting palette, e.g. the K-Means codebook.
    method : bool, None or str, default=True
        The method the palette will be dithered with (see
        :func:`resolve_method`). The refinement is the same for every
        method; with no dithering (``False``) the palette is returned as is.
    mask : array-like of shape (height, width), bool, optional
        Pixels where it is False are left out.
    alpha : bool, default=False
        Whether the last channel is alpha (0..255): the colors of a pixel
        then weigh by its opacity.
    n_passes : int, default=4
        Lloyd passes.

    Returns
    -------
    ndarray of shape (n_codes, channels)
        Same dtype as ``palette`` (integer palettes are rounded and kept in
        their range). An entry no pixel is nearest to stays where it was.

    Raises
    ------
    ValueError
        As :func:`dither_codes`, or if ``n_passes`` is not a non-negative
        integer.
    """
    if not isinstance(n_passes, numbers.Integral) or n_passes < 0:
        raise ValueError(f"n_passes must be a non-negative integer; got {n_passes!r}.")
    given = np.asarray(palette)
    pixels, refined, mask = _validate(pixels, palette, mask)
    if resolve_method(method) is None or n_passes == 0:
        return given.copy()
    colors, weights = _weighted_colors(pixels, mask, alpha)
    if len(colors) == 0:
        return given.copy()
    _, lo, hi = _search(pixels, refined)
    channels = colors.shape[1]
    for _ in range(n_passes):
        search = _dither.NearestSearch(refined, lo, hi, len(colors))
        codes = np.zeros(len(colors), np.uint16)
        search.nearest_codes(colors, codes)
        for c in range(channels):
            totals = np.bincount(codes, weights[:, c], minlength=len(refined))
            sums = np.bincount(codes, weights[:, c] * colors[:, c], len(refined))
            used = totals > 0
            refined[used, c] = sums[used] / totals[used]
    return _like(refined, given)


def fit_palette(pixels, palette, *, method=True, mask=None, srgb=False) -> np.ndarray:
    """A palette fitted to how the image looks once dithered.

    Dithered, what the eye sees is the local average of the palette's
    colors, so the palette that serves an image best is not the K-Means
    one. A palette is judged by dithering with it and measuring the squared
    error between the image and the result after a 3 x 3 binomial blur (plus
    0.3 times the plain squared error, for the grain). The start is
    :func:`refine_palette`'s palette, or for palettes of 128 entries or more
    the better of it and the palette as given (with fewer entries, the gaps
    a K-Means palette leaves dither into isolated specks). Then, with the
    start's codes fixed, the palette that minimises that error (a linear
    least-squares problem, one unknown color per entry; palettes of up to
    1,024 entries) is dithered in turn and kept if it does better. All this
    is done on every second pixel of every second row (every fourth of every
    fourth for palettes of 64 entries or more): the palette comes out as
    good for a fraction of the work. Errors are measured, and colors
    mixed, in linear light when ``srgb`` is set, else in the pixels' own
    space.

    Parameters
    ----------
    pixels : array-like of shape (height, width, channels)
        The image, as for :func:`dither_codes`.
    palette : array-like of shape (n_codes, channels)
        The starting palette, e.g. the K-Means codebook.
    method : bool, None or str, default=True
        The method the palette will be dithered with (see
        :func:`resolve_method`). With no dithering (``False``), the palette
        is returned as is.
    mask : array-like of shape (height, width), bool, optional
        Pixels where it is False are left out.
    srgb : bool, default=False
        Whether the pixels are sRGB levels (0..255), to be mixed in linear
        light.

    Returns
    -------
    ndarray of shape (n_codes, channels)
        Same dtype as ``palette`` (integer palettes are rounded and kept in
        their range). An entry no pixel uses stays where it was.

    Raises
    ------
    ValueError
        As :func:`dither_codes`.
    """
    given = np.asarray(palette)
    method = resolve_method(method)
    checked, _, checked_mask = _validate(pixels, given, mask)
    if method is None or checked.size == 0:
        return given.copy()
    step = 4 if len(given) >= _SPARSE_SAMPLE else 2
    sample = np.ascontiguousarray(checked[::step, ::step])
    if checked_mask is not None:
        checked_mask = np.ascontiguousarray(checked_mask[::step, ::step])
    if srgb:
        light = (
            srgb_to_linear(np.arange(256))[sample]
            if sample.dtype == np.uint8
            else srgb_to_linear(sample.astype(np.float64))
        )
    else:
        light = sample.astype(np.float64)

    def mixed(colors):
        colors = np.asarray(colors, np.float64)
        return srgb_to_linear(colors) if srgb else colors

    pixel_bounds = _dither.bounds(sample.reshape(-1, sample.shape[2]))
    n_pixels = sample.shape[0] * sample.shape[1]

    def judged(candidate):
        palette = candidate.astype(np.float64)
        search, lo, hi = _search(sample, palette, pixel_bounds, n_pixels)
        codes = np.zeros(sample.shape[:2], _code_dtype(len(candidate)))
        _diffuse(search, sample, codes, method, checked_mask, False, lo, hi)
        error = _dither.blurred_error(
            light, codes, mixed(candidate), checked_mask, _POINTWISE
        )
        return error, candidate, codes

    starts = [refine_palette(sample, given, method=method, mask=checked_mask)]
    if len(given) >= _BOTH_STARTS:
        starts.append(given)
    error, start, codes = min(map(judged, starts), key=lambda judged: judged[0])
    if len(given) > _FIT_MAX_CODES:
        return start
    fitted = _fit_through_blur(light, codes, mixed(start), checked_mask)
    if srgb:
        fitted = linear_to_srgb(np.clip(fitted, 0.0, 1.0))
    else:
        fitted = np.clip(fitted, *pixel_bounds)
    fitted = _like(fitted, given)
    return fitted if judged(fitted)[0] < error else start


def dither_image(pixels, palette, *, method=True, mask=None, srgb=False):
    """Dither an image with a palette fitted to how it looks once dithered.

    :func:`fit_palette`, then :func:`dither_codes`: what ``dither=True``
    does with the K-Means codebook when an image is encoded.

    Parameters
    ----------
    pixels : array-like of shape (height, width, channels)
        The image, as for :func:`dither_codes`.
    palette : array-like of shape (n_codes, channels)
        The starting palette, e.g. the K-Means codebook.
    method : bool, None or str, default=True
        See :func:`resolve_method`. With no dithering (``False``), the
        palette as given and the nearest codes.
    mask : array-like of shape (height, width), bool, optional
        Pixels where it is False are left out and get code 0.
    srgb : bool, default=False
        Whether the pixels are sRGB levels (0..255), to be mixed in linear
        light.

    Returns
    -------
    palette : ndarray of shape (n_codes, channels)
        As :func:`fit_palette` returns it.
    codes : ndarray of shape (height, width)
        The image dithered with it, as :func:`dither_codes` gives.

    Raises
    ------
    ValueError
        As :func:`dither_codes`.
    """
    fitted = fit_palette(pixels, palette, method=method, mask=mask, srgb=srgb)
    return fitted, dither_codes(pixels, fitted, method=method, mask=mask)


# --- Helpers --------------------------------------------------------------------


def _like(palette, given):
    """``palette`` in the dtype of ``given``, rounded and clipped if integer."""
    if given.dtype.kind in "iub":
        info = np.iinfo(given.dtype) if given.dtype.kind != "b" else None
        palette = np.rint(palette)
        if info is not None:
            palette = np.clip(palette, info.min, info.max)
    return palette.astype(given.dtype)


def _fit_through_blur(light, codes, palette, mask):
    """The palette nearest ``light`` through the blur, for these codes.

    Minimises the blurred squared error plus ``_POINTWISE`` times the plain
    one; an entry no pixel has stays where it is.
    """
    gram, blurred, counts, sums = _dither.blurred_sums(light, codes, mask, len(palette))
    used = np.flatnonzero(counts)
    fitted = palette.copy()
    system = np.ascontiguousarray(gram[np.ix_(used, used)])
    system[np.diag_indices(len(used))] += _POINTWISE * counts[used]
    solution = np.ascontiguousarray(blurred[used] + _POINTWISE * sums[used])
    if _dither.solve_positive(system, solution):
        fitted[used] = solution
    return fitted


def _code_dtype(n_codes):
    return np.uint8 if n_codes <= 256 else np.uint16


def _validate(pixels, palette, mask):
    """Pixels as uint8/float32/float64, palette as float64, mask as uint8."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or not 1 <= pixels.shape[2] <= 4:
        raise ValueError(
            "pixels must have shape (height, width, channels) with 1 to 4 "
            f"channels; got shape {pixels.shape}."
        )
    if pixels.dtype.kind not in "biuf":
        raise ValueError(f"pixels must be numbers; got dtype {pixels.dtype}.")
    if pixels.dtype not in (np.uint8, np.float32, np.float64):
        pixels = pixels.astype(np.float64)
    if pixels.dtype.kind == "f" and not np.all(np.isfinite(pixels)):
        raise ValueError("pixels must be finite; got NaN or infinity.")
    palette = np.asarray(palette)
    if palette.ndim != 2 or palette.shape[1] != pixels.shape[2]:
        raise ValueError(
            f"palette must have shape (n_codes, {pixels.shape[2]}) to match the "
            f"pixels' channels; got shape {palette.shape}."
        )
    if not 1 <= len(palette) <= 65536:
        raise ValueError(f"palette must have 1 to 65,536 entries; got {len(palette)}.")
    if palette.dtype.kind not in "biuf":
        raise ValueError(f"palette must be numbers; got dtype {palette.dtype}.")
    palette = palette.astype(np.float64)
    if not np.all(np.isfinite(palette)):
        raise ValueError("palette must be finite; got NaN or infinity.")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != pixels.shape[:2]:
            raise ValueError(
                f"mask must have shape {pixels.shape[:2]} (height, width); "
                f"got shape {mask.shape}."
            )
        mask = np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
    return np.ascontiguousarray(pixels), palette, mask


def _search(pixels, palette, pixel_bounds=None, n_queries=0):
    """The nearest-entry search over the box of pixels and palette, widened.

    ``pixel_bounds``: the pixels' least and greatest values, if known;
    ``n_queries``: about how many values will be searched, if few (a
    coarser grid then: fewer candidate lists to make).
    """
    if pixels.size:
        if pixel_bounds is None:
            pixel_bounds = _dither.bounds(pixels.reshape(-1, pixels.shape[2]))
        lo, hi = pixel_bounds
        lo, hi = (
            np.minimum(lo, palette.min(axis=0)),
            np.maximum(hi, palette.max(axis=0)),
        )
    else:
        lo, hi = palette.min(axis=0), palette.max(axis=0)
    widening = _MARGIN * max(float(np.max(hi - lo)), 1e-12)
    lo, hi = lo - widening, hi + widening
    return _dither.NearestSearch(palette, lo, hi, n_queries), lo, hi


def _diffuse(search, pixels, codes, method, mask, alpha, lo, hi, targets=None):
    """Run the compiled diffusion; ``targets`` receives each adjusted value."""
    adaptive = method == "adaptive"
    color_range = float(np.max(hi - lo)) / (1 + 2 * _MARGIN)
    _dither.diffuse(
        search,
        pixels,
        codes,
        mask,
        _LEVEL if adaptive else 1.0,
        _MAX_ERROR * color_range if adaptive else np.inf,
        adaptive,
        bool(alpha),
        targets,
    )


def _weighted_colors(pixels, mask, alpha):
    """Mean color and weight of each occupied bin of the color range."""
    channels = pixels.shape[2]
    flat = pixels.reshape(-1, channels)
    if mask is not None:
        mask = mask.reshape(-1)
        if not mask.any():
            return np.zeros((0, channels)), np.zeros((0, channels))
        lo, hi = _dither.bounds(flat[mask.astype(bool)])
    else:
        lo, hi = _dither.bounds(flat)
    scale = _BINS / np.maximum(hi - lo, 1e-12)
    counts, sums, opacity = _dither.bin_sums(flat, mask, lo, scale, _BINS, alpha)
    occupied = np.flatnonzero(counts)
    counts, sums, opacity = counts[occupied], sums[occupied], opacity[occupied]
    # Color channels weigh by opacity, alpha itself does not.
    totals = np.repeat(counts[:, None], channels, axis=1)
    if alpha:
        totals[:, :-1] = opacity[:, None]
    colors = sums / np.maximum(totals, 1e-300)
    return colors, totals * counts[:, None] ** -_FLATTEN
