"""Index codings of .vq files: raw, zstd and bz2 run codings, and "auto"."""

import bz2
import io
import struct
import sys
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor as Pool
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import skvq
from skvq import _context
from skvq import format as vq
from skvq.cli import main as cli_main
from skvq.format.codings import context as context_coding
from skvq.imaging import reconstruct

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
    # ceil(log2 K) bits a code, written out here: not skvq's bits_per_code.
    bits = (n_codes - 1).bit_length()
    raw_size = SINGLE_FRAME_OVERHEAD + n_codes + -(-codes.size * bits // 8)
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


@pytest.fixture(params=[*RUN_CODINGS, "context"])
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


def with_junk(index: bytes) -> bytes:
    return index[:10] + b"junk" + index[10:]


@pytest.mark.parametrize(
    ("coding", "damage", "message"),
    [
        (coding, damage, message)
        for coding in RUN_CODINGS
        for damage, message in [
            (lambda index: index[:3], r"3 bytes hold no run flags\."),
            (
                lambda index: struct.pack(">I", 10**6) + index[4:],
                r"run flags of 1000000 bytes in \d+ bytes\.",
            ),
            (lambda index: index[:-5], r"a compressed stream ends early\."),
            (lambda index: index + b"\0", r"bytes after a compressed stream\."),
            (
                with_junk,
                {
                    "zstd": r"zstd: zstd decompressor error: Destination buffer",
                    "bz2": r"bzip2: Invalid data stream\.",
                }[coding],
            ),
        ]
    ],
)
def test_damaged_run_data_with_a_valid_crc_is_rejected(coding, damage, message):
    codes = np.arange(200).reshape(10, 20) // 7 % 5
    data = encode(codes, 5, coding)
    _, index = index_data(data)
    with pytest.raises(vq.FormatError, match="^damaged index data: " + message):
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


def decode_partially(data: bytes) -> np.ndarray:
    file = io.BytesIO(data)
    return vq.read_frame(file, vq.read_header(file), partial=True)


def exact_prefix(decoded: np.ndarray, codes: np.ndarray) -> int:
    """Pixels decoded as the original, in raster order, before the first other."""
    differs = np.flatnonzero(decoded.ravel() != codes.ravel())
    return int(differs[0]) if differs.size else codes.size


def test_truncated_coded_frame(coded_file):
    _, codes, data = coded_file
    offset, index = index_data(data)
    with pytest.raises(vq.TruncatedFileError, match="'INDX' chunk announces"):
        vq.read_vq(data[: offset + 8 + 20])
    # Cut in its CRC, the frame still holds all its index data: exact.
    np.testing.assert_array_equal(
        decode_partially(data[: offset + 8 + len(index)]), codes
    )
    # Cut anywhere in the data: the codes decoded are the original ones up
    # to some pixel, and 0 after it.
    for cut in range(len(index)):
        decoded = decode_partially(data[: offset + 8 + cut])
        assert decoded.shape == codes.shape
        assert not decoded.ravel()[exact_prefix(decoded, codes) :].any()


# ---------------------------------------------------------------------------
# The context coding, against the plain-Python coder written from the spec


@pytest.fixture(scope="module")
def spec_coder():
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        import context_reference
    finally:
        sys.path.pop(0)
    return context_reference


@st.composite
def small_code_maps(draw):
    """Code maps the plain-Python coder handles quickly, odd shapes included."""
    n_codes = draw(
        st.sampled_from([1, 2, 3, 16, 256, 257, 65536]) | st.integers(1, 300)
    )
    shape = draw(
        st.sampled_from([(1, 1), (1, 17), (17, 1)])
        | st.tuples(st.integers(1, 12), st.integers(1, 12))
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    colors = rng.integers(0, n_codes, draw(st.integers(1, 4)))
    codes = (
        rng.choice(colors, shape)
        if draw(st.booleans())
        else rng.integers(0, n_codes, shape)
    )
    channels = draw(st.integers(1, 4))
    codebook = rng.integers(0, 256, (n_codes, channels), dtype=np.uint8)
    if draw(st.booleans()):  # repeated colors: ties in every distance order
        codebook[rng.integers(0, n_codes, n_codes // 2)] = codebook[0]
    return codes, codebook, draw(st.integers(1, shape[0]))


@settings(max_examples=40)
@given(maps=small_code_maps())
def test_context_coding_is_the_spec(spec_coder, maps):
    codes, codebook, rows = maps
    height, width = codes.shape
    palette = codebook.tolist()
    with patch.object(context_coding, "stripe_rows", lambda *shape: rows):
        data = context_coding.CONTEXT.encode(codes, codebook)
    assert data == spec_coder.encode_index_data(codes.tolist(), palette, rows)
    assert spec_coder.decode_index_data(data, height, width, palette) == codes.tolist()
    decoded = context_coding.CONTEXT.decode(data, codes.shape, codebook, False)
    np.testing.assert_array_equal(decoded, codes)


@settings(max_examples=60)
@given(
    n_codes=st.integers(1, 256),
    levels=st.sampled_from([2, 3, 256]),
    seed=st.integers(0, 2**32 - 1),
)
def test_nearest_entries_sorts_by_distance_then_index(n_codes, levels, seed):
    # Few levels: many equal distances, ordered by index.
    rng = np.random.default_rng(seed)
    palette = np.zeros((n_codes, 4), np.int32)
    channels = rng.integers(1, 5)
    palette[:, :channels] = rng.integers(0, levels, (n_codes, channels))
    palette *= 255 // (levels - 1)
    nearest, positions = _context.nearest_entries(palette)
    squared = ((palette[:, None, :] - palette[None, :, :]) ** 2).sum(axis=2)
    index = np.arange(n_codes)
    for e in range(n_codes):
        expected = np.lexsort((index, squared[e]))
        np.testing.assert_array_equal(nearest[e], expected)
        np.testing.assert_array_equal(positions[e, expected], index)


def test_nearest_entries_needs_8_bit_colors():
    with pytest.raises(ValueError, match=r"palette values must be 0\.\.255"):
        _context.nearest_entries(np.array([[0, 0, 0, 0], [256, 0, 0, 0]], np.int32))


@pytest.mark.parametrize(
    ("codes", "codebook", "index"),
    [  # the examples of docs/format.md
        ([[1, 1, 2], [2, 2, 0]], [[0], [128], [255]], "00000002 00000002 de21"),
        (
            [[0, 0, 1, 1], [0, 2, 2, 1], [3, 2, 2, 1]],
            [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]],
            "00000003 00000003 5a4c9b",
        ),
    ],
)
def test_context_coding_examples(spec_coder, codes, codebook, index):
    expected = bytes.fromhex(index)
    assert spec_coder.encode_index_data(codes, codebook, len(codes)) == expected
    mode = {1: "L", 3: "RGB"}[len(codebook[0])]
    height, width = len(codes), len(codes[0])
    data = vq.encode_vq(width, height, mode, codebook, [codes], coding="context")
    assert index_data(data)[1] == expected


def test_context_coding_stripes_decode_on_threads(monkeypatch, small_photo):
    result = skvq.quantize_image(small_photo, 16, random_state=0)
    palette = reconstruct(result.codebook, np.arange(16)[:, None])
    whole = vq.encode_vq(60, 40, "RGB", palette, [result.codes], coding="context")
    monkeypatch.setattr(context_coding, "STRIPE_PIXELS", 300)  # 8 stripes
    striped = vq.encode_vq(60, 40, "RGB", palette, [result.codes], coding="context")
    _, striped_index = index_data(striped)
    assert struct.unpack_from(">I", striped_index) == (5,)  # rows per stripe
    calls = []
    monkeypatch.setattr(
        context_coding, "ThreadPoolExecutor", lambda n: calls.append(n) or Pool(n)
    )
    np.testing.assert_array_equal(vq.read_vq(striped)[1][0], result.codes)
    assert calls and calls[0] >= 1  # decoded on threads
    # Each stripe learns anew: a small cost in size.
    assert len(whole) < len(striped) < 1.3 * len(whole)


def context_data(rows: int, lengths, stripes: bytes) -> bytes:
    return struct.pack(f">I{len(lengths)}I", rows, *lengths) + stripes


def stripe_of_decisions(spec_coder, bits) -> bytes:
    """A stripe coding ``bits``, each at the even odds of a new counter."""
    coder = spec_coder.Coder()
    for bit in bits:
        coder.bit(2048, bit)
    return coder.finish()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda data, one: context_data(0, [1], one), r"0 rows per stripe in 1 rows"),
        (lambda data, one: context_data(2, [1], one), r"2 rows per stripe in 1 rows"),
        (lambda data, one: data[:3], r"3 bytes hold no stripe table"),
        (lambda data, one: struct.pack(">I", 1), r"a table of 1 stripes in 4 bytes"),
        (lambda data, one: context_data(1, [0], b""), r"stripes of 0 bytes in 0 bytes"),
        (lambda data, one: data + b"\0", r"stripes of \d+ bytes in \d+ bytes"),
        (lambda data, one: data[:-1], r"stripes of \d+ bytes in \d+ bytes"),
        (
            lambda data, one: context_data(1, [len(data) - 7], data[8:] + b"\0"),
            r"stripe 0 codes a stripe that does not end where its length says",
        ),
    ],
)
def test_damaged_context_data_with_a_valid_crc_is_rejected(make, message):
    codes = np.zeros((1, 1), int)  # one pixel, all neighbours 0: one flat decision
    data = index_data(encode(codes, 2, "context"))[1]
    assert data == context_data(1, [1], b"\x01")
    damaged = with_index_data(encode(codes, 2, "context"), make(data, b"\x01"))
    with pytest.raises(vq.FormatError, match="^damaged index data: " + message):
        vq.read_vq(damaged)


