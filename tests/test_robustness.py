"""Hardening: damaged and crafted files, memory, threads, handles, failed writes.

The exhaustive checks (every truncation, every single-byte change) run on
small files; ``tests/test_fuzz.py`` fuzzes further and ``tools/fuzz_vq.py``
is the long run (docs/robustness.md).
"""

import contextlib
import errno
import gc
import io
import os
import struct
import threading
import tracemalloc
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageSequence, UnidentifiedImageError

import skvq
from skvq import _atomic
from skvq import format as vq
from skvq.cli import EXIT_FAILED, main
from skvq.format.codings import context as context_coding

# The plugin's hint for a signature damaged by a text-mode transfer.
pytestmark = pytest.mark.filterwarnings("ignore:VQ signature damaged:UserWarning")

METADATA = {"icc_profile": b"profile", "exif": b"Exif\0\0MM\0*", "dpi": (300.0, 72.0)}


def make_file(
    mode, k, channels, width, height, n_frames=1, metadata=None, seed=0, coding="raw"
):
    rng = np.random.default_rng(seed)
    codebook = rng.integers(0, 256, (k, channels), dtype=np.uint8)
    frames = list(rng.integers(0, k, (n_frames, height, width)))
    return vq.encode_vq(
        width, height, mode, codebook, frames, metadata=metadata, coding=coding
    )


# Small valid files: K = 1, 2, 16 (with metadata), 300 (> 256: not "P"), and
# three frames.
SMALL_FILES = {
    "K=1": make_file("L", 1, 1, 5, 3),
    "K=2": make_file("1", 2, 1, 9, 2),
    "K=16+metadata": make_file("P", 16, 4, 6, 4, metadata=METADATA),
    "K=300": make_file("L", 300, 1, 4, 3),
    "3 frames": make_file("RGB", 5, 3, 3, 2, n_frames=3),
}
small_files = pytest.mark.parametrize(
    "data", list(SMALL_FILES.values()), ids=list(SMALL_FILES)
)


