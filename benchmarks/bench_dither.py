"""Benchmark dithering: image quality, specks, time and file size, next to the peers.

One command prints markdown tables (issue 16) and checks its targets::

    python benchmarks/bench_dither.py                # full run, ~30 min (busy machine)
    python benchmarks/bench_dither.py --quick        # seconds, a smoke test
    python benchmarks/bench_dither.py --busy 2       # with two busy processes

Images: the sample photos of ``bench_quantization.py`` and five generated
smooth gradients (``gradient``), each at K = 16, 64, 256. Methods:

- ``skvq``: ``quantize_image(image, k, random_state=0)``, no dithering;
- ``skvq-adaptive``: ``quantize_image(image, k, dither=True, random_state=0)``:
  skvq's rounded codebook, :func:`skvq.dither.fit_palette`, then
  :func:`skvq.dither.dither_codes`;
- ``skvq-adaptive-unrefined``: :func:`skvq.dither.dither_codes` on skvq's own
  codebook (no palette fitting);
- ``skvq-fs``: textbook Floyd–Steinberg (exact search) on skvq's codebook;
- ``skvq+pillow-fs``: skvq's codebook mapped by Pillow's Floyd–Steinberg;
- ``imagequant-0`` / ``imagequant-1``: libimagequant at dithering level 0
  and 1 (its default);
- ``pillow-mediancut`` / ``pillow-fastoctree``: Pillow's own quantizers
  (Pillow does not dither its own palettes).

Measures, on the RGB result: SSIMULACRA2 (the ``ssimulacra2`` package: higher
is better, 90 is visually lossless, 70 high quality, 50 medium), PSNR, mean
CIEDE2000 (``skimage.color.deltaE_ciede2000``), specks (see
:func:`count_specks`), the seconds from the RGB array to codes and palette
(median of ``--repeats`` runs, for ``skvq-adaptive``: quantize, fit the
palette, dither; and ``imagequant-1``), and the
bytes of the file (for skvq and
libimagequant, undithered and dithered) as .vq (``coding="auto"``) and as PNG-8 (Pillow,
``optimize=True``, then oxipng at its default level 2).

Medians are over the photos, and separately over the gradients.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from bench_quantization import PHOTOS, load_image

import skvq
from skvq import dither
from skvq import format as vq
from skvq.image import reconstruct
from skvq.metrics import psnr

K_VALUES = (16, 64, 256)
GRADIENTS = ("bilinear", "radial", "sky", "two-tone", "hue-sweep")
METHODS = (
    "skvq",
    "skvq-adaptive",
    "skvq-adaptive-unrefined",
    "skvq-fs",
    "skvq+pillow-fs",
    "imagequant-0",
    "imagequant-1",
    "pillow-mediancut",
    "pillow-fastoctree",
)
# Timed (median of --repeats runs), and the bytes of their files.
TIMED = ("skvq-adaptive", "imagequant-1")
SIZED = ("skvq", "skvq-adaptive", "imagequant-0", "imagequant-1")
# Specks: a pixel at least this far (CIELAB, ΔE76) from each of its 8
# neighbors and from its original, where the original is flat.
SPECK_DELTA_E = 30.0
FLAT_DELTA_E = 6.0


# --- Images ---------------------------------------------------------------------


def gradient(name: str, height: int = 384, width: int = 512) -> np.ndarray:
    """A smooth generated gradient, RGB uint8: where undithered palettes band."""
    y, x = (
        np.mgrid[0:height, 0:width] / np.array([height - 1, width - 1])[:, None, None]
    )
    x, y = x[..., None], y[..., None]

    def mix(t, a, b):
        return (1 - t) * np.array(a, float) + t * np.array(b, float)

    if name == "bilinear":  # four corner colors
        image = mix(
            y,
            mix(x, (20, 60, 160), (250, 200, 60)),
            mix(x, (200, 30, 90), (30, 180, 140)),
        )
    elif name == "radial":  # a warm glow fading into a dark blue
        t = np.clip(np.hypot(x - 0.3, y - 0.4) / 0.9, 0, 1)
        image = mix(t, (255, 190, 120), (10, 20, 70))
    elif name == "sky":  # a vertical sky with a sun
        sun = np.exp(-((x - 0.7) ** 2 + (y - 0.8) ** 2) / 0.02)
        image = mix(sun, mix(y, (40, 90, 200), (170, 210, 240)), (255, 240, 200))
    elif name == "two-tone":  # a diagonal between two close dark colors
        image = mix((x + y) / 2, (40, 44, 52), (72, 70, 90))
    elif name == "hue-sweep":  # hues around the wheel, darker downwards
        hue = 2 * np.pi * x
        rgb = 0.5 + 0.4 * np.cos(hue - np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]))
        image = 255 * rgb * mix(y, 1.0, 0.35)
    else:
        raise ValueError(f"unknown gradient {name!r}")
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def load(name: str) -> np.ndarray:
    if name in GRADIENTS:
        return gradient(name)
    if name == "radial-small":  # the --quick images
        return gradient("radial", 48, 64)
    return load_image(name)


# --- Methods: RGB array -> (codes, palette) ------------------------------------


def skvq_palette(image, k):
    result = skvq.quantize_image(image, k, random_state=0)
    # An image with fewer colors than K gets a codebook of those colors.
    n_codes = len(result.codebook)
    return result.codes, reconstruct(result.codebook, np.arange(n_codes)[:, None])


_CACHE = {}


def cached_palette(image, k):
    """skvq's codes and rounded codebook, once per image and K (untimed rows)."""
    key = (image.shape, hash(image.tobytes()), k)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = skvq_palette(image, k)
    return _CACHE[key]


