"""The VectorQuantizer estimator: K-Means vector quantization as a transformer."""

from __future__ import annotations

import contextlib
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    validate_data,
)

from ._engine import kmeans as _kmeans
from ._engine import progress
from ._engine.colors import levels
from ._engine.stream import HistogramStream, MiniBatchStream
from .bits import BitReport

__all__ = ["VectorQuantizer", "code_dtype"]

_MAX_CODES = 2**32
# Where the API reference pages (docs/api.rst's autosummary) are published.
_API_DOCS = "https://skvq.readthedocs.io/en/stable/gen_modules"


def code_dtype(n_codes: int) -> np.dtype:
    """Smallest unsigned integer dtype that holds the codes 0 to ``n_codes - 1``.

    Parameters
    ----------
    n_codes : int
        Codebook size, at least 1.

    Returns
    -------
    numpy.dtype
        ``uint8`` up to 256 codes, ``uint16`` up to 65,536, ``uint32`` beyond.

    Examples
    --------
    >>> code_dtype(256), code_dtype(257)
    (dtype('uint8'), dtype('uint16'))
    """
    if n_codes < 1:
        raise ValueError(f"n_codes must be at least 1, got {n_codes}.")
    return np.min_scalar_type(n_codes - 1)


class VectorQuantizer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Vector quantization by K-Means: samples become indices into a codebook.

    ``fit`` learns a codebook of ``n_clusters`` rows with Lloyd's algorithm
    and k-means++ seeding, the algorithm of scikit-learn's
    :class:`~sklearn.cluster.KMeans` (same seeds for the same
    ``random_state``), in a compiled loop that skips work without changing
    any assignment, and ends, as Lloyd's algorithm does, at a fixed point.
    ``transform`` replaces each sample by the index of its nearest codebook
    row and ``inverse_transform`` maps indices back to rows. For an image,
    the samples are its pixels (``image.reshape(-1, n_channels)``).

    K-Means runs on the distinct rows of ``X`` weighted by their counts:
    the same objective and the same fixed points as K-Means on every sample,
    much faster on images, whose colors repeat. When the samples repeat
    (the pixels of an image of up to four channels, as 8-bit, 16-bit or
    float levels, up to 4.2 million), the k-means++ seeds are those
    :class:`~sklearn.cluster.KMeans` draws for the same ``random_state``
    (drawn over the samples in their order, with exact integer sums), and
    Lloyd's passes over the distinct colors continue KMeans's run to a fixed
    point: the inertia is KMeans's or lower, up to exact ties that the two
    break differently. A histogram given as distinct rows with
    ``sample_weight`` (as :func:`skvq.quantize_image`, the encoders and
    collection fits pass it), larger images, and ``init="random"`` are
    seeded and first converged on coarse color histograms, 1.2 to 2.4
    times faster, with seeds of their own; exact passes over the distinct
    colors finish the job. Float or 16-bit images fit as their 8-bit form
    does (the same seeds and passes, on their integer codes).
    Big float data whose values are no image levels (at least 1.5 million
    rows of float32 or float64, at most four features) are seeded on a
    histogram of their rows (the weighted mean row of each cell of a fine
    grid), and the Lloyd passes then read the rows where they are: no
    float64 copy, about 5 bytes a row besides the data, and a fixed point
    all the same. ``transform`` and ``score`` read them the same way.
    Data of more than four features that are not levels are fitted by
    :class:`~sklearn.cluster.KMeans` itself (its seeds and its passes,
    which are faster there than a search grid; on the CPUs no other
    process is using), continued to a fixed point with ``tol=0``.

    Parameters
    ----------
    n_clusters : int, default=16
        Codebook size ``K``. If ``X`` has fewer distinct rows, the codebook
        is those rows and quantization is lossless (a warning says so).
    init : {"k-means++", "random"} or array-like of shape (n_clusters, n_features), \
            default="k-means++"
        Seeding of the centroids; an array gives the initial centroids
        themselves, e.g. a codebook fitted before (a warm start: Lloyd's
        iterations run from them over all the distinct rows).
    n_init : "auto" or int, default="auto"
        Number of seedings tried; the one with the lowest inertia is kept.
        ``"auto"`` is 1 for k-means++ or an array ``init`` and 10 for random,
        as in KMeans. When the seeds are drawn on coarse color histograms
        (see above), the seedings are compared there.
    max_iter : int, default=300
        Maximum number of Lloyd iterations per seeding and per histogram
        resolution.
    tol : float, default=0.0
        Relative tolerance on the centroid shift to declare convergence: the
        iteration stops when the squared shifts summed over the centroids are
        at most ``tol`` times the mean variance of the features, as in
        KMeans. The default ``tol=0`` iterates until no sample changes
        cluster (or ``max_iter``): the codebook is then a fixed point of
        Lloyd's iteration, each codeword the mean of its samples and each
        sample at its nearest codeword. With ``tol=0``, the passes after
        the seeding are over-relaxed (a codeword that keeps heading the
        same way steps 1.8 times the way to its mean) until no sample
        moves, then plain passes land on the fixed point: a third to a half
        fewer passes than plain Lloyd.
    random_state : int, RandomState instance or None, default=None
        Seed of the centroid initialization. Pass an int for reproducible
        codebooks.
    algorithm : {"lloyd", "hartigan", "breathing"}, default="lloyd"
        How hard to look for a low inertia. "lloyd": Lloyd's iterations from
        the seeds to their first fixed point, as KMeans. "hartigan": from
        there, Hartigan and Wong's single-sample moves: a sample goes to
        another cluster whenever that lowers the inertia once both means
        have moved, which Lloyd's iteration does not see (it only moves a
        sample to a nearer codeword), until no such move is left. It pays
        on high-dimensional data with small clusters: ``load_digits`` at
        K = 256 ends 5 to 6 % lower, K = 64 1 to 2 %, for about 1.5 to 3
        times the time of a "lloyd" fit; images gain a few thousandths of a
        dB. "breathing": breathing k-means (Fritzke, 2021) from Lloyd's
        fixed point: a few codewords are added where the error is largest
        and as many of the least useful removed, each time followed by
        Lloyd's iterations to a fixed point, for as long as that lowers the
        inertia. Each ends at a fixed point whose inertia is never above the
        "lloyd" fit's. On the sample photos, "breathing" reaches a PSNR a
        few hundredths of a dB above the best of ten KMeans runs
        (``KMeans(n_init=10)``) at K = 16 to 256, for 3 to 8 times the time
        of a "lloyd" fit and a small fraction of ``KMeans(n_init=10)``'s
        (``docs/quality.md``). Both are ignored by
        :meth:`partial_fit`.
    verbose : int, default=0
        Verbosity, as in KMeans: 0 prints nothing; 1 prints a line on
        stdout for each seeding and each run of Lloyd passes (on a
        histogram or on the distinct rows) with the seconds elapsed, its
        passes and inertia; 2 also prints progress within each run.

    Attributes
    ----------
    codebook_ : ndarray of shape (n_codes, `n_features_in_`)
        The centroids. ``n_codes == n_clusters`` unless the data has fewer
        distinct rows.
    n_codes_ : int
        Number of rows of ``codebook_``.
    inertia_ : float
        Sum of squared distances of the training samples to their codeword,
        weighted by ``sample_weight``.
    n_iter_ : int
        Lloyd iterations (over-relaxed ones included) run by the last, exact
        stage, over all the distinct rows of ``X`` (with
        ``algorithm="breathing"``, those of every breath too; with
        ``"hartigan"``, its passes over the samples too).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.

    See Also
    --------
    sklearn.cluster.KMeans : The same clustering on every sample.
    skvq.quantize_image : Quantize an image in one call.

    Examples
    --------
    >>> import numpy as np
    >>> from skvq import VectorQuantizer
    >>> X = np.array([[0, 0, 0], [0, 0, 2], [255, 255, 255], [253, 255, 255]])
    >>> vq = VectorQuantizer(n_clusters=2, random_state=0).fit(X)
    >>> codes = vq.transform(X)
    >>> codes.dtype, codes.shape
    (dtype('uint8'), (4, 1))
    >>> vq.inverse_transform(codes)[[0, 2]]
    array([[  0.,   0.,   1.],
           [254., 255., 255.]])
    """

    # The documentation link of the HTML repr in Jupyter, as scikit-learn's.
    _doc_link_module = "skvq"
    _doc_link_template = _API_DOCS + "/skvq.{estimator_name}.html"

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, _MAX_CODES, closed="both")],
        "init": [StrOptions({"k-means++", "random"}), "array-like"],
        "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "algorithm": [StrOptions({"lloyd", "hartigan", "breathing"})],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_clusters=16,
        *,
        init="k-means++",
        n_init="auto",
        max_iter=300,
        tol=0.0,
        random_state=None,
        algorithm="lloyd",
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.algorithm = algorithm
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Learn the codebook from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples, e.g. the pixels of one or more images.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the K-Means objective.

        Returns
        -------
        self : VectorQuantizer
            The fitted estimator.
        """
        codebook, inertia, n_iter = self._fit_codebook(X, sample_weight)
        self.__dict__.pop("_stream", None)
        self._set_codebook(codebook, inertia, n_iter)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, sample_weight=None):
        """Learn the codebook from ``X`` and return the codes of ``X``.

        Same result as ``fit(X).transform(X)``, faster: the codes are those
        of the fit's last assignment, not a new search.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples, e.g. the pixels of one or more images.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample in the K-Means objective.

        Returns
        -------
        codes : ndarray of shape (n_samples, 1)
            Codes in the smallest unsigned dtype that holds ``n_codes_ - 1``
            (see :func:`code_dtype`).
        """
        codebook, inertia, n_iter, codes = self._fit_codebook(
            X, sample_weight, return_codes=True
        )
        self.__dict__.pop("_stream", None)
        self._set_codebook(codebook, inertia, n_iter)
        return codes.astype(code_dtype(self.n_codes_), copy=False).reshape(-1, 1)

    def _fit_codebook(self, X, sample_weight, return_codes=False):
        X = validate_data(self, X, dtype="numeric", ensure_all_finite=True)
        X = _as_supported_dtype(X)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        with self._reporting():
            return _kmeans.fit_codebook(
                X,
                sample_weight,
                self.n_clusters,
                init=self._checked_init(X.shape[1]),
                n_init=self.n_init,
                max_iter=self.max_iter,
                tol=self.tol,
                random_state=self.random_state,
                algorithm=self.algorithm,
                return_codes=return_codes,
            )

    def _reporting(self):
        """Progress of the fit on stdout, as ``verbose`` asks.

        Without ``verbose``, whoever reports the work around the fit (the
        command line) keeps hearing it.
        """
        if not self.verbose:
            return contextlib.nullcontext()
        name = type(self).__name__
        return progress.reporting(
            lambda line, _: print(f"[{name}] {line}", flush=True), self.verbose
        )

    def _checked_init(self, n_features):
        """``init``, an array of initial centroids checked as KMeans does."""
        if isinstance(self.init, str):
            return self.init
        init = check_array(self.init, dtype=np.float64, copy=True, order="C")
        if init.shape != (self.n_clusters, n_features):
            raise ValueError(
                f"init has shape {init.shape}; initial centroids must have shape "
                f"(n_clusters, n_features) = ({self.n_clusters}, {n_features})."
            )
        if self.n_init not in ("auto", 1):
            warnings.warn(
                "Explicit initial centroids passed (init is an array): performing "
                f"only one initialization instead of n_init={self.n_init}.",
                RuntimeWarning,
                stacklevel=4,
            )
        return init

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the codebook with one more chunk of samples.

        Streams a collection that does not fit in memory: call it once per
        chunk (an image, a tile, a frame). The state kept between calls does
        not grow with the number of samples:

        - Images (a first chunk of ``uint8``, or of at most four features
          whose values are levels: ``uint16``, floats holding integers,
          floats in [0, 1] at steps of 1/255 or 1/65535): the
          weighted distinct rows seen so far, in practice the number of
          distinct colors. Each call refits the codebook on all of them, so
          after the last chunk the codebook is exactly that of ``fit`` on
          the distinct rows of the whole set weighted by their counts,
          whatever the order of the chunks (``fit`` on the samples
          themselves draws its k-means++ seeds over them in their order,
          up to ``2**22`` samples). Each call costs
          about one ``fit`` on the colors seen so far: pass large chunks
          (whole images, not rows).
        - Other data: mini-batch K-Means updates, by scikit-learn's
          :class:`~sklearn.cluster.MiniBatchKMeans`, an approximation.

        Each call fits with the parameters it finds (after
        ``set_params(n_clusters=32)``, the next codebook has 32 rows; the
        mini-batches then start again from a new seeding). A call to
        :meth:`fit` discards the stream; the first ``partial_fit`` after
        ``fit`` starts a new one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One chunk of samples.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each sample.

        Returns
        -------
        self : VectorQuantizer
            The updated estimator.
        """
        first_call = not hasattr(self, "_stream")
        X = validate_data(self, X, dtype="numeric", reset=first_call)
        X = _as_supported_dtype(X)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if first_call:
            images = X.dtype == np.uint8 or levels(X) is not None
            self._stream = HistogramStream() if images else MiniBatchStream()
        with self._reporting():
            # The parameters of this call: set_params between calls holds.
            codebook, inertia, n_iter = self._stream.update(
                X, sample_weight, self.get_params()
            )
        self._set_codebook(codebook, inertia, n_iter, "the samples seen so far have")
        return self

    def _set_codebook(self, codebook, inertia, n_iter, samples="X has"):
        if len(codebook) < self.n_clusters:
            warnings.warn(
                f"{samples} {len(codebook)} distinct rows, fewer than "
                f"n_clusters={self.n_clusters}: the codebook is those rows and "
                "quantization is lossless.",
                ConvergenceWarning,
                stacklevel=4,
            )
        self.codebook_ = codebook
        self.n_codes_ = len(codebook)
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        self._n_features_out = 1

    def transform(self, X):
        """Replace each sample by the index of its nearest codebook row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to encode.

        Returns
        -------
        codes : ndarray of shape (n_samples, 1)
            Codes in the smallest unsigned dtype that holds ``n_codes_ - 1``
            (see :func:`code_dtype`).
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype="numeric", reset=False)
        codes, _ = _kmeans.assign(
            _as_supported_dtype(X), self.codebook_, return_distance=False
        )
        return codes.astype(code_dtype(self.n_codes_)).reshape(-1, 1)

    def inverse_transform(self, X):
        """Map codes back to their codebook rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, 1) or (n_samples,)
            Integer codes, as returned by :meth:`transform`.

        Returns
        -------
        ndarray of shape (n_samples, `n_features_in_`)
            The codebook row of each code.
        """
        check_is_fitted(self)
        codes = _check_codes(X, self.n_codes_)
        return self.codebook_[codes]

    def score(self, X, y=None, sample_weight=None):
        """Negative mean squared distortion per sample (higher is better).

        The distortion of a sample is the squared Euclidean distance to its
        codeword, summed over features.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples to quantize.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the mean.

        Returns
        -------
        float
            ``-mean(||x - codebook_[code(x)]||**2)``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype="numeric", reset=False)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        total = _kmeans.inertia(_as_supported_dtype(X), self.codebook_, sample_weight)
        weight = len(X) if sample_weight is None else sample_weight.sum()
        return -float(total / weight)

    def bit_report(self, n_samples, depth=8):
        """Bit accounting for ``n_samples`` encoded with this codebook.

        Parameters
        ----------
        n_samples : int
            Number of samples (pixels) encoded.
        depth : int, default=8
            Bits per value of the original data and of the stored codebook.

        Returns
        -------
        BitReport
            The tutorial's table for these samples.
        """
        check_is_fitted(self)
        return BitReport(
            n_samples=n_samples,
            n_features=self.n_features_in_,
            n_codes=self.n_codes_,
            depth=depth,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []
        return tags


def _as_supported_dtype(X):
    """Keep the dtypes images come in (uint8, uint16, float32, float64): each
    has a fast path; everything else as float64."""
    if X.dtype in (np.uint8, np.uint16, np.float32, np.float64):
        return X
    return np.asarray(X, dtype=np.float64)


def _check_codes(X, n_codes):
    if hasattr(X, "to_numpy"):  # pandas output of transform
        X = X.to_numpy()
    codes = np.asarray(X)
    if codes.ndim == 2 and codes.shape[1] == 1:
        codes = codes[:, 0]
    if codes.ndim != 1:
        raise ValueError(
            "codes must have shape (n_samples, 1) or (n_samples,), "
            f"got shape {codes.shape}."
        )
    if codes.dtype.kind not in "iu":
        if codes.dtype.kind == "f" and np.all(np.isfinite(codes)):
            if np.any(codes != np.round(codes)):
                raise ValueError("codes must be integers.")
            codes = codes.astype(np.int64)
        else:
            raise ValueError(f"codes must be integers, got dtype {codes.dtype}.")
    if codes.size and (codes.min() < 0 or codes.max() >= n_codes):
        raise ValueError(
            f"codes must lie in [0, {n_codes - 1}], got values in "
            f"[{codes.min()}, {codes.max()}]."
        )
    return codes
