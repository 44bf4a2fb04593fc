"""sRGB <-> OkLab against published values and round trips."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from skvq.colorspace import (
    linear_to_srgb,
    oklab_to_srgb,
    srgb_to_linear,
    srgb_to_oklab,
)

# CSS Color Module Level 4, section 9.2 (sRGB primaries and white in OkLab),
# computed there independently of this code.
PUBLISHED = [
    ((255, 0, 0), (0.62796, 0.22486, 0.12585)),
    ((0, 255, 0), (0.86644, -0.23389, 0.1795)),
    ((0, 0, 255), (0.45201, -0.03246, -0.31153)),
    ((255, 255, 255), (1.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
]


@pytest.mark.parametrize(("rgb", "lab"), PUBLISHED)
def test_published_values(rgb, lab):
    np.testing.assert_allclose(srgb_to_oklab(rgb), lab, atol=6e-5)
    np.testing.assert_allclose(srgb_to_oklab(np.array(rgb, np.uint8)), lab, atol=6e-5)
    np.testing.assert_allclose(oklab_to_srgb(lab), rgb, atol=0.02)


def test_srgb_transfer_curve():
    # IEC 61966-2-1: linear below 0.04045, a 2.4 power above.
    levels = np.arange(256)
    x = levels / 255
    expected = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(srgb_to_linear(levels.astype(np.uint8)), expected)
    np.testing.assert_allclose(srgb_to_linear(levels.astype(float)), expected)
    np.testing.assert_allclose(linear_to_srgb(expected), levels, atol=1e-9)
    assert srgb_to_linear(np.uint8(128)) == pytest.approx(0.21586, abs=1e-5)


@given(st.lists(st.integers(0, 255), min_size=3, max_size=3))
def test_round_trip_of_every_color(rgb):
    np.testing.assert_allclose(oklab_to_srgb(srgb_to_oklab(rgb)), rgb, atol=1e-8)


def test_gray_has_no_chroma_and_lightness_grows():
    lab = srgb_to_oklab(np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1))
    np.testing.assert_allclose(lab[:, 1:], 0, atol=1e-6)
    assert np.all(np.diff(lab[:, 0]) > 0)


def test_colors_outside_the_gamut_are_clipped():
    rgb = oklab_to_srgb([[1.2, 0, 0], [0.5, 0.4, 0.0], [-0.1, 0, 0]])
    assert rgb.min() >= 0 and rgb.max() <= 255
    np.testing.assert_allclose(rgb[0], 255)
    np.testing.assert_allclose(rgb[2], 0)


def test_color_space_benchmark_runs(capsys):
    pytest.importorskip("ssimulacra2")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "bench_color_space.py"
    spec = importlib.util.spec_from_file_location("bench_color_space", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--quick"])
    rows = [
        line.strip("| ").split(" | ")
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| 16 ")
    ]
    assert {row[1] for row in rows} == {"rgb", "oklab"}
    for _, _, _, ssimulacra, ciede, psnr, seconds in rows:
        assert -100 < float(ssimulacra) < 100
        assert 0 < float(ciede) < 20 and 20 < float(psnr) < 40 and float(seconds) > 0
