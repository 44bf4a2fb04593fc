"""The .vq Pillow plugin: Image.open, save and save_all after ``import skvq``."""

import functools
import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageFile, ImageSequence, UnidentifiedImageError

import skvq
from skvq import VectorQuantizer, quantize_image
from skvq import format as vq
from skvq.imaging import reconstruct

MODES = ["RGB", "RGBA", "L", "LA", "P", "1"]


def save_bytes(image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="VQ", **options)
    return buffer.getvalue()


def open_bytes(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def color_mode(image) -> str:
    """The mode the plugin stores colors in: RGB(A) for "P", L for "1"."""
    if image.mode == "P":
        alpha = "transparency" in image.info or image.palette.mode == "RGBA"
        return "RGBA" if alpha else "RGB"
    if image.mode == "PA":
        return "RGBA"
    return "L" if image.mode == "1" else image.mode


CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def expected_reconstruction(image, k, **options) -> np.ndarray:
    """What the file must decode to: lossless for a "P" image of at most k
    palette entries, else quantize_image on the image's colors."""
    colors = image.convert(color_mode(image))
    if image.mode == "P" and len(np.unique(np.asarray(image))) <= k:
        return np.asarray(colors)
    return quantize_image(colors, k, **options).reconstruction


def visible(pixels) -> np.ndarray:
    """Pixels with the invisible colors of fully transparent ones zeroed."""
    pixels = np.array(pixels)
    pixels[pixels[..., -1] == 0] = 0
    return pixels


def chunk(chunk_type: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(chunk_type + data)
    return struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", crc)


def small_vq(width=10, height=4, n_frames=1) -> bytes:
    """A 4-code gray .vq file written by the format module."""
    codes = np.arange(width * height).reshape(height, width) % 4
    frames = [(codes + frame) % 4 for frame in range(n_frames)]
    return vq.encode_vq(width, height, "L", [[0], [80], [160], [240]], frames)


@st.composite
def small_images(draw):
    mode = draw(st.sampled_from(MODES))
    width, height = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_colors = draw(st.integers(1, 8))
    bands = {"RGB": 3, "RGBA": 4, "L": 1, "LA": 2, "P": 1, "1": 1}[mode]
    colors = rng.integers(0, 256, (n_colors, bands), dtype=np.uint8)
    pixels = colors[rng.integers(0, n_colors, (height, width))]
    if mode == "P":
        image = Image.fromarray(pixels[..., 0] % n_colors, "L").convert("P")
        image.putpalette(rng.integers(0, 256, 3 * n_colors, dtype=np.uint8).tobytes())
        if draw(st.booleans()):
            image.info["transparency"] = 0
        return image
    if mode == "1":
        return Image.fromarray(pixels[..., 0] > 127)
    return Image.fromarray(pixels[..., 0] if bands == 1 else pixels, mode)


# ---------------------------------------------------------------------------
# Registration


def test_import_registers_the_format():
    assert Image.registered_extensions()[".vq"] == "VQ"
    assert Image.MIME["VQ"] == "image/x-vq"
    assert "VQ" in Image.OPEN
    assert "VQ" in Image.SAVE
    assert "VQ" in Image.SAVE_ALL


def test_register_is_idempotent(monkeypatch):
    monkeypatch.setattr(Image, "ID", [i for i in Image.ID if i != "VQ"])
    monkeypatch.delitem(Image.SAVE, "VQ")
    skvq.register()
    skvq.register()
    assert Image.ID.count("VQ") == 1
    assert "VQ" in Image.SAVE
    with open_bytes(small_vq()) as im:
        assert im.format == "VQ"


# ---------------------------------------------------------------------------
# Round trips


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@settings(max_examples=40)
@given(
    image=small_images(),
    k=st.integers(1, 10),
    coding=st.sampled_from([*vq.CODINGS, "auto"]),
)
def test_round_trip(image, k, coding):
    data = save_bytes(image, k=k, random_state=0, coding=coding)
    expected = expected_reconstruction(image, k, random_state=0)
    with open_bytes(data) as opened:
        assert opened.format == "VQ"
        assert opened.size == image.size
        assert opened.mode == "P"
        codes = np.asarray(opened)
        palette = np.array(opened.getpalette("RGBA")).reshape(-1, 4)
        n_codes = len(palette)
        assert 1 <= n_codes <= k
        assert codes.max() < n_codes
        decoded = opened.convert(color_mode(image))
        np.testing.assert_array_equal(np.asarray(decoded), expected)
        if image.mode == "1" and len(np.unique(np.asarray(image))) <= k:
            assert np.array_equal(np.asarray(opened.convert("1")), np.asarray(image))
    info = vq.read_info(data)
    assert info.mode == image.mode
    assert info.n_codes == n_codes
    # The raw size: header, codebook, then N * ceil(log2 K) bits.
    codebook_bytes = n_codes * CHANNELS[color_mode(image)]
    index_bytes = -(-image.width * image.height * (n_codes - 1).bit_length() // 8)
    raw_size = 78 + codebook_bytes + index_bytes
    if coding == "auto":
        assert info.coding in ("raw", "zstd")
        assert len(data) <= raw_size
    else:
        assert info.coding == coding
    if info.coding == "raw":
        assert len(data) == raw_size


def test_codes_and_palette_are_the_quantizer_output(small_photo):
    result = quantize_image(small_photo, 12, random_state=0)
    with open_bytes(
        save_bytes(Image.fromarray(small_photo), k=12, random_state=0)
    ) as im:
        np.testing.assert_array_equal(np.asarray(im), result.codes)
        palette = reconstruct(result.codebook, np.arange(12)[:, None])
        assert im.getpalette() == palette.ravel().tolist()
        np.testing.assert_array_equal(
            np.asarray(im.convert("RGB")), result.reconstruction
        )


@pytest.mark.parametrize("name", ["china.jpg", "flower.jpg"])
def test_sample_photos(tmp_path, name):
    from sklearn.datasets import load_sample_image

    photo = load_sample_image(name)
    options = {"random_state": 0, "max_iter": 10}
    path = tmp_path / "photo.vq"
    Image.fromarray(photo).save(path, k=8, coding="raw", **options)
    with Image.open(path) as im:
        assert (im.format, im.mode, im.size) == ("VQ", "P", (640, 427))
        expected = quantize_image(photo, 8, **options).reconstruction
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), expected)
    # The tutorial's bit accounting, byte for byte.
    index_bytes = -(-640 * 427 * 3 // 8)
    assert path.stat().st_size == 78 + 8 * 3 + index_bytes


def test_raw_file_size_is_the_bit_accounting():
    image = Image.fromarray(np.arange(35, dtype=np.uint8).reshape(5, 7) * 7)
    for k in (1, 2, 3, 5, 17, 35):
        report = skvq.BitReport(n_samples=35, n_features=1, n_codes=k)
        data = save_bytes(image, k=k, random_state=0, coding="raw")
        assert len(data) == 78 + report.codebook_bits // 8 + -(-report.index_bits // 8)


def test_more_than_256_colors_open_in_the_source_mode():
    values = np.arange(300)
    pixels = np.stack([values % 256, values // 256 * 100, 255 - values % 256], axis=1)
    image = Image.fromarray(pixels.astype(np.uint8).reshape(15, 20, 3))
    with open_bytes(save_bytes(image, k=65536)) as opened:
        assert opened.mode == "RGB"
        assert opened.palette is None
        np.testing.assert_array_equal(np.asarray(opened), np.asarray(image))


def test_more_than_256_gray_alpha_colors():
    values = np.arange(400)
    pixels = np.stack([values % 256, values // 2 % 256], axis=1).astype(np.uint8)
    image = Image.fromarray(pixels.reshape(20, 20, 2), "LA")
    with open_bytes(save_bytes(image, k=1000)) as opened:
        assert opened.mode == "LA"
        # Lossless but for the gray of the transparent pixels.
        np.testing.assert_array_equal(np.asarray(opened), visible(image))


def test_largest_codebook_opens_in_the_source_mode():
    codes = np.arange(65536).reshape(256, 256)
    codebook = np.stack([codes.ravel() % 256, codes.ravel() // 256, codes.ravel() % 7])
    data = vq.encode_vq(256, 256, "RGB", codebook.T, [codes])
    with open_bytes(data) as opened:
        assert opened.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(opened), codebook.T[codes])


def test_transparent_color_becomes_alpha():
    image = Image.fromarray(np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8))
    image.info["transparency"] = (1, 2, 3)  # as PNG's tRNS chunk gives it
    data = save_bytes(image, k=2)
    assert vq.read_info(data).mode == "RGBA"
    with open_bytes(data) as opened:
        rgba = np.asarray(opened.convert("RGBA"))
        assert rgba.tolist() == [[[0, 0, 0, 0], [4, 5, 6, 255]]]


def test_saving_few_colors_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_bytes(Image.new("RGB", (4, 4), "red"), k=16)


def test_gray_and_alpha_palettes():
    gray = Image.fromarray(np.array([[0, 100, 200]], np.uint8))
    with open_bytes(save_bytes(gray, k=3)) as opened:
        assert opened.palette.mode == "RGB"
        assert sorted(opened.getpalette()) == sorted([0] * 3 + [100] * 3 + [200] * 3)
    gray_alpha = Image.fromarray(np.array([[[0, 5], [100, 255]]], np.uint8), "LA")
    with open_bytes(save_bytes(gray_alpha, k=2)) as opened:
        assert opened.palette.mode == "RGBA"
        colors = np.array(opened.getpalette("RGBA")).reshape(-1, 4)
        assert sorted(map(tuple, colors)) == [(0, 0, 0, 5), (100, 100, 100, 255)]
        np.testing.assert_array_equal(
            np.asarray(opened.convert("LA")), np.asarray(gray_alpha)
        )


def test_palette_image_keeps_its_palette(monkeypatch):
    def no_fit(*args, **kwargs):
        raise AssertionError("a P image with at most k colors was re-quantized")

    monkeypatch.setattr(VectorQuantizer, "fit", no_fit)
    image = Image.fromarray(np.array([[0, 1, 2], [2, 1, 0]], np.uint8), "P")
    palette = [10, 20, 30, 40, 50, 60, 70, 80, 90] + [0] * (3 * 253)
    image.putpalette(palette)
    with open_bytes(save_bytes(image, k=3)) as opened:
        np.testing.assert_array_equal(np.asarray(opened), np.asarray(image))
        assert opened.getpalette() == palette[:9]


def test_palette_with_transparency_keeps_alpha():
    image = Image.fromarray(np.array([[0, 1, 1, 2]], np.uint8), "P")
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    image.info["transparency"] = 1
    with open_bytes(save_bytes(image, k=4)) as opened:
        assert opened.palette.mode == "RGBA"
        np.testing.assert_array_equal(
            np.asarray(opened.convert("RGBA")), np.asarray(image.convert("RGBA"))
        )


def test_palette_image_with_more_than_k_colors_is_quantized():
    image = Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4), "P")
    image.putpalette([value for i in range(16) for value in (i * 16, 0, 0)])
    with open_bytes(save_bytes(image, k=4, random_state=0)) as opened:
        assert len(opened.getpalette()) == 4 * 3
        expected = expected_reconstruction(image, 4, random_state=0)
        np.testing.assert_array_equal(np.asarray(opened.convert("RGB")), expected)


def test_default_k_is_16(small_photo):
    with open_bytes(save_bytes(Image.fromarray(small_photo), random_state=0)) as im:
        assert len(im.getpalette()) == 16 * 3


def test_save_to_path_and_open_by_extension(tmp_path, small_photo):
    path = tmp_path / "photo.vq"
    Image.fromarray(small_photo).save(path, k=4, random_state=0)
    assert path.read_bytes().startswith(vq.SIGNATURE)
    with Image.open(path) as im:
        assert im.format == "VQ"
        assert im.get_format_mimetype() == "image/x-vq"
    with Image.open(str(path), formats=["VQ"]) as im:
        im.load()


def test_single_frame_file_is_closed_after_load(tmp_path, small_photo):
    path = tmp_path / "photo.vq"
    Image.fromarray(small_photo).save(path, k=4, random_state=0)
    im = Image.open(path)
    file = im.fp
    im.load()  # no ResourceWarning: the tests turn it into an error
    assert file.closed
    assert im.fp is None


# ---------------------------------------------------------------------------
# Lazy open


def test_open_reads_the_header_only():
    data = small_vq(width=300, height=200)

    class CountingFile(io.BytesIO):
        bytes_read = 0

        def read(self, size=-1):
            result = super().read(size)
            self.bytes_read += len(result)
            return result

    file = CountingFile(data)
    with Image.open(file) as im:
        index_offset = im._header.index_offset
        # Pillow's 16-byte sniff, then the header up to the INDX chunk header.
        assert file.bytes_read <= 16 + index_offset + 8 < len(data) - 10_000
        im.load()
        assert file.bytes_read >= len(data) - 16


# ---------------------------------------------------------------------------
# Frames


def frames_of(n_frames):
    rng = np.random.default_rng(n_frames)
    return [
        Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
        for _ in range(n_frames)
    ]


def test_frames_share_one_codebook(tmp_path):
    first, *rest = frames_of(3)
    path = tmp_path / "frames.vq"
    first.save(path, save_all=True, append_images=rest, k=8, random_state=0)
    pixels = np.concatenate([np.asarray(frame) for frame in [first, *rest]])
    expected = quantize_image(pixels, 8, random_state=0).reconstruction.reshape(
        3, 6, 5, 3
    )
    with Image.open(path) as im:
        assert im.n_frames == 3
        assert im.is_animated
        palette = im.getpalette()
        for number in (0, 2, 1, 0):
            im.seek(number)
            assert im.tell() == number
            assert im.getpalette() == palette
            np.testing.assert_array_equal(
                np.asarray(im.convert("RGB")), expected[number]
            )
        with pytest.raises(EOFError, match="outside sequence"):
            im.seek(3)
        decoded = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    np.testing.assert_array_equal(np.stack(decoded), expected)


def test_single_frame(small_photo):
    with open_bytes(save_bytes(Image.fromarray(small_photo), k=2)) as im:
        assert im.n_frames == 1
        assert not im.is_animated
        assert im.tell() == 0
        with pytest.raises(EOFError):
            im.seek(1)


def test_save_without_save_all_stores_the_current_frame():
    first, second = frames_of(2)
    data = save_bytes(first, save_all=True, append_images=[second], k=4)
    with open_bytes(data) as animated:
        animated.seek(1)
        expected = np.asarray(animated.convert("RGB"))
        single = save_bytes(animated, k=4)
        assert vq.read_info(data).n_frames == 2
    with open_bytes(single) as im:
        assert im.n_frames == 1
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), expected)


def test_resaving_an_animation_is_lossless(monkeypatch):
    first, *rest = frames_of(3)
    data = save_bytes(first, save_all=True, append_images=rest, k=6, random_state=0)
    monkeypatch.setattr(VectorQuantizer, "fit", None)  # the palette is reused
    with open_bytes(data) as animated:
        again = save_bytes(animated, save_all=True, k=6)
    header, codes = vq.read_vq(data)
    header_again, codes_again = vq.read_vq(again)
    np.testing.assert_array_equal(codes_again, codes)
    np.testing.assert_array_equal(header_again.codebook, header.codebook)
    assert header_again.mode == "P"


def test_frames_of_mixed_modes_are_stored_in_a_common_mode():
    gray = Image.fromarray(np.full((2, 3), 50, np.uint8))
    color = Image.fromarray(np.full((2, 3, 4), 200, np.uint8), "RGBA")
    data = save_bytes(gray, save_all=True, append_images=[color], k=4)
    assert vq.read_info(data).mode == "RGBA"
    with open_bytes(data) as im:
        assert np.asarray(im.convert("RGBA"))[0, 0].tolist() == [50, 50, 50, 255]
        im.seek(1)
        assert np.asarray(im.convert("RGBA"))[0, 0].tolist() == [200] * 4


def test_frames_must_have_one_size():
    small, large = Image.new("RGB", (2, 2)), Image.new("RGB", (3, 2))
    with pytest.raises(ValueError, match="same size"):
        save_bytes(small, save_all=True, append_images=[large])


def test_seek_after_close_fails():
    im = open_bytes(small_vq(n_frames=2))
    im.close()
    with pytest.raises(ValueError, match="closed image"):
        im.seek(1)


def test_animation_file_is_closed(tmp_path):
    path = tmp_path / "frames.vq"
    path.write_bytes(small_vq(n_frames=2))
    with Image.open(path) as im:
        im.seek(1)
        im.load()
        file = im.fp or im._fp
    assert file.closed


# ---------------------------------------------------------------------------
# Metadata


@functools.cache
def metadata():
    # Built once: createProfile stamps the current time into the profile, so
    # two profiles made a second apart differ.
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010E] = "a vector-quantized test image"  # ImageDescription
    return {"icc_profile": icc, "exif": exif.tobytes(), "dpi": (72.5, 300.0)}


def test_metadata_from_save_options():
    image = Image.new("RGB", (3, 2), "red")
    with open_bytes(save_bytes(image, k=1, **metadata())) as im:
        for key, value in metadata().items():
            assert im.info[key] == value
        assert im.getexif()[0x010E] == "a vector-quantized test image"


def test_metadata_survives_png_to_vq_to_vq():
    png = io.BytesIO()
    Image.new("RGB", (3, 2), "blue").save(png, format="PNG", **metadata())
    with Image.open(png) as source:
        first = save_bytes(source, k=2)
    with open_bytes(first) as im:
        second = save_bytes(im, k=2)
    with open_bytes(second) as im:
        assert im.info["icc_profile"] == metadata()["icc_profile"]
        assert im.info["exif"] == metadata()["exif"]
        assert im.info["dpi"] == pytest.approx(metadata()["dpi"], abs=0.01)


def test_no_metadata_by_default():
    with open_bytes(save_bytes(Image.new("L", (2, 2)), k=1)) as im:
        assert not {"icc_profile", "exif", "dpi"} & set(im.info)


# ---------------------------------------------------------------------------
# Save errors: a clear ValueError, nothing written


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"k": 0}, "k must be an integer from 1 to 65536, got 0"),
        ({"k": 65537}, "got 65537"),
        ({"k": 2.5}, "got 2.5"),
        ({"k": "16"}, "got '16'"),
        ({"k": True}, "got True"),
        ({"tol": -1}, "'tol' parameter"),
        ({"init": "bogus"}, "'init' parameter"),
        ({"n_init": 0}, "'n_init' parameter"),
        ({"max_iter": 0}, "'max_iter' parameter"),
        ({"random_state": "seed"}, "'random_state' parameter"),
    ],
)
def test_bad_options(tmp_path, options, message):
    image = Image.new("P", (2, 2))  # even the path that needs no K-Means checks
    buffer = io.BytesIO(b"kept")
    buffer.seek(4)
    with pytest.raises(ValueError, match=message):
        image.save(buffer, format="VQ", **options)
    assert buffer.getvalue() == b"kept"
    path = tmp_path / "bad.vq"
    with pytest.raises(ValueError, match=message):
        image.save(path, **options)
    assert not path.exists()  # Pillow removes the file it created


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ({"K": 32}, "'K': the number of colors is k, lowercase"),
        ({"n_clusters": 32}, "'n_clusters': the number of colors is k in save options"),
        ({"kk": 16}, "'kk': did you mean 'k'?"),
        ({"bogus": 3}, ""),
        ({"k": 4, "dithering": True}, "'dithering': did you mean 'dither'?"),
        ({"colour_space": "oklab"}, "did you mean 'color_space'?"),
        ({"append": True}, ""),  # appending to a file would corrupt it
    ],
)
def test_unknown_options_are_refused(tmp_path, small_photo, options, hint):
    image = Image.fromarray(small_photo)
    name = next(key for key in options if key != "k")
    valid = "Valid options: algorithm, append_images, codebook, coding, color_space"
    with pytest.raises(ValueError, match=f"Unknown VQ save option '{name}'") as raised:
        save_bytes(image, **options)
    assert hint in str(raised.value) and valid in str(raised.value)
    path = tmp_path / "photo.vq"
    with pytest.raises(ValueError, match="Unknown VQ save option"):
        skvq.save(image, path, **options)
    assert not path.exists()
    with pytest.raises(ValueError, match="Unknown VQ save options 'a', 'b'"):
        save_bytes(image, a=1, b=2)


