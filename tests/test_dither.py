"""Dithering: every code is the exact nearest entry of its adjusted value.

Oracles: a brute-force nearest entry (``argmin`` over the whole palette) of
the adjusted value each pixel was coded from, and a textbook serpentine
Floyd–Steinberg written out here in numpy.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skvq import dither


def brute_force(values, palette):
    """Index of the nearest palette entry to each value, lowest on ties."""
    values = np.asarray(values, np.float64).reshape(-1, palette.shape[1])
    distances = ((values[:, None, :] - np.asarray(palette, np.float64)) ** 2).sum(-1)
    return distances.argmin(axis=1)


def coded_with_targets(pixels, palette, method, mask=None, alpha=False):
    """Codes, and the adjusted value each pixel was coded from (the real path)."""
    pixels, palette, mask = dither._validate(pixels, palette, mask)
    search, lo, hi = dither._search(pixels, palette)
    codes = np.zeros(pixels.shape[:2], dither._code_dtype(len(palette)))
    targets = np.zeros(pixels.shape, np.float64)
    dither._diffuse(search, pixels, codes, method, mask, alpha, lo, hi, targets)
    return codes, targets


def textbook_floyd_steinberg(pixels, palette, mask=None, alpha=False):
    """Serpentine Floyd–Steinberg, nearest entry by brute force."""
    height, width, channels = pixels.shape
    palette = np.asarray(palette, np.float64)
    codes = np.zeros((height, width), np.int64)
    this_row = np.zeros((width + 2, channels))
    for row in range(height):
        next_row = np.zeros((width + 2, channels))
        step = 1 if row % 2 == 0 else -1
        for col in range(width) if step == 1 else range(width - 1, -1, -1):
            if mask is not None and not mask[row, col]:
                continue
            value = pixels[row, col].astype(np.float64)
            target = value + this_row[col + 1]
            code = np.argmin(((target - palette) ** 2).sum(axis=1))
            codes[row, col] = code
            error = target - palette[code]
            if alpha:
                error[:-1] *= np.clip(value[-1] * (1.0 / 255.0), 0.0, 1.0)
            this_row[col + 1 + step] += error * (7.0 / 16.0)
            next_row[col + 1 - step] += error * (3.0 / 16.0)
            next_row[col + 1] += error * (5.0 / 16.0)
            next_row[col + 1 + step] += error * (1.0 / 16.0)
        this_row = next_row
    return codes


def random_case(seed, shape=(12, 17), channels=3, n_codes=16, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (*shape, channels)).astype(dtype)
    palette = rng.integers(0, 256, (n_codes, channels)).astype(np.uint8)
    return pixels, palette


def soft_disk(size=24):
    """RGBA: an opaque colored disk whose alpha fades out, transparent around."""
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
    radius = np.hypot(x, y) / (size / 2)
    alpha = np.clip((1.0 - radius) * 3, 0, 1) * 255
    image = np.empty((size, size, 4), np.uint8)
    image[..., 0] = np.clip(255 * (1 - radius), 0, 255)
    image[..., 1] = np.clip(255 * x / size + 128, 0, 255)
    image[..., 2] = 90
    image[..., 3] = np.rint(alpha)
    return image


# --- resolve_method ----------------------------------------------------------------


def test_resolve_method_names_the_methods():
    assert dither.resolve_method(True) == dither.METHODS[0] == "adaptive"
    assert dither.resolve_method(np.True_) == "adaptive"
    assert dither.resolve_method(False) is None
    assert dither.resolve_method(None) is None
    for name in dither.METHODS:
        assert dither.resolve_method(name) == name


@pytest.mark.parametrize("bad", ["Floyd-Steinberg", "", 1, 0.5, "ordered"])
def test_resolve_method_rejects_other_values(bad):
    with pytest.raises(ValueError, match="dither must be True, False, None or one of"):
        dither.resolve_method(bad)


# --- Exactness -----------------------------------------------------------------------


@pytest.mark.parametrize("method", dither.METHODS)
@pytest.mark.parametrize(
    "channels, n_codes, dtype",
    [
        (3, 16, np.uint8),
        (3, 256, np.uint8),
        (1, 7, np.float64),
        (2, 40, np.float32),
        (4, 300, np.uint8),
        (3, 1, np.uint8),
    ],
)
def test_each_code_is_the_nearest_entry_of_its_adjusted_value(
    method, channels, n_codes, dtype
):
    pixels, palette = random_case(channels, (20, 23), channels, n_codes, dtype)
    codes, targets = coded_with_targets(pixels, palette, method)
    np.testing.assert_array_equal(codes.ravel(), brute_force(targets, palette))
    np.testing.assert_array_equal(
        codes, dither.dither_codes(pixels, palette, method=method)
    )
    assert codes.dtype == (np.uint8 if n_codes <= 256 else np.uint16)


def test_a_palette_of_65536_entries_is_searched_exactly():
    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, (65536, 3)).astype(np.uint8)
    pixels = rng.integers(0, 256, (6, 7, 3)).astype(np.uint8)
    for method in dither.METHODS:
        codes, targets = coded_with_targets(pixels, palette, method)
        assert codes.dtype == np.uint16
        np.testing.assert_array_equal(codes.ravel(), brute_force(targets, palette))
    undithered = dither.dither_codes(pixels, palette, method=False)
    np.testing.assert_array_equal(undithered.ravel(), brute_force(pixels, palette))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_floyd_steinberg_is_the_textbook_one(seed, dtype):
    pixels, palette = random_case(seed, (9, 13), 3, 8, dtype)
    codes = dither.dither_codes(pixels, palette, method="floyd-steinberg")
    np.testing.assert_array_equal(codes, textbook_floyd_steinberg(pixels, palette))


def test_without_dithering_each_pixel_gets_its_nearest_entry():
    pixels, palette = random_case(7, (15, 11), 3, 33)
    codes = dither.dither_codes(pixels, palette, method=False)
    np.testing.assert_array_equal(codes.ravel(), brute_force(pixels, palette))


def test_dithering_keeps_the_mean_of_a_flat_area():
    pixels = np.full((40, 40, 1), 100, np.uint8)
    palette = np.array([[0], [255]])
    textbook = dither.dither_codes(pixels, palette, method="floyd-steinberg")
    assert abs(palette[textbook].mean() - 100) < 255 / 40
    # The adaptive error is damped (7/8 per pixel): between two entries this
    # far apart, the mean leans to the nearer one, far less than undithered.
    adaptive = dither.dither_codes(pixels, palette, method="adaptive")
    assert 75 < palette[adaptive].mean() < 100
    assert (dither.dither_codes(pixels, palette, method=False) == 0).all()


def test_the_same_values_give_the_same_codes_in_every_dtype():
    pixels, palette = random_case(3, (10, 12), 3, 20)
    expected = dither.dither_codes(pixels, palette)
    for dtype in (np.float32, np.float64, np.int16, np.uint16):
        np.testing.assert_array_equal(
            dither.dither_codes(pixels.astype(dtype), palette.astype(dtype)), expected
        )


def test_a_single_entry_codes_everything_zero():
    pixels, _ = random_case(2, (5, 6), 3, 1)
    for method in (*dither.METHODS, False):
        codes = dither.dither_codes(pixels, [[10, 20, 30]], method=method)
        assert codes.dtype == np.uint8 and not codes.any()


def test_an_empty_image_gives_empty_codes():
    codes = dither.dither_codes(np.zeros((0, 4, 3), np.uint8), [[0, 0, 0]])
    assert codes.shape == (0, 4)


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    channels=st.integers(1, 4),
    n_codes=st.integers(1, 300),
    n_queries=st.sampled_from([0, 40]),
)
def test_the_grid_search_finds_the_nearest_entry_lowest_index_first(
    data, channels, n_codes, n_queries
):
    # Coarse levels put entries and values on the cells' edges and make ties;
    # values also fall outside the grid's box. n_queries=40 makes a grid of
    # one level (the lists of the cells made from the whole palette).
    levels = st.integers(-2, 34).map(lambda level: 8.0 * level)
    palette = data.draw(hnp.arrays(np.float64, (n_codes, channels), elements=levels))
    values = data.draw(hnp.arrays(np.float64, (40, channels), elements=levels))
    lo = np.zeros(channels)
    hi = np.full(channels, 256.0)
    search = dither._dither.NearestSearch(palette, lo, hi, n_queries)
    codes = np.zeros(len(values), np.uint16)
    search.nearest_codes(values, codes)
    np.testing.assert_array_equal(codes, brute_force(values, palette))


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    channels=st.integers(1, 4),
    n_codes=st.integers(1, 12),
    method=st.sampled_from([*dither.METHODS, False]),
)
def test_codes_are_exact_for_any_image_and_palette(data, channels, n_codes, method):
    shape = data.draw(st.tuples(st.integers(1, 6), st.integers(1, 6)))
    values = st.integers(0, 255)  # duplicates in the palette test the ties
    pixels = data.draw(hnp.arrays(np.uint8, (*shape, channels), elements=values))
    palette = data.draw(hnp.arrays(np.uint8, (n_codes, channels), elements=values))
    if method is False:
        codes = dither.dither_codes(pixels, palette, method=False)
        np.testing.assert_array_equal(codes.ravel(), brute_force(pixels, palette))
        return
    codes, targets = coded_with_targets(pixels, palette, method)
    np.testing.assert_array_equal(codes.ravel(), brute_force(targets, palette))
    if method == "floyd-steinberg":
        np.testing.assert_array_equal(codes, textbook_floyd_steinberg(pixels, palette))


@settings(max_examples=40, deadline=None)
@given(data=st.data(), channels=st.integers(1, 4), n_codes=st.integers(2, 10))
def test_adaptive_targets_stay_within_their_bounds(data, channels, n_codes):
    # Written out from the docs: the error a pixel receives is at most 1/8 of
    # the color range, and its adjusted value stays within 5 % of the range
    # around the colors of pixels and palette.
    shape = data.draw(st.tuples(st.integers(2, 8), st.integers(2, 8)))
    values = st.integers(0, 255)
    pixels = data.draw(hnp.arrays(np.uint8, (*shape, channels), elements=values))
    palette = data.draw(hnp.arrays(np.uint8, (n_codes, channels), elements=values))
    _, targets = coded_with_targets(pixels, palette, "adaptive")
    both = np.concatenate([pixels.reshape(-1, channels), palette]).astype(float)
    lo, hi = both.min(axis=0), both.max(axis=0)
    color_range = max((hi - lo).max(), 1e-12)
    shift = np.linalg.norm(targets - pixels, axis=-1)
    assert shift.max() <= color_range / 8 * (1 + 1e-9)
    assert (targets >= lo - color_range / 20 - 1e-9).all()
    assert (targets <= hi + color_range / 20 + 1e-9).all()


# --- Specks -------------------------------------------------------------------------


def test_adaptive_paints_no_far_color_into_a_flat_area():
    # A flat grey just off its nearest entry: the textbook error grows until
    # an isolated white pixel pays it back (a speck); the bounded one never
    # reaches that far.
    pixels = np.full((30, 30, 3), 128, np.uint8)
    palette = np.array([[120, 120, 120], [255, 255, 255], [0, 0, 0], [200, 30, 30]])
    textbook = dither.dither_codes(pixels, palette, method="floyd-steinberg")
    adaptive = dither.dither_codes(pixels, palette, method="adaptive")
    assert (textbook == 1).sum() > 20
    assert (adaptive == 0).all()


# --- Masks and alpha -----------------------------------------------------------------


def test_masked_pixels_are_code_zero_and_the_others_ignore_their_values():
    pixels, palette = random_case(11, (16, 16), 3, 12)
    mask = np.random.default_rng(0).random((16, 16)) > 0.3
    other = pixels.copy()
    other[~mask] = 255 - other[~mask]
    for method in dither.METHODS:
        codes = dither.dither_codes(pixels, palette, method=method, mask=mask)
        assert (codes[~mask] == 0).all()
        np.testing.assert_array_equal(
            codes, dither.dither_codes(other, palette, method=method, mask=mask)
        )
        _, targets = coded_with_targets(pixels, palette, method, mask=mask)
        coded = brute_force(targets, palette).reshape(codes.shape)
        np.testing.assert_array_equal(codes[mask], coded[mask])
    np.testing.assert_array_equal(
        dither.dither_codes(pixels, palette, method="floyd-steinberg", mask=mask),
        textbook_floyd_steinberg(pixels, palette, mask=mask),
    )


def test_no_error_crosses_a_wall_of_masked_pixels():
    pixels, palette = random_case(12, (14, 21), 3, 10)
    mask = np.ones((14, 21), bool)
    mask[:, 10] = False
    changed = pixels.copy()
    changed[:, :10] = np.random.default_rng(1).integers(0, 256, (14, 10, 3))
    for method in dither.METHODS:
        before = dither.dither_codes(pixels, palette, method=method, mask=mask)
        after = dither.dither_codes(changed, palette, method=method, mask=mask)
        np.testing.assert_array_equal(before[:, 11:], after[:, 11:])
        assert (before[:, 10] == 0).all()


@pytest.mark.parametrize("method", dither.METHODS)
def test_soft_edged_rgba_keeps_transparent_pixels_and_codes_exactly(method):
    image = soft_disk()
    opaque = image[..., 3] > 0
    palette = np.random.default_rng(4).integers(0, 256, (24, 4)).astype(np.uint8)
    codes = dither.dither_codes(image, palette, method=method, mask=opaque, alpha=True)
    assert (codes[~opaque] == 0).all()
    _, targets = coded_with_targets(image, palette, method, mask=opaque, alpha=True)
    coded = brute_force(targets, palette).reshape(codes.shape)
    np.testing.assert_array_equal(codes[opaque], coded[opaque])
    if method == "floyd-steinberg":
        expected = textbook_floyd_steinberg(image, palette, mask=opaque, alpha=True)
        np.testing.assert_array_equal(codes, expected)


@pytest.mark.parametrize("method", dither.METHODS)
def test_faint_pixels_do_not_bleed_their_color_into_opaque_ones(method):
    # Left: opaque grey. Right: red at alpha 1, whose best match is a
    # transparent grey: a large color error that alpha makes invisible.
    image = np.zeros((16, 16, 4), np.uint8)
    image[:, :8] = (128, 128, 128, 255)
    image[:, 8:] = (255, 0, 0, 1)
    palette = np.array([[128, 128, 128, 255], [128, 128, 128, 1], [255, 0, 0, 255]])
    shifts = {}
    for alpha in (True, False):
        _, targets = coded_with_targets(image, palette, method, alpha=alpha)
        shifts[alpha] = np.abs(targets[:, :8, :3] - image[:, :8, :3]).max()
    assert shifts[True] < 1 < 10 < shifts[False]
    weighted = dither.dither_codes(image, palette, method=method, alpha=True)
    assert (weighted[:, :8] == 0).all()


# --- refine_palette ------------------------------------------------------------------


def test_refine_palette_weighs_a_bin_of_n_pixels_as_sqrt_n():
    # 9 pixels at 0 and 1 at 10: the pass puts the entry at
    # (0 * sqrt(9) + 10 * sqrt(1)) / (sqrt(9) + sqrt(1)) = 2.5 (plain mean: 1).
    pixels = np.array([0.0] * 9 + [10.0]).reshape(2, 5, 1)
    refined = dither.refine_palette(pixels, np.array([[4.0]]), n_passes=1)
    np.testing.assert_allclose(refined, [[2.5]])
    assert dither.refine_palette(pixels, np.array([[4]], np.uint8), n_passes=1) == 2


def test_refine_palette_keeps_shape_dtype_unused_entries_and_masked_pixels_out():
    pixels, palette = random_case(8, (20, 20), 3, 8)
    palette[7] = (255, 255, 255)
    pixels[pixels.sum(-1) > 600] = 0  # nothing near white: entry 7 is unused
    mask = np.ones((20, 20), bool)
    mask[:5] = False
    refined = dither.refine_palette(pixels, palette, mask=mask)
    assert refined.dtype == np.uint8 and refined.shape == palette.shape
    np.testing.assert_array_equal(refined[7], palette[7])
    changed = pixels.copy()
    changed[:5] = 77
    np.testing.assert_array_equal(
        refined, dither.refine_palette(changed, palette, mask=mask)
    )
    assert not np.array_equal(refined, palette)


def test_refine_palette_weighs_colors_by_opacity_with_alpha():
    # One entry, two colors of equal count: the opaque one pulls the color
    # to itself, alpha is averaged evenly.
    pixels = np.array([[[0, 0, 0, 255], [200, 200, 200, 51]]], np.float64)
    refined = dither.refine_palette(
        pixels, [[100.0, 100, 100, 100]], alpha=True, n_passes=1
    )
    np.testing.assert_allclose(refined, [[200 * 0.2 / 1.2] * 3 + [153.0]])


def test_refine_palette_without_dithering_or_passes_returns_the_palette():
    pixels, palette = random_case(9, (8, 8), 3, 4)
    for options in ({"method": False}, {"n_passes": 0}):
        np.testing.assert_array_equal(
            dither.refine_palette(pixels, palette, **options), palette
        )


def test_refine_palette_evens_out_the_gaps_of_a_gradient():
    # A ramp crowded at its dark end: K-Means-like even quantiles leave a
    # wide gap at the bright end; refinement narrows the widest gap.
    values = (np.linspace(0, 1, 4000) ** 3 * 255).reshape(40, 100, 1)
    start = np.quantile(values, (np.arange(8) + 0.5) / 8)[:, None]
    refined = dither.refine_palette(values, start)
    assert np.diff(np.sort(refined[:, 0])).max() < np.diff(start[:, 0]).max()


# --- dither_image -------------------------------------------------------------------

BINOMIAL = np.array([0.25, 0.5, 0.25])


def blur_matrix(height, width, full):
    """The 3 x 3 binomial blur as a matrix, zero outside the image.

    Rows are output pixels: the image grown by one pixel on each side if
    ``full``, else the image itself.
    """
    grow = 1 if full else 0
    rows, cols = height + 2 * grow, width + 2 * grow
    matrix = np.zeros((rows * cols, height * width))
    for r in range(height):
        for s in range(width):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    y, x = r + dy + grow, s + dx + grow
                    if 0 <= y < rows and 0 <= x < cols:
                        weight = BINOMIAL[dy + 1] * BINOMIAL[dx + 1]
                        matrix[y * cols + x, r * width + s] = weight
    return matrix


def oracle_error(values, codes, palette, mask, pointwise):
    """Blurred squared error (image-sized output) plus ``pointwise`` x plain."""
    height, width, channels = values.shape
    error = (values - palette[codes]).reshape(-1, channels)
    if mask is not None:
        error[~mask.reshape(-1)] = 0
    blurred = blur_matrix(height, width, full=False) @ error
    return (blurred**2).sum() + pointwise * (error**2).sum()


def oracle_fit(values, codes, palette, mask, pointwise):
    """The palette minimising the full-blurred + pointwise error, by lstsq."""
    height, width, channels = values.shape
    flat = values.reshape(-1, channels).copy()
    one_hot = np.eye(len(palette))[codes.reshape(-1)]
    if mask is not None:
        flat[~mask.reshape(-1)] = 0
        one_hot[~mask.reshape(-1)] = 0
    used = np.flatnonzero(one_hot.sum(axis=0))
    blur = blur_matrix(height, width, full=True)
    system = np.vstack([blur @ one_hot[:, used], np.sqrt(pointwise) * one_hot[:, used]])
    target = np.vstack([blur @ flat, np.sqrt(pointwise) * flat])
    fitted = np.asarray(palette, np.float64).copy()
    fitted[used] = np.linalg.lstsq(system, target, rcond=None)[0]
    return fitted


small_images = st.tuples(
    st.integers(1, 7), st.integers(1, 7), st.integers(1, 3), st.integers(1, 5)
).flatmap(
    lambda shape: st.tuples(
        hnp.arrays(np.float64, shape[:3], elements=st.floats(0, 1)),
        hnp.arrays(np.uint8, shape[:2], elements=st.integers(0, shape[3] - 1)),
        hnp.arrays(np.float64, (shape[3], shape[2]), elements=st.floats(0, 1)),
        hnp.arrays(bool, shape[:2]),
    )
)


@settings(max_examples=60, deadline=None)
@given(small_images, st.booleans())
def test_blurred_error_and_fit_match_the_formulas_written_out(case, masked):
    values, codes, palette, mask = case
    mask = mask if masked else None
    kernel_mask = None if mask is None else mask.view(np.uint8)
    error = dither._dither.blurred_error(values, codes, palette, kernel_mask, 0.3)
    assert error == pytest.approx(oracle_error(values, codes, palette, mask, 0.3))
    fitted = dither._fit_through_blur(values, codes, palette, kernel_mask)
    expected = oracle_fit(values, codes, palette, mask, dither._POINTWISE)
    np.testing.assert_allclose(fitted, expected, atol=1e-8)


def linear_error(pixels, codes, palette):
    light = dither.srgb_to_linear(pixels.astype(np.float64))
    return oracle_error(light, codes, dither.srgb_to_linear(palette), None, 0.3)


@pytest.mark.parametrize("seed, n_codes", [(0, 5), (1, 5), (2, 5), (3, 130)])
def test_fit_palette_does_at_least_as_well_as_its_starts_where_it_fits(seed, n_codes):
    # fit_palette judges palettes on every second pixel of every second row
    # (every fourth from 64 entries on): there its palette is no worse than
    # the refined one, nor, from 128 entries on, than the palette as given.
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, 24)[None, :, None] + np.zeros((12, 1, 3))
    pixels = np.clip(ramp + rng.normal(0, 8, ramp.shape), 0, 255).astype(np.uint8)
    palette = rng.integers(0, 256, (n_codes, 3)).astype(np.uint8)
    fitted = dither.fit_palette(pixels, palette, srgb=True)
    assert fitted.dtype == np.uint8 and fitted.shape == palette.shape
    step = 2 if n_codes < 64 else 4
    sample = pixels[::step, ::step]
    starts = [dither.refine_palette(sample, palette)]
    if n_codes >= 128:
        starts.append(palette)
    best_start = min(
        linear_error(sample, dither.dither_codes(sample, start), start)
        for start in starts
    )
    assert linear_error(sample, dither.dither_codes(sample, fitted), fitted) <= (
        best_start
    )
    again, codes = dither.dither_image(pixels, palette, srgb=True)
    np.testing.assert_array_equal(again, fitted)
    np.testing.assert_array_equal(codes, dither.dither_codes(pixels, fitted))


def test_fit_palette_keeps_a_given_palette_of_128_or_more_that_does_better():
    # A palette holding every color of the pixels it is judged on dithers them
    # exactly; the refined one (bin means) cannot, so from 128 entries on the
    # given palette is kept.
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 24)[None, :, None] + np.zeros((12, 1, 3))
    pixels = np.clip(ramp + rng.normal(0, 3, ramp.shape), 0, 255).astype(np.uint8)
    colors = np.unique(pixels[::4, ::4].reshape(-1, 3), axis=0)
    extra = rng.integers(0, 256, (130 - len(colors), 3)).astype(np.uint8)
    palette = np.concatenate([colors, extra])
    refined = dither.refine_palette(pixels[::4, ::4], palette)
    assert not np.array_equal(refined, palette)
    np.testing.assert_array_equal(dither.fit_palette(pixels, palette), palette)
    assert not np.array_equal(dither.fit_palette(pixels, palette[:127]), palette[:127])


def test_dither_image_spreads_a_gradients_palette_to_its_ends():
    # K-Means centroids of a ramp stop short of its ends, so dithering
    # cannot reach them; the fit through the blur moves the end colors out.
    ramp = np.repeat(np.linspace(0, 255, 64)[None, :, None], 16, axis=0)
    start = (np.arange(4) * 64 + 32.0)[:, None]
    fitted, codes = dither.dither_image(ramp, start)
    assert fitted.min() < start.min() and fitted.max() > start.max()
    errors = [
        oracle_error(ramp, dither.dither_codes(ramp, p), p, None, 0.3)
        for p in (start, dither.refine_palette(ramp, start))
    ]
    assert oracle_error(ramp, codes, fitted, None, 0.3) < min(errors)


def test_dither_image_without_dithering_and_with_a_mask():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (9, 11, 3)).astype(np.uint8)
    palette = rng.integers(0, 256, (4, 3)).astype(np.uint8)
    same, codes = dither.dither_image(pixels, palette, method=False)
    np.testing.assert_array_equal(same, palette)
    nearest = dither.dither_codes(pixels, palette, method=False)
    np.testing.assert_array_equal(codes, nearest)
    mask = rng.random((9, 11)) < 0.7
    fitted, codes = dither.dither_image(pixels, palette, mask=mask, srgb=True)
    assert (codes[~mask] == 0).all()
    changed = pixels.copy()
    changed[~mask] = 255 - changed[~mask]  # what is behind the mask counts for nothing
    again, codes_again = dither.dither_image(changed, palette, mask=mask, srgb=True)
    np.testing.assert_array_equal(again, fitted)
    np.testing.assert_array_equal(codes_again, codes)


# --- Errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pixels, palette, options, match",
    [
        (np.zeros((4, 4), np.uint8), [[0]], {}, r"shape \(height, width, channels\)"),
        (np.zeros((4, 4, 5), np.uint8), [[0] * 5], {}, "1 to 4 channels"),
        (np.zeros((4, 4, 3), np.uint8), [[0, 0]], {}, r"shape \(n_codes, 3\)"),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((0, 3)), {}, "1 to 65,536 entries"),
        (
            np.zeros((1, 1, 1), np.uint8),
            np.zeros((65537, 1)),
            {},
            "1 to 65,536 entries",
        ),
        (np.full((2, 2, 1), np.nan), [[0]], {}, "pixels must be finite"),
        (np.zeros((2, 2, 1)), [[np.inf]], {}, "palette must be finite"),
        (np.array([[["a"]]]), [[0]], {}, "pixels must be numbers"),
        (np.zeros((2, 2, 1)), [["a"]], {}, "palette must be numbers"),
        (
            np.zeros((2, 2, 1)),
            [[0]],
            {"mask": np.ones((2, 3), bool)},
            "mask must have shape",
        ),
        (np.zeros((2, 2, 1)), [[0]], {"method": "ordered"}, "dither must be"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_error(pixels, palette, options, match):
    with pytest.raises(ValueError, match=match):
        dither.dither_codes(pixels, palette, **options)
    with pytest.raises(ValueError, match=match):
        dither.refine_palette(pixels, palette, **options)
    with pytest.raises(ValueError, match=match):
        dither.dither_image(pixels, palette, **options)


@pytest.mark.parametrize("n_passes", [-1, 1.5, "2"])
def test_refine_palette_rejects_a_bad_number_of_passes(n_passes):
    with pytest.raises(ValueError, match="n_passes must be a non-negative integer"):
        dither.refine_palette(np.zeros((2, 2, 1)), [[0]], n_passes=n_passes)


def test_the_examples_in_the_docstrings_run():
    import doctest

    assert doctest.testmod(dither).failed == 0
