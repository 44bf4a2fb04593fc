import io

import numpy as np
import pytest
from PIL import Image

from skvq import VectorQuantizer, quantize_image, segment_image
from skvq.imaging import color_mode, image_to_array, reconstruct
from skvq.metrics import psnr


def test_quantize_array_returns_rounded_reconstruction(small_photo):
    result = quantize_image(small_photo, 8, random_state=0)
    assert result.reconstruction.dtype == np.uint8
    assert result.reconstruction.shape == small_photo.shape
    assert result.codes.shape == small_photo.shape[:2]
    palette = np.rint(result.codebook).astype(np.uint8)
    np.testing.assert_array_equal(result.reconstruction, palette[result.codes])
    assert result.report.n_samples == small_photo.shape[0] * small_photo.shape[1]
    assert result.report.n_codes == 8
    assert isinstance(result.quantizer, VectorQuantizer)


def test_reconstruction_rounds_instead_of_truncating():
    # Two clusters whose means are 0.75 and 200.4 in every channel: rounding
    # gives 1 and 200 where the tutorial's astype(uint8) truncates to 0.
    X = np.array(
        [[0, 0, 0]] + [[1, 1, 1]] * 3 + [[200, 200, 200]] * 3 + [[201] * 3] * 2
    )
    image = X.reshape(3, 3, 3).astype(np.uint8)
    result = quantize_image(image, 2, random_state=0)
    colors = {tuple(c) for c in result.reconstruction.reshape(-1, 3)}
    assert colors == {(1, 1, 1), (200, 200, 200)}


def test_reconstruct_clips_out_of_range_centroids():
    codebook = np.array([[-0.4, 255.6, 12.5]])
    assert reconstruct(codebook, np.zeros((1, 1), np.uint8)).tolist() == [[0, 255, 12]]


def test_pil_image_and_array_give_the_same_result(small_photo):
    from_array = quantize_image(small_photo, 4, random_state=0)
    from_pil = quantize_image(Image.fromarray(small_photo), 4, random_state=0)
    np.testing.assert_array_equal(from_pil.reconstruction, from_array.reconstruction)
    np.testing.assert_array_equal(from_pil.codes, from_array.codes)


@pytest.mark.parametrize(
    ("mode", "channels"), [("L", 1), ("LA", 2), ("RGB", 3), ("RGBA", 4), ("1", 1)]
)
def test_image_modes(small_photo, mode, channels):
    image = Image.fromarray(small_photo).convert(mode)
    result = quantize_image(image, 4, random_state=0)
    # The shape of the image's array: Image.fromarray takes it back.
    assert (
        result.reconstruction.shape
        == np.asarray(image.convert("L" if mode == "1" else mode)).shape
    )
    assert Image.fromarray(result.reconstruction).mode == ("L" if mode == "1" else mode)
    assert result.codebook.shape[1] == channels


def test_palette_image_is_expanded(small_photo):
    image = Image.fromarray(small_photo).quantize(5)
    array = image_to_array(image)
    assert array.shape == (40, 60, 3)
    assert len(np.unique(array.reshape(-1, 3), axis=0)) <= 5


def test_grayscale_array_gets_one_channel_and_keeps_its_shape():
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    result = quantize_image(gray, 4, random_state=0)
    assert result.reconstruction.shape == (8, 8)
    assert result.report.n_features == 1
    # psnr and Image.fromarray take it as it is.
    assert psnr(gray, result.reconstruction) > 20
    assert Image.fromarray(result.reconstruction).size == (8, 8)
    explicit = quantize_image(gray[:, :, np.newaxis], 4, random_state=0)
    assert explicit.reconstruction.shape == (8, 8, 1)
    np.testing.assert_array_equal(
        explicit.reconstruction[..., 0], result.reconstruction
    )


def palette_image():
    image = Image.fromarray(np.array([[0, 1, 2], [2, 1, 0]], np.uint8), "P")
    image.putpalette([10, 20, 30, 200, 100, 50, 0, 0, 255])
    return image


def rgba_palette_image():
    image = palette_image()
    image.putpalette([10, 20, 30, 0, 200, 100, 50, 128, 0, 0, 255, 255], "RGBA")
    return image


def transparent_index_image():
    image = palette_image()
    image.info["transparency"] = 1
    return image