def run_skvq(image, k):
    return cached_palette(image, k)


def run_skvq_adaptive(image, k):
    result = skvq.quantize_image(image, k, dither=True, random_state=0)  # timed
    n_codes = len(result.codebook)
    return result.codes, reconstruct(result.codebook, np.arange(n_codes)[:, None])


def run_skvq_adaptive_unrefined(image, k):
    _, palette = cached_palette(image, k)
    return dither.dither_codes(image, palette), palette


def run_skvq_fs(image, k):
    _, palette = cached_palette(image, k)
    return dither.dither_codes(image, palette, method="floyd-steinberg"), palette


def _pil_result(quantized: Image.Image):
    palette = np.asarray(quantized.getpalette()[: 3 * 256], np.uint8).reshape(-1, 3)
    codes = np.asarray(quantized)
    return codes, palette[: int(codes.max()) + 1]


def run_skvq_pillow_fs(image, k):
    _, palette = cached_palette(image, k)
    target = Image.new("P", (1, 1))
    target.putpalette(palette.tobytes())
    quantized = Image.fromarray(image).quantize(
        palette=target, dither=Image.Dither.FLOYDSTEINBERG
    )
    codes = np.asarray(quantized)
    return codes, palette


def _imagequant(level):
    def run(image, k):
        import imagequant

        return _pil_result(
            imagequant.quantize_pil_image(
                Image.fromarray(image), dithering_level=level, max_colors=k
            )
        )

    return run


def _pillow(method):
    def run(image, k):
        return _pil_result(Image.fromarray(image).quantize(k, method=method))

    return run


RUNNERS = {
    "skvq": run_skvq,
    "skvq-adaptive": run_skvq_adaptive,
    "skvq-adaptive-unrefined": run_skvq_adaptive_unrefined,
    "skvq-fs": run_skvq_fs,
    "skvq+pillow-fs": run_skvq_pillow_fs,
    "imagequant-0": _imagequant(0.0),
    "imagequant-1": _imagequant(1.0),
    "pillow-mediancut": _pillow(Image.Quantize.MEDIANCUT),
    "pillow-fastoctree": _pillow(Image.Quantize.FASTOCTREE),
}


# --- Measures -------------------------------------------------------------------


def ssimulacra2(original: np.ndarray, distorted: np.ndarray) -> float:
    """SSIMULACRA2 of two RGB arrays (the package reads files: lossless PNGs)."""
    from ssimulacra2 import compute_ssimulacra2

    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(Path(tmp, f"{i}.png")) for i in range(2)]
        for path, array in zip(paths, (original, distorted), strict=True):
            Image.fromarray(array).save(path, compress_level=1)
        return float(compute_ssimulacra2(*paths))


def mean_ciede2000(original: np.ndarray, distorted: np.ndarray) -> float:
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(np.mean(deltaE_ciede2000(rgb2lab(original), rgb2lab(distorted))))