def test_pillows_own_options_are_accepted(small_photo):
    first, second = frames_of(2)
    save_bytes(first, save_all=True, append_images=[second], k=4)
    save_bytes(first, save_all=False, append_images=[second], k=4)
    first.encoderinfo = {"k": 3}  # options set on the image, as Pillow allows
    with open_bytes(save_bytes(first, random_state=0)) as opened:
        assert len(opened.getpalette()) == 3 * 3


def test_every_documented_option_is_accepted():
    from skvq import pillow_plugin

    for option in pillow_plugin.SAVE_OPTIONS:
        assert f"``{option}``" in pillow_plugin.__doc__


def test_color_space_option(small_photo):
    image = Image.fromarray(small_photo)
    data = save_bytes(image, k=8, color_space="oklab", random_state=0)
    expected = quantize_image(small_photo, 8, color_space="oklab", random_state=0)
    with open_bytes(data) as opened:
        np.testing.assert_array_equal(np.asarray(opened), expected.codes)
        np.testing.assert_array_equal(
            np.asarray(opened.convert("RGB")), expected.reconstruction
        )
    plain = save_bytes(image, k=8, color_space="rgb", random_state=0)
    assert plain == save_bytes(image, k=8, random_state=0) != data
    with pytest.raises(ValueError, match="color_space must be one of"):
        save_bytes(image, color_space="cielab")


