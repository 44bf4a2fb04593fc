"""The compiled colour gather of :mod:`skvq.image`, now in :mod:`skvq._engine`."""

from ._engine import _colors, threads

__all__ = ["take_colors"]


def take_colors(palette, codes):
    """``palette[codes]``: the color of each code, on threads for many codes."""
    n_threads = threads.for_work(len(codes), threads.COLORS)
    return _colors.take_colors(palette, codes, n_threads)
