"""The .vq byte format (skvq.format), tested without Pillow."""

import io
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from skvq import format as vq
from skvq.format.codings import raw as raw_coding

# From docs/format.md: a single-frame file without metadata is the 9-byte
# signature, HEAD (12 + 21 bytes), then the BOOK, INDX and DONE chunks, each
# with 12 bytes of length, type and CRC around its data.
SINGLE_FRAME_OVERHEAD = 9 + 12 + 21 + 12 + 12 + 12
CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "1": 1, "P": 3}
MAX_CODES_PER_MODE = {"L": 65536, "LA": 65536, "RGB": 65536, "RGBA": 65536}
MAX_CODES_PER_MODE.update({"1": 2, "P": 256})


def reference_stream(codes, bits):
    """MSB-first bit stream built from text, as an independent oracle."""
    text = "".join(format(int(code), f"0{bits}b") for code in codes) if bits else ""
    text += "0" * (-len(text) % 8)
    return bytes(int(text[i : i + 8], 2) for i in range(0, len(text), 8))


def chunk(chunk_type: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(chunk_type + data)
    return struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", crc)


def chunks_of(data: bytes):
    """(offset, type, data) of every chunk, parsed independently of skvq."""
    position, found = len(vq.SIGNATURE), []
    while position < len(data):
        length, chunk_type = struct.unpack_from(">I4s", data, position)
        found.append((position, chunk_type, data[position + 8 : position + 8 + length]))
        position += 12 + length
    return found


def replace_chunk(data: bytes, chunk_type: bytes, new_chunk: bytes) -> bytes:
    for offset, found_type, chunk_data in chunks_of(data):
        if found_type == chunk_type:
            end = offset + 12 + len(chunk_data)
            return data[:offset] + new_chunk + data[end:]
    raise AssertionError(f"no {chunk_type} chunk")


HEAD_FIELDS = (
    "version width height mode_id channels n_codes bits coding n_frames".split()
)


def with_head(data: bytes, **changes) -> bytes:
    """The file with HEAD fields changed and a valid CRC."""
    head = dict(
        zip(
            HEAD_FIELDS, struct.unpack(">BIIBBIBBI", chunks_of(data)[0][2]), strict=True
        )
    )
    head.update(changes)
    new_head = struct.pack(">BIIBBIBBI", *(head[name] for name in HEAD_FIELDS))
    return replace_chunk(data, b"HEAD", chunk(b"HEAD", new_head))


def small_file(**kwargs) -> bytes:
    """A 5 x 3 RGB file with 3 codes (2 bits per code)."""
    codes = np.array([[0, 1, 2, 0, 1], [2, 2, 1, 0, 0], [1, 1, 1, 2, 2]])
    codebook = [[0, 0, 0], [128, 64, 32], [255, 255, 255]]
    return vq.encode_vq(5, 3, "RGB", codebook, [codes], **kwargs)


@st.composite
def vq_images(draw):
    mode = draw(st.sampled_from(list(CHANNELS)))
    n_codes = draw(st.integers(1, min(MAX_CODES_PER_MODE[mode], 300)))
    channels = draw(st.sampled_from([3, 4])) if mode == "P" else CHANNELS[mode]
    width, height = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    n_frames = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    codebook = rng.integers(0, 256, (n_codes, channels), dtype=np.uint8)
    frames = rng.integers(0, n_codes, (n_frames, height, width))
    return mode, codebook, frames


# ---------------------------------------------------------------------------
# Bit packing


@given(
    bits=st.integers(0, 16),
    count=st.integers(0, 70),
    seed=st.integers(0, 2**32 - 1),
)
def test_pack_codes_matches_reference_stream(bits, count, seed):
    codes = np.random.default_rng(seed).integers(0, 2**bits, count)
    packed = vq.pack_codes(codes, bits)
    assert packed == reference_stream(codes, bits)
    assert len(packed) == -(-count * bits // 8)
    unpacked = vq.unpack_codes(packed, bits, count)
    assert unpacked.dtype == (np.uint8 if bits <= 8 else np.uint16)
    np.testing.assert_array_equal(unpacked, codes)


@pytest.mark.parametrize("bits", [1, 3, 5, 7, 9, 12, 15])
def test_pack_codes_across_blocks(monkeypatch, bits):
    # Small blocks exercise the joins between blocks and a short last block.
    monkeypatch.setattr(raw_coding, "_BLOCK_CODES", 16)
    codes = np.random.default_rng(bits).integers(0, 2**bits, 16 * 5 + 3)
    packed = vq.pack_codes(codes, bits)
    assert packed == reference_stream(codes, bits)
    np.testing.assert_array_equal(vq.unpack_codes(packed, bits, codes.size), codes)


def test_unpack_codes_needs_enough_bytes():
    with pytest.raises(ValueError, match="need 2 bytes, got 1"):
        vq.unpack_codes(b"\x00", bits=5, count=3)


@pytest.mark.parametrize(
    ("bits", "count", "limit"), [(8, 24_000_000, 1.0), (9, 2_000_000, 1.0)]
)
def test_packing_is_vectorized(bits, count, limit):
    # A per-pixel Python loop would take minutes at these sizes.
    codes = np.arange(count, dtype=np.uint16) % (2**bits)
    start = time.perf_counter()
    packed = vq.pack_codes(codes, bits)
    unpacked = vq.unpack_codes(packed, bits, count)
    assert time.perf_counter() - start < limit
    assert np.array_equal(unpacked, codes)


# ---------------------------------------------------------------------------
# Round trips and sizes


@given(vq_images())
def test_round_trip(image):
    mode, codebook, frames = image
    height, width = frames.shape[1:]
    metadata = {"icc_profile": b"icc", "exif": b"Exif\x00\x00MM", "dpi": (72.0, 300.5)}
    data = vq.encode_vq(width, height, mode, codebook, list(frames), metadata=metadata)
    header, decoded = vq.read_vq(data)
    assert (header.width, header.height, header.mode) == (width, height, mode)
    assert header.n_frames == len(frames)
    assert header.bits_per_code == (len(codebook) - 1).bit_length()  # ceil(log2 K)
    assert header.coding == "raw"
    assert header.version == vq.VERSION
    assert header.metadata == metadata
    np.testing.assert_array_equal(header.codebook, codebook)
    np.testing.assert_array_equal(decoded, frames)
    assert decoded.dtype == (np.uint8 if len(codebook) <= 256 else np.uint16)
    assert vq.verify_vq(data).n_frames == len(frames)


@given(vq_images())
def test_raw_size_is_the_bit_accounting(image):
    mode, codebook, frames = image
    height, width = frames.shape[1:]
    data = vq.encode_vq(width, height, mode, codebook, [frames[0]])
    bits = (len(codebook) - 1).bit_length()  # ceil(log2 K), not skvq's bits_per_code
    index_bytes = -(-width * height * bits // 8)
    assert len(data) == SINGLE_FRAME_OVERHEAD + codebook.size + index_bytes


def test_index_data_is_one_msb_first_stream():
    data = small_file()
    index = [d for _, t, d in chunks_of(data) if t == b"INDX"]
    codes = [0, 1, 2, 0, 1, 2, 2, 1, 0, 0, 1, 1, 1, 2, 2]
    assert index == [reference_stream(codes, 2)]


@pytest.mark.parametrize(("n_codes", "bits"), [(1, 0), (2, 1), (256, 8), (257, 9)])
def test_codebook_sizes(n_codes, bits):
    codes = np.arange(n_codes * 2).reshape(2, n_codes) % n_codes
    codebook = np.arange(n_codes).reshape(-1, 1) % 256
    data = vq.encode_vq(n_codes, 2, "L", codebook, [codes])
    header, decoded = vq.read_vq(data)
    assert header.bits_per_code == bits
    np.testing.assert_array_equal(decoded[0], codes)


def test_largest_codebook():
    codes = np.arange(65536).reshape(256, 256)
    codebook = np.stack([codes.ravel() % 256, codes.ravel() // 256], axis=1)
    data = vq.encode_vq(256, 256, "LA", codebook, [codes])
    assert len(data) == SINGLE_FRAME_OVERHEAD + 65536 * 2 + 65536 * 2
    header, decoded = vq.read_vq(data)
    assert (header.n_codes, header.bits_per_code) == (65536, 16)
    np.testing.assert_array_equal(decoded[0], codes)


def test_read_info(tmp_path):
    frames = [np.zeros((3, 5), int), np.ones((3, 5), int)]
    data = vq.encode_vq(5, 3, "RGBA", [[0, 0, 0, 0], [9, 9, 9, 9]], frames)
    path = tmp_path / "x.vq"
    assert vq.write_vq(path, 5, 3, "RGBA", [[0, 0, 0, 0], [9, 9, 9, 9]], frames) == len(
        data
    )
    assert path.read_bytes() == data
    for source in (path, str(path), data, io.BytesIO(data)):
        info = vq.read_info(source)
        assert info == vq.VqInfo(
            width=5,
            height=3,
            mode="RGBA",
            n_codes=2,
            n_channels=4,
            bits_per_code=1,
            coding="raw",
            n_frames=2,
            file_size=len(data),
            index_bytes=4,
            bits_per_pixel=8 * len(data) / 30,
        )


def test_write_vq_to_file_object():
    buffer = io.BytesIO()
    size = vq.write_vq(buffer, 5, 1, "L", [[7]], [np.zeros((1, 5), int)])
    assert buffer.getvalue() == vq.encode_vq(5, 1, "L", [[7]], [np.zeros((1, 5), int)])
    assert size == len(buffer.getvalue())


def test_invalid_arguments_write_nothing(tmp_path):
    path = tmp_path / "x.vq"
    with pytest.raises(ValueError, match=r"codes must lie in 0\.\.1"):
        vq.write_vq(path, 2, 1, "L", [[0], [1]], [np.array([[0, 2]])])
    assert not path.exists()


def test_read_header_reads_no_index_data():
    codes = np.zeros((500, 400), int)
    data = vq.encode_vq(400, 500, "L", [[0], [1]], [codes], metadata={"dpi": (1, 2)})

    class CountingFile(io.BytesIO):
        bytes_read = 0

        def read(self, size=-1):
            chunk_data = super().read(size)
            self.bytes_read += len(chunk_data)
            return chunk_data

    file = CountingFile(data)
    header = vq.read_header(file)
    assert file.tell() == header.index_offset
    assert file.bytes_read <= header.index_offset + 8  # + the INDX chunk header
    assert header.index_offset < 200 < len(data)
    assert header.metadata == {"dpi": (1.0, 2.0)}


def test_unknown_ancillary_chunks_are_skipped():
    data = small_file()
    future = chunk(b"zfut", b"a field of a later version")
    book_offset = chunks_of(data)[1][0]
    done_offset = chunks_of(data)[-1][0]
    extended = (
        data[:book_offset]
        + future
        + data[book_offset:done_offset]
        + future
        + data[done_offset:]
    )
    np.testing.assert_array_equal(vq.read_vq(extended)[1], vq.read_vq(data)[1])
    assert vq.verify_vq(extended).n_frames == 1


# ---------------------------------------------------------------------------
# Damaged files are rejected, never decoded into a wrong image


def test_every_bit_flip_is_detected():
    data = small_file()
    for position in range(len(data)):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[position] ^= 1 << bit
            with pytest.raises(vq.FormatError):
                vq.read_vq(bytes(damaged))


def test_every_truncation_is_detected():
    data = small_file(metadata={"exif": b"Exif\x00\x00"})
    for size in range(len(data)):
        with pytest.raises(vq.FormatError):
            vq.read_vq(data[:size])


def test_truncated_index_data():
    data = small_file()
    with pytest.raises(
        vq.TruncatedFileError,
        match=r"truncated: 'INDX' chunk announces 4 bytes, 0 present",
    ):
        vq.read_vq(data[:-16])


@given(
    n_codes=st.integers(2, 65536),
    shape=st.tuples(st.integers(1, 9), st.integers(1, 40)),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_partial_decoding_of_truncated_index_data(n_codes, shape, seed, data):
    height, width = shape
    codes = np.random.default_rng(seed).integers(0, n_codes, shape)
    codebook = np.arange(n_codes).reshape(-1, 1) % 256
    file_data = vq.encode_vq(width, height, "L", codebook, [codes])
    bits = (n_codes - 1).bit_length()  # not skvq's bits_per_code: an oracle
    index_length = -(-codes.size * bits // 8)
    present = data.draw(st.integers(0, index_length - 1))
    # DONE, the CRC and all but `present` bytes of the index data cut off.
    truncated = file_data[: len(file_data) - 12 - 4 - index_length + present]
    file = io.BytesIO(truncated)
    partial = vq.read_frame(file, vq.read_header(file), partial=True)
    expected = codes.ravel().copy()
    expected[present * 8 // bits :] = 0  # the whole codes present, then 0
    np.testing.assert_array_equal(partial.ravel(), expected)


def test_bad_signature():
    with pytest.raises(vq.FormatError, match=r"not a \.vq file: bad signature\.$"):
        vq.read_info(b"\x89PNG\r\n\x1a\n" + bytes(100))


def test_text_mode_damage_is_named():
    damaged = small_file().replace(b"\r\n", b"\n", 1)
    with pytest.raises(vq.FormatError, match="text-mode transfer"):
        vq.read_info(damaged)


def test_crc_mismatch():
    data = bytearray(small_file())
    book_offset = chunks_of(bytes(data))[1][0]
    data[book_offset + 8] ^= 0xFF
    with pytest.raises(vq.FormatError, match="CRC mismatch in 'BOOK' chunk"):
        vq.read_info(bytes(data))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": 2}, "unsupported .vq version 2"),
        ({"width": 0}, "invalid size 0 x 3"),
        ({"mode_id": 9}, "unknown mode id 9"),
        ({"channels": 4}, "4 codebook channels for mode 'RGB'"),
        ({"n_codes": 0, "bits": 0}, "0 codes for mode 'RGB'"),
        ({"n_codes": 65537, "bits": 17}, "65537 codes"),
        ({"bits": 3}, "3 bits per code for 3 codes, expected 2"),
        ({"coding": 7}, "unsupported index coding 7"),
        ({"n_frames": 0}, "no frames"),
        ({"n_codes": 2, "bits": 1}, "BOOK is 9 bytes, expected 2 codes"),
        ({"n_frames": 2}, "announces 2 frames, the file holds 1"),
        ({"width": 6}, "INDX chunk holds 4 bytes; 6 x 3 codes of 2 bits"),
    ],
)
def test_damaged_header_fields(changes, message):
    with pytest.raises(vq.FormatError, match=message):
        vq.read_vq(with_head(small_file(), **changes))


def test_huge_dimensions_fail_before_any_allocation():
    # 2**31 - 1 squared pixels announced, 4 bytes of index data present.
    damaged = with_head(small_file(), width=2**31 - 1, height=2**31 - 1)
    with pytest.raises(vq.FormatError, match="INDX chunk holds 4 bytes"):
        vq.read_header(io.BytesIO(damaged))


def test_chunk_length_beyond_file_is_truncation():
    data = small_file()
    offset = chunks_of(data)[1][0]  # BOOK
    damaged = data[:offset] + struct.pack(">I", 2**31 - 1) + data[offset + 4 :]
    with pytest.raises(
        vq.TruncatedFileError, match="'BOOK' chunk announces 2147483647"
    ):
        vq.read_info(damaged)


def test_chunk_length_over_limit():
    data = small_file()
    offset = chunks_of(data)[1][0]
    damaged = data[:offset] + struct.pack(">I", 2**31) + data[offset + 4 :]
    with pytest.raises(vq.FormatError, match="length 2147483648 exceeds"):
        vq.read_info(damaged)


@pytest.mark.parametrize(
    ("chunk_type", "message"),
    [(b"ZZZZ", "unexpected critical chunk 'ZZZZ'"), (b"Z9!z", "not 4 ASCII letters")],
)
def test_unknown_or_invalid_chunk_types(chunk_type, message):
    data = small_file()
    book_offset = chunks_of(data)[1][0]
    damaged = data[:book_offset] + chunk(chunk_type, b"") + data[book_offset:]
    with pytest.raises(vq.FormatError, match=message):
        vq.read_info(damaged)


def test_missing_codebook():
    data = small_file()
    _, _, book = chunks_of(data)[1]
    damaged = replace_chunk(data, b"BOOK", b"")
    assert len(damaged) == len(data) - 12 - len(book)
    with pytest.raises(vq.FormatError, match="no BOOK chunk"):
        vq.read_info(damaged)


def test_code_beyond_codebook():
    # Valid CRCs, but a 2-bit code 3 with only 3 codebook entries.
    data = small_file()
    damaged = replace_chunk(data, b"INDX", chunk(b"INDX", b"\xff" * 4))
    with pytest.raises(vq.FormatError, match="code 3 is not below n_codes = 3"):
        vq.read_vq(damaged)


def test_skipped_chunks_are_checked():
    data = small_file()
    book_offset = chunks_of(data)[1][0]
    bad = bytearray(chunk(b"zfut", b"later"))
    bad[-1] ^= 1
    damaged = data[:book_offset] + bytes(bad) + data[book_offset:]
    # Readers skip what they do not know, but check its CRC: a flipped bit
    # in "iccp" makes an unknown chunk, and must not drop the profile.
    with pytest.raises(vq.FormatError, match="CRC mismatch in 'zfut'"):
        vq.read_vq(damaged)
    with pytest.raises(vq.FormatError, match="CRC mismatch in 'zfut'"):
        vq.verify_vq(damaged)


# ---------------------------------------------------------------------------
# Writer validation


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((2, 1, "CMYK", [[0]], [[[0, 0]]]), {}, "Mode 'CMYK' cannot be stored"),
        ((0, 1, "L", [[0]], [np.zeros((1, 0), int)]), {}, "width must be an integer"),
        ((2, 1, "RGB", [[0, 0]], [[[0, 0]]]), {}, r"shape \(n_codes, 3\)"),
        ((2, 1, "P", np.zeros((257, 3), int), [[[0, 0]]]), {}, "1 to 256 entries"),
        ((2, 1, "1", [[0], [1], [2]], [[[0, 0]]]), {}, "1 to 2 entries"),
        ((2, 1, "L", np.zeros((65537, 1), int), [[[0, 0]]]), {}, "1 to 65536"),
        ((2, 1, "L", [[256]], [[[0, 0]]]), {}, "integers in 0..255"),
        ((2, 1, "L", [[0.5]], [[[0, 0]]]), {}, "integers in 0..255"),
        ((2, 1, "L", [[0]], []), {}, "at least one frame"),
        ((2, 1, "L", [[0]], [[[0]]]), {}, r"Frame 0 has shape \(1, 1\)"),
        ((2, 1, "L", [[0]], [[[0.0, 0.0]]]), {}, "Frame 0 codes must be integers"),
        ((2, 1, "L", [[0]], [[[0, -1]]]), {}, "must lie in 0..0"),
        ((2, 1, "L", [[0]], [[[0, 0]]]), {"coding": "zip"}, "Unknown coding 'zip'"),
        ((2, 1, "L", [[0]], [[[0, 0]]]), {"metadata": {"dpi": (0, 1)}}, "dpi must"),
    ],
)
def test_encode_validation(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        vq.encode_vq(*args, **kwargs)


@settings(max_examples=20)
@given(vq_images())
def test_header_properties(image):
    mode, codebook, frames = image
    height, width = frames.shape[1:]
    header = vq.read_header(
        io.BytesIO(vq.encode_vq(width, height, mode, codebook, [frames[0]]))
    )
    assert header.n_codes == len(codebook)
    assert header.frame_pixels == width * height
    expected_mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[codebook.shape[1]]
    assert header.codebook_mode == expected_mode


@given(
    height=st.integers(1, 9),
    width=st.integers(1, 40),
    wide=st.booleans(),
    data=st.data(),
)
def test_run_expansion_matches_the_bit_by_bit_reading(height, width, wide, data):
    from skvq import _runs

    row_bytes = -(-width // 8)
    # Padding bits at the end of each row may be anything: they must not count.
    flags = data.draw(
        arrays(np.uint8, (height, row_bytes), elements=st.integers(0, 255))
    )
    flags[0, 0] |= 0x80  # the first pixel starts a run
    starts = np.unpackbits(flags, axis=1, count=width).ravel()
    n_runs = int(starts.sum())
    assert _runs.count_runs(flags, width) == n_runs
    dtype = np.uint16 if wide else np.uint8
    values = np.arange(n_runs).astype(dtype) * 7
    expected = values[np.cumsum(starts) - 1]
    decoded = _runs.expand_runs(flags, width, values)
    assert decoded.dtype == dtype
    np.testing.assert_array_equal(decoded, expected)
