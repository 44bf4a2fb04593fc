"""Quality and rate metrics, and scorers for model selection over K.

Distortion always falls as K grows, so selecting K on
:meth:`VectorQuantizer.score` alone always picks the largest K. Score both
quality (:func:`psnr_scorer`) and rate (:func:`neg_bits_per_pixel_scorer`)
and let :func:`smallest_k_reaching` choose the cheapest K that is good
enough::

    search = GridSearchCV(
        pipeline,
        {"vq__n_clusters": [2, 4, 8, 16, 32]},
        scoring={"psnr": psnr_scorer, "bpp": neg_bits_per_pixel_scorer},
        refit=smallest_k_reaching(35.0),
    )
"""

from __future__ import annotations

import warnings

import numpy as np

from .bits import BitReport

__all__ = [
    "bits_per_pixel",
    "data_range_of",
    "make_psnr_scorer",
    "neg_bits_per_pixel_scorer",
    "psnr",
    "psnr_scorer",
    "smallest_k_reaching",
]


# Values per block of the squared error: temporaries of a few megabytes.
# Taken whole in float64, the error of a 24-megapixel image made 2.3 GB of
# them, and their page faults cost 0.2 to 2 s, more than the fit.
_ERROR_BLOCK = 1 << 18


def psnr(original, reconstructed, *, data_range=255.0) -> float:
    """Peak signal-to-noise ratio in decibels.

    ``10 * log10(data_range**2 / MSE)``, the MSE taken over every value
    (pixels and channels). Identical inputs give ``inf``. The squared
    errors are summed in float64 a block at a time, never as one array of
    the image's size (exactly for 8-bit images: every partial sum is then
    an integer below 2**53).

    Parameters
    ----------
    original, reconstructed : array-like of the same shape
    data_range : float, default=255.0
        Peak value (255 for 8-bit images).

    Returns
    -------
    float
    """
    original = np.asarray(original)
    reconstructed = np.asarray(reconstructed)
    if original.shape != reconstructed.shape:
        raise ValueError(
            f"Shapes differ: original {original.shape}, reconstructed "
            f"{reconstructed.shape}."
        )
    if original.size == 0:
        raise ValueError("psnr of empty images: there is no value to compare.")
    mse = _squared_error(original.reshape(-1), reconstructed.reshape(-1))
    mse /= original.size
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(data_range**2 / mse))


def _squared_error(original, reconstructed):
    """Sum of the squared differences of two flat arrays, block by block."""
    total = 0.0
    for start in range(0, len(original), _ERROR_BLOCK):
        block = slice(start, start + _ERROR_BLOCK)
        error = original[block].astype(np.float64) - reconstructed[block]
        total += float(np.einsum("i,i->", error, error))
    return total


def bits_per_pixel(n_samples, n_features, n_codes, depth=8) -> float:
    """Bits per sample of codes plus codebook, as the tutorial counts them.

    Parameters
    ----------
    n_samples, n_features, n_codes : int
        ``N``, ``D`` and ``K``.
    depth : int, default=8
        Bits per codebook value.

    Returns
    -------
    float
        ``(N * ceil(log2 K) + K * D * depth) / N``.
    """
    return BitReport(n_samples, n_features, n_codes, depth).bits_per_pixel


def _quantizer(estimator):
    """The last step of a pipeline, or the estimator itself."""
    return estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator


def _pipeline_input(estimator, X):
    """``X`` as the last step of a pipeline sees it."""
    if hasattr(estimator, "steps") and len(estimator.steps) > 1:
        return estimator[:-1].transform(X)
    return X


def data_range_of(X) -> float:
    """The peak value PSNR measures against, from the data itself.

    8- and 16-bit unsigned data spans its dtype (255 for uint8, 65,535 for
    uint16). Other data is judged by its values: values in [0, 1] are taken
    as images scaled to [0, 1] (range 1), integers in 0..255 as 8-bit values
    (range 255, e.g. pixels cast to float or int64). Anything else has no
    range to infer: give one to :func:`make_psnr_scorer`.

    Parameters
    ----------
    X : array-like

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the range cannot be inferred.
    """
    X = np.asarray(X)
    if X.dtype in (np.uint8, np.uint16):
        return float(np.iinfo(X.dtype).max)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"PSNR needs numbers, got data of dtype {X.dtype}.")
    if X.size == 0:
        raise ValueError("Cannot infer the data range of empty data.")
    low, high = float(np.min(X)), float(np.max(X))
    if 0 <= low and high <= 1:
        return 1.0
    if 0 <= low and high <= 255 and np.array_equal(X, np.round(X)):
        return 255.0
    raise ValueError(
        f"Cannot infer the data range of {X.dtype} data with values in "
        f"[{low:.4g}, {high:.4g}] (neither in [0, 1] nor integers in 0..255): "
        "PSNR needs it. Use skvq.metrics.make_psnr_scorer(data_range=...)."
    )


def _psnr_score(estimator, X, data_range):
    quantizer = _quantizer(estimator)
    X = _pipeline_input(estimator, X)
    peak = data_range_of(X) if data_range is None else data_range
    X = np.asarray(X, dtype=np.float64)
    if data_range is not None and X.size and np.ptp(X) > data_range:
        warnings.warn(
            f"The data spans {np.ptp(X):.4g}, more than data_range={data_range:g}: "
            "the PSNR overstates the quality.",
            UserWarning,
            stacklevel=3,
        )
    X_hat = quantizer.inverse_transform(quantizer.transform(X))
    return psnr(X, X_hat, data_range=peak)


