"""Index codings of .vq files: raw, zstd and bz2 run codings, and "auto"."""

import bz2
import io
import struct
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import skvq
from skvq import format as vq
from skvq.bits import bits_per_code
from skvq.cli import main as cli_main
from skvq.image import reconstruct

RUN_CODINGS = ["zstd", "bz2"]
# Signature, HEAD, and the 12 bytes around BOOK, INDX and DONE.
SINGLE_FRAME_OVERHEAD = 78


@st.composite
def code_maps(draw):
    """Codes of random shape and K, as noise or as runs (like real images)."""
    n_codes = draw(st.one_of(st.integers(1, 300), st.integers(1, vq.MAX_CODES)))
    height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        codes = rng.integers(0, n_codes, height * width)
    else:  # runs of a few distinct codes, extremes included
        values = rng.choice([0, n_codes - 1, rng.integers(n_codes)], height * width)
        codes = np.repeat(values, rng.integers(1, 40, values.size))[: height * width]
        codes = np.resize(codes, height * width)
    return n_codes, codes.reshape(height, width)


def encode(codes, n_codes, coding, **kwargs):
    height, width = codes.shape
    codebook = (np.arange(n_codes) % 256).astype(np.uint8)[:, np.newaxis]
    return vq.encode_vq(width, height, "L", codebook, [codes], coding=coding, **kwargs)


def index_data(data: bytes) -> tuple[int, bytes]:
    """Offset and data of the first INDX chunk."""
    offset = data.index(b"INDX") - 4
    (length,) = struct.unpack_from(">I", data, offset)
    return offset, data[offset + 8 : offset + 8 + length]


def with_index_data(data: bytes, new: bytes) -> bytes:
    """The file with its INDX data replaced, the CRC made valid again."""
    offset, old = index_data(data)
    crc = zlib.crc32(new, zlib.crc32(b"INDX"))
    chunk = struct.pack(">I4s", len(new), b"INDX") + new + struct.pack(">I", crc)
    return data[:offset] + chunk + data[offset + 12 + len(old) :]


def runs_data(flags: bytes, run_codes: bytes) -> bytes:
    """Run-coding INDX data from its two compressed streams."""
    return struct.pack(">I", len(flags)) + flags + run_codes


# ---------------------------------------------------------------------------
# Round trips and sizes


@pytest.mark.parametrize("coding", [*vq.CODINGS, "auto"])
@given(maps=code_maps())
def test_every_coding_round_trips(coding, maps):
    n_codes, codes = maps
    data = encode(codes, n_codes, coding)
    header, decoded = vq.read_vq(data)
    np.testing.assert_array_equal(decoded[0], codes)
    assert decoded.dtype == (np.uint8 if n_codes <= 256 else np.uint16)
    raw_size = (
        SINGLE_FRAME_OVERHEAD + n_codes + -(-codes.size * bits_per_code(n_codes) // 8)
    )
    if coding == "raw":
        assert header.coding == "raw"
        assert len(data) == raw_size  # the tutorial's bit accounting, exactly
    elif coding == "auto":
        # The smallest of the codings it chooses from, the first on a tie.
        sizes = [len(encode(codes, n_codes, name)) for name in vq.AUTO_CODINGS]
        assert header.coding == vq.AUTO_CODINGS[sizes.index(min(sizes))]
        assert len(data) == min(sizes) <= raw_size
    else:
        assert header.coding == coding


@pytest.mark.parametrize("coding", RUN_CODINGS)
def test_multi_frame_round_trip(coding):
    frames = np.arange(3 * 5 * 7).reshape(3, 5, 7) // 4 % 9
    data = vq.encode_vq(7, 5, "L", np.arange(9)[:, None], frames, coding=coding)
    header, decoded = vq.read_vq(data)
    assert (header.coding, header.n_frames) == (coding, 3)
    np.testing.assert_array_equal(decoded, frames)
    vq.verify_vq(data)


def test_auto_keeps_raw_for_noise_and_codes_runs(small_photo):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64))
    assert vq.read_info(encode(noise, 256, "auto")).coding == "raw"
    flat = np.zeros((64, 64), int)
    assert vq.read_info(encode(flat, 256, "auto")).coding == "zstd"


