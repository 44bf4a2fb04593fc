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

import numpy as np

from .bits import BitReport

__all__ = [
    "bits_per_pixel",
    "neg_bits_per_pixel_scorer",
    "psnr",
    "psnr_scorer",
    "smallest_k_reaching",
]


def psnr(original, reconstructed, *, data_range=255.0) -> float:
    """Peak signal-to-noise ratio in decibels.

    ``10 * log10(data_range**2 / MSE)``, the MSE taken over every value
    (pixels and channels). Identical inputs give ``inf``.

    Parameters
    ----------
    original, reconstructed : array-like of the same shape
    data_range : float, default=255.0
        Peak value (255 for 8-bit images).

    Returns
    -------
    float
    """
    original = np.asarray(original, dtype=np.float64)
    reconstructed = np.asarray(reconstructed, dtype=np.float64)
    if original.shape != reconstructed.shape:
        raise ValueError(
            f"Shapes differ: original {original.shape}, reconstructed "
            f"{reconstructed.shape}."
        )
    mse = float(np.mean((original - reconstructed) ** 2))
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(data_range**2 / mse))


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


def psnr_scorer(estimator, X, y=None) -> float:
    """Scorer: PSNR (dB) of ``X`` quantized by a fitted VectorQuantizer.

    Works with a :class:`VectorQuantizer` or a pipeline ending in one (PSNR
    is then measured on what the quantizer sees). Pixel values are assumed
    to span 0..255.

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
    quantizer = _quantizer(estimator)
    X = np.asarray(_pipeline_input(estimator, X), dtype=np.float64)
    X_hat = quantizer.inverse_transform(quantizer.transform(X))
    return psnr(X, X_hat)


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


def smallest_k_reaching(min_psnr, *, psnr_key="psnr", param="n_clusters"):
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

    Returns
    -------
    callable
        ``refit(cv_results_) -> index``. If no K reaches the target, the
        candidate with the highest PSNR is chosen.
    """

    def refit(cv_results):
        scores = np.asarray(cv_results[f"mean_test_{psnr_key}"], dtype=float)
        keys = [key for key in cv_results["params"][0] if key.endswith(param)]
        if len(keys) != 1:
            raise ValueError(
                f"Expected exactly one grid parameter ending in {param!r}, "
                f"found {keys}."
            )
        ks = np.array([params[keys[0]] for params in cv_results["params"]])
        reaching = np.flatnonzero(scores >= min_psnr)
        if reaching.size == 0:
            return int(np.nanargmax(scores))
        return int(reaching[np.argmin(ks[reaching])])

    refit.__name__ = f"smallest_k_reaching_{min_psnr:g}dB"
    return refit
