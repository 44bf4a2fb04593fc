"""Benchmark skvq's K-Means color quantization against its peers.

One command prints a markdown table (image, megapixels, K, method, seconds,
PSNR, peak memory) and the targets of issue 4, checked on the medians::

    python benchmarks/bench_quantization.py                 # full run
    python benchmarks/bench_quantization.py --quick         # seconds, a smoke test
    python benchmarks/bench_quantization.py --k 256 --methods skvq imagequant \\
        --images china mosaic-24mp --json benchmarks/results/run.json \\
        --plot docs/_static/benchmark_psnr_time.png

Methods are timed from an RGB array to the quantized RGB array (fit plus the
code of every pixel plus the palette lookup), without dithering. Seconds are
medians over ``--repeats`` runs. PSNR is over every value of the RGB image.
Peak memory is the peak resident set size of this process during the last
timed run, read from ``VmHWM`` after resetting it through
``/proc/self/clear_refs`` (Linux only); it includes the interpreter, its
libraries and the image being quantized. Each method first runs once,
untimed, on a small image so that imports and caches are warm. The slow
methods (textbook, MiniBatchKMeans, Pillow's k-means refinement) run once
per image, as does any method whose first run takes more than
``SINGLE_RUN_SECONDS``. Peers that are not installed are skipped with a
note.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

K_VALUES = (16, 64, 256)
PHOTOS = (
    "china",
    "flower",
    "astronaut",
    "coffee",
    "chelsea",
    "hubble_deep_field",
    "rocket",
    "immunohistochemistry",
)
MOSAICS = {"mosaic-1.5mp": 1.5, "mosaic-24mp": 24.0}
METHODS = (
    "skvq",
    "textbook",
    "minibatch",
    "pillow-mediancut",
    "pillow-fastoctree",
    "pillow-mediancut-kmeans",
    "imagequant",
)


# --- Images -------------------------------------------------------------------


def load_photo(name):
    """A sample photo from scikit-learn or scikit-image, RGB uint8."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    import skimage.data

    return getattr(skimage.data, name)()