def psnr_scorer(estimator, X, y=None) -> float:
    """Scorer: PSNR (dB) of ``X`` quantized by a fitted VectorQuantizer.

    Works with a :class:`VectorQuantizer` or a pipeline ending in one (PSNR
    is then measured on what the quantizer sees). The peak value comes from
    the data (:func:`data_range_of`): 255 for uint8 pixels, 1 for float
    images in [0, 1]; other float data (standardized features, say) raises
    ValueError: use :func:`make_psnr_scorer` with its ``data_range``.

    Parameters
    ----------
    estimator : VectorQuantizer or Pipeline
    X : array-like of shape (n_samples, n_features)
    y : None
        Ignored.

    Returns
    -------
    float
        PSNR in dB; higher is better.
    """
    return _psnr_score(estimator, X, None)


def make_psnr_scorer(data_range=None):
    """A PSNR scorer measuring against a given data range.

    Parameters
    ----------
    data_range : float, optional
        The peak value of the data, e.g. 1.0 for images in [0, 1] or the
        spread of standardized features. By default it is inferred from the
        scored data, as :func:`psnr_scorer` does.

    Returns
    -------
    callable
        ``scorer(estimator, X, y=None) -> float``, as :func:`psnr_scorer`.
        Data spanning more than ``data_range`` warns: its PSNR would
        overstate the quality.

    Examples
    --------
    >>> scorer = make_psnr_scorer(data_range=1.0)  # float images in [0, 1]
    """
    if data_range is None:
        return psnr_scorer
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range!r}.")

    def scorer(estimator, X, y=None):
        return _psnr_score(estimator, X, data_range)

    scorer.__name__ = f"psnr_scorer_range_{data_range:g}"
    return scorer


def neg_bits_per_pixel_scorer(estimator, X, y=None) -> float:
    """Scorer: minus the bits per sample to store ``X`` (higher is better).

    Parameters
    ----------
    estimator : VectorQuantizer or Pipeline
    X : array-like of shape (n_samples, n_features)
    y : None
        Ignored.

    Returns
    -------
    float
        ``-bits_per_pixel`` for ``len(X)`` samples and the fitted codebook.
    """
    quantizer = _quantizer(estimator)
    return -bits_per_pixel(len(X), quantizer.n_features_in_, quantizer.n_codes_)


def smallest_k_reaching(min_psnr, *, psnr_key="psnr", param="n_clusters", scoring=None):
    """A ``refit`` callable for GridSearchCV: the smallest K with enough PSNR.

    Parameters
    ----------
    min_psnr : float
        Target mean cross-validated PSNR in dB.
    psnr_key : str, default="psnr"
        Name of the PSNR scorer in the ``scoring`` dict.
    param : str, default="n_clusters"
        Suffix of the grid parameter holding K (``"vq__n_clusters"`` in a
        pipeline matches too).
    scoring : dict, optional
        The ``scoring`` dict given to GridSearchCV. GridSearchCV calls a
        ``refit`` callable only after every fit; with ``scoring`` given,
        a ``psnr_key`` missing from it raises here, before any fit.

    Returns
    -------
    callable
        ``refit(cv_results_) -> index``. If no K reaches the target, the
        candidate with the highest PSNR is chosen and a
        :class:`UserWarning` says so.

    Raises
    ------
    ValueError
        If ``scoring`` has no ``psnr_key``; when refitting, if the results
        hold no ``psnr_key`` scores or not exactly one grid parameter
        ending in ``param``.
    """
    if scoring is not None and psnr_key not in scoring:
        raise ValueError(
            f"psnr_key={psnr_key!r} is not a key of scoring; its keys are "
            f"{sorted(scoring)}."
        )

    def refit(cv_results):
        column = f"mean_test_{psnr_key}"
        if column not in cv_results:
            keys = sorted(
                key.removeprefix("mean_test_")
                for key in cv_results
                if key.startswith("mean_test_")
            )
            raise ValueError(
                f"No PSNR scores under psnr_key={psnr_key!r}; the scoring keys are "
                f"{keys}. Pass scoring=... to smallest_k_reaching to check this "
                "before the search fits."
            )
        scores = np.asarray(cv_results[column], dtype=float)
        keys = [key for key in cv_results["params"][0] if key.endswith(param)]
        if len(keys) != 1:
            raise ValueError(
                f"Expected exactly one grid parameter ending in {param!r}, "
                f"found {keys}."
            )
        ks = np.array([params[keys[0]] for params in cv_results["params"]])
        reaching = np.flatnonzero(scores >= min_psnr)
        if reaching.size == 0:
            best = int(np.nanargmax(scores))
            warnings.warn(
                f"No K reaches {min_psnr:g} dB; the best is {scores[best]:.2f} dB "
                f"at {keys[0]}={ks[best]}, which is refitted.",
                UserWarning,
                stacklevel=2,
            )
            return best
        return int(reaching[np.argmin(ks[reaching])])

    refit.__name__ = f"smallest_k_reaching_{min_psnr:g}dB"
    return refit
