"""K for a target: the fewest colors reaching a PSNR, the most whose file fits.

Oracles: an exhaustive scan of every K fitted from scratch on a small crop
(PSNR of the stored image written out here from the decoded pixels), file
sizes measured on disk, and the error messages' promises checked against
the numbers they quote.
"""

import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import skvq
from skvq import encoder, target
from skvq.cli import EXIT_OK, EXIT_USAGE, main

# Every K up to 64 for PSNR (warm starts begin at 48); every third for sizes.
SCAN = range(1, 65)
SIZE_SCAN = range(1, 65, 3)


@pytest.fixture(scope="module")
def crop(china):
    """24 x 32 pixels, 745 distinct colors."""
    return np.ascontiguousarray(china[100:124, 200:232])


def stored_psnr(image, quantized):
    """PSNR of the stored image over every value, written out."""
    error = np.mean((quantized.astype(np.float64) - image) ** 2)
    return math.inf if error == 0 else 10 * math.log10(255.0**2 / error)


def fit_from_scratch(image, k, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return skvq.quantize_image(image, k, random_state=0, **params)


@pytest.fixture(scope="module")
def scan(crop):
    """The PSNR of the stored image for every K of SCAN, fitted from scratch."""
    return {
        k: stored_psnr(crop, fit_from_scratch(crop, k).reconstruction) for k in SCAN
    }


def reconstruction(image, choice, **params):
    """The stored image of a choice, made again from its quantizer."""
    quantized = skvq.quantize_image(image, codebook=choice.quantizer, **params)
    return quantized.reconstruction


@settings(max_examples=12, deadline=None)
@given(psnr=st.floats(20.0, 33.5))
def test_psnr_target_matches_an_exhaustive_scan(crop, scan, psnr):
    smallest = min(k for k, value in scan.items() if value >= psnr)
    choice = skvq.choose_n_clusters(crop, psnr=psnr, random_state=0)
    reached = stored_psnr(crop, reconstruction(crop, choice))
    assert reached >= psnr
    assert choice.psnr == pytest.approx(reached)
    assert choice.quantizer.n_clusters == choice.n_clusters
    # Within 5 % of the smallest K (exactly it below 29 colors, where the
    # search brackets the answer to one color), warm starts included.
    assert choice.n_clusters <= max(smallest, math.floor(1.05 * smallest))
    if smallest < 29 and all(scan[k] < psnr for k in range(1, smallest)):
        assert choice.n_clusters == smallest
    assert [t.n_clusters for t in choice.trials].count(choice.n_clusters) == 1


def test_psnr_target_after_dithering(crop):
    choice = skvq.choose_n_clusters(crop, psnr=30, dither=True, random_state=0)
    dithered = reconstruction(crop, choice, dither=True)
    assert stored_psnr(crop, dithered) >= 30
    # The dithered result of one color fewer, from scratch, falls short or
    # the answer is within the 5 % the search allows.
    fewer = fit_from_scratch(crop, choice.n_clusters - 1, dither=True)
    assert (
        stored_psnr(crop, fewer.reconstruction) < 30
        or choice.n_clusters - 1 < 0.05 * choice.n_clusters + 1
    )


def file_sizes(crop, tmp_path, ks):
    sizes = {}
    for k in ks:
        path = tmp_path / f"k{k}.vq"
        skvq.save(Image.fromarray(crop), path, k=k, random_state=0)
        sizes[k] = path.stat().st_size
    return sizes


@pytest.fixture(scope="module")
def sizes(crop, tmp_path_factory):
    return file_sizes(crop, tmp_path_factory.mktemp("sizes"), SIZE_SCAN)


@settings(max_examples=12, deadline=None)
@given(fraction=st.floats(0.0, 1.0))
def test_max_bytes_is_never_exceeded_and_nearly_filled(
    crop, sizes, tmp_path_factory, fraction
):
    low, high = sizes[1], max(sizes.values())
    budget = int(low + fraction * (high - low))
    path = tmp_path_factory.mktemp("fit") / "fit.vq"
    skvq.save(
        Image.fromarray(crop), path, max_bytes=budget, random_state=0, overwrite=True
    )
    n_bytes = path.stat().st_size
    assert n_bytes <= budget
    fits = [size for size in sizes.values() if size <= budget]
    if max(fits) >= 0.9 * budget:  # the budget is reachable within 10 %
        assert n_bytes >= 0.9 * budget
    with Image.open(path) as image:
        assert image.size == (32, 24)


def test_max_bytes_choice_reports_its_file(crop):
    choice = skvq.choose_n_clusters(crop, max_bytes=3000, random_state=0)
    assert 2700 <= choice.n_bytes <= 3000
    assert choice.quantizer.n_codes_ == choice.n_clusters
    assert choice.psnr == pytest.approx(stored_psnr(crop, reconstruction(crop, choice)))


def test_unreachable_psnr_names_the_best_and_its_k(crop):
    fitting = encoder.fitting(crop[np.newaxis], random_state=0)
    with pytest.raises(ValueError, match=r"PSNR of 45 dB: the most, k=8, gives") as e:
        target.search(fitting, psnr=45, max_clusters=8)
    quoted = float(str(e.value).split("gives ")[1].split(" dB")[0])
    best = stored_psnr(crop, fit_from_scratch(crop, 8).reconstruction)
    assert quoted == pytest.approx(best, abs=0.01)


def test_unreachable_size_names_the_smallest_file(crop, sizes):
    with pytest.raises(ValueError, match=r"fits in 50 bytes: the smallest, with k=1"):
        skvq.choose_n_clusters(crop, max_bytes=50)
    with pytest.raises(ValueError, match=r"fits in 50 bytes") as e:
        skvq.save(Image.fromarray(crop), os.devnull + ".vq", max_bytes=50)
    assert f"takes {sizes[1]:,} bytes" in str(e.value)


def test_lossless_psnr_needs_every_distinct_color():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    image[:4] = [200, 10, 10]
    image[:, :2] = [0, 0, 255]
    choice = skvq.choose_n_clusters(image, psnr=90)
    assert choice.n_clusters == 3 and choice.psnr == math.inf


@pytest.mark.parametrize(
    "options, message",
    [
        ({"k": 16, "psnr": 30}, "k= and psnr= contradict each other"),
        ({"k": 16, "max_bytes": 5000}, "k= and max_bytes= contradict each other"),
        ({"psnr": 30, "max_bytes": 5000}, "two targets; give one"),
        ({"psnr": -1}, "psnr must be a positive number of dB"),
        ({"psnr": math.nan}, "psnr must be a positive number of dB"),
        ({"max_bytes": 10.5}, "max_bytes must be a whole number of bytes"),
        ({"max_bytes": 0}, "max_bytes must be positive"),
    ],
)
def test_contradictory_or_bad_targets_are_refused(tmp_path, crop, options, message):
    path = tmp_path / "out.vq"
    with pytest.raises(ValueError, match=message):
        Image.fromarray(crop).save(path, **options)
    assert not path.exists() or path.stat().st_size == 0


def test_function_refuses_both_or_neither_target(crop):
    with pytest.raises(ValueError, match=r"Give one target.*Both were given"):
        skvq.choose_n_clusters(crop, psnr=30, max_bytes=5000)
    with pytest.raises(ValueError, match="Give one target"):
        skvq.choose_n_clusters(crop)
    with pytest.raises(ValueError, match="n_clusters= and psnr= contradict"):
        skvq.choose_n_clusters(crop, psnr=30, n_clusters=8)
    with pytest.raises(ValueError, match="k= and max_bytes= contradict"):
        skvq.choose_n_clusters(crop, max_bytes=5000, k=8)
    with pytest.raises(ValueError, match="algorithm"):
        skvq.choose_n_clusters(crop, psnr=30, algorithm="elkan")


def test_save_refuses_targets_for_other_formats(tmp_path, crop):
    with pytest.raises(ValueError, match=r"psnr choose the colors of a \.vq file"):
        skvq.save(Image.fromarray(crop), tmp_path / "out.png", psnr=30)
    assert not (tmp_path / "out.png").exists()


def test_cli_psnr_and_max_size(tmp_path, crop, capsys):
    source = tmp_path / "in.png"
    Image.fromarray(crop).save(source)
    out = tmp_path / "out.vq"
    assert main(["encode", str(source), str(out), "--psnr", "31"]) == EXIT_OK
    with Image.open(out) as image:
        assert stored_psnr(crop, np.asarray(image.convert("RGB"))) >= 31
    small = tmp_path / "small.vq"
    assert main(["encode", str(source), str(small), "--max-size", "2.5k"]) == EXIT_OK
    assert 0.9 * 2500 <= small.stat().st_size <= 2500


@pytest.mark.parametrize(
    "args, message",
    [
        (["-k", "8", "--psnr", "30"], "not allowed with argument"),
        (["--psnr", "0"], "expected a PSNR in dB"),
        (["--psnr", "loud"], "expected a PSNR in dB"),
        (["--max-size", "12parsecs"], "expected a file size"),
        (["--psnr", "30", "--max-size", "10k"], "not allowed with argument"),
    ],
)
def test_cli_refuses_bad_targets(tmp_path, crop, capsys, args, message):
    source = tmp_path / "in.png"
    Image.fromarray(crop).save(source)
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", str(source), str(tmp_path / "out.vq"), *args])
    assert exit_info.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, n_bytes",
    [
        ("50000", 50000),
        ("100k", 100_000),
        ("1.5M", 1_500_000),
        ("64KiB", 65536),
        ("2kb", 2000),
    ],
)
def test_cli_size_units(text, n_bytes):
    from skvq.cli import _byte_size

    assert _byte_size(text) == n_bytes


