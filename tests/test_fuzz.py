"""Fuzzing the .vq readers with Hypothesis: damaged files, documented errors.

Each example is a small valid file (every mode class, K = 1, 2, 16, 300,
several frames, metadata, every coding in ``skvq.format.CODINGS``) damaged
by one to three mutations: bit flips, byte changes, length and header fields
set to extremes, chunks dropped, duplicated or swapped, truncation,
inserted chunks, often with the CRCs recomputed so that the damage reaches
validation. Readers may only raise OSError (FormatError, Pillow's
UnidentifiedImageError) or Pillow's decompression-bomb error; any other
exception is a bug. The profile in conftest.py keeps this derandomized; the
long run is ``tools/fuzz_vq.py`` (docs/robustness.md).
"""

import importlib.util
import io
import struct
import warnings
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from skvq import format as vq
from skvq.format.codings import context as context_coding
from skvq.format.container import chunk


def _load_fuzzer():
    """tools/fuzz_vq.py, the standalone fuzzer, whose file helpers we share."""
    path = Path(__file__).parents[1] / "tools" / "fuzz_vq.py"
    spec = importlib.util.spec_from_file_location("fuzz_vq", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_fuzzer = _load_fuzzer()
chunk_spans, fix_crcs = _fuzzer.chunk_spans, _fuzzer.fix_crcs

# The plugin's hint for a signature damaged by a text-mode transfer.
pytestmark = pytest.mark.filterwarnings("ignore:VQ signature damaged:UserWarning")

ALLOWED = (OSError, Image.DecompressionBombError, Image.DecompressionBombWarning)
MAX_FRAMES = 4
# Cheap cases: many of them within the suite's time budget.
FUZZ = settings(max_examples=1000)

# (mode, K, channels, width, height, frames, with metadata)
SHAPES = [
    ("L", 1, 1, 5, 3, 1, False),
    ("1", 2, 1, 9, 2, 1, True),
    ("RGB", 2, 3, 7, 5, 2, False),
    ("P", 16, 4, 6, 4, 1, True),
    ("RGBA", 16, 4, 3, 3, 3, False),
    ("L", 300, 1, 4, 3, 1, True),
    ("LA", 300, 2, 2, 5, 2, False),
]
METADATA = {"icc_profile": b"icc-profile", "exif": b"Exif\0\0MM", "dpi": (72, 96)}


def make_seeds():
    rng = np.random.default_rng(0)
    seeds = []
    for coding in vq.CODINGS:
        for mode, k, channels, width, height, n_frames, metadata in SHAPES:
            codebook = rng.integers(0, 256, (k, channels), dtype=np.uint8)
            frames = list(rng.integers(0, k, (n_frames, height, width)))
            data = vq.encode_vq(
                width,
                height,
                mode,
                codebook,
                frames,
                metadata=METADATA if metadata else None,
                coding=coding,
            )
            seeds.append((coding, data))
    # An ancillary chunk of a later version, which readers skip.
    extra = chunk(b"zzZz", b"later data")
    seeds.append(("raw", seeds[0][1][:42] + extra + seeds[0][1][42:]))
    # Context coding: maps of blocks (all of its steps, not only escapes) in
    # stripes of 3 rows.
    with patch.object(context_coding, "STRIPE_PIXELS", 30):
        for k, channels in [(16, 3), (300, 1)]:
            codebook = rng.integers(0, 256, (k, channels), dtype=np.uint8)
            blocks = rng.integers(0, k, (2, 4, 5))
            frames = list(np.repeat(np.repeat(blocks, 3, axis=1), 2, axis=2))
            mode = "RGB" if channels == 3 else "L"
            data = vq.encode_vq(10, 12, mode, codebook, frames, coding="context")
            seeds.append(("context", data))
    return seeds


SEEDS = make_seeds()


# -- mutations: (draw, data) -> data -------------------------------------------


def flip_bit(draw, data):
    position = draw(st.integers(0, len(data) - 1))
    out = bytearray(data)
    out[position] ^= 1 << draw(st.integers(0, 7))
    return bytes(out)


def set_byte(draw, data):
    position = draw(st.integers(0, len(data) - 1))
    value = draw(st.sampled_from([0, 0x7F, 0x80, 0xFF]) | st.integers(0, 255))
    return data[:position] + bytes([value]) + data[position + 1 :]


LENGTHS = st.sampled_from([0, 1, 21, 2**31 - 1, 2**31, 2**32 - 1]) | st.integers(
    0, 2**32 - 1
)


def extreme_length(draw, data):
    spans = chunk_spans(data) or [(0, 0)]
    start, _ = draw(st.sampled_from(spans))
    return data[:start] + struct.pack(">I", draw(LENGTHS)) + data[start + 4 :]


# Offset and size of each HEAD field in the file (signature + length + type).
HEAD_FIELDS = [(17, 1), (18, 4), (22, 4), (26, 1), (27, 1), (28, 4), (32, 1)]
HEAD_FIELDS += [(33, 1), (34, 4)]
FIELD_VALUES = st.sampled_from([0, 1, 2, 255, 256, 257, 65535, 65536, 65537])
FIELD_VALUES |= st.sampled_from([2**31 - 1, 2**32 - 1]) | st.integers(0, 2**32 - 1)


def extreme_head_field(draw, data):
    offset, size = draw(st.sampled_from(HEAD_FIELDS))
    value = draw(FIELD_VALUES) % 2 ** (8 * size)
    return data[:offset] + value.to_bytes(size, "big") + data[offset + size :]


def drop_chunk(draw, data):
    spans = chunk_spans(data)
    if not spans:
        return data
    start, end = draw(st.sampled_from(spans))
    return data[:start] + data[end:]


def duplicate_chunk(draw, data):
    spans = chunk_spans(data)
    if not spans:
        return data
    start, end = draw(st.sampled_from(spans))
    at = draw(st.sampled_from([s for s, _ in spans] + [len(data)]))
    return data[:at] + data[start:end] + data[at:]


def swap_chunks(draw, data):
    spans = chunk_spans(data)
    if len(spans) < 2:
        return data
    i = draw(st.integers(0, len(spans) - 2))
    j = draw(st.integers(i + 1, len(spans) - 1))
    pieces = [data[s:e] for s, e in spans]
    pieces[i], pieces[j] = pieces[j], pieces[i]
    return data[: spans[0][0]] + b"".join(pieces) + data[spans[-1][1] :]


def truncate(draw, data):
    return data[: draw(st.integers(0, len(data) - 1))]


def truncate_near_a_boundary(draw, data):
    """Cut in a chunk's length, type or CRC: where the edge cases are."""
    spans = chunk_spans(data) or [(0, len(data))]
    start, end = draw(st.sampled_from(spans))
    cut = draw(st.sampled_from([start, end])) + draw(st.integers(-4, 12))
    return data[: min(max(cut, 0), len(data) - 1)]


CHUNK_TYPES = st.sampled_from([b"HEAD", b"BOOK", b"INDX", b"DONE", b"dens", b"exif"])


def insert_chunk(draw, data):
    chunk_type = draw(CHUNK_TYPES | st.binary(min_size=4, max_size=4))
    new = chunk(chunk_type, draw(st.binary(max_size=40)))
    at = draw(st.sampled_from([s for s, _ in chunk_spans(data)] + [len(data)]))
    return data[:at] + new + data[at:]


BYTE_MUTATIONS = [flip_bit, set_byte, extreme_length, truncate]
BYTE_MUTATIONS += [truncate_near_a_boundary]
MUTATIONS = [*BYTE_MUTATIONS, extreme_head_field, drop_chunk, duplicate_chunk]
MUTATIONS += [swap_chunks, insert_chunk]


@st.composite
def damaged_files(draw, mutations=tuple(MUTATIONS), recompute_crcs=True):
    _, data = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        if data:
            data = draw(st.sampled_from(mutations))(draw, data)
    if recompute_crcs and draw(st.booleans()):
        data = fix_crcs(data)
    return data


random_files = st.binary(max_size=300) | st.binary(max_size=300).map(
    lambda data: vq.SIGNATURE + data
)


# -- the readers ---------------------------------------------------------------


def read_with_format(data: bytes, partial=False):
    """Everything skvq.format reads; the frames decoded, or an allowed error."""
    try:
        file = io.BytesIO(data)
        header = vq.read_header(file)
        if partial:  # the first frame, as Pillow reads a truncated file
            offsets = [header.index_offset]
        else:
            offsets = vq.frame_offsets(file, header)[:MAX_FRAMES]
            vq.read_info(data)
        frames = [
            vq.read_frame(file, header, offset, partial=partial) for offset in offsets
        ]
    except ALLOWED as error:
        return error
    for codes in frames:  # what a successful read promises
        assert codes.shape == (header.height, header.width)
        assert codes.size == 0 or codes.max() < header.n_codes
    return frames


def read_with_pillow(data: bytes, truncated=False):
    """Open, every frame loaded, then verify; the images, or an allowed error."""
    ImageFile.LOAD_TRUNCATED_IMAGES = truncated
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", "VQ signature damaged")
            images = []
            with Image.open(io.BytesIO(data)) as image:
                for frame in range(min(image.n_frames, MAX_FRAMES)):
                    image.seek(frame)
                    image.load()
                    images.append(np.asarray(image))
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
    except ALLOWED as error:
        return error
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    return images


def test_seeds_cover_every_coding_and_are_valid():
    assert {coding for coding, _ in SEEDS} == set(vq.CODINGS)
    for _, data in SEEDS:
        vq.verify_vq(data)
        assert isinstance(read_with_pillow(data), list)


@FUZZ
@given(damaged_files())
def test_format_readers_raise_only_oserror(data):
    read_with_format(data)
    read_with_format(data, partial=True)
    try:
        vq.verify_vq(data)
    except OSError:
        pass


@FUZZ
@given(damaged_files(), st.booleans())
def test_pillow_raises_only_documented_errors(data, truncated):
    read_with_pillow(data, truncated)


@FUZZ
@given(random_files)
def test_random_bytes(data):
    assert isinstance(read_with_format(data), OSError)
    assert isinstance(read_with_pillow(data), OSError)


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_byte_damage_never_decodes_silently(seed, data):
    """Without recomputed CRCs, damage fails or leaves the pixels unchanged."""
    _, original = seed
    damaged = original
    for _ in range(data.draw(st.integers(1, 3))):
        if damaged:
            damaged = data.draw(st.sampled_from(BYTE_MUTATIONS))(data.draw, damaged)
    frames = read_with_format(damaged)
    if not isinstance(frames, OSError):  # e.g. damage in a skipped chunk
        for got, want in zip(frames, read_with_format(original), strict=True):
            np.testing.assert_array_equal(got, want)
    if damaged != original:  # a full verification finds every change
        with pytest.raises(OSError):
            vq.verify_vq(damaged)
        assert isinstance(read_with_pillow(damaged), OSError)


@pytest.mark.parametrize("coding", sorted(vq.CODINGS))
def test_every_coding_round_trips_through_the_fuzz_readers(coding):
    for seed_coding, data in SEEDS:
        if seed_coding == coding:
            frames = read_with_format(data)
            images = read_with_pillow(data)
            assert isinstance(frames, list) and isinstance(images, list)
            assert len(frames) == len(images)
