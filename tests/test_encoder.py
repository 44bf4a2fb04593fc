"""The encoder: frames to codebook and codes, with alpha, OkLab and dithering.

Oracles: VectorQuantizer itself for plain images (the path must not
change), brute-force nearest searches written out here for OkLab and alpha,
and a fake dithering kernel that records how it is called.
"""

import importlib.util
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

import skvq
from skvq import VectorQuantizer, encoder
from skvq.colorspace import srgb_to_oklab
from skvq.encoder import common_color_mode, encode

_spec = importlib.util.spec_from_file_location(
    "rgba_images", Path(__file__).parents[1] / "benchmarks" / "rgba_images.py"
)
rgba_images = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rgba_images)


@pytest.fixture(scope="module", params=["sprites", "logo", "text", "vignetted photo"])
def rgba(request):
    return np.asarray(rgba_images.IMAGES[request.param]())


def premultiplied(pixels):
    """libimagequant's comparison: colors times opacity, then alpha."""
    pixels = np.asarray(pixels, dtype=float)
    return np.concatenate(
        [pixels[..., :-1] * pixels[..., -1:] / 255, pixels[..., -1:]], -1
    )


def squared_distances(features, palette):
    return ((features[:, None, :] - palette[None, :, :]) ** 2).sum(-1)


def assert_nearest(codes, distances):
    """Each code is at the smallest distance (ties may pick either)."""
    chosen = distances[np.arange(len(distances)), codes.ravel()]
    np.testing.assert_allclose(chosen, distances.min(axis=1), rtol=1e-12, atol=1e-9)


def plain_rgba_fit(pixels, k):
    """How RGBA was quantized before: K-Means on the four values as they are."""
    vq = VectorQuantizer(k, random_state=0)
    codes = vq.fit_transform(pixels.reshape(-1, 4))
    palette = np.clip(np.rint(vq.codebook_), 0, 255).astype(np.uint8)
    return palette[codes[:, 0]].reshape(pixels.shape)


def quiet_encode(frames, **options):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X has .* distinct rows")
        return encode(frames, **options)


# ---------------------------------------------------------------------------
# Modes and the plain path


@pytest.mark.parametrize(
    ("modes", "common"),
    [
        (["L"], "L"),
        (["L", "LA"], "LA"),
        (["L", "RGB"], "RGB"),
        (["LA", "RGB"], "RGBA"),
        (["RGBA", "RGB", "L"], "RGBA"),
    ],
)
def test_common_color_mode(modes, common):
    assert common_color_mode(modes) == common


def test_plain_images_are_coded_as_the_quantizer_codes_them(small_photo):
    # The image's colors are fitted, weighted by their counts.
    encoding = encode(small_photo[np.newaxis], n_clusters=8, random_state=0)
    pixels = small_photo.reshape(-1, 3)
    rows, counts = np.unique(pixels, axis=0, return_counts=True)
    quantizer = VectorQuantizer(8, random_state=0).fit(rows, sample_weight=counts)
    codes = quantizer.transform(pixels)
    np.testing.assert_array_equal(encoding.codes.ravel(), codes.ravel())
    np.testing.assert_array_equal(encoding.centroids, quantizer.codebook_)
    np.testing.assert_array_equal(
        encoding.codebook, np.clip(np.rint(quantizer.codebook_), 0, 255)
    )
    assert encoding.codes.shape == (1, 40, 60)
    assert encoding.quantizer.n_codes_ == 8


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"color_space": "lab"},
            "color_space must be one of 'rgb', 'oklab', got 'lab'",
        ),
        ({"tol": -1}, "'tol' parameter"),
        ({"n_clusters": 0}, "'n_clusters' parameter"),
        ({"codebook": "book.joblib"}, "codebook must be a fitted skvq.VectorQuantizer"),
    ],
)
def test_bad_options(small_photo, options, message):
    with pytest.raises(ValueError, match=message):
        encode(small_photo[np.newaxis], **options)