def gray_with_transparent_level():
    image = Image.fromarray(np.array([[0, 50, 100], [100, 50, 0]], np.uint8))
    image.info["transparency"] = 50
    return image


def rgb_with_transparent_color():
    image = palette_image().convert("RGB")
    image.info["transparency"] = (200, 100, 50)
    return image


def palette_alpha_image():
    image = palette_image().convert("PA")
    image.putalpha(Image.fromarray(np.array([[0, 9, 255], [255, 9, 0]], np.uint8)))
    return image


@pytest.mark.parametrize(
    ("make_image", "mode"),
    [
        (palette_image, "RGB"),
        (rgba_palette_image, "RGBA"),
        (transparent_index_image, "RGBA"),
        (gray_with_transparent_level, "LA"),
        (rgb_with_transparent_color, "RGBA"),
        (palette_alpha_image, "RGBA"),
    ],
)
def test_one_alpha_policy_for_arrays_quantize_image_and_vq_files(make_image, mode):
    image = make_image()
    assert color_mode(image) == mode
    # Pillow's own conversion to that mode is the oracle for the colors.
    expected = np.asarray(image.convert(mode))
    np.testing.assert_array_equal(image_to_array(image), expected)
    # At most 3 colors and K = 4: both keep every visible color and alpha.
    result = quantize_image(image, 4, random_state=0)
    np.testing.assert_array_equal(visible(result.reconstruction), visible(expected))
    buffer = io.BytesIO()
    image.save(buffer, format="VQ", k=4)
    with Image.open(buffer) as opened:
        decoded = np.asarray(opened.convert(mode))
    np.testing.assert_array_equal(visible(decoded), visible(expected))


def visible(pixels) -> np.ndarray:
    """Pixels, the colors of fully transparent ones zeroed when there is alpha."""
    pixels = np.array(pixels)
    if pixels.shape[-1] in (2, 4):
        pixels[pixels[..., -1] == 0] = 0
    return pixels


def test_unsupported_mode_is_named():
    with pytest.raises(ValueError, match="Image mode 'I;16' is not supported"):
        quantize_image(Image.new("I;16", (4, 4)), 2)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 2, 2, 2)), r"got shape \(2, 2, 2, 2\)"),
        (np.full((2, 2, 3), 300), "values must be numbers in 0..255"),
        (np.full((2, 2, 3), -1), "values must be numbers in 0..255"),
        (np.full((2, 2, 3), 0.5), "must be integers in 0..255"),
        (np.full((2, 2, 3), np.nan), "values must be numbers in 0..255"),
    ],
)
def test_bad_arrays_are_rejected(array, message):
    with pytest.raises(ValueError, match=message):
        quantize_image(array, 2)


def test_segmentation_labels_group_similar_colors():
    # Left half dark blue-ish, right half bright red-ish, with noise.
    rng = np.random.default_rng(0)
    image = np.zeros((20, 40, 3), np.int64)
    image[:, :20] = (20, 30, 120)
    image[:, 20:] = (220, 40, 30)
    image = np.clip(image + rng.integers(-10, 11, image.shape), 0, 255).astype(np.uint8)
    labels = segment_image(image, 2, random_state=0)
    assert labels.shape == (20, 40)
    assert len(np.unique(labels[:, :20])) == 1
    assert len(np.unique(labels[:, 20:])) == 1
    assert labels[0, 0] != labels[0, -1]


def test_report_of_a_sample_photo(china):
    result = quantize_image(china, 16, random_state=0)
    assert result.report.original_bits == 427 * 640 * 24
    assert result.report.compressed_bits == 427 * 640 * 4 + 16 * 3 * 8
    assert "Compressed size" in result._repr_html_()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int64])
@pytest.mark.parametrize("n_codes", [7, 5000, 2**20 + 3])  # the last on threads
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_reconstruct_is_the_rounded_codebook_row_of_each_code(dtype, n_codes, channels):
    rng = np.random.default_rng(n_codes)
    codebook = rng.uniform(-5, 260, size=(40, channels))
    codes = rng.integers(0, 40, size=(n_codes, 1)).astype(dtype)
    palette = np.clip(np.rint(codebook), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(reconstruct(codebook, codes), palette[codes[:, 0]])
    grid = codes[: n_codes - n_codes % 3, 0].reshape(-1, 3)
    np.testing.assert_array_equal(reconstruct(codebook, grid), palette[grid])
    strided = codes[::2, 0]
    np.testing.assert_array_equal(reconstruct(codebook, strided), palette[strided])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int64])
