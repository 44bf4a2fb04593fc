"""The former name of :mod:`skvq.imaging`; its public names still import from here."""

from .imaging import (
    QuantizedImage,
    color_mode,
    image_to_array,
    quantize_image,
    reconstruct,
    segment_image,
)

__all__ = [
    "QuantizedImage",
    "color_mode",
    "image_to_array",
    "quantize_image",
    "reconstruct",
    "segment_image",
]
