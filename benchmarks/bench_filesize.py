"""Benchmark .vq file sizes against PNG-8, GIF, WebP and JPEG XL of identical pixels.

One command prints markdown tables and checks the targets of issues 5 and
17::

    python benchmarks/bench_filesize.py                 # full run, ~2 minutes
    python benchmarks/bench_filesize.py --quick         # seconds, a smoke test
    python benchmarks/bench_filesize.py --plot docs/_static/filesize_rd.png

Each sample photo is quantized once per ``K`` (skvq's K-Means, seed 0) and
the same codes and palette are written as .vq in every index coding, as
PNG-8 (Pillow with ``optimize=True``, then oxipng at level 6 when
``pyoxipng`` is installed), as GIF, as lossless WebP (Pillow, method 6,
quality 100: its strongest effort) and as lossless JPEG XL (``imagecodecs``,
effort 10: its strongest) of the RGB reconstruction. Every file decodes to
the very same pixels, which the benchmark checks.

Times are medians over ``--repeats`` runs, the decoders taking turns so
that all see the same load: decoding is ``Image.open`` plus ``load`` from
memory (``imagecodecs.jpegxl_decode`` for JPEG XL, on as many threads as
.vq uses: the machine's cores); encoding is :func:`skvq.format.encode_vq`
in the default coding, against the quantization it follows
(``quantize_image``: fit, codes, reconstruction). The .vq decode on one
thread is measured too.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from bench_quantization import PHOTOS, load_image

from skvq import format as vq
from skvq.format.codings import context
from skvq.image import quantize_image, reconstruct
from skvq.metrics import psnr

K_VALUES = (16, 64, 256)
# K values of the rate-distortion plot.
PLOT_K_VALUES = (4, 8, 16, 32, 64, 128, 256)
DEFAULT_CODING = "auto"
PEERS = ("png", "oxipng", "gif", "webp", "jxl")
JXL_EFFORT = 10


# --- Files of identical pixels -------------------------------------------------


def palette_image(codes: np.ndarray, palette: np.ndarray) -> Image.Image:
    image = Image.fromarray(codes.astype(np.uint8), "P")
    image.putpalette(palette.tobytes())
    return image


def encode_peers(codes: np.ndarray, palette: np.ndarray) -> dict[str, bytes]:
    """PNG-8, GIF, lossless WebP, and oxipng's PNG-8 and JPEG XL if installed."""
    image = palette_image(codes, palette)
    files = {}
    for name, save in (
        ("png", lambda fp: image.save(fp, "PNG", optimize=True)),
        ("gif", lambda fp: image.save(fp, "GIF")),
        (
            "webp",
            lambda fp: image.convert("RGB").save(
                fp, "WEBP", lossless=True, quality=100, method=6
            ),
        ),
    ):
        buffer = io.BytesIO()
        save(buffer)
        files[name] = buffer.getvalue()
    oxipng = _optional("oxipng")
    if oxipng is not None:
        files["oxipng"] = oxipng.optimize_from_memory(files["png"], level=6)
    imagecodecs = _optional("imagecodecs")
    if imagecodecs is not None:
        files["jxl"] = imagecodecs.jpegxl_encode(
            palette[codes], lossless=True, effort=JXL_EFFORT
        )
    return files


