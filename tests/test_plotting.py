"""Matplotlib plots: rate-distortion display and the K grid."""

import builtins

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skvq import quantize_image  # noqa: E402
from skvq.metrics import psnr  # noqa: E402
from skvq.plotting import RateDistortionDisplay, plot_k_grid  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_rate_distortion_plots_the_computed_psnr_and_bits(small_photo):
    ks = [2, 4, 8]
    display = RateDistortionDisplay.from_image(small_photo, ks, random_state=0)

    results = [quantize_image(small_photo, k, random_state=0) for k in ks]
    expected_psnr = [psnr(small_photo, r.reconstruction) for r in results]
    expected_bits = [r.report.bits_per_pixel for r in results]
    np.testing.assert_allclose(display.psnr, expected_psnr)
    np.testing.assert_allclose(display.bits_per_pixel, expected_bits)
    np.testing.assert_array_equal(display.psnr_line_.get_xdata(), ks)
    np.testing.assert_allclose(display.psnr_line_.get_ydata(), expected_psnr)
    np.testing.assert_allclose(display.bits_line_.get_ydata(), expected_bits)
    assert np.all(np.diff(display.psnr) > 0)


def test_rate_distortion_labels_both_axes(small_photo):
    display = RateDistortionDisplay.from_image(
        small_photo, [2, 4], random_state=0, name="crop"
    )
    assert display.ax_.get_xlabel() == "Number of colors K"
    assert display.ax_.get_ylabel() == "PSNR (dB)"
    assert display.ax_bits_.get_ylabel() == "Bits per pixel"
    assert display.ax_.get_title() == "Rate and distortion of crop"
    assert [t.get_text() for t in display.ax_.get_xticklabels()] == ["2", "4"]
    assert display.figure_ is display.ax_.figure


def test_rate_distortion_sorts_k(small_photo):
    display = RateDistortionDisplay.from_image(small_photo, [8, 2], random_state=0)
    np.testing.assert_array_equal(display.n_clusters, [2, 8])


def test_rate_distortion_plot_draws_on_given_axes():
    _, ax = plt.subplots()
    display = RateDistortionDisplay(
        n_clusters=[2, 4], psnr=[20.0, 25.0], bits_per_pixel=[1.0, 2.0]
    ).plot(ax=ax, name="given")
    assert display.ax_ is ax
    assert ax.get_title() == "Rate and distortion of given"
    np.testing.assert_allclose(display.bits_line_.get_ydata(), [1.0, 2.0])


def test_rate_distortion_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="must have the same length, got 2, 1 and 2"):
        RateDistortionDisplay(n_clusters=[2, 4], psnr=[20.0], bits_per_pixel=[1, 2])


def test_rate_distortion_rejects_no_k(small_photo):
    with pytest.raises(ValueError, match="at least one K"):
        RateDistortionDisplay.from_image(small_photo, [])


def test_k_grid_titles_and_images_match_the_quantization(small_photo):
    axes = plot_k_grid(small_photo, (2, 3, 6, 16), random_state=0)

    assert len(axes) == 4
    assert axes[0].figure.axes == list(axes)  # a 2 x 2 grid, no spare axes
    for ax, k in zip(axes, (2, 3, 6, 16), strict=True):
        result = quantize_image(small_photo, k, random_state=0)
        assert ax.get_title() == (
            f"K = {k} · {psnr(small_photo, result.reconstruction):.2f} dB · "
            f"{result.report.bits_per_pixel:.2f} bpp"
        )
        np.testing.assert_array_equal(ax.images[0].get_array(), result.reconstruction)


def test_k_grid_can_start_with_the_original(small_photo):
    axes = plot_k_grid(small_photo, (2,), include_original=True, random_state=0)
    assert axes[0].get_title() == "Original · 24 bits per pixel"
    np.testing.assert_array_equal(axes[0].images[0].get_array(), small_photo)
    assert axes[1].get_title().startswith("K = 2 ·")


def test_k_grid_layout_follows_n_cols(small_photo):
    axes = plot_k_grid(small_photo, (2, 3, 4), n_cols=3, random_state=0)
    assert axes[0].get_subplotspec().get_gridspec().get_geometry() == (1, 3)


def test_k_grid_hides_spare_axes(small_photo):
    axes = plot_k_grid(small_photo, (2, 3, 4), random_state=0)
    figure_axes = axes[0].figure.axes
    assert len(axes) == 3 and len(figure_axes) == 4
    assert not figure_axes[3].axison


def test_k_grid_grayscale_uses_a_gray_colormap(small_photo):
    axes = plot_k_grid(small_photo[:, :, 0], (2,), random_state=0)
    assert axes[0].images[0].get_cmap().name == "gray"


def test_k_grid_rejects_too_few_axes(small_photo):
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="Got 1 axes for 2 panels"):
        plot_k_grid(small_photo, (2, 3), axes=[ax], random_state=0)


def test_missing_matplotlib_names_the_plot_extra(monkeypatch, small_photo):
    real_import = builtins.__import__

    def import_without_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", import_without_matplotlib)
    with pytest.raises(
        ImportError, match=r"plot_k_grid requires matplotlib.*skvq\[plot\]"
    ):
        plot_k_grid(small_photo, (2,))