def test_dither_option_reaches_the_encoder(small_photo, monkeypatch):
    from skvq import encoder

    seen = []
    monkeypatch.setattr(encoder, "dither_method", lambda dither: seen.append(dither))
    data = save_bytes(Image.fromarray(small_photo), k=4, dither="a-method")
    assert seen and set(seen) == {"a-method"}
    assert vq.read_info(data).n_codes == 4


def test_dithered_file_decodes_to_quantize_image_dithered(small_photo):
    pytest.importorskip("skvq.dither")
    image = Image.fromarray(small_photo)
    data = save_bytes(image, k=8, dither=True, random_state=0)
    expected = quantize_image(small_photo, 8, dither=True, random_state=0)
    with open_bytes(data) as opened:
        np.testing.assert_array_equal(np.asarray(opened), expected.codes)
    with pytest.raises(ValueError, match="dither"):
        save_bytes(image, dither="no-such-method")


@pytest.mark.parametrize("mode", ["CMYK", "I", "F", "I;16", "HSV", "YCbCr", "La"])
def test_unsupported_modes(mode):
    with pytest.raises(ValueError, match=f"Image mode '{mode}' is not supported"):
        save_bytes(Image.new(mode, (2, 2)))


# ---------------------------------------------------------------------------
# Bad input