@given(
    spread=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(0, 6)),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=15, deadline=None)
def test_first_slope_is_the_split_estimate_of_the_clusters(spread, seed):
    # 16 far-apart colors, each with pixels at +-a, +-b and +-c along the
    # three channels: the K=16 fit finds these clusters, whose scatter
    # matrices are diagonal, a principal variance of max(a, b, c)**2 and a
    # total of a**2 + b**2 + c**2 (per pair of pixels), written out here.
    a, b, c = spread
    rng = np.random.default_rng(seed)
    grid = np.array(
        [[r, g, 100] for r in (20, 80, 140, 200) for g in (30, 110, 170, 230)]
    )
    centers = grid + rng.integers(0, 20, size=grid.shape)
    offsets = np.array(
        [[a, 0, 0], [-a, 0, 0], [0, b, 0], [0, -b, 0], [0, 0, c], [0, 0, -c]]
    )
    pixels = (centers[:, None, :] + offsets[None, :, :]).reshape(16, 6, 3)
    image = np.clip(pixels, 0, 255).astype(np.uint8)
    search = target._Search(
        encoder.fitting(image[np.newaxis], random_state=seed), 40.0, None, None, 65536
    )
    search.at(16)
    removed = (2 / math.pi) * max(a, b, c) ** 2 / (a**2 + b**2 + c**2)
    slope = -1.4 * 10 * math.log10(1 - removed) + 0.19 / 2
    assert search._doubling_gain(16) == pytest.approx(min(max(slope, 2.0), 4.0))