def test_oklab_needs_gray_or_rgb_colors():
    with pytest.raises(ValueError, match=r"needs gray or RGB colors.*5 channels"):
        encode(np.zeros((1, 2, 2, 5), np.uint8), color_space="oklab")


# ---------------------------------------------------------------------------
# OkLab


def test_oklab_codes_are_the_exact_nearest_stored_color(small_photo):
    encoding = encode(
        small_photo[np.newaxis], n_clusters=12, color_space="oklab", random_state=0
    )
    assert encoding.codebook.dtype == np.uint8 and encoding.codebook.shape == (12, 3)
    distances = squared_distances(
        srgb_to_oklab(small_photo.reshape(-1, 3)), srgb_to_oklab(encoding.codebook)
    )
    assert_nearest(encoding.codes, distances)


def test_oklab_fit_is_closer_in_oklab_and_rgb_fit_in_rgb(small_photo):
    pixels = small_photo.reshape(-1, 3)

    def errors(color_space):
        encoding = encode(
            small_photo[np.newaxis],
            n_clusters=8,
            color_space=color_space,
            random_state=0,
        )
        decoded = encoding.codebook[encoding.codes.ravel()]
        lab = ((srgb_to_oklab(pixels) - srgb_to_oklab(decoded)) ** 2).sum(-1).mean()
        rgb = ((pixels.astype(float) - decoded) ** 2).sum(-1).mean()
        return lab, rgb

    oklab_lab, oklab_rgb = errors("oklab")
    rgb_lab, rgb_rgb = errors("rgb")
    assert oklab_lab < rgb_lab
    assert rgb_rgb < oklab_rgb


def test_oklab_gray_is_fitted_on_lightness():
    gray = np.arange(0, 256, 4, dtype=np.uint8).reshape(1, 8, 8, 1)
    encoding = encode(gray, n_clusters=4, color_space="oklab", random_state=0)
    assert encoding.codebook.shape == (4, 1)
    lightness = srgb_to_oklab(np.repeat(gray.reshape(-1, 1), 3, axis=1))[:, :1]
    book = srgb_to_oklab(np.repeat(encoding.codebook, 3, axis=1))[:, :1]
    assert_nearest(encoding.codes, squared_distances(lightness, book))
    # Lightness spaces dark levels wider than sRGB levels do.
    rgb = encode(gray, n_clusters=4, random_state=0)
    assert encoding.codebook.min() < rgb.codebook.min()


# ---------------------------------------------------------------------------
# Alpha


def test_transparency_is_exact_and_costs_one_codeword(rgba):
    encoding = quiet_encode(rgba[np.newaxis], alpha=True, n_clusters=16, random_state=0)
    decoded = encoding.codebook[encoding.codes[0]]
    transparent, opaque = rgba[..., 3] == 0, rgba[..., 3] == 255
    assert np.all(decoded[transparent] == 0)  # alpha 0, and no color either
    assert len(np.unique(encoding.codes[0][transparent])) == 1
    assert np.all(decoded[opaque, 3] == 255)
    # Translucent pixels stay translucent or become their nearest extreme.
    assert len(encoding.codebook) == 16


def test_alpha_codes_are_the_exact_nearest_premultiplied(rgba):
    encoding = quiet_encode(rgba[np.newaxis], alpha=True, n_clusters=24, random_state=0)
    pixels = rgba.reshape(-1, 4)
    book = encoding.codebook
    distances = squared_distances(premultiplied(pixels), premultiplied(book))
    # Opaque pixels may take opaque codewords only.
    opaque = pixels[:, 3] == 255
    distances[np.ix_(opaque, book[:, 3] != 255)] = np.inf
    assert_nearest(encoding.codes.ravel(), distances)


def test_transparent_colors_spend_no_codewords():
    sprite = np.asarray(rgba_images.sprites())
    visible = sprite[sprite[..., 3] > 0]
    n_visible = len(np.unique(visible, axis=0))
    assert n_visible < 256 < len(np.unique(sprite.reshape(-1, 4), axis=0))
    encoding = quiet_encode(sprite[np.newaxis], alpha=True, n_clusters=n_visible + 1)
    decoded = encoding.codebook[encoding.codes[0]]
    # Every visible color kept exactly, the noise under transparency dropped.
    np.testing.assert_array_equal(decoded[sprite[..., 3] > 0], visible)


