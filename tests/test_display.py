"""Jupyter display: comparisons, the K grid and rich reprs."""

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skvq import BitReport, VectorQuantizer, quantize_image
from skvq.display import Comparison, compare, compare_k
from skvq.metrics import psnr


def _embedded_images(html):
    """Decode every base64 PNG of ``html`` back to an array."""
    payloads = re.findall(r"src='data:image/png;base64,([^']+)'", html)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(p)))) for p in payloads]


def test_compare_embeds_original_and_reconstruction_losslessly(small_photo):
    result = quantize_image(small_photo, 4, random_state=0)
    html = compare(small_photo, result)._repr_html_()

    original, reconstruction = _embedded_images(html)
    np.testing.assert_array_equal(original, small_photo)
    np.testing.assert_array_equal(reconstruction, result.reconstruction)


def test_compare_captions_give_k_psnr_and_bits_per_pixel(small_photo):
    result = quantize_image(small_photo, 4, random_state=0)
    comparison = compare(small_photo, result)

    expected_psnr = psnr(small_photo, result.reconstruction)
    assert comparison.captions == [
        "Original · 24 bits per pixel",
        f"K = 4 · {expected_psnr:.2f} dB · "
        f"{result.report.bits_per_pixel:.2f} bits per pixel",
    ]
    html = comparison._repr_html_()
    assert html.count("<figcaption") == 2
    assert f"{expected_psnr:.2f} dB" in html


def test_compare_accepts_plain_arrays_and_labels(small_photo):
    blurred = (small_photo // 2 * 2).astype(np.uint8)
    comparison = compare(
        small_photo, blurred, Image.fromarray(blurred), labels=["a", "b"]
    )

    expected = f"{psnr(small_photo, blurred):.2f} dB"
    assert comparison.captions[1:] == [f"a · {expected}", f"b · {expected}"]


def test_compare_default_label_numbers_plain_reconstructions(small_photo):
    comparison = compare(small_photo, small_photo)
    assert comparison.captions[1] == "Reconstruction 1 · inf dB"


def test_compare_escapes_labels(small_photo):
    html = compare(small_photo, small_photo, labels=["<b>&"])._repr_html_()
    assert "&lt;b&gt;&amp;" in html
    assert "<b>&" not in html


def test_compare_rejects_shape_mismatch(small_photo):
    with pytest.raises(ValueError, match=r"Reconstruction 1 has shape \(40, 59, 3\)"):
        compare(small_photo, small_photo[:, 1:])


def test_compare_rejects_wrong_number_of_labels(small_photo):
    with pytest.raises(ValueError, match="Got 2 labels for 1 reconstructions"):
        compare(small_photo, small_photo, labels=["a", "b"])


def test_compare_k_shows_original_then_each_k(small_photo):
    comparison = compare_k(small_photo, (2, 3, 6), random_state=0)

    assert len(comparison.images) == 4
    assert [c.split(" · ")[0] for c in comparison.captions] == [
        "Original",
        "K = 2",
        "K = 3",
        "K = 6",
    ]
    for k, image in zip((2, 3, 6), comparison.images[1:], strict=True):
        assert len(np.unique(image.reshape(-1, 3), axis=0)) == k
    assert len(_embedded_images(comparison._repr_html_())) == 4


def test_compare_k_defaults_to_the_tutorial_grid(small_photo):
    comparison = compare_k(small_photo, random_state=0)
    assert [c.split(" · ")[0] for c in comparison.captions[1:]] == [
        "K = 2",
        "K = 3",
        "K = 6",
        "K = 16",
    ]


def test_compare_k_rejects_no_k(small_photo):
    with pytest.raises(ValueError, match="at least one K"):
        compare_k(small_photo, [])


def test_comparison_width_sets_the_displayed_size(small_photo):
    html = compare(small_photo, width=123)._repr_html_()
    assert "width:123px" in html


def test_comparison_handles_grayscale(small_photo):
    gray = small_photo[:, :, 0]
    comparison = compare_k(gray, (2,), random_state=0)
    assert comparison.captions[0] == "Original · 8 bits per pixel"
    original, reconstruction = _embedded_images(comparison._repr_html_())
    np.testing.assert_array_equal(original, gray)
    assert reconstruction.shape == gray.shape


def test_comparison_requires_one_caption_per_image(small_photo):
    with pytest.raises(ValueError, match="Got 1 images but 2 captions"):
        Comparison([small_photo], ["a", "b"])


def test_quantized_image_html_shows_reconstruction_and_bit_table(small_photo):
    result = quantize_image(small_photo, 4, random_state=0)
    html = result._repr_html_()

    (image,) = _embedded_images(html)
    np.testing.assert_array_equal(image, result.reconstruction)
    assert "skvq-bit-report" in html
    assert f"{result.report.compressed_bits:,} bits" in html
    error = small_photo.astype(float) - result.reconstruction
    expected = 10 * np.log10(255**2 / np.mean(error**2))
    assert result.psnr == pytest.approx(expected)
    assert f"K = 4 · {expected:.2f} dB · " in html


def test_bit_report_html_is_the_tutorials_table():
    html = BitReport(n_samples=100 * 100, n_features=3, n_codes=16)._repr_html_()
    cells = re.findall(r"<th[^>]*>([^<]+)</th><td[^>]*>([^<]+)</td>", html)
    assert cells == [
        ("Original size", "240,000 bits"),
        ("Compressed image size", "40,000 bits"),
        ("Centroids size", "384 bits"),
        ("Compressed size", "40,384 bits"),
        ("Compression ratio", "0.1683 (16.8%)"),
    ]


def test_estimator_html_repr_links_its_api_page():
    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    page = "gen_modules/skvq.VectorQuantizer.html"  # docs/api.rst's autosummary
    link = project["urls"]["Documentation"] + page
    assert VectorQuantizer()._get_doc_link() == link
    assert f'href="{link}"' in VectorQuantizer(n_clusters=3)._repr_html_()


def test_large_images_are_embedded_at_twice_the_displayed_width(china):
    html = compare_k(china, (4,), width=160, random_state=0)._repr_html_()
    original, reconstruction = _embedded_images(html)
    assert original.shape == reconstruction.shape == (214, 320, 3)  # 427 * 320/640
    # Downscaled, not cropped: the mean color is kept.
    np.testing.assert_allclose(
        original.mean(axis=(0, 1)), china.mean(axis=(0, 1)), atol=2
    )
    full_size = len(compare_k(china, (4,), width=640, random_state=0)._repr_html_())
    assert len(html) < full_size / 2