def test_run_codings_beat_raw_on_a_photo(small_photo):
    result = skvq.quantize_image(small_photo, 16, random_state=0)
    palette = reconstruct(result.codebook, np.arange(16)[:, None])
    sizes = {
        coding: vq.read_info(
            vq.encode_vq(60, 40, "RGB", palette, [result.codes], coding=coding)
        )
        for coding in vq.CODINGS
    }
    assert sizes["raw"].bits_per_pixel > sizes["zstd"].bits_per_pixel
    assert sizes["raw"].bits_per_pixel > sizes["bz2"].bits_per_pixel


def test_run_coding_layout_is_as_specified():
    # docs/format.md: flags 1 where a run starts, packed per row; then the
    # run codes at 4 bits, each stream compressed on its own.
    codes = np.array([[1, 1, 2], [2, 2, 0]])
    _, data = index_data(encode(codes, 3, "bz2"))
    (flags_length,) = struct.unpack_from(">I", data)
    flags = bz2.decompress(data[4 : 4 + flags_length])
    assert flags == bytes([0b10100000, 0b00100000])
    assert bz2.decompress(data[4 + flags_length :]) == bytes([0x12, 0x00])


# ---------------------------------------------------------------------------
# Damaged and crafted data


@pytest.fixture(params=RUN_CODINGS)
def coded_file(request):
    codes = np.arange(200).reshape(10, 20) // 7 % 5
    return request.param, codes, encode(codes, 5, request.param)


def test_corrupted_coded_data_fails_the_crc(coded_file):
    _, _, data = coded_file
    offset, index = index_data(data)
    damaged = bytearray(data)
    damaged[offset + 8 + len(index) // 2] ^= 0x40
    with pytest.raises(vq.FormatError, match="CRC mismatch in 'INDX'"):
        vq.read_vq(bytes(damaged))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda index: index[:3], "hold no run flags"),
        (lambda index: struct.pack(">I", 10**6) + index[4:], "run flags of 1000000"),
        (lambda index: index[:-5], "ends early|damaged index data"),
        (lambda index: index + b"\0", "bytes after a compressed stream|damaged"),
        (lambda index: index[:4] + index[4:10] + b"junk" + index[10:], "damaged"),
    ],
)
def test_damaged_coded_data_with_a_valid_crc_is_rejected(coded_file, damage, message):
    _, _, data = coded_file
    _, index = index_data(data)
    with pytest.raises(vq.FormatError, match=message):
        vq.read_vq(with_index_data(data, damage(index)))


@pytest.mark.parametrize("coding", RUN_CODINGS)
def test_first_pixel_must_start_a_run(coding):
    compress = {"zstd": zstandard.ZstdCompressor().compress, "bz2": bz2.compress}
    flags = compress[coding](bytes([0b01000000]))  # 2 x 1 pixels, 1 run
    run_codes = compress[coding](bytes([0x10]))
    data = with_index_data(
        encode(np.zeros((1, 2), int), 2, coding), runs_data(flags, run_codes)
    )
    with pytest.raises(vq.FormatError, match="first pixel starts no run"):
        vq.read_vq(data)


def test_run_codes_at_or_above_k_are_rejected():
    codes = np.zeros((1, 2), int)
    flags = bz2.compress(bytes([0b11000000]))
    run_codes = bz2.compress(bytes([0x0F]))  # codes 0 and 15, with K = 3
    data = with_index_data(encode(codes, 3, "bz2"), runs_data(flags, run_codes))
    with pytest.raises(vq.FormatError, match="code 15 is not below n_codes = 3"):
        vq.read_vq(data)