def mosaic(megapixels):
    """A 3:2 mosaic of the sample photos, each resampled to fill a 3 x 3 tile.

    Lanczos resampling makes new colors as a real high-resolution photo
    would have them, rather than repeating the photos' colors.
    """
    import skimage.data

    width = round((megapixels * 1e6 * 3 / 2) ** 0.5 / 3) * 3
    height = round(megapixels * 1e6 / width / 3) * 3
    tile = (width // 3, height // 3)
    sources = [load_photo(name) for name in PHOTOS] + [skimage.data.retina()]
    out = np.empty((height, width, 3), dtype=np.uint8)
    for i in range(9):
        fitted = ImageOps.fit(
            Image.fromarray(sources[i]), tile, Image.Resampling.LANCZOS
        )
        row, col = divmod(i, 3)
        out[
            row * tile[1] : (row + 1) * tile[1], col * tile[0] : (col + 1) * tile[0]
        ] = np.asarray(fitted)
    return out


def load_image(name):
    if name in MOSAICS:
        return mosaic(MOSAICS[name])
    if name == "china-crop":  # the --quick image
        return np.ascontiguousarray(load_photo("china")[150:250, 250:400])
    return load_photo(name)


# --- Methods: RGB uint8 array -> quantized RGB uint8 array ----------------------


def run_skvq(image, k):
    from skvq import quantize_image

    return quantize_image(image, k, random_state=0).reconstruction


def _sklearn_fit(estimator, image):
    pixels = image.reshape(-1, 3).astype(np.float64)
    labels = estimator.fit_predict(pixels)
    palette = np.clip(np.rint(estimator.cluster_centers_), 0, 255).astype(np.uint8)
    return palette[labels].reshape(image.shape)


def run_textbook(image, k):
    from sklearn.cluster import KMeans

    return _sklearn_fit(KMeans(n_clusters=k, n_init="auto", random_state=0), image)


def run_minibatch(image, k):
    from sklearn.cluster import MiniBatchKMeans

    estimator = MiniBatchKMeans(n_clusters=k, n_init="auto", random_state=0)
    return _sklearn_fit(estimator, image)


def _pillow(image, k, method, kmeans=0):
    quantized = Image.fromarray(image).quantize(
        k, method=method, kmeans=kmeans, dither=Image.Dither.NONE
    )
    return np.asarray(quantized.convert("RGB"))


def run_pillow_mediancut(image, k):
    return _pillow(image, k, Image.Quantize.MEDIANCUT)


def run_pillow_fastoctree(image, k):
    return _pillow(image, k, Image.Quantize.FASTOCTREE)


def run_pillow_mediancut_kmeans(image, k):
    # kmeans=1: Pillow refines until no pixel changes cluster.
    return _pillow(image, k, Image.Quantize.MEDIANCUT, kmeans=1)


def run_imagequant(image, k):
    import imagequant

    quantized = imagequant.quantize_pil_image(
        Image.fromarray(image), dithering_level=0.0, max_colors=k
    )
    return np.asarray(quantized.convert("RGB"))


SLOW = ("textbook", "minibatch", "pillow-mediancut-kmeans")
# A run this long is not repeated: the benchmark stays within minutes, and
# machine noise matters less to it.
SINGLE_RUN_SECONDS = 5.0
RUNNERS = {name: globals()["run_" + name.replace("-", "_")] for name in METHODS}
REQUIRES = {"imagequant": "imagequant", "textbook": "sklearn", "minibatch": "sklearn"}


def missing_peers(methods):
    """Methods whose package is not installed, with a note for each."""
    import importlib.util

    return {
        method: f"{REQUIRES[method]} is not installed"
        for method in methods
        if method in REQUIRES and importlib.util.find_spec(REQUIRES[method]) is None
    }


# --- Measurement ----------------------------------------------------------------


def psnr(original, reconstructed):
    error = original.astype(np.float64) - reconstructed
    return float(10 * np.log10(255.0**2 / np.mean(error**2)))


def reset_peak_rss():
    """Reset the peak resident set size to the current one; False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def measure(method, image, k, repeats):
    """Median seconds, PSNR and peak memory (during the last run).

    Stops after the first run if that took more than ``SINGLE_RUN_SECONDS``.
    """
    runner = RUNNERS[method]
    times = []
    for _ in range(repeats):
        tracked = reset_peak_rss()
        start = time.perf_counter()
        reconstructed = runner(image, k)
        times.append(time.perf_counter() - start)
        peak_mb = peak_rss_mb() if tracked else None
        if times[0] > SINGLE_RUN_SECONDS:
            break
    return {
        "seconds": statistics.median(times),
        "psnr": psnr(image, reconstructed),
        "peak_mb": peak_mb,
    }


# --- Report ---------------------------------------------------------------------


def markdown_table(rows):
    lines = [
        "| image | MP | K | method | seconds | PSNR (dB) | peak memory (MB) |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        peak = "" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        lines.append(
            f"| {r['image']} | {r['megapixels']:.2f} | {r['k']} | {r['method']} | "
            f"{r['seconds']:.3f} | {r['psnr']:.2f} | {peak} |"
        )
    return "\n".join(lines)


def summary(rows):
    """Medians over the photos (all but the mosaics) per K and method, and the
    issue's targets."""
    lines = [
        "| K | method | median seconds | median PSNR (dB) | photos |",
        "|---:|---|---:|---:|---:|",
    ]
    medians = {}
    photos = [r for r in rows if r["image"] not in MOSAICS]
    for k in sorted({r["k"] for r in photos}):
        for method in METHODS:
            sel = [r for r in photos if r["k"] == k and r["method"] == method]
            if not sel:
                continue
            m = (
                statistics.median(r["seconds"] for r in sel),
                statistics.median(r["psnr"] for r in sel),
            )
            medians[k, method] = m
            lines.append(f"| {k} | {method} | {m[0]:.3f} | {m[1]:.2f} | {len(sel)} |")
    checks = []
    for k in sorted({k for k, _ in medians}):
        ours = medians.get((k, "skvq"))
        if ours is None:
            continue
        if (k, "textbook") in medians:
            ref = medians[k, "textbook"]
            checks.append(
                _check(f"K={k}: PSNR >= textbook", ours[1] >= ref[1], ours[1], ref[1])
            )
        if (k, "imagequant") in medians:
            ref = medians[k, "imagequant"]
            checks.append(
                _check(f"K={k}: PSNR > imagequant", ours[1] > ref[1], ours[1], ref[1])
            )
            checks.append(
                _check(
                    f"K={k}: seconds <= imagequant", ours[0] <= ref[0], ours[0], ref[0]
                )
            )
    by_key = {(r["image"], r["k"], r["method"]): r for r in rows}
    ours, ref = (
        by_key.get(("mosaic-1.5mp", 256, "skvq")),
        by_key.get(("mosaic-1.5mp", 256, "textbook")),
    )
    if ours and ref:
        speedup = ref["seconds"] / ours["seconds"]
        checks.append(
            _check("1.5 MP, K=256: >= 50x faster than textbook", speedup >= 50, speedup)
        )
    big = by_key.get(("mosaic-24mp", 256, "skvq"))
    if big:
        checks.append(
            _check("24 MP, K=256: <= 3 s", big["seconds"] <= 3, big["seconds"])
        )
        if big["peak_mb"] is not None:
            checks.append(
                _check(
                    "24 MP, K=256: peak memory <= 1.5 GB",
                    big["peak_mb"] <= 1536,
                    big["peak_mb"],
                )
            )
    if big and ours:
        per_mp = [r["seconds"] / r["megapixels"] for r in (ours, big)]
        checks.append(
            _check(
                "seconds per MP, 24 MP vs 1.5 MP (linear: ~1)",
                per_mp[1] <= 1.5 * per_mp[0],
                per_mp[1] / per_mp[0],
            )
        )
    return "\n".join(lines), checks


def _check(name, ok, value, reference=None):
    against = "" if reference is None else f" (vs {reference:.3f})"
    return f"- [{'x' if ok else ' '}] {name}: {value:.3f}{against}"


def plot(rows, path):
    """PSNR against seconds, one panel per K, medians over the photos."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    photos = [r for r in rows if r["image"] not in MOSAICS]
    ks = sorted({r["k"] for r in photos})
    fig, axes = plt.subplots(1, len(ks), figsize=(4.2 * len(ks), 3.8), squeeze=False)
    for ax, k in zip(axes[0], ks, strict=True):
        for i, method in enumerate(METHODS):
            sel = [r for r in photos if r["k"] == k and r["method"] == method]
            if not sel:
                continue
            color = f"C{i}"
            ax.scatter(
                [r["seconds"] for r in sel],
                [r["psnr"] for r in sel],
                color=color,
                alpha=0.25,
                s=12,
            )
            ax.scatter(
                statistics.median(r["seconds"] for r in sel),
                statistics.median(r["psnr"] for r in sel),
                color=color,
                edgecolor="black",
                s=70,
                label=method,
            )
        ax.set_xscale("log")
        ax.set_title(f"K = {k}")
        ax.set_xlabel("seconds (log scale)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("PSNR (dB)")
    axes[0][-1].legend(fontsize="small", loc="lower right")
    fig.suptitle("Sample photos: each run (faint) and the medians (outlined)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--images", nargs="+", help="default: photos and mosaics")
    parser.add_argument("--k", nargs="+", type=int, default=list(K_VALUES))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--textbook-max-mp",
        type=float,
        default=1.6,
        help="skip the textbook fit (KMeans on every pixel) above this size",
    )
    parser.add_argument(
        "--slow-peers-max-mp",
        type=float,
        default=1.6,
        help="skip MiniBatchKMeans and Pillow's k-means refinement above this size",
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    parser.add_argument("--plot", type=Path, help="also plot PSNR against seconds")
    args = parser.parse_args(argv)
    if args.quick:
        args.images = args.images or ["china-crop"]
        args.k = [16]
        args.repeats = 1
    args.images = args.images or [*PHOTOS, *MOSAICS]
    return args


def main(argv=None):
    args = parse_args(argv)
    notes = [f"- {m}: skipped, {why}" for m, why in missing_peers(args.methods).items()]
    methods = [m for m in args.methods if m not in missing_peers(args.methods)]
    warm = load_image("china-crop")
    for method in methods:
        RUNNERS[method](warm, 4)
    rows = []
    for name in args.images:
        image = load_image(name)
        megapixels = image.shape[0] * image.shape[1] / 1e6
        for k in args.k:
            for method in methods:
                slow = {"textbook": args.textbook_max_mp}.get(method)
                if method in ("minibatch", "pillow-mediancut-kmeans"):
                    slow = args.slow_peers_max_mp
                if slow is not None and megapixels > slow:
                    note = (
                        f"- {method}: skipped on {name} "
                        f"({megapixels:.1f} MP > {slow} MP)"
                    )
                    if note not in notes:
                        notes.append(note)
                    continue
                repeats = 1 if method in SLOW else args.repeats
                row = measure(method, image, k, repeats)
                row.update(image=name, megapixels=megapixels, k=k, method=method)
                rows.append(row)
                print(
                    f"{name} K={k} {method}: {row['seconds']:.3f} s, "
                    f"{row['psnr']:.2f} dB",
                    file=sys.stderr,
                    flush=True,
                )
    print(markdown_table(rows))
    table, checks = summary(rows)
    print("\nMedians over the sample photos:\n")
    print(table)
    if checks:
        print("\nTargets:\n")
        print("\n".join(checks))
    if notes:
        print("\nNotes:\n")
        print("\n".join(notes))
    machine = f"{platform.machine()}, {platform.python_version()}"
    print(
        f"\nMachine: {machine}, {os.cpu_count()} CPUs; seconds are medians of "
        f"{args.repeats} runs (1 for slow methods and runs over "
        f"{SINGLE_RUN_SECONDS:g} s)."
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "notes": notes}, indent=1))
    if args.plot:
        plot(rows, args.plot)
    return rows


if __name__ == "__main__":
    main()