def test_not_a_vq_file():
    png = io.BytesIO()
    Image.new("RGB", (2, 2)).save(png, format="PNG")
    with pytest.raises(UnidentifiedImageError, match="cannot identify"):
        Image.open(io.BytesIO(b"not an image at all"))
    with pytest.raises(UnidentifiedImageError):
        Image.open(png, formats=["VQ"])


def test_text_mode_transfer_is_named():
    damaged = small_vq().replace(b"\r\n", b"\n", 1)
    with pytest.warns(UserWarning, match="text mode"):
        with pytest.raises(UnidentifiedImageError):
            open_bytes(damaged)


def test_damaged_header():
    data = bytearray(small_vq())
    data[len(vq.SIGNATURE) + 8 + 2] ^= 0x10  # inside HEAD's width
    with pytest.raises(OSError, match="CRC mismatch in 'HEAD' chunk"):
        open_bytes(bytes(data))


def test_inconsistent_header():
    data = small_vq()
    head = bytearray(data[len(vq.SIGNATURE) + 8 : len(vq.SIGNATURE) + 8 + 21])
    head[15] = 9  # bits per code
    damaged = data.replace(
        data[len(vq.SIGNATURE) : len(vq.SIGNATURE) + 33], chunk(b"HEAD", bytes(head))
    )
    with pytest.raises(OSError, match="damaged header: 9 bits per code for 4 codes"):
        open_bytes(damaged)


