"""Encode and decode many files in parallel with joblib.

The work goes through :class:`joblib.Parallel` without naming a backend, so
whatever :func:`joblib.parallel_config` selects runs it: local processes by
default, or a dask cluster::

    from dask.distributed import Client
    import joblib

    client = Client("tcp://scheduler:8786")
    with joblib.parallel_config(backend="dask"):
        results = encode_files(pairs, k=64)

Each file is written atomically (a temporary file renamed into place), and
one failing file never stops the others: its error comes back in its
:class:`FileResult`.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._engine import progress
from .imaging import UnsupportedModeError
from .io import save

__all__ = [
    "FileResult",
    "decode_files",
    "encode_files",
    "expand_inputs",
    "fit_codebook",
    "plan_outputs",
]


@dataclass(frozen=True)
class FileResult:
    """What happened to one file of a batch.

    Attributes
    ----------
    source : str
        The input file.
    target : str
        The output file.
    error : str or None
        A one-line description of the failure, None on success.
    """

    source: str
    target: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True if the file was written."""
        return self.error is None


def _image_extensions():
    """File extensions Pillow can open, lowercase with the dot (``.png``)."""
    from PIL import Image

    Image.init()
    return {ext.lower() for ext in Image.registered_extensions()}


def expand_inputs(patterns, extensions=None):
    """Files named by paths, directories and glob patterns, in a stable order.

    Parameters
    ----------
    patterns : iterable of str
        File paths (kept even if missing, so that the batch reports them),
        directories (their files whose extension is in ``extensions``, not
        recursive) and glob patterns.
    extensions : set of str, optional
        Extensions taken from directories; every format Pillow reads by
        default.

    Returns
    -------
    list of str
        Each file once.

    Raises
    ------
    ValueError
        If a directory or a pattern matches no file.
    """
    if extensions is None:
        extensions = _image_extensions()
    files = []
    for pattern in map(os.fspath, patterns):
        if os.path.isdir(pattern):
            found = sorted(
                entry.path
                for entry in os.scandir(pattern)
                if entry.is_file() and Path(entry.name).suffix.lower() in extensions
            )
        elif glob.has_magic(pattern):
            found = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
        else:
            found = [pattern]
        if not found:
            raise ValueError(f"{pattern}: no image files found")
        files.extend(found)
    return list(dict.fromkeys(files))


def plan_outputs(inputs, output_dir, suffix):
    """Pair each input with ``output_dir/<stem><suffix>``.

    Raises
    ------
    ValueError
        If two inputs would be written to the same file.
    """
    plan, claimed = [], {}
    for source in map(os.fspath, inputs):
        target = os.path.join(os.fspath(output_dir), Path(source).stem + suffix)
        if target in claimed:
            raise ValueError(
                f"{source} and {claimed[target]} would both be written to {target}"
            )
        claimed[target] = source
        plan.append((source, target))
    return plan


def encode_files(
    pairs, *, overwrite=False, n_jobs=None, progress=None, mode=None, **options
):
    """Compress images to .vq files in parallel.

    Parameters
    ----------
    pairs : iterable of (source, target)
        Input images (any format Pillow reads; all frames of animations are
        kept) and the .vq files to write.
    overwrite : bool, default=False
        Replace existing targets; otherwise they are reported as failures.
    n_jobs : int, optional
        Parallel jobs, as in :class:`joblib.Parallel`.
    progress : callable, optional
        Called with each :class:`FileResult` as it completes.
    mode : {"RGB", "RGBA", "L", "LA"}, optional
        Convert every image (every frame) to this mode first: the way to
        encode modes the .vq writer does not take, such as CMYK or 16-bit
        gray. By default images keep their mode.
    **options
        Options of the .vq writer (``k``, ``random_state``, ``coding``,
        ``dither``, ``color_space``, ...; see :mod:`skvq.pillow_plugin`).

    Returns
    -------
    list of FileResult
        In completion order.

    Raises
    ------
    ValueError
        For an unknown or invalid option, before any file is read.
    """
    from .pillow_plugin import _check_options

    _check_options(options)
    if mode not in (None, "RGB", "RGBA", "L", "LA"):
        raise ValueError(f"mode must be RGB, RGBA, L or LA, got {mode!r}.")
    return _run(_encode_file, pairs, (options, overwrite, mode), n_jobs, progress)


def decode_files(pairs, *, overwrite=False, n_jobs=None, progress=None):
    """Decompress .vq files to images whose format the target extension names.

    Parameters
    ----------
    pairs : iterable of (source, target)
        The .vq files and the images to write (``.png``, ``.tiff``, ...).
    overwrite : bool, default=False
        Replace existing targets; otherwise they are reported as failures.
    n_jobs : int, optional
        Parallel jobs, as in :class:`joblib.Parallel`.
    progress : callable, optional
        Called with each :class:`FileResult` as it completes.

    Returns
    -------
    list of FileResult
        In completion order.
    """
    return _run(_decode_file, pairs, (overwrite,), n_jobs, progress)


