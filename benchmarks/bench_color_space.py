"""Benchmark fitting images in OkLab against RGB, with and without dithering.

One command prints a markdown table (issue 16, ``color_space="oklab"``)::

    python benchmarks/bench_color_space.py            # the sample photos, ~5 min
    python benchmarks/bench_color_space.py --quick    # seconds, a smoke test

Each image is quantized by :func:`skvq.quantize_image` (seed 0) at each
``K``, with ``color_space`` "rgb" and "oklab", each without and (when
:mod:`skvq.dither` is installed) with ``dither=True``. The reconstruction is
scored against the original by

- SSIMULACRA2 (the ``ssimulacra2`` package, a Python port of the JPEG XL
  project's metric: 100 is identical, 90 visually lossless, 70 high
  quality, 50 medium, 30 low; it penalizes banding that PSNR forgives);
- mean CIEDE2000 (:func:`skimage.color.deltaE_ciede2000` on CIELAB,
  D65): the perceived color difference per pixel, about 1 to 2.3 is just
  noticeable;
- PSNR in dB (:func:`skvq.metrics.psnr`), what K-Means in RGB maximizes.

The table gives the median over the images of each score, and the median
time of ``quantize_image``.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from bench_quantization import load_image

from skvq import quantize_image
from skvq.metrics import psnr

PHOTOS = ("china", "flower", "astronaut", "coffee")
K_VALUES = (16, 64, 256)
COLOR_SPACES = ("rgb", "oklab")


def ssimulacra2(original: np.ndarray, distorted: np.ndarray) -> float:
    from ssimulacra2 import compute_ssimulacra2

    def png(pixels):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=0)
        buffer.seek(0)
        return buffer

    return float(compute_ssimulacra2(png(original), png(distorted)))


def ciede2000(original: np.ndarray, distorted: np.ndarray) -> float:
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(deltaE_ciede2000(rgb2lab(original), rgb2lab(distorted)).mean())


def score(image, k, color_space, dither):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = quantize_image(
            image, k, color_space=color_space, dither=dither, random_state=0
        )
    seconds = time.perf_counter() - start
    reconstruction = result.reconstruction
    return {
        "ssimulacra2": ssimulacra2(image, reconstruction),
        "ciede2000": ciede2000(image, reconstruction),
        "psnr": psnr(image, reconstruction),
        "seconds": seconds,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one crop, K=16")
    parser.add_argument("--images", nargs="+", default=PHOTOS)
    parser.add_argument("--k", nargs="+", type=int, default=K_VALUES)
    args = parser.parse_args(argv)
    images, k_values = args.images, args.k
    if args.quick:
        images, k_values = ["china-crop"], [16]
    loaded = {name: load_image(name) for name in images}
    if args.quick:  # smaller than bench_quantization's crop
        loaded["china-crop"] = np.ascontiguousarray(loaded["china-crop"][:64, :96])
    dithers = [False]
    if importlib.util.find_spec("skvq.dither") is not None:
        dithers.append(True)
    else:
        print("skvq.dither is not installed: rows without dithering only\n")
    print(f"Medians over {len(images)} images: {', '.join(images)}\n")
    print(
        "| K | color_space | dither | SSIMULACRA2 (higher is better) "
        "| mean CIEDE2000 (lower) | PSNR dB | seconds |"
    )
    print("|---:|---|---|---:|---:|---:|---:|")
    for k in k_values:
        for dither in dithers:
            for color_space in COLOR_SPACES:
                rows = [
                    score(image, k, color_space, dither) for image in loaded.values()
                ]
                median = {
                    key: statistics.median(r[key] for r in rows) for key in rows[0]
                }
                print(
                    f"| {k} | {color_space} | {'yes' if dither else 'no'} "
                    f"| {median['ssimulacra2']:.1f} | {median['ciede2000']:.2f} "
                    f"| {median['psnr']:.2f} | {median['seconds']:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
