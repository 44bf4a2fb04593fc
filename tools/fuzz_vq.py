"""Fuzz the .vq readers with mutated valid files and random bytes.

Every case is a small valid file (several modes, K = 1, 2, 16, 300 and
65,536, several frames, metadata chunks, every coding in
``skvq.format.CODINGS``; for the context coding also maps of blocks, in
stripes) changed by one to three random mutations (bit
flips, byte changes, length and header fields set to extremes, chunks
dropped, duplicated, reordered or truncated, CRCs recomputed so that the
damage reaches validation), or random bytes. Each case is read through
:mod:`skvq.format` and through Pillow (open, load, every frame, verify, with
and without ``LOAD_TRUNCATED_IMAGES``). Only documented exceptions may come
out: :class:`OSError` (``FormatError``, ``UnidentifiedImageError``) and
Pillow's ``DecompressionBombError`` and ``DecompressionBombWarning``.
Anything else, or a case slower than ``--timeout`` seconds, is a failure:
its input is saved for replay.

Run::

    python tools/fuzz_vq.py --cases 100000 --seed 0
    python tools/fuzz_vq.py --replay 1234 --seed 0   # rerun one case, traceback

Case ``i`` of seed ``s`` is the same on every run and machine, so a failure
is reproduced by its number alone.
"""

from __future__ import annotations

import argparse
import collections
import io
import multiprocessing
import os
import random
import resource
import signal
import struct
import sys
import time
import warnings
import zlib

import numpy as np
from PIL import Image, ImageFile

from skvq import format as vq
from skvq.format.codings import context
from skvq.format.container import chunk

# Pillow warns between MAX_IMAGE_PIXELS and twice that: raised here, so that
# nothing is decoded past it.
warnings.simplefilter("error", Image.DecompressionBombWarning)
# The plugin's documented hint for a signature damaged by a text-mode copy.
warnings.filterwarnings("ignore", "VQ signature damaged", UserWarning)

# Exceptions a reader of a damaged file may raise (docs/robustness.md).
ALLOWED = (OSError, Image.DecompressionBombError, Image.DecompressionBombWarning)
# Frames decoded per case: the seeds have at most 3, damage may announce more.
MAX_FRAMES = 4
INTERESTING_LENGTHS = (0, 1, 2**31 - 1, 2**31, 2**32 - 1)
INTERESTING_FIELDS = (0, 1, 2, 255, 256, 257, 65535, 65536, 65537, 2**31 - 1, 2**32 - 1)
# Offset and size of each HEAD field (docs/format.md), from its data start.
HEAD_LAYOUT = [(0, 1), (1, 4), (5, 4), (9, 1), (10, 1), (11, 4), (15, 1), (16, 1)]
HEAD_LAYOUT += [(17, 4)]
HEAD_SIZE = 21


class CaseTimeout(Exception):
    """A case ran longer than the time limit."""


# ---------------------------------------------------------------------------
# Seeds


def seed_files() -> list[bytes]:
    """Small valid files covering every mode, K class, frames and metadata."""
    rng = np.random.default_rng(0)
    # (mode, K, channels, width, height, frames)
    shapes = [
        ("L", 1, 1, 5, 3, 1),
        ("1", 2, 1, 9, 2, 1),
        ("RGB", 2, 3, 7, 5, 2),
        ("P", 16, 4, 6, 4, 1),
        ("RGBA", 16, 4, 3, 3, 3),
        ("L", 300, 1, 4, 3, 1),
        ("LA", 300, 2, 2, 5, 2),
        ("RGB", 65536, 3, 3, 2, 1),
    ]
    metadata = {"icc_profile": b"icc-profile", "exif": b"Exif\0\0MM", "dpi": (72, 96)}
    seeds = []
    for coding in vq.CODINGS:
        for number, (mode, k, channels, width, height, frames) in enumerate(shapes):
            codebook = rng.integers(0, 256, (k, channels), dtype=np.uint8)
            codes = rng.integers(0, k, (frames, height, width))
            data = vq.encode_vq(
                width,
                height,
                mode,
                codebook,
                list(codes),
                metadata=metadata if number % 2 else None,
                coding=coding,
            )
            if number % 3 == 0:  # an ancillary chunk of a later version
                data = _insert_chunk(data, 2, chunk(b"zzZz", b"later data"))
            seeds.append(data)
    # Context coding: maps of blocks (all of its steps, not only escapes) in
    # stripes of 3 rows.
    stripe_pixels = context.STRIPE_PIXELS
    context.STRIPE_PIXELS = 30
    try:
        for k, channels, mode in [(16, 3, "RGB"), (300, 1, "L"), (2, 1, "1")]:
            codebook = rng.integers(0, 256, (k, channels), dtype=np.uint8)
            blocks = rng.integers(0, k, (2, 4, 5))
            frames = list(np.repeat(np.repeat(blocks, 3, axis=1), 2, axis=2))
            seeds.append(vq.encode_vq(10, 12, mode, codebook, frames, coding="context"))
    finally:
        context.STRIPE_PIXELS = stripe_pixels
    return seeds


