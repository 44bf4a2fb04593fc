"""The compiled colour gather of :mod:`skvq.image`, now in :mod:`skvq._engine`."""

from ._engine._lloyd import take_colors

__all__ = ["take_colors"]
