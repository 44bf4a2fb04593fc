"""Exact bit accounting for vector-quantized images.

The counts follow the tutorial skvq grew from: each of the ``N`` samples is
stored as the index of its codebook row, ``ceil(log2 K)`` bits each, and the
codebook as ``K * D`` values of ``depth`` bits. Everything is computed with
integers, so the numbers are exact for any image size.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

__all__ = ["BitReport", "bits_per_code"]


def bits_per_code(n_codes: int) -> int:
    """Number of bits needed to store one index into a codebook of ``n_codes``.

    This is ``ceil(log2(n_codes))``, computed exactly with integers: 0 when
    ``n_codes == 1`` (a single color needs no index), 1 for 2 codes, 8 for
    256 codes and 9 for 257.

    Parameters
    ----------
    n_codes : int
        Number of codebook entries, at least 1.

    Returns
    -------
    int
        Bits per index.

    Examples
    --------
    >>> [bits_per_code(k) for k in (1, 2, 3, 16, 256, 257)]
    [0, 1, 2, 4, 8, 9]
    """
    n_codes = int(n_codes)
    if n_codes < 1:
        raise ValueError(f"n_codes must be at least 1, got {n_codes}.")
    return (n_codes - 1).bit_length()


def _check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


@dataclass(frozen=True)
class BitReport:
    """Size of an image before and after vector quantization, in bits.

    Displays as the tutorial's table: as text with ``print(report)`` and as
    HTML in Jupyter.

    Parameters
    ----------
    n_samples : int
        Number of samples ``N`` (pixels of an image, summed over its frames).
    n_features : int
        Values per sample ``D`` (3 for RGB, 4 for RGBA, 1 for grayscale).
    n_codes : int
        Codebook size ``K``.
    depth : int, default=8
        Bits per value in the original data and in the codebook.

    Attributes
    ----------
    bits_per_code : int
        ``ceil(log2 K)``, 0 when ``K == 1``.
    index_bits : int
        ``N * ceil(log2 K)``: the compressed image (the codes).
    codebook_bits : int
        ``K * D * depth``: the centroids.
    compressed_bits : int
        ``index_bits + codebook_bits``.
    original_bits : int
        ``N * D * depth``.
    ratio : float
        ``compressed_bits / original_bits``.
    bits_per_pixel : float
        ``compressed_bits / N``.

    Examples
    --------
    The tutorial's worked example, 100 x 100 RGB pixels with 16 colors:

    >>> report = BitReport(n_samples=100 * 100, n_features=3, n_codes=16)
    >>> report.index_bits, report.codebook_bits, report.compressed_bits
    (40000, 384, 40384)
    >>> round(report.ratio, 3)
    0.168
    """

    n_samples: int
    n_features: int
    n_codes: int
    depth: int = 8

    def __post_init__(self):
        object.__setattr__(
            self, "n_samples", _check_count("n_samples", self.n_samples, 0)
        )
        object.__setattr__(
            self, "n_features", _check_count("n_features", self.n_features, 1)
        )
        object.__setattr__(self, "n_codes", _check_count("n_codes", self.n_codes, 1))
        object.__setattr__(self, "depth", _check_count("depth", self.depth, 1))

    @property
    def bits_per_code(self) -> int:
        return bits_per_code(self.n_codes)

    @property
    def _bits_per_code_text(self) -> str:
        plural = "" if self.bits_per_code == 1 else "s"
        return f"{self.bits_per_code} bit{plural} per code"

    @property
    def index_bits(self) -> int:
        return self.n_samples * self.bits_per_code

    @property
    def codebook_bits(self) -> int:
        return self.n_codes * self.n_features * self.depth

    @property
    def compressed_bits(self) -> int:
        return self.index_bits + self.codebook_bits

    @property
    def original_bits(self) -> int:
        return self.n_samples * self.n_features * self.depth

    @property
    def ratio(self) -> float:
        if self.original_bits == 0:
            return float("nan")
        return self.compressed_bits / self.original_bits

    @property
    def bits_per_pixel(self) -> float:
        if self.n_samples == 0:
            return float("nan")
        return self.compressed_bits / self.n_samples

    def rows(self) -> list[tuple[str, str]]:
        """The table as ``(label, value)`` pairs, values formatted for display.

        Returns
        -------
        list of tuple of str
            Original size, compressed image size, centroids size, compressed
            size and compression ratio.
        """
        return [
            ("Original size", f"{self.original_bits:,} bits"),
            ("Compressed image size", f"{self.index_bits:,} bits"),
            ("Centroids size", f"{self.codebook_bits:,} bits"),
            ("Compressed size", f"{self.compressed_bits:,} bits"),
            ("Compression ratio", f"{self.ratio:.4f} ({self.ratio:.1%})"),
        ]

    def __str__(self) -> str:
        rows = self.rows()
        width = max(len(label) for label, _ in rows)
        vwidth = max(len(value) for _, value in rows)
        title = (
            f"{self.n_samples:,} samples x {self.n_features} values, "
            f"K = {self.n_codes:,} ({self._bits_per_code_text})"
        )
        lines = [title]
        lines += [f"{label:<{width}}  {value:>{vwidth}}" for label, value in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = "".join(
            f"<tr><th style='text-align:left'>{escape(label)}</th>"
            f"<td style='text-align:right'>{escape(value)}</td></tr>"
            for label, value in self.rows()
        )
        caption = escape(
            f"{self.n_samples:,} samples x {self.n_features} values, "
            f"K = {self.n_codes:,} ({self._bits_per_code_text})"
        )
        return (
            f"<table class='skvq-bit-report'><caption>{caption}</caption>"
            f"<tbody>{body}</tbody></table>"
        )