def test_opaque_colors_fit_better_than_the_plain_rgba_fit():
    sprite = np.asarray(rgba_images.sprites())
    opaque = sprite[..., 3] == 255
    encoding = quiet_encode(
        sprite[np.newaxis], alpha=True, n_clusters=16, random_state=0
    )
    now = encoding.codebook[encoding.codes[0]]
    before = plain_rgba_fit(sprite, 16)

    def rmse(decoded):
        return np.sqrt(
            ((decoded[opaque, :3] - sprite[opaque, :3].astype(float)) ** 2).mean()
        )

    assert rmse(now) < 0.5 * rmse(before)  # measured 4.8 against 16.6


def test_gray_alpha():
    gray = np.array([[0, 40, 80, 250], [90, 200, 10, 30]], np.uint8)
    alpha = np.array([[0, 255, 128, 255], [3, 255, 0, 60]], np.uint8)
    frames = np.stack([gray, alpha], axis=-1)[np.newaxis]
    encoding = quiet_encode(frames, alpha=True, n_clusters=3, random_state=0)
    decoded = encoding.codebook[encoding.codes[0]]
    assert np.all(decoded[alpha == 0] == 0)
    assert np.all(decoded[alpha == 255, 1] == 255)


def test_all_transparent_and_single_color():
    frames = np.zeros((1, 3, 3, 4), np.uint8)
    frames[..., :3] = 77  # invisible
    encoding = quiet_encode(frames, alpha=True, n_clusters=4)
    np.testing.assert_array_equal(encoding.codebook, [[0, 0, 0, 0]])
    frames[0, 0, 0] = (10, 20, 30, 255)
    encoding = quiet_encode(frames, alpha=True, n_clusters=1)
    assert len(encoding.codebook) == 1  # K = 1 cannot keep both


# ---------------------------------------------------------------------------
# Reusing a codebook


@pytest.mark.parametrize(
    ("options", "alpha"),
    [({"color_space": "oklab"}, False), ({}, True), ({"color_space": "oklab"}, True)],
)
def test_a_quantizer_fitted_in_features_reuses_its_stored_colors(options, alpha):
    sprite = np.asarray(rgba_images.sprites())
    frames = (sprite if alpha else sprite[..., :3])[np.newaxis]
    first = quiet_encode(frames, alpha=alpha, n_clusters=12, random_state=0, **options)
    again = quiet_encode(frames, alpha=alpha, codebook=first.quantizer, **options)
    np.testing.assert_array_equal(again.codebook, first.codebook)
    np.testing.assert_array_equal(again.codes, first.codes)
    # Refitted on pixel values, the quantizer's own centroids count again.
    refitted = first.quantizer.fit(frames.reshape(-1, frames.shape[-1]))
    reused = quiet_encode(frames, alpha=alpha, codebook=refitted, **options)
    np.testing.assert_array_equal(
        reused.codebook, np.clip(np.rint(refitted.codebook_), 0, 255)
    )


def test_a_shared_codebook_must_match_the_channels(small_photo):
    book = VectorQuantizer(4, random_state=0).fit(small_photo.reshape(-1, 3))
    with pytest.raises(ValueError, match="fitted on 3 channels but the image has 4"):
        encode(np.zeros((1, 2, 2, 4), np.uint8), alpha=True, codebook=book)
    with pytest.raises(ValueError, match="VQ files hold at most 2"):
        encode(small_photo[np.newaxis], codebook=book, max_codes=2)


# ---------------------------------------------------------------------------
# Dithering plumbing, with a fake kernel


