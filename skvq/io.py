"""Saving images without ever leaving a half-written or clobbered file.

``Image.save(path)`` opens ``path`` for writing, truncating an existing
file, before the format's encoder runs: a bad option, a full disk or an
interrupt then leaves an empty or partial file where the original was. This
is Pillow's behavior for every format. :func:`save` writes to a temporary
file beside ``path`` instead and renames it into place only once the whole
image is written.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from ._atomic import atomic_write

# Save options of the VQ format that other formats would silently ignore.
_TARGET_OPTIONS = ("psnr", "max_bytes")

__all__ = ["save"]


def save(image: Image.Image, path, *, overwrite=False, format=None, **params):
    """Save an image to ``path`` atomically: the whole file or nothing.

    The safe replacement for ``image.save(path, ...)``: if saving fails for
    any reason (an invalid option, a disk error, ``KeyboardInterrupt``),
    ``path`` is left exactly as it was and no temporary file remains.

    Parameters
    ----------
    image : PIL.Image.Image
        The image to save.
    path : str or os.PathLike
        The file to write.
    overwrite : bool, default=False
        Replace an existing file (only once the new one is complete).
        Without it an existing ``path`` raises :class:`FileExistsError`, as
        ``skvq encode`` does without ``--force``.
    format : str, optional
        Pillow format name ("VQ", "PNG", ...); by default from the file
        extension, as in :meth:`PIL.Image.Image.save`.
    **params
        Save options of the format, as for :meth:`PIL.Image.Image.save`:
        for .vq files ``k``, ``random_state``, ``codebook``, ``save_all``,
        ``append_images``, ... (see :mod:`skvq.pillow_plugin`); instead of
        ``k``, ``psnr=38`` for the fewest colors reaching 38 dB or
        ``max_bytes=100_000`` for the most colors whose file fits.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If the extension names no format, or an option is invalid (``psnr``
        or ``max_bytes`` for a format other than VQ, which would ignore them).
    OSError
        If writing fails.

    Examples
    --------
    >>> with Image.open("photo.png") as image:  # doctest: +SKIP
    ...     skvq.save(image, "photo.vq", k=16, overwrite=True)
    ...     skvq.save(image, "photo-38db.vq", psnr=38)
    """
    path = os.fspath(path)
    if format is None:
        extension = Path(path).suffix.lower()
        format = Image.registered_extensions().get(extension)
        if format is None:
            raise ValueError(f"unknown file extension: {extension!r}")
    targets = sorted(set(params) & set(_TARGET_OPTIONS))
    if targets and format.upper() != "VQ":
        raise ValueError(
            f"{' and '.join(targets)} choose the colors of a .vq file; the "
            f"{format} format would ignore them."
        )
    with atomic_write(path, overwrite=overwrite) as fp:
        image.save(fp, format=format, **params)
