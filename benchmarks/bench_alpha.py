"""Benchmark the quantization of images with alpha (issue 15, transparency).

Compares skvq's alpha handling (one reserved transparent codeword, opaque
pixels kept opaque, colors premultiplied by alpha) with the plain fit it
replaced (K-Means on the four RGBA values as they are), on the generated
images of ``rgba_images.py``: sprites, a logo with a translucent shadow,
anti-aliased text and a photo under a soft radial alpha mask, each with
noise as the invisible colors of its transparent pixels::

    python benchmarks/bench_alpha.py           # ~20 s
    python benchmarks/bench_alpha.py --quick   # a smoke test

Columns: the largest alpha of a fully transparent pixel after quantization
(should be 0), the smallest alpha of a fully opaque one (255), the mean
alpha error, the number of alpha levels left, the RMSE of opaque pixels'
RGB, and the RMSE of premultiplied RGBA (color times opacity, then alpha:
what shows on any background) over all pixels and over translucent ones.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from rgba_images import IMAGES

from skvq import VectorQuantizer, quantize_image
from skvq.imaging import reconstruct

K_VALUES = (16, 64, 256)


def plain_rgba_fit(rgba, k):
    """skvq before: K-Means on the RGBA values as they are."""
    quantizer = VectorQuantizer(k, random_state=0)
    codes = quantizer.fit_transform(rgba.reshape(-1, 4))
    return reconstruct(quantizer.codebook_, codes).reshape(rgba.shape)


def skvq_fit(rgba, k):
    return quantize_image(rgba, k, random_state=0).reconstruction


def premultiplied(pixels):
    pixels = pixels.astype(np.float64)
    return np.concatenate(
        [pixels[..., :3] * pixels[..., 3:] / 255, pixels[..., 3:]], -1
    )


def measures(original, decoded):
    before, after = original[..., 3].astype(int), decoded[..., 3].astype(int)
    transparent, opaque = before == 0, before == 255
    translucent = ~transparent & ~opaque
    error = (premultiplied(original) - premultiplied(decoded)) ** 2
    opaque_error = (original[opaque, :3].astype(float) - decoded[opaque, :3]) ** 2
    return {
        "transparent_alpha_max": np.abs(after - before)[transparent].max(initial=0),
        "opaque_alpha_min": after[opaque].min(initial=255),
        "alpha_mae": np.abs(after - before).mean(),
        "alpha_levels": len(np.unique(after)),
        "opaque_rmse": np.sqrt(opaque_error.mean()) if opaque.any() else 0.0,
        "rmse": np.sqrt(error.mean()),
        "translucent_rmse": np.sqrt(error[translucent].mean())
        if translucent.any()
        else 0.0,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sprites at K=16")
    args = parser.parse_args(argv)
    images = ["sprites"] if args.quick else list(IMAGES)
    k_values = (16,) if args.quick else K_VALUES
    print(
        "| image | K | fit | transparent α max | opaque α min | mean α error "
        "| α levels | opaque RGB RMSE | premultiplied RMSE | translucent "
        "premultiplied RMSE | seconds |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in images:
        rgba = np.asarray(IMAGES[name]())
        for k in k_values:
            for label, fit in (
                ("plain RGBA (before)", plain_rgba_fit),
                ("skvq", skvq_fit),
            ):
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    decoded = fit(rgba, k)
                seconds = time.perf_counter() - start
                m = measures(rgba, decoded)
                print(
                    f"| {name} | {k} | {label} | {m['transparent_alpha_max']} "
                    f"| {m['opaque_alpha_min']} | {m['alpha_mae']:.2f} "
                    f"| {m['alpha_levels']} | {m['opaque_rmse']:.2f} "
                    f"| {m['rmse']:.2f} | {m['translucent_rmse']:.2f} "
                    f"| {seconds:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
