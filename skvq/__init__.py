"""skvq: image compression by K-Means vector quantization.

A scikit-learn transformer (:class:`VectorQuantizer`), exact bit accounting
(:class:`BitReport`) and one-call image helpers (:func:`quantize_image`).
"""

from .bits import BitReport, bits_per_code
from .image import QuantizedImage, quantize_image, segment_image
from .io import save
from .pillow_plugin import register  # importing registers the .vq format
from .quantizer import VectorQuantizer, code_dtype

__version__ = "0.1.0"

__all__ = [
    "BitReport",
    "QuantizedImage",
    "VectorQuantizer",
    "__version__",
    "bits_per_code",
    "code_dtype",
    "quantize_image",
    "register",
    "save",
    "segment_image",
]