def test_failed_checksum_in_index_data():
    data = bytearray(small_vq())
    data[-12 - 4 - 1] ^= 1  # the last index byte
    with open_bytes(bytes(data)) as im:  # the header is fine
        with pytest.raises(OSError, match="CRC mismatch in 'INDX' chunk"):
            im.load()


def test_truncated_file():
    data = small_vq()[:-20]
    with open_bytes(data) as im:
        with pytest.raises(OSError, match="file truncated: 'INDX' chunk announces 10"):
            im.load()


def test_truncated_file_loads_partially_when_allowed(monkeypatch):
    data = small_vq()
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with open_bytes(data[: -12 - 4 - 6]) as im:  # 4 of 10 index bytes left
        im.load()
        codes = np.asarray(im).ravel()
    expected = np.arange(40) % 4
    expected[16:] = 0
    np.testing.assert_array_equal(codes, expected)


def test_decompression_bomb(monkeypatch):
    data = small_vq(width=100, height=100)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)
    with pytest.warns(Image.DecompressionBombWarning):
        open_bytes(data).close()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)
    with pytest.raises(Image.DecompressionBombError):
        open_bytes(data)


def test_huge_header_dimensions_are_checked_against_the_data(monkeypatch):
    # With Pillow's limit off, the file's own bytes must stop the allocation.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    data = small_vq()
    head = bytearray(data[len(vq.SIGNATURE) + 8 : len(vq.SIGNATURE) + 8 + 21])
    head[1:9] = struct.pack(">II", 2**31 - 1, 2**31 - 1)
    damaged = data.replace(
        data[len(vq.SIGNATURE) : len(vq.SIGNATURE) + 33], chunk(b"HEAD", bytes(head))
    )
    with pytest.raises(OSError, match="INDX chunk holds 10 bytes"):
        open_bytes(damaged)


def test_verify():
    with open_bytes(small_vq(n_frames=3)) as im:
        im.verify()
    with open_bytes(small_vq()) as im:
        im.load()
        with pytest.raises(RuntimeError, match="directly after open"):
            im.verify()
    data = bytearray(small_vq(n_frames=3))
    data[-12 - 4 - 1] ^= 1  # the last frame
    with open_bytes(bytes(data)) as im:
        with pytest.raises(OSError, match="CRC mismatch in 'INDX' chunk"):
            im.verify()
