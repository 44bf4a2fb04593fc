"""skvq: image compression by K-Means vector quantization.

A scikit-learn transformer (:class:`VectorQuantizer`), exact bit accounting
(:class:`BitReport`), one-call image helpers (:func:`quantize_image`) and the
``.vq`` image format, registered with Pillow on import.

The estimator and the image helpers load scikit-learn, so they are imported
on first use: ``import skvq`` followed by ``Image.open("x.vq")``, or the
``skvq`` command's help, stays fast.
"""

import importlib
from pathlib import Path

__version__ = "0.1.0"


def _missing_extensions_error(error):
    """A clear ImportError when the compiled modules were never built here.

    Started in the source tree (``python -m skvq`` or a ``python`` run from
    the checkout), Python imports skvq from that directory, not from
    site-packages; without an in-place build it has no compiled modules and
    the import would fail with a misleading "circular import" message.
    """
    from importlib.machinery import EXTENSION_SUFFIXES

    package = Path(__file__).parent
    built = any(
        path.name.endswith(suffix)
        for path in package.rglob("*")
        for suffix in EXTENSION_SUFFIXES
    )
    if built:
        return error
    return ImportError(
        f"skvq's compiled modules are missing from {package}: this looks like a "
        "source tree that was never built. Build it in place with "
        "'pip install -e .' from its root, or start Python from another "
        "directory to use an installed skvq."
    )


try:
    from .bits import BitReport, bits_per_code
    from .io import save
    from .pillow_plugin import register  # importing registers the .vq format
except ImportError as error:
    raise _missing_extensions_error(error) from error

# Public names of submodules that import scikit-learn, loaded on first access.
_LAZY = {
    "VectorQuantizer": "quantizer",
    "code_dtype": "quantizer",
    "QuantizedImage": "imaging",
    "quantize_image": "imaging",
    "segment_image": "imaging",
}

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


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