@pytest.mark.parametrize("coding", RUN_CODINGS)
def test_decompression_is_bounded_by_the_expected_size(coding):
    # A 4 x 4 frame needs 4 bytes of flags; this stream inflates to 32 MB.
    bomb = bytes(32 << 20)
    if coding == "zstd":
        flags = zstandard.ZstdCompressor().compress(bomb)
        message = "declares 33554432 bytes, expected 4"
    else:
        flags = bz2.compress(bomb)
        message = "decompresses to more than the 4 bytes expected"
    data = with_index_data(
        encode(np.zeros((4, 4), int), 2, coding), runs_data(flags, b"")
    )
    tracemalloc.start()
    try:
        with pytest.raises(vq.FormatError, match=message):
            vq.read_vq(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(data) + (1 << 20)


def test_zstd_frames_must_declare_their_size():
    no_size = zstandard.ZstdCompressor(write_content_size=False).compress(b"\xf0" * 4)
    data = with_index_data(
        encode(np.zeros((4, 4), int), 2, "zstd"), runs_data(no_size, b"")
    )
    with pytest.raises(vq.FormatError, match="zstd frame declares"):
        vq.read_vq(data)


def test_truncated_coded_frame(coded_file):
    _, codes, data = coded_file
    truncated = data[: index_data(data)[0] + 8 + 20]
    with pytest.raises(vq.TruncatedFileError):
        vq.read_vq(truncated)
    file = io.BytesIO(truncated)
    header = vq.read_header(file)
    partial = vq.read_frame(file, header, partial=True)
    assert partial.shape == codes.shape  # what is decodable, zeros after
    assert partial.max() < 5


# ---------------------------------------------------------------------------
# The Pillow save option and the CLI


@pytest.mark.parametrize("coding", [*vq.CODINGS, "auto"])
def test_pillow_coding_option(small_photo, coding):
    image = Image.fromarray(small_photo)
    buffer = io.BytesIO()
    image.save(buffer, "VQ", k=16, random_state=0, coding=coding)
    buffer.seek(0)
    expected = skvq.quantize_image(small_photo, 16, random_state=0)
    with Image.open(buffer) as opened:
        np.testing.assert_array_equal(np.asarray(opened), expected.codes)
        np.testing.assert_array_equal(
            np.asarray(opened.convert("RGB")), expected.reconstruction
        )
    info = vq.read_info(buffer.getvalue())
    assert info.coding == ("zstd" if coding == "auto" else coding)


@pytest.mark.parametrize("coding", ["zip", "", None, 1, "RAW"])
def test_pillow_rejects_unknown_codings(coding):
    buffer = io.BytesIO()
    with pytest.raises(ValueError, match="coding must be one of 'raw', 'zstd'"):
        Image.new("RGB", (4, 4)).save(buffer, "VQ", coding=coding)
    assert buffer.getvalue() == b""


def test_cli_encode_coding_and_info(tmp_path, small_photo, capsys):
    source = tmp_path / "photo.png"
    Image.fromarray(small_photo).save(source)
    for coding in ("raw", "bz2", None):
        target = tmp_path / f"{coding}.vq"
        extra = ["--coding", coding] if coding else []
        assert cli_main(["encode", str(source), str(target), *extra]) == 0
        capsys.readouterr()
        assert cli_main(["info", str(target)]) == 0
        out = capsys.readouterr().out
        assert f"coding {coding or 'zstd'}" in out
        stored = vq.read_info(target).bits_per_pixel
        assert f"{stored:.3f} stored" in out
        assert "4 = ceil(log2 K)" in out


def test_benchmark_quick_smoke(capsys):
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    try:
        import bench_filesize
    finally:
        sys.path.pop(0)
    assert bench_filesize.main(["--quick", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "| china-crop | 16 |" in out
    assert "default .vq <=" in out