def _neighbors(array: np.ndarray):
    """The 8 neighbors of every pixel (edge pixels repeat themselves)."""
    padded = np.pad(array, ((1, 1), (1, 1), (0, 0)), mode="edge")
    height, width = array.shape[:2]
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if (dy, dx) != (1, 1):
                yield padded[dy : dy + height, dx : dx + width]


def count_specks(original: np.ndarray, distorted: np.ndarray) -> int:
    """Isolated far colors in flat areas: what the eye sees as dust.

    A speck is a pixel whose color is more than ``SPECK_DELTA_E`` (ΔE76 in
    CIELAB: a different color, not a neighboring shade; dithering between
    adjacent palette colors moves by far less) from each of its 8 neighbors
    in the result and from its own original color, where the original is
    flat: every neighbor of the original within ``FLAT_DELTA_E`` of it (no
    detail there that a lone pixel could be rendering).
    """
    from skimage.color import rgb2lab

    source, result = rgb2lab(original), rgb2lab(distorted)

    def far(a, b, limit):
        return np.sum((a - b) ** 2, axis=-1) > limit**2

    flat = ~np.any([far(n, source, FLAT_DELTA_E) for n in _neighbors(source)], axis=0)
    lone = np.all([far(n, result, SPECK_DELTA_E) for n in _neighbors(result)], axis=0)
    return int(np.sum(flat & lone & far(result, source, SPECK_DELTA_E)))


def png8_bytes(codes: np.ndarray, palette: np.ndarray) -> int:
    image = Image.fromarray(codes.astype(np.uint8), "P")
    image.putpalette(palette.tobytes())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    try:
        import oxipng
    except ImportError:
        return len(buffer.getvalue())
    return len(oxipng.optimize_from_memory(buffer.getvalue(), level=2))


def vq_bytes(codes: np.ndarray, palette: np.ndarray) -> int:
    height, width = codes.shape
    return len(vq.encode_vq(width, height, "RGB", palette, codes[None], coding="auto"))


def measure(name, image, k, method, repeats, time_only=False):
    runner = RUNNERS[method]
    seconds = []
    for _ in range(repeats if method in TIMED else 1):
        start = time.perf_counter()
        codes, palette = runner(image, k)
        seconds.append(time.perf_counter() - start)
    result = palette[codes]
    row = {
        "image": name,
        "set": "gradients" if name in GRADIENTS or name == "radial-small" else "photos",
        "k": k,
        "method": method,
        "seconds": statistics.median(seconds) if method in TIMED else None,
    }
    if time_only:
        return row
    return row | {
        "ssimulacra2": ssimulacra2(image, result),
        "psnr": float(psnr(image, result)),
        "ciede2000": mean_ciede2000(image, result),
        "specks": count_specks(image, result),
        "png8_bytes": png8_bytes(codes, palette) if method in SIZED else None,
        "vq_bytes": vq_bytes(codes, palette) if method in SIZED[:2] else None,
    }


# --- Tables and targets ----------------------------------------------------------


def _median(rows, key):
    values = [row[key] for row in rows if row.get(key) is not None]
    return statistics.median(values) if values else None


def summary(rows):
    """Median of each measure per (set, K, method)."""
    groups = {}
    for row in rows:
        groups.setdefault((row["set"], row["k"], row["method"]), []).append(row)
    keys = (
        "ssimulacra2",
        "psnr",
        "ciede2000",
        "specks",
        "seconds",
        "png8_bytes",
        "vq_bytes",
    )
    return {
        group: {key: _median(members, key) for key in keys}
        for group, members in groups.items()
    }


def _cell(value, digits):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def print_tables(table):
    print(
        "| set | K | method | SSIMULACRA2 | PSNR (dB) | mean ΔE2000 | specks "
        "| seconds | PNG-8 bytes | .vq bytes |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for (group, k, method), m in sorted(
        table.items(),
        key=lambda item: (item[0][0], item[0][1], METHODS.index(item[0][2])),
    ):
        print(
            f"| {group} | {k} | {method} | {_cell(m['ssimulacra2'], 1)} "
            f"| {_cell(m['psnr'], 2)} | {_cell(m['ciede2000'], 2)} "
            f"| {_cell(m['specks'], 0)} | {_cell(m['seconds'], 3)} "
            f"| {_cell(m['png8_bytes'], 0)} | {_cell(m['vq_bytes'], 0)} |"
        )