def chunk(chunk_type: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(chunk_type + data)
    return struct.pack(">I4s", len(data), chunk_type) + data + struct.pack(">I", crc)


def load_all_frames(data: bytes) -> list[np.ndarray]:
    """Open with Pillow and load every frame."""
    with Image.open(io.BytesIO(data)) as image:
        return [np.array(frame) for frame in ImageSequence.Iterator(image)]


def pillow_pixels(header: vq.VqHeader, codes: np.ndarray) -> np.ndarray:
    """What Pillow shows for codes: the codes in mode "P", else the colors."""
    if header.n_codes <= 256:
        return codes
    return header.codebook[codes].squeeze(-1)


# ---------------------------------------------------------------------------
# Truncation


@small_files
def test_every_truncation_is_an_oserror(data):
    for size in range(len(data)):
        cut = data[:size]
        with pytest.raises(OSError):
            vq.read_vq(cut)
        with pytest.raises(OSError):
            vq.verify_vq(cut)
        with pytest.raises(OSError):
            vq.read_info(cut)
        with pytest.raises(OSError):
            load_all_frames(cut)


@pytest.mark.parametrize("name", ["K=1", "K=2", "K=16+metadata", "K=300"])
def test_truncated_files_load_partially_only_when_allowed(name, monkeypatch):
    data = SMALL_FILES[name]
    header, (codes,) = vq.read_vq(data)
    data_start = header.index_offset + 8  # INDX length and type
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    for size in range(len(data)):
        if size < data_start:  # the header itself is cut: never an image
            with pytest.raises(OSError):
                load_all_frames(data[:size])
            continue
        (pixels,) = load_all_frames(data[:size])
        # The whole codes present, then code 0.
        present = header.frame_pixels
        if header.bits_per_code:
            present = min(present, (size - data_start) * 8 // header.bits_per_code)
        expected = codes.ravel().copy()
        expected[present:] = 0
        np.testing.assert_array_equal(
            pixels, pillow_pixels(header, expected.reshape(codes.shape))
        )


# ---------------------------------------------------------------------------
# Single-byte changes


def changed_bytes(data: bytes, values):
    for position in range(len(data)):
        for value in values(data[position]):
            if value != data[position]:
                yield data[:position] + bytes([value]) + data[position + 1 :]


def test_every_byte_value_anywhere_is_detected():
    """All 255 other values of every byte of a small file: never decoded."""
    data = SMALL_FILES["K=2"]
    for damaged in changed_bytes(data, lambda _: range(256)):
        with pytest.raises(OSError):
            vq.read_vq(damaged)


@small_files
def test_every_single_byte_change_is_detected(data):
    def values(byte):
        return {byte ^ 0x01, byte ^ 0x80, byte ^ 0xFF, 0, 0xFF}

    for damaged in changed_bytes(data, values):
        with pytest.raises(OSError):
            vq.read_vq(damaged)
        with pytest.raises(OSError):
            vq.verify_vq(damaged)
        with pytest.raises(OSError):
            load_all_frames(damaged)


def test_changes_in_skipped_chunks_are_detected():
    data = SMALL_FILES["K=2"]
    at = data.index(b"BOOK") - 4
    extended = data[:at] + chunk(b"futr", b"from a later version") + data[at:]
    vq.verify_vq(extended)  # unknown ancillary chunks are fine ...
    for position in range(at + 4, at + 32):  # type, data and CRC
        damaged = bytearray(extended)
        damaged[position] ^= 1
        # ... but damaged, they are an error, even if only skipped.
        with pytest.raises(OSError, match=r"CRC mismatch|not 4 ASCII|critical"):
            vq.read_vq(bytes(damaged))
        with pytest.raises(OSError, match=r"CRC mismatch|not 4 ASCII|critical"):
            Image.open(io.BytesIO(bytes(damaged)))


def test_damaged_density_is_rejected():
    data = make_file("L", 2, 1, 3, 3, metadata={"dpi": (72, 72)})
    at = data.index(b"dens") - 4
    nan_dpi = chunk(b"dens", struct.pack(">dd", float("nan"), -1.0))
    damaged = data[:at] + nan_dpi + data[at + 28 :]
    with pytest.raises(OSError, match="damaged 'dens' chunk: dpi"):
        vq.read_vq(damaged)
    with pytest.raises(OSError, match="damaged 'dens' chunk: dpi"):
        Image.open(io.BytesIO(damaged))


@pytest.mark.parametrize("coding", sorted(vq.CODINGS))
def test_every_coding_detects_truncation_and_byte_changes(coding, monkeypatch):
    monkeypatch.setattr(context_coding, "STRIPE_PIXELS", 24)  # 3 stripes
    rng = np.random.default_rng(1)
    codes = np.repeat(rng.integers(0, 16, (6, 4)), 3, axis=1)  # runs to code
    codebook = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    data = vq.encode_vq(12, 6, "RGB", codebook, [codes, codes[::-1]], coding=coding)
    for size in range(len(data)):
        with pytest.raises(OSError):
            vq.read_vq(data[:size])
    for damaged in changed_bytes(data, lambda byte: [byte ^ 0x01, byte ^ 0xFF]):
        with pytest.raises(OSError):
            vq.read_vq(damaged)
        with pytest.raises(OSError):
            load_all_frames(damaged)
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    for size in range(len(data)):
        try:
            frames = load_all_frames(data[:size])
        except OSError:
            continue
        assert all(frame.shape == (6, 12) for frame in frames)


# ---------------------------------------------------------------------------
# Crafted headers: nothing large is allocated for what the file does not hold


def crafted(width, height, k, *, mode="L", n_frames=1, index_length=None):
    """A file whose HEAD announces anything, with at most a few bytes of data."""
    bits = skvq.bits_per_code(k)
    mode_id, channels = vq.MODES[mode][0], vq.MODES[mode][1][0]
    head = struct.pack(
        ">BIIBBIBBI", 1, width, height, mode_id, channels, k, bits, 0, n_frames
    )
    if index_length is None:
        index_length = -(-width * height * bits // 8)
    if index_length == 0:  # K = 1: a valid file, only the pixel limits stop it
        index = chunk(b"INDX", b"") * n_frames + chunk(b"DONE", b"")
    else:  # what the file does not hold
        index = struct.pack(">I4s", index_length, b"INDX") + b"\0" * 16
    return (
        vq.SIGNATURE
        + chunk(b"HEAD", head)
        + chunk(b"BOOK", bytes(min(k * channels, 64)))
        + index
    )


def crafted_context(width, height, k, index, *, mode="L"):
    """A context-coded file announcing anything, CRCs valid."""
    bits = skvq.bits_per_code(k)
    mode_id, channels = vq.MODES[mode][0], vq.MODES[mode][1][0]
    coding = vq.CODINGS["context"]
    head = struct.pack(
        ">BIIBBIBBI", 1, width, height, mode_id, channels, k, bits, coding, 1
    )
    return (
        vq.SIGNATURE
        + chunk(b"HEAD", head)
        + chunk(b"BOOK", bytes(k * channels))
        + chunk(b"INDX", index)
        + chunk(b"DONE", b"")
    )


def stripe_table(rows, *lengths):
    return struct.pack(f">I{len(lengths)}I", rows, *lengths)


CRAFTED = {
    "65535 x 65535, K=2": crafted(65535, 65535, 2),
    "65535 x 65535, K=1": crafted(65535, 65535, 1),
    "2^31-1 x 2^31-1, K=1": crafted(2**31 - 1, 2**31 - 1, 1),
    "K=65536 with a 64-byte BOOK": crafted(4, 4, 65536),
    "2^32-1 frames": crafted(3, 3, 2, n_frames=2**32 - 1),
    "2 frames of 2^28 pixels, K=1": crafted(16384, 16384, 1, n_frames=2),
    "INDX of 2^31-1 bytes": crafted(65535, 32769, 2**16, index_length=2**31 - 1),
    # Context coding: its data does not bound the pixels (a flat image costs
    # next to nothing), so the pixel limits and the checks of its stripe
    # table must stop these before anything is allocated.
    "context, 65535 x 65535": crafted_context(
        65535, 65535, 2, stripe_table(65535, 1) + b"\x01"
    ),
    "context, 2^31-1 rows per stripe": crafted_context(
        16384, 16384, 16, stripe_table(2**31 - 1, 1) + b"\x01"
    ),
    "context, 16384 stripes in 12 bytes": crafted_context(
        16384, 16384, 16, stripe_table(1, 1, 1) + b"\x01"
    ),
    "context, stripes of 2^32-1 bytes": crafted_context(
        16384, 16384, 16, stripe_table(16384, 2**32 - 1) + b"\x01"
    ),
}


def peak_memory(function):
    """Peak bytes allocated (numpy included) while running ``function``."""
    tracemalloc.start()
    try:
        function()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def read_crafted(data, truncated=False):
    def run():
        with pytest.raises(OSError):
            vq.read_vq(data)
        with pytest.raises(OSError):
            vq.verify_vq(data)
        with contextlib.suppress(OSError):
            vq.read_info(data)  # reads no pixels: fine for K = 1
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated
        try:
            with pytest.raises((OSError, Image.DecompressionBombError)):
                load_all_frames(data)
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = False

    return run


@pytest.mark.parametrize("truncated", [False, True])
@pytest.mark.parametrize("data", list(CRAFTED.values()), ids=list(CRAFTED))
def test_crafted_headers_fail_before_any_large_allocation(data, truncated):
    assert peak_memory(read_crafted(data, truncated)) < 2_000_000


def test_unknown_chunks_are_checked_without_reading_them_whole(tmp_path):
    data = SMALL_FILES["K=2"]
    at = data.index(b"BOOK") - 4
    path = tmp_path / "big-ancillary.vq"
    path.write_bytes(data[:at] + chunk(b"futr", bytes(8_000_000)) + data[at:])
    assert peak_memory(lambda: vq.read_vq(path)) < 500_000


def test_context_data_takes_the_memory_of_its_pixels_only():
    # 4 million pixels from one byte of context-coded data: a valid stripe
    # of flat pixels while its bits last, then damaged. Decoding it holds
    # the frame's codes (a byte each) and the stripe's model, no more.
    data = crafted_context(2000, 2000, 16, stripe_table(2000, 1) + b"\x01")
    with pytest.raises(vq.FormatError, match="does not end where its length says"):
        vq.read_vq(data)
    assert peak_memory(read_crafted(data)) < 4_000_000 + 3_000_000
    with pytest.raises(vq.PixelLimitError):
        vq.read_vq(data, max_pixels=3_999_999)


def test_peak_memory_sees_what_decoding_allocates():
    # A valid K = 1 file of 4 million pixels: 4 MB of codes, from 100 bytes.
    assert peak_memory(lambda: vq.read_vq(crafted(2000, 2000, 1))) > 4_000_000


def test_the_limits_are_named():
    with pytest.raises(vq.PixelLimitError, match="more than max_pixels"):
        vq.read_vq(CRAFTED["65535 x 65535, K=1"])
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(CRAFTED["65535 x 65535, K=1"]))
    with pytest.raises(vq.FormatError, match="BOOK is 64 bytes, expected 65536"):
        vq.read_header(io.BytesIO(CRAFTED["K=65536 with a 64-byte BOOK"]))
    with pytest.raises(vq.TruncatedFileError, match="'INDX' chunk announces"):
        vq.read_vq(CRAFTED["65535 x 65535, K=2"], max_pixels=None)


def test_max_pixels(monkeypatch):
    data = make_file("L", 1, 1, 20, 10, n_frames=2)  # no index data at all
    with pytest.raises(vq.PixelLimitError, match="400 pixels"):
        vq.read_vq(data, max_pixels=399)  # all frames count
    assert vq.read_vq(data, max_pixels=400)[1].shape == (2, 10, 20)
    with pytest.raises(vq.PixelLimitError, match="400 pixels"):
        vq.verify_vq(data, max_pixels=399)
    assert vq.verify_vq(data, max_pixels=400).n_frames == 2
    file = io.BytesIO(data)
    with pytest.raises(vq.PixelLimitError):
        vq.read_frame(file, vq.read_header(file), max_pixels=199)


def test_verify_does_not_decode_frames_of_one_color():
    # 200 frames of 80 million pixels in 2.5 KB (more frames cost 12 bytes
    # each): Pillow's limit is per frame, so only not decoding K = 1 frames
    # keeps verify() from allocating and scanning 16 billion zeros.
    data = crafted(10_000, 8_000, 1, n_frames=200)
    with Image.open(io.BytesIO(data)) as image:
        assert peak_memory(image.verify) < 1_000_000


def test_pillow_pixel_limit_applies(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.warns(Image.DecompressionBombWarning):
        Image.open(io.BytesIO(make_file("L", 1, 1, 15, 10))).close()
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(make_file("L", 1, 1, 25, 10)))


# ---------------------------------------------------------------------------
# Threads


def test_decoding_from_8_threads_gives_identical_results(tmp_path, monkeypatch):
    # Context-coded files in stripes decode on threads of their own.
    monkeypatch.setattr(context_coding, "STRIPE_PIXELS", 4000)
    paths = []
    for number, (mode, k, channels, coding) in enumerate(
        [
            ("RGB", 16, 3, "raw"),
            ("L", 300, 1, "context"),
            ("RGBA", 2, 4, "zstd"),
            ("P", 200, 3, "context"),
        ]
    ):
        path = tmp_path / f"{number}.vq"
        path.write_bytes(
            make_file(mode, k, channels, 160, 120, n_frames=2, coding=coding)
        )
        paths.append(path)

    def decode(path):
        with Image.open(path) as image:
            pixels = [np.array(frame) for frame in ImageSequence.Iterator(image)]
        return pixels, vq.read_vq(path.read_bytes())[1]

    expected = {path: decode(path) for path in paths}
    # Eight threads on one file, then eight on four different files.
    jobs = [paths[0]] * 8 + paths * 2
    start_together = threading.Barrier(8)

    def job(path):
        start_together.wait(timeout=30)
        return decode(path)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(job, jobs))
    for path, (pixels, codes) in zip(jobs, results, strict=True):
        want_pixels, want_codes = expected[path]
        np.testing.assert_array_equal(codes, want_codes)
        for got, want in zip(pixels, want_pixels, strict=True):
            np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------
# File handles


def assert_no_resource_warning(function):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        function()
        gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, [str(w.message) for w in leaks]


@pytest.fixture
def vq_files(tmp_path):
    files = {
        "single": make_file("RGB", 4, 3, 8, 6),
        "frames": make_file("L", 4, 1, 8, 6, n_frames=3),
        "damaged": make_file("RGB", 4, 3, 8, 6)[:-20],
        "not vq": b"\x8eNOPE" + bytes(40),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = tmp_path / f"{name}.vq"
        paths[name].write_bytes(data)
    return paths


def test_no_file_handle_leaks(vq_files):
    def open_and_load():
        for name in ("single", "frames"):
            image = Image.open(vq_files[name])  # no context manager
            image.load()
            image.close()
            image = Image.open(vq_files["single"])
            image.load()  # a single frame closes its file after loading
            del image

    def context_managers():
        for name in ("single", "frames"):
            with Image.open(vq_files[name]) as image:
                for frame in ImageSequence.Iterator(image):
                    frame.load()
            with Image.open(vq_files[name]) as image:
                pass  # opened, never loaded
            with Image.open(vq_files[name]) as image:
                image.verify()

    def failures():
        with pytest.raises(UnidentifiedImageError):
            Image.open(vq_files["not vq"])
        with Image.open(vq_files["damaged"]) as image:
            with pytest.raises(OSError, match="truncated"):
                image.load()
        for reader in (vq.read_vq, vq.verify_vq, vq.read_info):
            with pytest.raises(OSError):
                reader(vq_files["damaged"])

    for function in (open_and_load, context_managers, failures):
        assert_no_resource_warning(function)


def test_the_leak_check_can_fail(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"x")
    with pytest.raises(AssertionError, match="unclosed file"):
        assert_no_resource_warning(lambda: open(path, "rb"))


# ---------------------------------------------------------------------------
# Writers: nothing partial, nothing clobbered


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))


