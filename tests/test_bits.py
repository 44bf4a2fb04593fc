import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from skvq import BitReport, bits_per_code


def test_tutorial_hestain_example_k2():
    # 227 x 303 RGB image compressed to K = 2 colors.
    report = BitReport(n_samples=227 * 303, n_features=3, n_codes=2)
    assert report.original_bits == 1_650_744
    assert report.index_bits == 68_781
    assert report.codebook_bits == 48
    assert report.compressed_bits == 68_829
    assert round(report.ratio, 2) == 0.04


def test_tutorial_100x100_example_k16():
    report = BitReport(n_samples=100 * 100, n_features=3, n_codes=16)
    assert report.original_bits == 240_000
    assert report.index_bits == 40_000
    assert report.codebook_bits == 384
    assert report.compressed_bits == 40_384
    assert f"{report.ratio:.1%}" == "16.8%"


@pytest.mark.parametrize(
    ("n_codes", "expected"),
    [(1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (16, 4), (17, 5), (256, 8), (257, 9)],
)
def test_bits_per_code_examples(n_codes, expected):
    assert bits_per_code(n_codes) == expected


def ceil_log2(n_codes):
    """The smallest b with 2**b >= K: the oracle, independent of skvq.bits."""
    bits = 0
    while 2**bits < n_codes:
        bits += 1
    return bits


@given(st.integers(min_value=1, max_value=2**64))
@example(2**53 + 1)  # float log2 rounds it down to 53; the exact answer is 54
@example(2**53)
@example(2**64 + 1)
def test_bits_per_code_is_ceil_log2(n_codes):
    bits = bits_per_code(n_codes)
    # The smallest b with 2**b >= K, i.e. ceil(log2 K) without float rounding.
    assert 2**bits >= n_codes
    assert bits == 0 or 2 ** (bits - 1) < n_codes
    assert bits == ceil_log2(n_codes)
    if n_codes < 2**50:  # where float log2 is exact enough to compare
        assert bits == math.ceil(math.log2(n_codes))


@given(
    n_samples=st.integers(0, 10**12),
    n_features=st.integers(1, 16),
    n_codes=st.integers(1, 2**20),
    depth=st.sampled_from([1, 8, 16]),
)
@example(n_samples=10**12, n_features=3, n_codes=2**53 + 1, depth=8)
@example(n_samples=3, n_features=1, n_codes=2**64 + 1, depth=16)
def test_report_formulas(n_samples, n_features, n_codes, depth):
    report = BitReport(n_samples, n_features, n_codes, depth)
    bits = ceil_log2(n_codes)
    assert report.bits_per_code == bits
    assert report.index_bits == n_samples * bits
    assert report.codebook_bits == n_codes * n_features * depth
    assert report.compressed_bits == n_samples * bits + n_codes * n_features * depth
    assert report.original_bits == n_samples * n_features * depth
    if n_samples:
        assert report.ratio == pytest.approx(
            report.compressed_bits / report.original_bits
        )
        assert report.bits_per_pixel == pytest.approx(
            report.compressed_bits / n_samples
        )
    else:
        assert math.isnan(report.ratio)


def test_text_table_has_the_tutorial_rows():
    text = str(BitReport(227 * 303, 3, 2))
    lines = text.splitlines()
    assert lines[1].startswith("Original size") and lines[1].endswith("1,650,744 bits")
    assert lines[2].startswith("Compressed image size")
    assert lines[2].endswith("68,781 bits")
    assert lines[3].startswith("Centroids size") and lines[3].endswith("48 bits")
    assert lines[4].startswith("Compressed size") and lines[4].endswith("68,829 bits")
    assert lines[5].startswith("Compression ratio") and "4.2%" in lines[5]


def test_html_table_has_the_tutorial_rows():
    html = BitReport(100 * 100, 3, 16)._repr_html_()
    assert html.startswith("<table")
    assert html.count("<tr>") == 5
    for label, value in [
        ("Original size", "240,000 bits"),
        ("Compressed image size", "40,000 bits"),
        ("Centroids size", "384 bits"),
        ("Compressed size", "40,384 bits"),
        ("Compression ratio", "16.8%"),
    ]:
        assert label in html and value in html


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_samples": -1, "n_features": 3, "n_codes": 2}, "n_samples must be"),
        ({"n_samples": 10, "n_features": 0, "n_codes": 2}, "n_features must be"),
        ({"n_samples": 10, "n_features": 3, "n_codes": 0}, "n_codes must be"),
        ({"n_samples": 1.5, "n_features": 3, "n_codes": 2}, "n_samples must be"),
        ({"n_samples": 10, "n_features": 3, "n_codes": 2, "depth": 0}, "depth must"),
    ],
)
def test_report_rejects_bad_counts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BitReport(**kwargs)


def test_bits_per_code_rejects_zero():
    with pytest.raises(ValueError, match="n_codes must be at least 1"):
        bits_per_code(0)