class FakeKernel(types.ModuleType):
    """skvq.dither's interface; codes are the exact nearest, calls recorded."""

    METHODS = ("plain", "fancy")

    def __init__(self, refine=False):
        super().__init__("skvq.dither")
        self.calls = []
        if refine:
            self.fit_palette = self._fit

    def resolve_method(self, dither):
        if dither is None or dither is False:
            return None
        if dither is True:
            return "fancy"
        if dither in self.METHODS:
            return dither
        raise ValueError(f"dither must be one of {self.METHODS}, got {dither!r}.")

    def dither_codes(self, pixels, palette, *, method=True, mask=None, alpha=False):
        self.calls.append(
            {"pixels": pixels, "palette": palette, "method": method, "mask": mask}
        )
        features = np.asarray(pixels, float).reshape(-1, pixels.shape[-1])
        distances = squared_distances(features, np.asarray(palette, float))
        codes = distances.argmin(axis=1).reshape(pixels.shape[:2]).astype(np.uint8)
        if mask is not None:
            codes[~mask] = 0
        return codes

    def _fit(self, pixels, palette, *, method=True, mask=None, srgb=False):
        self.calls.append({"refine": method, "srgb": srgb})
        return palette // 2 * 2  # a recognizable change


@pytest.fixture
def fake_kernel(monkeypatch):
    def install(**kwargs):
        kernel = FakeKernel(**kwargs)
        monkeypatch.setitem(sys.modules, "skvq.dither", kernel)
        monkeypatch.setattr(skvq, "dither", kernel, raising=False)
        return kernel

    return install


def test_no_dithering_needs_no_kernel(monkeypatch, small_photo):
    monkeypatch.setitem(sys.modules, "skvq.dither", None)  # import fails
    monkeypatch.delattr(skvq, "dither", raising=False)
    encode(small_photo[np.newaxis], n_clusters=4, random_state=0)
    encode(small_photo[np.newaxis], n_clusters=4, dither=False, random_state=0)
    with pytest.raises(ImportError):
        encode(small_photo[np.newaxis], n_clusters=4, dither=True)


def test_dithering_calls_the_kernel_on_the_stored_colors(fake_kernel, small_photo):
    kernel = fake_kernel()
    plain = encode(small_photo[np.newaxis], n_clusters=6, random_state=0)
    dithered = encode(
        small_photo[np.newaxis], n_clusters=6, dither=True, random_state=0
    )
    (call,) = kernel.calls
    assert call["method"] == "fancy"
    np.testing.assert_array_equal(call["pixels"], small_photo)
    np.testing.assert_array_equal(call["palette"], plain.codebook)  # same fit
    np.testing.assert_array_equal(dithered.codebook, plain.codebook)
    np.testing.assert_array_equal(
        dithered.codes[0], kernel.dither_codes(small_photo, plain.codebook)
    )
    encode(small_photo[np.newaxis], n_clusters=6, dither="plain", random_state=0)
    assert kernel.calls[-1]["method"] == "plain"
    with pytest.raises(ValueError, match="dither must be one of"):
        encode(small_photo[np.newaxis], dither="bogus")