def _optional(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


def _is_jxl(data: bytes) -> bool:
    return data[:2] == b"\xff\x0a" or data[4:8] == b"JXL "


def decoded_rgb(data: bytes) -> np.ndarray:
    if _is_jxl(data):
        return _optional("imagecodecs").jpegxl_decode(data)
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def decoder(data: bytes, threads: int | None = None):
    """A function decoding ``data`` from memory (on ``threads`` if given)."""
    if _is_jxl(data):
        imagecodecs = _optional("imagecodecs")
        return lambda: imagecodecs.jpegxl_decode(data, numthreads=threads)

    def decode():
        with Image.open(io.BytesIO(data)) as image:
            image.load()

    if threads is None:
        return decode

    def decode_on_threads():
        workers = context._workers
        context._workers = lambda: threads
        try:
            decode()
        finally:
            context._workers = workers

    return decode_on_threads


def median_seconds(functions: dict, repeats: int) -> dict[str, float]:
    """Median time of each function, the functions taking turns."""
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


# --- Measurements ----------------------------------------------------------------


def measure(
    name: str, photo: np.ndarray, k: int, repeats: int, coding: str = DEFAULT_CODING
) -> dict:
    """Sizes, times and PSNR of one photo quantized to ``k`` colors.

    ``coding`` is the one measured as the default (file "vq-auto").
    """
    start = time.perf_counter()
    result = quantize_image(photo, k, random_state=0)
    quantize_time = time.perf_counter() - start
    height, width = result.codes.shape
    n_codes = result.quantizer.n_codes_
    palette = reconstruct(result.codebook, np.arange(n_codes)[:, np.newaxis])

    def encode(coding):
        return vq.encode_vq(
            width, height, "RGB", palette, [result.codes], coding=coding
        )

    files = {f"vq-{coding}": encode(coding) for coding in vq.CODINGS}
    files["vq-auto"] = encode(coding)
    files.update(encode_peers(result.codes, palette))
    for format_name, data in files.items():
        if not np.array_equal(decoded_rgb(data), result.reconstruction):
            raise AssertionError(f"{name} K={k}: {format_name} changed the pixels")
    png = files.get("oxipng", files["png"])
    cores = context._workers()
    decoders = {
        "vq": decoder(files["vq-auto"]),
        "vq_1_thread": decoder(files["vq-auto"], threads=1),
        "png": decoder(png),
        "webp": decoder(files["webp"]),
    }
    if "jxl" in files:
        decoders["jxl"] = decoder(files["jxl"], threads=cores)
    decode = median_seconds(decoders, repeats)
    return {
        "image": name,
        "k": k,
        "pixels": width * height,
        "sizes": {format_name: len(data) for format_name, data in files.items()},
        "psnr": psnr(photo, result.reconstruction),
        "quantize_s": quantize_time,
        "encode_s": median_seconds({"vq": lambda: encode(coding)}, repeats)["vq"],
        "decode_s": decode,
        "auto_coding": vq.read_info(files["vq-auto"]).coding,
    }


# --- Report ----------------------------------------------------------------------


def size_table(rows: list[dict], reference: str) -> str:
    codings = [f"vq-{coding}" for coding in vq.CODINGS]
    peers = [peer for peer in PEERS if peer in rows[0]["sizes"]]
    columns = [*codings, "vq-auto", *peers]
    lines = [
        "| image | K | " + " | ".join(columns) + " | auto picks |",
        "|---|---:|" + "---:|" * len(columns) + "---|",
    ]
    for row in rows:
        sizes = row["sizes"]
        cells = [
            f"{sizes[column]:,} ({sizes[column] / sizes[reference]:.2f})"
            for column in columns
        ]
        lines.append(
            f"| {row['image']} | {row['k']} | " + " | ".join(cells) + f" | "
            f"{row['auto_coding']} |"
        )
    return "\n".join(lines)


def _median_ratio(group: list[dict], key: str, name: str, to: str) -> float:
    """Median over the images of ``row[key][name] / row[key][to]``."""
    return statistics.median(row[key][name] / row[key][to] for row in group)


def summary_table(rows: list[dict], reference: str) -> tuple[str, list[str]]:
    """Medians per K, and the targets of issues 5 and 17 checked on them."""
    columns = [f"vq-{coding}" for coding in vq.CODINGS] + ["vq-auto"]
    columns += [peer for peer in ("webp", "jxl") if peer in rows[0]["sizes"]]
    decoders = ("vq", "vq_1_thread", "png", "webp", "jxl")
    decoders = [name for name in decoders if name in rows[0]["decode_s"]]
    lines = [
        f"| K | images | {' | '.join(columns)} (size / {reference}) | "
        + " | ".join(f"decode {name} ms" for name in decoders)
        + " | encode ms | quantize ms | encode / quantize |",
        "|---:|---:|" + "---:|" * (len(columns) + len(decoders) + 3),
    ]
    checks = []
    for k in sorted({row["k"] for row in rows}):
        group = [row for row in rows if row["k"] == k]
        sizes = {
            column: _median_ratio(group, "sizes", column, reference)
            for column in columns
        }
        decode = {
            name: statistics.median(row["decode_s"][name] for row in group)
            for name in decoders
        }
        encode = statistics.median(row["encode_s"] for row in group)
        quantize = statistics.median(row["quantize_s"] for row in group)
        overhead = statistics.median(
            row["encode_s"] / row["quantize_s"] for row in group
        )
        lines.append(
            f"| {k} | {len(group)} | "
            + " | ".join(f"{sizes[column]:.3f}" for column in columns)
            + " | "
            + " | ".join(f"{decode[name] * 1e3:.2f}" for name in decoders)
            + f" | {encode * 1e3:.0f} | {quantize * 1e3:.0f} | {overhead:.0%} |"
        )
        auto = sizes["vq-auto"]
        webp = _median_ratio(group, "sizes", "vq-auto", "webp")
        to_webp = _median_ratio(group, "decode_s", "vq", "webp")
        one_thread = _median_ratio(group, "decode_s", "vq_1_thread", "webp")
        checks += [
            _check(f"K={k}: default .vq <= {reference}", auto <= 1, f"{auto:.3f}"),
            _check(f"K={k}: default .vq <= 0.80 x WebP", webp <= 0.8, f"{webp:.3f}"),
            _check(
                f"K={k}: decode .vq <= 4 x WebP",
                to_webp <= 4,
                f"{to_webp:.2f} x (one thread: {one_thread:.2f} x)",
            ),
        ]
        if "jxl" in columns:
            jxl = _median_ratio(group, "sizes", "vq-auto", "jxl")
            to_jxl = _median_ratio(group, "decode_s", "vq", "jxl")
            checks += [
                _check(f"K={k}: default .vq <= JPEG XL", jxl <= 1, f"{jxl:.3f}"),
                _check(
                    f"K={k}: decode .vq <= 0.5 x JPEG XL",
                    to_jxl <= 0.5,
                    f"{to_jxl:.2f} x",
                ),
            ]
        checks.append(
            _check(f"K={k}: encode <= quantization", overhead <= 1, f"{overhead:.0%}")
        )
    return "\n".join(lines), checks


def _check(label: str, passed: bool, value: str) -> str:
    return f"- [{'x' if passed else ' '}] {label}: {value}"


def plot(rows: list[dict], path: Path) -> None:
    """Bits per pixel (whole file) against PSNR, medians over images per K."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "vq-raw": ".vq raw (ceil(log2 K) bits)",
        "vq-auto": ".vq default (auto)",
        "vq-bz2": ".vq bz2",
        "png": "PNG-8 (Pillow optimize)",
        "oxipng": "PNG-8 (oxipng -o6)",
        "gif": "GIF",
        "webp": "WebP lossless",
        "jxl": "JPEG XL lossless (effort 10)",
    }
    ks = sorted({row["k"] for row in rows})
    figure, axes = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for column, label in labels.items():
        if column not in rows[0]["sizes"]:
            continue
        bpp, quality = [], []
        for k in ks:
            group = [row for row in rows if row["k"] == k]
            bpp.append(
                statistics.median(
                    8 * row["sizes"][column] / row["pixels"] for row in group
                )
            )
            quality.append(statistics.median(row["psnr"] for row in group))
        style = "-o" if column.startswith("vq") else "--."
        axes.plot(bpp, quality, style, label=label)
    for k, x, y in zip(ks, bpp, quality, strict=True):
        axes.annotate(f"K={k}", (x, y), textcoords="offset points", xytext=(4, -10))
    axes.set_xlabel("bits per pixel (whole file, median over images)")
    axes.set_ylabel("PSNR (dB, median over images)")
    axes.set_title("Rate-distortion of K-Means color quantization")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a seconds-long smoke test"
    )
    parser.add_argument("--images", nargs="+", help=f"default: {' '.join(PHOTOS)}")
    parser.add_argument("--k", nargs="+", type=int, help="default: 16 64 256")
    parser.add_argument("--repeats", type=int, default=7, help="timing runs (7)")
    parser.add_argument("--plot", type=Path, help="write the rate-distortion PNG")
    parser.add_argument(
        "--coding",
        default=DEFAULT_CODING,
        help=f"the coding measured as the default (default: {DEFAULT_CODING})",
    )
    args = parser.parse_args(argv)
    images = args.images or (["china-crop"] if args.quick else list(PHOTOS))
    table_ks = args.k or ([16] if args.quick else list(K_VALUES))
    ks = sorted(set(table_ks) | (set(PLOT_K_VALUES) if args.plot else set()))
    repeats = 3 if args.quick else args.repeats
    if _optional("oxipng") is None:
        print("> oxipng skipped: `pip install pyoxipng`; ratios are to Pillow's PNG.\n")
    if _optional("imagecodecs") is None:
        print("> JPEG XL skipped: `pip install imagecodecs`.\n")
    rows = []
    for name in images:
        photo = load_image(name)
        for k in ks:
            rows.append(measure(name, photo, k, repeats, args.coding))
            print(f"  {name} K={k} done", file=sys.stderr, flush=True)
    reference = "oxipng" if "oxipng" in rows[0]["sizes"] else "png"
    table_rows = [row for row in rows if row["k"] in table_ks]
    print(f"## File sizes in bytes (ratio to {reference})\n")
    print(size_table(table_rows, reference))
    summary, checks = summary_table(table_rows, reference)
    print("\n## Medians over images\n")
    print(summary)
    print("\n## Targets\n")
    print("\n".join(checks))
    if args.plot:
        plot(rows, args.plot)
        print(f"\nwrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