@pytest.fixture
def original(tmp_path):
    path = tmp_path / "photo.vq"
    path.write_bytes(SMALL_FILES["K=16+metadata"])
    return path


def assert_intact(path):
    assert path.read_bytes() == SMALL_FILES["K=16+metadata"]
    assert sorted(os.listdir(path.parent)) == [path.name]  # no temporary file


class DiskFull(io.FileIO):
    """A file on a disk that fills up after ``limit`` bytes."""

    def __init__(self, fd, limit, error):
        super().__init__(fd, "w")
        self.limit, self.error = limit, error

    def write(self, data):
        room = self.limit - self.tell()
        if len(data) > room:
            super().write(bytes(data)[:room])
            raise self.error
        return super().write(data)


def fail_writes_after(monkeypatch, limit, error):
    """Make atomic_write's temporary file fail after ``limit`` bytes."""
    monkeypatch.setattr(
        _atomic.os, "fdopen", lambda fd, mode: DiskFull(fd, limit, error)
    )


def test_save_writes_the_file(tmp_path, image):
    path = tmp_path / "new.vq"
    skvq.save(image, path, k=4, random_state=0)
    with Image.open(path) as saved:
        assert saved.format == "VQ" and saved.size == image.size
    assert os.listdir(tmp_path) == ["new.vq"]  # no temporary file left
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # not private
    skvq.save(image, tmp_path / "new.png")  # any format, from the extension
    with Image.open(tmp_path / "new.png") as saved:
        assert saved.format == "PNG"