def test_context_ranks_and_indices_out_of_range_are_rejected(spec_coder):
    # 1 x 1, K = 3: not W (0), so one of 2 codes left; bucket 1, offset 1 is
    # rank 2, past them. Every counter is new: even odds.
    stripe = stripe_of_decisions(spec_coder, [0, 1, 1])
    data = with_index_data(
        encode(np.zeros((1, 1), int), 3, "context"),
        context_data(1, [len(stripe)], stripe),
    )
    with pytest.raises(
        vq.FormatError, match="stripe 0 codes a rank beyond the codebook"
    ):
        vq.read_vq(data)
    # K = 300: not W, then the index in 9 bits: 299 is the last code, 300 is
    # past it and 0 was tried (W).
    for value, valid in [(299, True), (300, False), (0, False)]:
        bits = [0] + [(value >> j) & 1 for j in range(8, -1, -1)]
        stripe = stripe_of_decisions(spec_coder, bits)
        data = with_index_data(
            encode(np.zeros((1, 1), int), 300, "context"),
            context_data(1, [len(stripe)], stripe),
        )
        if valid:
            assert vq.read_vq(data)[1][0, 0, 0] == value
        else:
            with pytest.raises(vq.FormatError, match="stripe 0 codes an index beyond"):
                vq.read_vq(data)


def test_truncated_context_data_decodes_every_pixel_it_holds(small_photo):
    result = skvq.quantize_image(small_photo, 16, random_state=0)
    data = encode(result.codes, 16, "context")
    offset, index = index_data(data)
    prefixes = []
    for cut in range(0, len(index) + 1, 7):
        decoded = decode_partially(data[: offset + 8 + cut])
        prefix = exact_prefix(decoded, result.codes)
        assert not decoded.ravel()[prefix:].any()
        prefixes.append(prefix)
    assert prefixes == sorted(prefixes)  # more bytes, more pixels
    # The pixels decoded grow with the bytes: a few bytes short, most are.
    assert (
        exact_prefix(
            decode_partially(data[: offset + 8 + len(index) - 4]), result.codes
        )
        > 0.9 * result.codes.size
    )


def test_context_coding_beats_the_run_codings_on_a_photo(small_photo):
    result = skvq.quantize_image(small_photo, 16, random_state=0)
    sizes = {coding: len(encode(result.codes, 16, coding)) for coding in vq.CODINGS}
    assert sizes["context"] < min(sizes["zstd"], sizes["bz2"])


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
