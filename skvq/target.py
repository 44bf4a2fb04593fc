"""The number of colors for a target: the fewest that reach a PSNR, the most
that fit in a file size.

pngquant's ``--quality`` uses the fewest colors that reach a quality;
scikit-learn users run a grid search over ``n_clusters``. Here one search
does it, on the stored result: codebook rounded to integers, dithered when
dithering is asked for, file size from the coding that will be written.

The search does not fit every candidate from scratch. Codebooks of nearby
sizes are related: from a fitted codebook, splitting the clusters of largest
error grows it and removing the codewords of least utility shrinks it, and
Lloyd's iterations from there reach a fixed point in a fraction of a fit
(:mod:`skvq._engine.refine`). PSNR is close to linear in ``log K`` and file
size to a power of ``K``: a secant through the results so far predicts the
next size to try, and the search ends when the answer is bracketed to 3.5 %.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from . import encoder

__all__ = ["NClustersChoice", "Trial", "choose_n_clusters"]

# Codebooks hold at most this many colors (the .vq format's limit).
MAX_CLUSTERS = 65536
# The search stops when the answer is known to within this fraction of K.
_TOLERANCE = 0.035
# Tries aim this fraction of K past where the model puts the target.
_AIM = 0.015
# Sizes within this fraction of a fitted one start from it (split or
# removed codewords); farther ones are fitted from scratch.
_WARM_REACH = 0.25
# Below this many colors a fit from scratch, on coarse color histograms
# first, costs less than Lloyd's iterations over every distinct color from
# a smaller codebook with split clusters (coffee, 18 to 19 colors: 0.29 s
# against 0.07 s). Removing a few codewords from a larger one costs 0.1 to
# 0.9 of a fit from scratch at any size.
_WARM_MIN = 48
# The model, per doubling of K. PSNR gains 0.19 dB less each doubling
# (about 2.8 dB from K = 16 to 32 on photos, 2.0 dB from 256 to 512;
# benchmarks/bench_quality.py); a file grows by about 25 % (the log of its
# size by 0.24) per doubling.
_PSNR_CURVATURE = -0.19
_SIZE_SLOPE = 0.24
# Before a second size is tried, the PSNR gained by doubling K is estimated
# from the clusters of the first: splitting a cluster in two along its
# principal axis removes 2/pi of its variance along that axis (the halves of
# a normal distribution), and Lloyd's passes after the splits gain about 1.4
# times as many dB as the splits alone (1.30 to 1.52 on ten photos of
# scikit-learn and scikit-image, K = 16 to 32). The slope of photos varies
# from 2 to 3.3 dB per doubling: a single typical one sent the second try
# up to 30 % past the answer.
_SPLIT_GAIN = 2 / math.pi
_LLOYD_OVER_SPLITS = 1.4
# That estimate is trusted within these slopes only (2.06 to 3.28 on the ten
# photos; on scikit-image's synthetic color wheel it gave 1.3 where a
# doubling gained 2.9),
_FIRST_SLOPES = (2.0, 4.0)
# and from a single size tried, the model reaches at most this many doublings
# away: the curvature of a photo's curve is not that of every image.
_FIRST_REACH = 4
# Slopes are clamped to these ranges: a model fitted on two noisy points
# must not send the next try to the ends of the range.
_PSNR_SLOPES = (0.5, 10.0)
_SIZE_SLOPES = (0.02, 1.5)
# At most this many sizes are tried before the best so far is taken.
_MAX_TRIALS = 40
# The first size tried: cheap to fit, and a good base for the model.
_FIRST_TRY = 16


@dataclass(frozen=True)
class Trial:
    """One number of colors the search tried.

    Attributes
    ----------
    n_clusters : int
    psnr : float
        PSNR of the stored image, in dB (``inf`` when lossless).
    n_bytes : int or None
        File size, when the target is one.
    start : str
        How the codebook was fitted: "seeds" (from scratch), "split" or
        "removed" (from the codebook of the nearest size tried before).
    """

    n_clusters: int
    psnr: float
    n_bytes: int | None
    start: str


@dataclass(frozen=True)
class NClustersChoice:
    """The result of :func:`choose_n_clusters`.

    Attributes
    ----------
    n_clusters : int
        The number of colors chosen.
    quantizer : VectorQuantizer
        The fitted quantizer whose codebook reaches the target: pass it as
        ``codebook=`` to :func:`skvq.quantize_image` or ``Image.save`` (with
        the same ``dither`` and ``color_space``) for exactly the image the
        search measured. With alpha and fully transparent pixels, its
        ``n_clusters`` is one less: one color is reserved for them.
    psnr : float
        PSNR of the stored image, in dB, every channel.
    n_bytes : int or None
        Size of the .vq file, when ``max_bytes`` was given.
    trials : tuple of Trial
        Every number of colors tried, in order.
    """

    n_clusters: int
    quantizer: object
    psnr: float
    n_bytes: int | None
    trials: tuple


def choose_n_clusters(
    image,
    *,
    psnr=None,
    max_bytes=None,
    dither=False,
    color_space="rgb",
    coding="auto",
    **params,
) -> NClustersChoice:
    """The fewest colors that reach a PSNR, or the most that fit in a size.

    Parameters
    ----------
    image : PIL.Image.Image, path or array-like
        See :func:`skvq.imaging.image_to_array`.
    psnr : float, optional
        Target PSNR in dB of the stored image (codebook rounded to
        integers, dithered if ``dither``), over every value, alpha included
        (as :attr:`skvq.QuantizedImage.psnr`): the smallest ``n_clusters``
        whose result reaches it.
    max_bytes : int, optional
        Largest .vq file, in bytes: the largest ``n_clusters`` whose file
        fits (the best quality; its file is at least 90 % of
        ``max_bytes`` unless no number of colors gives a file that size:
        sizes jump with K on some images, and the lossless file may be
        smaller).
    dither, color_space
        As for :func:`skvq.quantize_image`.
    coding : str, default="auto"
        The index coding of the file (``max_bytes`` only), as for
        ``Image.save``.
    **params
        Other :class:`~skvq.VectorQuantizer` parameters, e.g.
        ``random_state`` or ``algorithm``.

    Returns
    -------
    NClustersChoice
        The number of colors, the fitted quantizer and what was tried.

    Raises
    ------
    ValueError
        For a target no number of colors reaches (the message gives the
        best reachable and the number of colors it takes), for both or
        neither of ``psnr`` and ``max_bytes``, for ``n_clusters`` (or
        ``k``, ``codebook``) given with a target, and for bad options.

    Examples
    --------
    >>> from sklearn.datasets import load_sample_image
    >>> from skvq.target import choose_n_clusters
    >>> china = load_sample_image("china.jpg")
    >>> choice = choose_n_clusters(china, psnr=33, random_state=0)
    >>> choice.psnr >= 33
    True
    """
    from . import format as vq
    from .imaging import _image_array

    check_target(psnr=psnr, max_bytes=max_bytes)
    for given in ("n_clusters", "k", "codebook"):
        if given in params:
            name = "psnr" if psnr is not None else "max_bytes"
            raise ValueError(
                f"{given}= and {name}= contradict each other: {name}= chooses the "
                "number of colors and fits the codebook; give one of them."
            )
    encoder.check_options(dither=dither, color_space=color_space, **params)
    array, _ = _image_array(image)
    n_channels = array.shape[2]
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(n_channels)
    if mode is None:
        raise ValueError(f"An image has 1 to 4 channels; got {n_channels}.")
    if coding not in (*vq.CODINGS, "auto"):
        raise ValueError(
            f"coding must be one of {', '.join(map(repr, [*vq.CODINGS, 'auto']))}, "
            f"got {coding!r}."
        )
    height, width = array.shape[:2]

    def file_bytes(encoding):
        return vq.encode_vq(
            width, height, mode, encoding.codebook, encoding.codes, coding=coding
        )

    fitting = encoder.fitting(
        array[np.newaxis],
        alpha=mode.endswith("A"),
        dither=dither,
        color_space=color_space,
        **params,
    )
    result = search(fitting, psnr=psnr, max_bytes=max_bytes, file_bytes=file_bytes)
    return NClustersChoice(
        n_clusters=result.n_clusters,
        quantizer=result.encoding.quantizer,
        psnr=result.psnr,
        n_bytes=result.n_bytes,
        trials=result.trials,
    )


def check_target(*, psnr=None, max_bytes=None):
    """Check a target: exactly one of ``psnr`` (dB) and ``max_bytes``."""
    if (psnr is None) == (max_bytes is None):
        raise ValueError(
            "Give one target: psnr (the fewest colors reaching it) or max_bytes "
            "(the most colors whose file fits)."
            + ("" if psnr is None else " Both were given.")
        )
    if psnr is not None and (
        isinstance(psnr, bool)
        or not isinstance(psnr, Real)
        or not math.isfinite(psnr)
        or psnr <= 0
    ):
        raise ValueError(f"psnr must be a positive number of dB, got {psnr!r}.")
    if max_bytes is not None and (
        isinstance(max_bytes, bool) or not isinstance(max_bytes, Integral)
    ):
        raise ValueError(
            f"max_bytes must be a whole number of bytes, got {max_bytes!r}."
        )
    if max_bytes is not None and max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {max_bytes!r}.")


@dataclass(frozen=True)
class SearchResult:
    """What :func:`search` found.

    ``data`` holds the bytes of the file (``max_bytes`` only), ``encoding``
    the codebook and codes of the chosen number of colors.
    """

    n_clusters: int
    encoding: encoder.Encoding
    psnr: float
    n_bytes: int | None
    data: bytes | None
    trials: tuple


@dataclass
class _Point:
    """A fitted number of colors and its result."""

    quantizer: object
    labels: np.ndarray
    result: encoder.FitResult
    psnr: float
    data: bytes | None


def search(
    fitting, *, psnr=None, max_bytes=None, file_bytes=None, max_clusters=MAX_CLUSTERS
):
    """The number of colors for a target (see :func:`choose_n_clusters`).

    Parameters
    ----------
    fitting : skvq.encoder.Fitting
        The frames, ready to fit.
    psnr : float, optional
    max_bytes : int, optional
        One of the two.
    file_bytes : callable, optional
        The bytes of the file of an :class:`~skvq.encoder.Encoding`;
        needed for ``max_bytes``.
    max_clusters : int, default=65536
        Most colors the file holds.

    Returns
    -------
    SearchResult
    """
    check_target(psnr=psnr, max_bytes=max_bytes)
    return _Search(fitting, psnr, max_bytes, file_bytes, max_clusters).run()


class _Search:
    def __init__(self, fitting, psnr, max_bytes, file_bytes, max_clusters):
        self.fitting = fitting
        self.psnr = psnr
        self.max_bytes = max_bytes
        self.file_bytes = file_bytes
        self.points = {}
        self.trials = []
        # The bracket before the last try, and which end of it was kept how
        # many times in a row (file sizes only).
        self._last = None
        self._kept = None
        n_pixels_values = fitting.pixels.size
        self.n_values = n_pixels_values
        # Every distinct color its own codeword: the result is then lossless
        # (or as near as rounding allows), and more colors add nothing.
        features, _, reserve = fitting.fitted_rows(2)
        self.max_k = max(1, min(max_clusters, len(features) + reserve))

    # -- measuring -----------------------------------------------------------

    def value(self, k):
        """The scale the target is on: PSNR in dB, or the log of the size."""
        point = self.at(k)
        if self.psnr is not None:
            return point.psnr
        return math.log(len(point.data))

    def passes(self, k):
        point = self.at(k)
        if self.psnr is not None:
            return point.psnr >= self.psnr
        return len(point.data) <= self.max_bytes

    def at(self, k):
        """The fitted point for ``k`` colors, from a nearby one fitted."""
        if k in self.points:
            return self.points[k]
        # The nearest size that can start it, fewer colors removed first.
        near = sorted(
            (j for j in self.points if self._warm_from(j, k)),
            key=lambda j: (j < k, abs(math.log(j / k))),
        )
        with warnings.catch_warnings():
            # Fewer distinct colors than k: the codebook is those colors.
            warnings.filterwarnings("ignore", message="X has .* distinct rows")
            if near:
                start, (quantizer, labels) = self._warm(k, self.points[near[0]])
            else:
                start, (quantizer, labels) = "seeds", self.fitting.fit(k)
        result = self.fitting.result(quantizer, labels)
        squared_error = result.squared_error
        psnr = (
            math.inf
            if squared_error == 0
            else 10 * math.log10(255.0**2 * self.n_values / squared_error)
        )
        data = None
        if self.max_bytes is not None:
            data = self.file_bytes(result.encoding)
        self.points[k] = point = _Point(quantizer, labels, result, psnr, data)
        self.trials.append(
            Trial(k, psnr, None if data is None else len(data), start=start)
        )
        return point

    def _warm_from(self, near, k):
        """Whether ``k`` colors start from the fit of ``near``: removing a
        few codewords always pays, splitting only at larger sizes."""
        if abs(k - near) > _WARM_REACH * near:
            return False
        return k < near or min(k, near) >= _WARM_MIN

    def _warm(self, k, point):
        """Fit ``k`` colors from the codebook of ``point``: split or remove."""
        from ._engine import refine

        features, weights, reserve = self.fitting.fitted_rows(k)
        old_reserve = self.fitting.fitted_rows(len(point.result.centroids))[2]
        if reserve != old_reserve:  # K = 1 fits transparent pixels too
            return "seeds", self.fitting.fit(k)
        centers, labels = point.quantizer.codebook_, point.labels
        n_fitted = k - reserve
        if n_fitted > len(centers):
            init = refine.split(
                features, weights, centers, labels, n_fitted - len(centers)
            )
            start = "split"
        else:
            init = refine.remove(
                features, weights, centers, labels, len(centers) - n_fitted
            )
            start = "removed"
        if len(init) != n_fitted:  # too few clusters to split
            return "seeds", self.fitting.fit(k)
        return start, self.fitting.fit(k, init=init)

    # -- searching -----------------------------------------------------------

    def run(self):
        k = min(_FIRST_TRY, self.max_k)
        while True:
            self.at(k)
            answer = self._answer()
            if answer is not None:
                return self._result(answer)
            if len(self.trials) >= _MAX_TRIALS:  # pragma: no cover - a safeguard
                return self._result(self._best())
            k = self._next()

    def _best(self):
        """The best size tried that meets the target, None if none does.

        The fewest colors reaching the PSNR, or the most whose file fits.
        """
        good = [k for k in self.points if self.passes(k)]
        if not good:
            return None
        return min(good) if self.psnr is not None else max(good)

    def _bound(self, best):
        """The tried size nearest to ``best`` on the side that fails the
        target (fewer colors for a PSNR, more for a size), None if none."""
        fewer = self.psnr is not None
        if best is None:
            failed = list(self.points)
        else:
            failed = [
                k for k in self.points if not self.passes(k) and (k < best) == fewer
            ]
        if not failed:
            return None
        return max(failed) if fewer else min(failed)

    def _answer(self):
        """The answer once known to within the tolerance, else None."""
        best = self._best()
        bound = self._bound(best)
        if best is None:
            # Nothing meets the target yet: is it out of reach?
            extreme = self.max_k if self.psnr is not None else 1
            if bound == extreme:
                self._unreachable(extreme)
            return None
        step = max(1, _TOLERANCE * best)
        if self.psnr is not None and best == 1:
            return best
        if self.max_bytes is not None and best == self.max_k:
            return best
        if bound is not None and abs(best - bound) <= step:
            return best
        # Where the model puts the crossing, from the best size's value; a
        # bracket of one color is cheap to check, so the model never decides
        # it.
        if _TOLERANCE * best < 1 or not math.isfinite(self.value(best)):
            return None
        crossing = self._predict(best, self._target_value())
        if self.psnr is not None and crossing > best - step:
            return best
        if self.max_bytes is not None and crossing < best + step:
            return best
        return None

    def _next(self):
        """The next size to try: where the model puts the target, a little on
        the side that meets it, inside the bracket when there is one."""
        best = self._best()
        bound = self._bound(best)
        low, high = (bound, best) if self.psnr is not None else (best, bound)
        if self.max_bytes is not None and best is not None and bound is not None:
            k = self._regula_falsi(low, high)
        else:
            start = best if best is not None else bound
            if math.isfinite(self.value(start)):
                k = self._predict(start, self._target_value())
            else:  # lossless: fewer colors
                k = start / 2
        # Aim a little past the target, to meet it. Growing towards a PSNR,
        # at least one color past: a size that meets it is then shrunk from
        # its own codebook (cheap), where growing again would start from
        # scratch below _WARM_MIN colors.
        if self.psnr is None:
            k = round(k * (1 - _AIM))
        elif best is None or k > best:
            k = round(max(k * (1 + _AIM), k + 1))
        else:
            k = round(k * (1 + _AIM))
        low = 0 if low is None else low
        high = self.max_k + 1 if high is None else high
        k = int(np.clip(k, low + 1, high - 1))
        if k in self.points:  # the model insists on a size tried: halve the gap
            k = (low + high) // 2
        return k

    def _regula_falsi(self, low, high):
        """Where the log of the file size crosses the budget's, on the line
        through the bracket's ends in ``log K``.

        File sizes can jump with K (a photo of few colors, say), where a
        slope says little: the line is redrawn through the bracket, and an
        end kept several times in a row counts half as far from the target
        each time (the Illinois method), so that the bracket shrinks from
        both sides.
        """
        kept = None
        if self._last is not None:  # one end moved: the other was kept
            end = 0 if low == self._last[0] else 1
            count = self._kept[1] + 1 if self._kept and self._kept[0] == end else 1
            kept = (end, count)
        self._last, self._kept = (low, high), kept
        target = self._target_value()
        below = self.value(low) - target
        above = self.value(high) - target
        if kept is not None and kept[1] > 1:
            scale = 0.5 ** (kept[1] - 1)
            if kept[0] == 0:
                below *= scale
            else:
                above *= scale
        fraction = -below / (above - below) if above > below else 0.5
        x_low, x_high = math.log2(low), math.log2(high)
        return 2 ** (x_low + fraction * (x_high - x_low))

    def _predict(self, k, target):
        """Where the model puts ``target``, from the size ``k`` tried.

        The model is the target's scale (PSNR, or the log of the file size)
        against ``log2 K``: its slope at ``k`` is the secant to the nearest
        other size tried, corrected for the curvature typical of photos
        (PSNR gains less per doubling as K grows), or a typical slope when
        no other size was tried. Returns a real number of colors.
        """
        x = math.log2(k)
        value = self.value(k)
        curvature = _PSNR_CURVATURE if self.psnr is not None else 0.0
        lo, hi = _PSNR_SLOPES if self.psnr is not None else _SIZE_SLOPES
        others = [j for j in self.points if j != k and math.isfinite(self.value(j))]
        reach = 20
        if others:
            j = min(others, key=lambda j: abs(math.log(j / k)))
            secant = (value - self.value(j)) / (x - math.log2(j))
            slope = secant + curvature * (x - math.log2(j)) / 2
        elif self.psnr is not None:
            slope, reach = self._doubling_gain(k), _FIRST_REACH
        else:
            slope = _SIZE_SLOPE
        slope = float(np.clip(slope, lo, hi))
        # The mean slope over the step depends on its length: a few rounds.
        step = (target - value) / slope
        for _ in range(4):
            mean = float(np.clip(slope + curvature * step / 2, lo, hi))
            step = (target - value) / mean
        return 2 ** (x + float(np.clip(step, -reach, reach)))

    def _doubling_gain(self, k):
        """PSNR (dB) that doubling ``k`` colors gains, estimated from the
        clusters of the fit of ``k``: see ``_LLOYD_OVER_SPLITS``."""
        point = self.at(k)
        features, weights, _ = self.fitting.fitted_rows(k)
        centers, labels = point.quantizer.codebook_, point.labels
        offsets = features - centers[labels]
        n_features = offsets.shape[1]
        # The weighted scatter matrix of every cluster, one entry at a time.
        scatter = np.empty((len(centers), n_features, n_features))
        for i in range(n_features):
            for j in range(i, n_features):
                scatter[:, i, j] = scatter[:, j, i] = np.bincount(
                    labels,
                    weights * offsets[:, i] * offsets[:, j],
                    minlength=len(centers),
                )
        principal = np.linalg.eigvalsh(scatter)[:, -1].sum()
        inertia = float(np.trace(scatter, axis1=1, axis2=2).sum())
        if inertia <= 0:
            return _FIRST_SLOPES[1]
        removed = min(_SPLIT_GAIN * principal / inertia, 0.99)
        doubling = -_LLOYD_OVER_SPLITS * 10 * math.log10(1 - removed)
        # That is the mean slope from k to 2k colors; the model's is at k.
        return float(np.clip(doubling - _PSNR_CURVATURE / 2, *_FIRST_SLOPES))

    def _target_value(self):
        if self.psnr is not None:
            return self.psnr
        return math.log(self.max_bytes)

    # -- answers -------------------------------------------------------------

    def _unreachable(self, k):
        point = self.at(k)
        if self.psnr is not None:
            raise ValueError(
                f"No number of colors reaches a PSNR of {self.psnr:g} dB: the most, "
                f"k={k:,}, gives {point.psnr:.2f} dB."
            )
        raise ValueError(
            f"No .vq file of this image fits in {self.max_bytes:,} bytes: the "
            f"smallest, with k=1, takes {len(point.data):,} bytes."
        )

    def _result(self, k):
        point = self.at(k)
        return SearchResult(
            n_clusters=k,
            encoding=point.result.encoding,
            psnr=point.psnr,
            n_bytes=None if point.data is None else len(point.data),
            data=point.data,
            trials=tuple(self.trials),
        )