def fit_codebook(
    images,
    n_clusters=256,
    *,
    mode="RGB",
    keep_stream=False,
    n_jobs=None,
    progress=None,
    **params,
):
    """Fit one codebook on all the pixels of a collection of images.

    The codebook is exactly that of ``VectorQuantizer.fit`` on the
    collection's pixels concatenated (image after image, frame after
    frame), without holding a large collection's pixels together. Each
    image's color histogram (its distinct colors and their counts) is made
    in parallel, where the images are (joblib's active backend: local
    processes, or a dask cluster as for :func:`encode_files`), and the
    histograms add up to that of the whole collection. On more than
    ``2**22`` pixels (4.2 million) ``fit`` runs K-Means on exactly that
    histogram, and so does this function. On fewer, ``fit`` draws its
    k-means++ seeds over the pixels in their order, as scikit-learn's
    ``KMeans`` does: such a small collection is read once more, in order,
    and fitted as one array.

    Parameters
    ----------
    images : iterable of path or ndarray
        Image files (any format Pillow reads; every frame counts), or
        arrays of pixels of shape (n_pixels, n_channels) or (height, width,
        n_channels) in any dtype ``VectorQuantizer`` takes.
    n_clusters : int, default=256
        Number of colors.
    mode : {"RGB", "RGBA", "L", "LA"}, default="RGB"
        Mode image files are converted to (arrays are taken as they are).
    keep_stream : bool, default=False
        Keep the collection's histogram in the quantizer, so that
        :meth:`~skvq.VectorQuantizer.partial_fit` can add more images later
        (a pickled quantizer is then as large as the histogram, about a
        megabyte per 100,000 colors, instead of a few kilobytes).
    n_jobs : int, optional
        Parallel jobs, as in :class:`joblib.Parallel`.
    progress : callable, optional
        Called with the number of samples of each image as its histogram
        arrives.
    **params
        Other parameters of :class:`~skvq.VectorQuantizer` (``random_state``,
        ``init``, ``n_init``, ``max_iter``, ``tol``).

    Returns
    -------
    VectorQuantizer
        Fitted.
    """
    quantizer, _ = _fit_collection(
        images,
        n_clusters,
        mode=mode,
        keep_stream=keep_stream,
        n_jobs=n_jobs,
        progress=progress,
        **params,
    )
    return quantizer


def _fit_collection(
    images, n_clusters, *, mode, keep_stream, n_jobs, progress, **params
):
    """:func:`fit_codebook`, and the number of pixels it fitted."""
    from ._engine.kmeans import REPLAY_MAX_SAMPLES
    from ._engine.stream import HistogramStream
    from .quantizer import VectorQuantizer

    if mode not in ("RGB", "RGBA", "L", "LA"):
        raise ValueError(f"mode must be RGB, RGBA, L or LA, got {mode!r}.")
    kept = _KeptImages(REPLAY_MAX_SAMPLES)
    histogram = _collection_histogram(
        kept.record(images), mode=mode, n_jobs=n_jobs, progress=progress
    )
    quantizer = VectorQuantizer(n_clusters, **params)
    if histogram.n_samples > REPLAY_MAX_SAMPLES:
        fit = quantizer.partial_fit if keep_stream else quantizer.fit
        return fit(histogram.rows, sample_weight=histogram.weights), histogram.n_samples
    # The seeds of such a fit depend on the order of the pixels.
    quantizer.fit(np.concatenate(_pixels_in_order(kept.images, mode, n_jobs)))
    if keep_stream:
        # What partial_fit keeps of images: the histogram, for more chunks.
        quantizer._stream = HistogramStream(histogram)
    return quantizer, histogram.n_samples


class _KeptImages:
    """The images of a collection, as long as their arrays are small.

    Paths are kept (to be read again); arrays until they add up to more
    than ``limit`` pixels, then none: they are only needed for a
    collection of at most that many pixels.
    """

    def __init__(self, limit):
        self.images, self._limit, self._array_pixels = [], limit, 0

    def record(self, images):
        for image in images:
            if self.images is not None:
                if not isinstance(image, (str, os.PathLike)):
                    self._array_pixels += _array_pixels(image).shape[0]
                if self._array_pixels > self._limit:
                    self.images = None
                else:
                    self.images.append(image)
            yield image


def _collection_histogram(images, *, mode, n_jobs=None, progress=None):
    """The color histogram of all the images (see :func:`fit_codebook`)."""
    from joblib import Parallel, delayed

    from ._engine.histogram import Histogram

    parallel = Parallel(n_jobs=n_jobs, batch_size=1, return_as="generator_unordered")
    merged, pending = None, []
    for histogram in parallel(delayed(_histogram)(image, mode) for image in images):
        if progress is not None:
            progress(histogram.n_samples)
        channels = (histogram if merged is None else merged).rows.shape[1]
        if histogram.rows.shape[1] != channels:
            raise ValueError(
                f"the images have {channels} and {histogram.rows.shape[1]} channels: "
                "a codebook needs one number of channels"
            )
        pending.append(histogram)
        # Merge once the pending rows outnumber the merged ones: each row is
        # then merged a few times, not once per image.
        if merged is None or sum(len(h.rows) for h in pending) >= len(merged.rows):
            merged = Histogram.merge(([merged] if merged else []) + pending)
            pending = []
    if merged is None:
        raise ValueError("no images to fit a codebook on")
    return Histogram.merge([merged, *pending])


