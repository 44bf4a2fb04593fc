"""Write files all at once or not at all."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path, *, overwrite=False):
    """Open a temporary file beside ``path`` that becomes ``path`` on success.

    The data goes to a hidden temporary file in the same directory, which is
    flushed to disk and then renamed over ``path`` only if the block ends
    without an exception. An interrupted or failed write therefore never
    leaves a half-written ``path`` nor damages an existing one.

    Parameters
    ----------
    path : str or os.PathLike
        The final file.
    overwrite : bool, default=False
        Replace an existing ``path``. Without it, an existing file raises
        :class:`FileExistsError`, checked again at the moment of the rename
        so that a file created meanwhile is not clobbered either.

    Yields
    ------
    file object
        Opened for binary writing.
    """
    path = os.fspath(path)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(f"{path} already exists")
    directory, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):
        # Else the error would name the temporary file, not the directory.
        raise FileNotFoundError(errno.ENOENT, "no such directory", directory)
    fd, tmp = _create_temporary(directory, name)
    try:
        with os.fdopen(fd, "wb") as fp:
            yield fp
            fp.flush()
            os.fsync(fp.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _rename_without_clobbering(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _create_temporary(directory, name):
    """A new file ``.<name>.<random>.tmp`` in ``directory``, open for writing.

    Not :func:`tempfile.mkstemp`: its files are private (mode 0600), and the
    final file should get the permissions ``open()`` would give it (0666
    minus the umask, applied here by the system).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # a name taken by another writer: draw again
            continue


def _rename_without_clobbering(src, dst):
    # link() fails if dst appeared since the check above; rename() would not.
    try:
        os.link(src, dst)
    except FileExistsError:
        raise FileExistsError(f"{dst} already exists") from None
    except OSError:  # a file system without hard links
        if os.path.lexists(dst):
            raise FileExistsError(f"{dst} already exists") from None
        os.rename(src, dst)
        return
    os.unlink(src)