def test_dithering_uses_the_kernels_palette_refinement(fake_kernel, small_photo):
    kernel = fake_kernel(refine=True)
    plain = encode(small_photo[np.newaxis], n_clusters=6, random_state=0)
    dithered = encode(
        small_photo[np.newaxis], n_clusters=6, dither=True, random_state=0
    )
    assert kernel.calls[0] == {"refine": "fancy", "srgb": True}
    np.testing.assert_array_equal(dithered.codebook, plain.codebook // 2 * 2)
    np.testing.assert_array_equal(kernel.calls[1]["palette"], dithered.codebook)


def test_dithering_in_oklab_works_on_oklab_features(fake_kernel, small_photo):
    kernel = fake_kernel()
    encoding = encode(
        small_photo[np.newaxis],
        n_clusters=6,
        dither=True,
        color_space="oklab",
        random_state=0,
    )
    (call,) = kernel.calls
    lab = srgb_to_oklab(small_photo)
    # Features are OkLab scaled by 255 and shifted: distances keep their order.
    features = np.asarray(call["pixels"])
    np.testing.assert_allclose(features[..., 0], 255 * lab[..., 0], atol=1e-9)
    np.testing.assert_allclose(
        np.diff(features[..., 1:], axis=1),
        255 * np.diff(lab[..., 1:], axis=1),
        atol=1e-9,
    )
    assert_nearest(
        encoding.codes,
        squared_distances(lab.reshape(-1, 3), srgb_to_oklab(encoding.codebook)),
    )


def test_dithering_keeps_transparency_and_opacity_apart(fake_kernel, rgba):
    kernel = fake_kernel()
    encoding = quiet_encode(
        rgba[np.newaxis], alpha=True, n_clusters=16, dither=True, random_state=0
    )
    decoded = encoding.codebook[encoding.codes[0]]
    opacity = rgba[..., 3]
    transparent, opaque = opacity == 0, opacity == 255
    assert np.all(decoded[transparent] == 0)
    assert np.all(decoded[opaque, 3] == 255)
    for call in kernel.calls:  # no error reaches or leaves transparent pixels
        assert not np.any(call["mask"] & transparent)
    masks = [call["mask"] for call in kernel.calls]
    # Opaque pixels are dithered among opaque colors only, apart from the rest.
    opaque_call = next(c for c in kernel.calls if np.array_equal(c["mask"], opaque))
    assert np.asarray(opaque_call["palette"]).shape[1] == 3
    assert len(opaque_call["palette"]) == np.sum(encoding.codebook[:, 3] == 255)
    translucent = (opacity > 0) & ~opaque
    assert any(np.array_equal(mask, translucent) for mask in masks) == translucent.any()


# ---------------------------------------------------------------------------
# The real kernel, once skvq/dither.py is there


def test_real_kernel_keeps_exact_colors_exact():
    pytest.importorskip("skvq.dither")
    rng = np.random.default_rng(0)
    palette = rng.integers(0, 256, (6, 3), dtype=np.uint8)
    image = palette[rng.integers(0, 6, (30, 40))]
    book = VectorQuantizer(6, random_state=0).fit(palette)
    exact = encode(image[np.newaxis], codebook=book)
    dithered = encode(image[np.newaxis], codebook=book, dither=True)
    # No pixel has any error to diffuse.
    np.testing.assert_array_equal(dithered.codes, exact.codes)


def test_real_kernel_smooths_a_gradient():
    pytest.importorskip("skvq.dither")
    ramp = np.tile(np.linspace(0, 255, 128), (32, 1)).round().astype(np.uint8)
    frames = ramp[np.newaxis, :, :, np.newaxis]
    plain = encode(frames, n_clusters=4, random_state=0)
    dithered = encode(frames, n_clusters=4, dither=True, random_state=0)

    def column_error(encoding):  # banding: whole columns off by the same
        decoded = encoding.codebook[encoding.codes[0]][..., 0].astype(float)
        return np.abs(decoded.mean(axis=0) - ramp.mean(axis=0)).mean()

    assert column_error(dithered) < 0.5 * column_error(plain)


def test_real_kernel_keeps_transparency(rgba):
    pytest.importorskip("skvq.dither")
    encoding = quiet_encode(
        rgba[np.newaxis], alpha=True, n_clusters=16, dither=True, random_state=0
    )
    decoded = encoding.codebook[encoding.codes[0]]
    assert np.all(decoded[rgba[..., 3] == 0] == 0)
    assert np.all(decoded[rgba[..., 3] == 255, 3] == 255)


def test_encoder_module_needs_no_pillow():
    source = Path(encoder.__file__).read_text()
    assert "PIL" not in source


def test_alpha_benchmark_runs(capsys):
    path = Path(__file__).parents[1] / "benchmarks" / "bench_alpha.py"
    spec = importlib.util.spec_from_file_location("bench_alpha", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--quick"])
    rows = [line for line in capsys.readouterr().out.splitlines() if "sprites" in line]
    skvq_row = next(row for row in rows if "| skvq |" in row).strip("| ").split(" | ")
    assert skvq_row[3:5] == ["0", "255"]  # transparent stays 0, opaque 255