def test_save_refuses_to_overwrite_by_default(original, image):
    with pytest.raises(FileExistsError, match="already exists"):
        skvq.save(image, original, k=4)
    assert_intact(original)
    skvq.save(image, original, k=4, overwrite=True)
    with Image.open(original) as saved:
        assert saved.size == image.size


def test_save_with_a_bad_option_keeps_the_original(original, image):
    with pytest.raises(ValueError, match="k must be an integer"):
        skvq.save(image, original, k="bad", overwrite=True)
    assert_intact(original)
    with pytest.raises(ValueError, match="unknown file extension"):
        skvq.save(image, original.with_suffix(".nope"))
    assert_intact(original)


@pytest.mark.parametrize("limit", [0, 10, 100])
def test_save_on_a_full_disk_keeps_the_original(original, image, monkeypatch, limit):
    full = OSError(errno.ENOSPC, "No space left on device")
    fail_writes_after(monkeypatch, limit, full)
    with pytest.raises(OSError, match="No space left") as raised:
        skvq.save(image, original, k=4, overwrite=True)
    assert raised.value.errno == errno.ENOSPC
    assert_intact(original)


def test_interrupted_save_keeps_the_original(original, image, monkeypatch):
    fail_writes_after(monkeypatch, 50, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        skvq.save(image, original, k=4, overwrite=True)
    assert_intact(original)


def test_failed_fsync_keeps_the_original(original, image, monkeypatch):
    def fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(_atomic.os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output error"):
        skvq.save(image, original, k=4, overwrite=True)
    assert_intact(original)


def test_write_vq_to_a_path_is_atomic(original, monkeypatch):
    fail_writes_after(monkeypatch, 30, OSError(errno.ENOSPC, "No space left"))
    with pytest.raises(OSError, match="No space left"):
        vq.write_vq(original, 2, 2, "L", [[0], [255]], [[[0, 1], [1, 0]]])
    assert_intact(original)


def test_bad_option_writes_nothing_to_a_file_object(image):
    buffer = io.BytesIO()
    with pytest.raises(ValueError, match="k must be an integer"):
        image.save(buffer, format="VQ", k="bad")
    assert buffer.getvalue() == b""


class FailingBuffer(io.BytesIO):
    """A file object whose writes fail after ``limit`` bytes."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit

    def write(self, data):
        if self.tell() + len(data) > self.limit:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def test_write_errors_propagate_from_the_plugin(image):
    with pytest.raises(OSError, match="No space left") as raised:
        image.save(FailingBuffer(100), format="VQ", k=4)
    assert raised.value.errno == errno.ENOSPC


def test_cli_batch_goes_on_past_bad_inputs(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "good.vq").write_bytes(SMALL_FILES["K=16+metadata"])
    (inputs / "cut.vq").write_bytes(SMALL_FILES["K=16+metadata"][:-30])
    damaged = bytearray(SMALL_FILES["3 frames"])
    damaged[-20] ^= 1
    (inputs / "flipped.vq").write_bytes(bytes(damaged))
    (inputs / "crafted.vq").write_bytes(CRAFTED["65535 x 65535, K=1"])
    out = tmp_path / "out"
    status = main(["decode", *map(str, sorted(inputs.iterdir())), "-o", str(out)])
    assert status == EXIT_FAILED
    errors = capsys.readouterr().err
    for name in ("cut.vq", "flipped.vq", "crafted.vq"):
        assert f"{inputs / name}: " in errors
    assert "1 of 4 files decoded, 3 failed" in errors
    assert os.listdir(out) == ["good.png"]  # nothing partial for the others