def check_targets(rows, table):
    """Issue 16's targets, one line each; True when all are met."""
    met = True
    print()
    for group, k in sorted({(g, k) for g, k, _ in table}):
        ours, peer = table[group, k, "skvq-adaptive"], table[group, k, "imagequant-1"]
        mine, theirs = (
            [
                r["seconds"]
                for r in rows
                if (r["set"], r["k"], r["method"]) == (group, k, m)
            ]
            for m in ("skvq-adaptive", "imagequant-1")
        )
        # Time: the ratio of the medians over the same images, in the same run.
        ratio = statistics.median(mine) / statistics.median(theirs)
        checks = [("time <= imagequant-1", ratio <= 1.0, f"ratio {ratio:.2f}")]
        if ours["ssimulacra2"] is not None:  # not a --time-only run
            checks += [
                (
                    "SSIMULACRA2 >= imagequant-1",
                    ours["ssimulacra2"] >= peer["ssimulacra2"],
                    f"{ours['ssimulacra2']:.1f} vs {peer['ssimulacra2']:.1f}",
                ),
                (
                    "specks <= imagequant-1",
                    ours["specks"] <= peer["specks"],
                    f"{ours['specks']:.0f} vs {peer['specks']:.0f}",
                ),
            ]
        for label, ok, shown in checks:
            met &= ok
            print(f"- {group} K={k}: {label}: {shown}: {'met' if ok else 'MISSED'}")
    return met


PLOTTED = (
    "skvq",
    "skvq-fs",
    "skvq+pillow-fs",
    "imagequant-0",
    "imagequant-1",
    "skvq-adaptive",
)


def plot(table, path):
    """Median SSIMULACRA2 against K, photos and gradients side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({group for group, _, _ in table})
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.6))
    for ax, group in zip(np.atleast_1d(axes), groups, strict=True):
        for method in PLOTTED:
            ks = sorted(k for g, k, m in table if (g, m) == (group, method))
            if ks:
                scores = [table[group, k, method]["ssimulacra2"] for k in ks]
                style = "-o" if method == "skvq-adaptive" else "--."
                ax.plot(ks, scores, style, label=method)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("K (colors)")
        ax.set_ylabel("median SSIMULACRA2")
        ax.set_title(group)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="a seconds-long smoke test"
    )
    parser.add_argument("--k", type=int, nargs="+", default=list(K_VALUES))
    parser.add_argument("--images", nargs="+", help="photos and gradients to use")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row")
    parser.add_argument("--busy", type=int, default=0, help="busy processes alongside")
    parser.add_argument(
        "--time-only", action="store_true", help="only the timed methods' seconds"
    )
    parser.add_argument("--json", type=Path, help="write every row here")
    parser.add_argument("--plot", type=Path, help="write the SSIMULACRA2 plot here")
    parser.add_argument(
        "--replot", type=Path, help="tables and plot of a saved --json, no run"
    )
    args = parser.parse_args(argv)
    if args.replot:
        saved = json.loads(args.replot.read_text())
        return report(saved["rows"], saved["busy"], args.plot)
    if args.quick:
        images, ks, repeats = ["china-crop", "radial-small"], [16], 1
    else:
        images, ks, repeats = args.images or [*PHOTOS, *GRADIENTS], args.k, args.repeats
    methods = [m for m in METHODS if m in args.methods]
    if args.time_only:
        methods = [m for m in methods if m in TIMED]
    for required in ("skvq-adaptive", "imagequant-1"):
        if required not in methods:
            methods.append(required)
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(args.busy)
    ]
    try:
        rows = []
        for name in images:
            image = load(name)
            for method in methods:  # warm: imports, compiled code, caches
                RUNNERS[method](image[:32, :32], 4)
            for k in ks:
                for method in methods:
                    rows.append(
                        measure(name, image, k, method, repeats, args.time_only)
                    )
                    print(f"  {rows[-1]}", file=sys.stderr)
                    if args.json:  # as it goes: a long run that fails keeps its rows
                        saved = {"busy": args.busy, "rows": rows}
                        args.json.write_text(json.dumps(saved, indent=1))
    finally:
        for process in busy:
            process.kill()
            process.wait()
    return report(rows, args.busy, args.plot)


def report(rows, busy, plot_path):
    table = summary(rows)
    print(f"Busy processes alongside: {busy}.\n")
    print_tables(table)
    met = check_targets(rows, table)
    print(f"\nAll targets met: {met}")
    if plot_path:
        plot(table, plot_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