def _pixels_in_order(images, mode, n_jobs):
    """Each image's pixels, in the order of ``images`` (files read in parallel)."""
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs)(delayed(_pixels)(image, mode) for image in images)


def _array_pixels(image):
    """An array image's pixels as rows."""
    pixels = np.asarray(image)
    return pixels.reshape(-1, pixels.shape[-1]) if pixels.ndim == 3 else pixels


def _pixels(image, mode):
    """The pixels of one image file (every frame) or array, as rows."""
    return np.concatenate(list(_frames(image, mode)))


def _histogram(image, mode):
    """The histogram of one image file (every frame) or array of pixels."""
    from ._engine.histogram import Histogram

    return Histogram.merge(Histogram.of(frame) for frame in _frames(image, mode))


def _frames(image, mode):
    """The pixels of each frame of an image file, or of an array, as rows."""
    if not isinstance(image, (str, os.PathLike)):
        yield _array_pixels(image)
        return
    from PIL import Image, ImageSequence

    try:
        with Image.open(image) as opened:
            for frame in ImageSequence.Iterator(opened):
                yield np.asarray(frame.convert(mode)).reshape(-1, len(mode))
    except Exception as error:
        raise ValueError(f"{os.fspath(image)}: {_describe_error(error)}") from error


def _run(function, pairs, args, n_jobs, progress):
    from joblib import Parallel, delayed

    tasks = (delayed(_run_one)(function, src, dst, *args) for src, dst in pairs)
    results = []
    # One file per task: files take long enough that batching only unbalances.
    parallel = Parallel(n_jobs=n_jobs, batch_size=1, return_as="generator_unordered")
    for result in parallel(tasks):
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def _run_one(function, source, target, *args):
    from threadpoolctl import threadpool_limits

    source, target = os.fspath(source), os.fspath(target)
    try:
        # Files are the unit of parallelism: threads inside one file's work
        # would only oversubscribe the cores (loky limits them itself, dask
        # workers do not).
        with threadpool_limits(1):
            function(source, target, *args)
    except Exception as error:  # one bad file must not stop a batch
        return FileResult(source, target, _describe_error(error))
    return FileResult(source, target)


def _describe_error(error):
    """One line saying what went wrong, without a traceback."""
    message = str(error) or type(error).__name__
    if isinstance(error, FileExistsError):
        message += " (use --force to overwrite)"
    elif isinstance(error, UnsupportedModeError):
        message += " From the command line: skvq encode --mode RGB (or RGBA, L, LA)."
    elif isinstance(error, FileNotFoundError) and error.filename:
        message = f"no such file or directory: {error.filename}"
    return message


def _encode_file(source, target, options, overwrite, mode):
    from PIL import Image, ImageSequence

    with Image.open(source) as image:
        frames = [image]
        if getattr(image, "n_frames", 1) > 1:
            frames = [frame.copy() for frame in ImageSequence.Iterator(image)]
        if mode is not None:
            frames = [frame.convert(mode) for frame in frames]
        width, height = image.size
        progress.say(
            f"read {source}: {width:,} x {height:,} {frames[0].mode}, "
            f"{len(frames)} frame{'s' if len(frames) > 1 else ''}"
        )
        save(
            frames[0],
            target,
            overwrite=overwrite,
            format="VQ",
            save_all=len(frames) > 1,
            append_images=frames[1:],
            **options,
        )
    progress.say(f"wrote {target}: {os.path.getsize(target):,} bytes")


def _decode_file(source, target, overwrite):
    from PIL import Image

    from .format import read_header

    image_format = Image.registered_extensions().get(Path(target).suffix.lower())
    # Refuse anything but a .vq file, with the messages of ``skvq info``;
    # Pillow alone would convert any image it reads.
    with open(source, "rb") as fp:
        read_header(fp)
    with Image.open(source, formats=["VQ"]) as image:
        image.load()
        # Every frame where the target format can hold them (PNG can).
        save_all = getattr(image, "n_frames", 1) > 1 and image_format in Image.SAVE_ALL
        save(image, target, overwrite=overwrite, save_all=save_all)


def _remove_leftover_temporaries(targets):
    """Delete the temporary files of interrupted writes to ``targets``.

    Workers killed by an interrupt cannot clean up after themselves.
    """
    for target in targets:
        directory, name = os.path.split(os.path.abspath(target))
        pattern = os.path.join(glob.escape(directory), f".{name}.*.tmp")
        for leftover in glob.glob(pattern):
            Path(leftover).unlink(missing_ok=True)