def test_reconstruct_rejects_codes_beyond_the_codebook(dtype):
    with pytest.raises(IndexError, match="out of bounds"):
        reconstruct(np.zeros((4, 3)), np.array([0, 4], dtype=dtype))


def test_former_module_name_still_imports():
    import skvq.image
    import skvq.imaging

    for name in skvq.image.__all__:
        assert getattr(skvq.image, name) is getattr(skvq.imaging, name)
    assert {"reconstruct", *skvq.imaging.__all__} <= set(skvq.image.__all__)


def test_a_path_is_opened_with_pillow(tmp_path, small_photo):
    path = tmp_path / "photo.png"
    Image.fromarray(small_photo).save(path)
    from_path = quantize_image(path, 4, random_state=0)
    from_str = quantize_image(str(path), 4, random_state=0)
    from_array = quantize_image(small_photo, 4, random_state=0)
    np.testing.assert_array_equal(from_path.codes, from_array.codes)
    np.testing.assert_array_equal(from_str.reconstruction, from_array.reconstruction)
    with pytest.raises(FileNotFoundError):
        quantize_image(tmp_path / "missing.png")


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_a_pixel_list_is_refused(small_photo, channels):
    pixels = np.repeat(small_photo.reshape(-1, 3)[:, :1], channels, axis=1)
    with pytest.raises(ValueError, match=r"looks like a list of pixels.*reshape"):
        quantize_image(pixels, 4)
    # A narrow gray image with an explicit channel axis is an image.
    assert quantize_image(pixels[..., np.newaxis], 2).codes.shape == pixels.shape


def test_a_fitted_codebook_is_reused_in_one_call(small_photo, china):
    other = china[:50, :70]
    vq = VectorQuantizer(6, random_state=0).fit(other.reshape(-1, 3))
    result = quantize_image(small_photo, codebook=vq)
    assert result.quantizer is vq
    np.testing.assert_array_equal(
        result.codes.ravel(), vq.transform(small_photo.reshape(-1, 3)).ravel()
    )
    np.testing.assert_array_equal(
        result.reconstruction, reconstruct(vq.codebook_, result.codes)
    )
    assert result.report.n_codes == 6
    # The codebook of a previous result, whatever space it was fitted in.
    first = quantize_image(china[:50, :70], 6, color_space="oklab", random_state=0)
    again = quantize_image(
        china[:50, :70], codebook=first.quantizer, color_space="oklab"
    )
    np.testing.assert_array_equal(again.codes, first.codes)
    np.testing.assert_array_equal(again.reconstruction, first.reconstruction)


def test_color_space_and_dither_reach_the_encoder(small_photo, monkeypatch):
    from skvq import encoder

    seen = {}
    encode = encoder.encode

    def spy(frames, **options):
        seen.update(options)
        return encode(frames, **{**options, "dither": False})

    monkeypatch.setattr(encoder, "encode", spy)
    result = quantize_image(
        small_photo, 5, dither="some-method", color_space="oklab", random_state=0
    )
    assert seen["dither"] == "some-method"
    assert seen["color_space"] == "oklab"
    assert seen["n_clusters"] == 5 and seen["random_state"] == 0
    assert result.codebook.shape == (5, 3)
    # OkLab centroids come back as sRGB values.
    assert result.codebook.min() >= 0 and result.codebook.max() <= 255


def test_inverse_transform_is_float_and_reconstruct_rounds(small_photo):
    vq = VectorQuantizer(4, random_state=0).fit(small_photo.reshape(-1, 3))
    codes = vq.transform(small_photo.reshape(-1, 3))
    assert vq.inverse_transform(codes).dtype == np.float64
    with pytest.raises(TypeError):
        Image.fromarray(vq.inverse_transform(codes).reshape(small_photo.shape))
    image = reconstruct(vq.codebook_, codes).reshape(small_photo.shape)
    assert Image.fromarray(image).mode == "RGB"