def chunk_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each chunk, as far as the length fields allow."""
    spans, position = [], len(vq.SIGNATURE)
    while position + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        end = min(position + 12 + length, len(data))
        spans.append((position, end))
        position = end
    return spans


def _insert_chunk(data: bytes, index: int, chunk: bytes) -> bytes:
    spans = chunk_spans(data)
    at = spans[min(index, len(spans) - 1)][0] if spans else len(data)
    return data[:at] + chunk + data[at:]


def fix_crcs(data: bytes) -> bytes:
    """The file with every whole chunk's CRC recomputed."""
    out = bytearray(data)
    for start, end in chunk_spans(data):
        (length,) = struct.unpack_from(">I", data, start)
        if end == start + 12 + length:
            crc = zlib.crc32(data[start + 4 : end - 4])
            out[end - 4 : end] = struct.pack(">I", crc)
    return bytes(out)


# ---------------------------------------------------------------------------
# Mutations: (rng, data) -> data


def flip_bits(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(len(out))
        out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def set_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        value = rng.choice((0, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        out[rng.randrange(len(out))] = value
    return bytes(out)


def extreme_length(rng: random.Random, data: bytes) -> bytes:
    spans = chunk_spans(data)
    if not spans:
        return set_bytes(rng, data)
    start, end = rng.choice(spans)
    length = end - start - 12
    value = rng.choice(
        (*INTERESTING_LENGTHS, length - 1, length + 1, rng.randrange(2**32))
    )
    return data[:start] + struct.pack(">I", value % 2**32) + data[start + 4 :]


def extreme_head_field(rng: random.Random, data: bytes) -> bytes:
    head = len(vq.SIGNATURE) + 8
    if len(data) < head + HEAD_SIZE:
        return set_bytes(rng, data)
    offset, size = rng.choice(HEAD_LAYOUT)
    value = rng.choice(INTERESTING_FIELDS) % 2 ** (8 * size)
    start = head + offset
    return data[:start] + value.to_bytes(size, "big") + data[start + size :]


def drop_chunk(rng: random.Random, data: bytes) -> bytes:
    spans = chunk_spans(data)
    if not spans:
        return data
    start, end = rng.choice(spans)
    return data[:start] + data[end:]


def duplicate_chunk(rng: random.Random, data: bytes) -> bytes:
    spans = chunk_spans(data)
    if not spans:
        return data
    start, end = rng.choice(spans)
    at = rng.choice([s for s, _ in spans] + [len(data)])
    return data[:at] + data[start:end] + data[at:]


def swap_chunks(rng: random.Random, data: bytes) -> bytes:
    spans = chunk_spans(data)
    if len(spans) < 2:
        return data
    pieces = [data[s:e] for s, e in spans]
    i, j = rng.sample(range(len(pieces)), 2)
    pieces[i], pieces[j] = pieces[j], pieces[i]
    return data[: spans[0][0]] + b"".join(pieces) + data[spans[-1][1] :]


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.randbytes(rng.randint(1, 16)) + data[at:]


def random_chunk(rng: random.Random, data: bytes) -> bytes:
    chunk_type = rng.choice((b"HEAD", b"BOOK", b"INDX", b"DONE", b"iccp", b"dens"))
    chunk_type = rng.choice((chunk_type, bytes(rng.choices(b"aZqQ", k=4))))
    body = rng.randbytes(rng.choice((0, 1, 16, 21, rng.randrange(64))))
    return _insert_chunk(data, rng.randrange(8), chunk(chunk_type, body))


MUTATIONS = (
    flip_bits,
    set_bytes,
    extreme_length,
    extreme_head_field,
    drop_chunk,
    duplicate_chunk,
    swap_chunks,
    truncate,
    insert_bytes,
    random_chunk,
)


def make_case(seeds: list[bytes], seed: int, number: int) -> bytes:
    """The input of case ``number``: a mutated seed, or random bytes (5%)."""
    rng = random.Random(f"{seed}:{number}")
    if rng.random() < 0.05:
        prefix = vq.SIGNATURE if rng.random() < 0.5 else b""
        return prefix + rng.randbytes(rng.randrange(200))
    data = rng.choice(seeds)
    for _ in range(rng.randint(1, 3)):
        if data:
            data = rng.choice(MUTATIONS)(rng, data)
    if rng.random() < 0.5:  # past the CRCs, into validation
        data = fix_crcs(data)
    return data


# ---------------------------------------------------------------------------
# Reading a case through both layers


def read_everything(data: bytes) -> list[str]:
    """Read ``data`` every way there is; the outcome of each reader.

    Allowed exceptions are caught and named; any other propagates.
    """
    outcomes = []

    def attempt(function):
        try:
            function()
        except ALLOWED as error:
            outcomes.append(type(error).__name__)
        else:
            outcomes.append("ok")

    def format_layer(partial):
        file = io.BytesIO(data)
        header = vq.read_header(file)
        offsets = vq.frame_offsets(file, header)
        for offset in offsets[:MAX_FRAMES]:
            vq.read_frame(file, header, offset, partial=partial)

    def pillow_layer():
        with Image.open(io.BytesIO(data)) as image:
            for frame in range(min(getattr(image, "n_frames", 1), MAX_FRAMES)):
                image.seek(frame)
                image.load()

    def pillow_verify():
        with Image.open(io.BytesIO(data)) as image:
            image.verify()

    def small_format(function):
        # read_vq and friends stack every frame: only for modest headers.
        def run():
            header = vq.read_header(io.BytesIO(data))
            if header.n_frames <= MAX_FRAMES:
                function(data)

        return run

    attempt(lambda: format_layer(partial=False))
    attempt(lambda: format_layer(partial=True))
    attempt(small_format(vq.read_vq))
    attempt(lambda: vq.verify_vq(data))
    attempt(lambda: vq.read_info(data))
    attempt(pillow_layer)
    attempt(pillow_verify)
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        attempt(pillow_layer)
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    return outcomes


def _on_alarm(signum, frame):
    raise CaseTimeout


def run_cases(job):
    """Run cases ``start .. stop - 1``; counts, failures and timings."""
    seed, start, stop, timeout = job
    seeds = seed_files()
    counts = collections.Counter()
    failures = []
    slowest = (0.0, -1)
    signal.signal(signal.SIGALRM, _on_alarm)
    for number in range(start, stop):
        data = make_case(seeds, seed, number)
        began = time.perf_counter()
        signal.alarm(timeout)
        try:
            outcomes = read_everything(data)
        except CaseTimeout:
            failures.append((number, "timeout", data))
            continue
        except Exception as error:  # the failures this tool looks for
            failures.append((number, f"{type(error).__name__}: {error}", data))
            continue
        finally:
            signal.alarm(0)
        elapsed = time.perf_counter() - began
        slowest = max(slowest, (elapsed, number))
        counts.update(outcomes)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return counts, failures, slowest, peak_rss_mb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--timeout", type=int, default=10, help="seconds per case")
    parser.add_argument("--failures", default="fuzz-failures", help="directory")
    parser.add_argument("--replay", type=int, metavar="CASE", help="rerun one case")
    args = parser.parse_args(argv)

    if args.replay is not None:
        data = make_case(seed_files(), args.seed, args.replay)
        print(f"case {args.replay}: {len(data)} bytes")
        print(read_everything(data))
        return 0

    print(f"{len(seed_files())} seed files, codings: {', '.join(vq.CODINGS)}")
    batch = 500
    jobs = [
        (args.seed, start, min(start + batch, args.cases), args.timeout)
        for start in range(0, args.cases, batch)
    ]
    counts = collections.Counter()
    failures = []
    slowest = (0.0, -1)
    peak_rss_mb = 0.0
    began = time.perf_counter()
    with multiprocessing.Pool(args.jobs) as pool:
        for result in pool.imap_unordered(run_cases, jobs):
            counts.update(result[0])
            failures.extend(result[1])
            slowest = max(slowest, result[2])
            peak_rss_mb = max(peak_rss_mb, result[3])
    elapsed = time.perf_counter() - began

    print(f"{args.cases:,} cases, seed {args.seed}, {args.jobs} processes")
    print(f"time {elapsed:.0f} s: {args.cases / elapsed:,.0f} cases/s")
    print(f"slowest case {slowest[0] * 1000:.1f} ms (case {slowest[1]})")
    print(f"peak RSS per process {peak_rss_mb:.0f} MB")
    print("outcomes of the reads (8 readers per case):")
    for name, count in counts.most_common():
        print(f"  {name:24} {count:>9,}")
    print(f"failures: {len(failures)}")
    if failures:
        os.makedirs(args.failures, exist_ok=True)
        for number, what, data in sorted(failures, key=lambda f: f[0])[:50]:
            print(f"  case {number}: {what}")
            with open(os.path.join(args.failures, f"case-{number}.vq"), "wb") as f:
                f.write(data)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
