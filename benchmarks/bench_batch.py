"""Batch throughput: images and megapixels encoded per second, by worker count.

Writes a set of real photos (scikit-learn's and scikit-image's samples) to a
temporary folder, then encodes the whole folder to .vq with
:func:`skvq.batch.encode_files` through joblib, once per worker count, and
prints a Markdown table. Run from the repository root::

    python benchmarks/bench_batch.py            # 1 and 2 workers, K = 64
    python benchmarks/bench_batch.py --quick    # a small smoke run

With ``--dask``, each worker count also runs on a dask LocalCluster of that
many single-threaded worker processes, through
``joblib.parallel_config(backend="dask")``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from skvq.batch import encode_files, plan_outputs


def sample_photos():
    """The packaged photos: scikit-learn's two and scikit-image's color ones."""
    from sklearn.datasets import load_sample_image

    photos = {name: load_sample_image(name) for name in ("china.jpg", "flower.jpg")}
    try:
        from skimage import data
    except ImportError:
        return photos
    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field"):
        photos[name] = getattr(data, name)()
    return photos


def write_collection(folder, photos, copies):
    """``copies`` shifted copies of each photo as PNG files; returns megapixels."""
    megapixels = 0.0
    for name, pixels in photos.items():
        for i in range(copies):
            shifted = np.roll(pixels, 17 * i, axis=1)
            Image.fromarray(shifted).save(folder / f"{Path(name).stem}-{i}.png")
            megapixels += pixels.shape[0] * pixels.shape[1] / 1e6
    return megapixels


def time_batch(sources, out, n_jobs, k, repeats, backend=None):
    import joblib

    seconds = []
    for _ in range(repeats):
        for old in out.glob("*.vq"):
            old.unlink()
        plan = plan_outputs(sources, out, ".vq")
        start = time.perf_counter()
        if backend is None:
            results = encode_files(plan, k=k, random_state=0, n_jobs=n_jobs)
        else:
            with joblib.parallel_config(backend=backend):
                results = encode_files(plan, k=k, random_state=0)
        seconds.append(time.perf_counter() - start)
        failed = [r for r in results if not r.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} files failed: {failed[0].error}")
    return statistics.median(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", type=int, default=64, help="colors (default 64)")
    parser.add_argument("--copies", type=int, default=3, help="copies of each photo")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="median of N runs")
    parser.add_argument("--dask", action="store_true", help="also on dask")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.copies, args.repeats, args.k = 1, 1, 8

    photos = sample_photos()
    if args.quick:
        photos = {"china.jpg": photos["china.jpg"][:64, :96]}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp, "in"), Path(tmp, "out")
        folder.mkdir()
        out.mkdir()
        megapixels = write_collection(folder, photos, args.copies)
        sources = sorted(folder.glob("*.png"))
        # A warm-up run so that worker start-up is not billed to the first row.
        time_batch(sources[:2], out, max(args.workers), args.k, 1)
        for n_jobs in args.workers:
            seconds = time_batch(sources, out, n_jobs, args.k, args.repeats)
            rows.append(("joblib (loky)", n_jobs, seconds))
            if args.dask:
                import dask
                from dask.distributed import Client, LocalCluster

                # The nanny's default MALLOC_TRIM_THRESHOLD_=65536 makes every
                # large temporary array cost page faults: skvq runs 2x slower.
                dask.config.set(
                    {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
                )

                with (
                    LocalCluster(
                        n_workers=n_jobs, threads_per_worker=1, dashboard_address=None
                    ) as cluster,
                    Client(cluster),
                ):
                    seconds = time_batch(
                        sources, out, n_jobs, args.k, args.repeats, backend="dask"
                    )
                rows.append(("dask LocalCluster", n_jobs, seconds))

    print(
        f"{len(sources)} images, {megapixels:.1f} megapixels, K = {args.k}, "
        f"median of {args.repeats}"
    )
    print()
    print("| backend | workers | seconds | images/s | megapixels/s |")
    print("|---|---:|---:|---:|---:|")
    for backend, n_jobs, seconds in rows:
        print(
            f"| {backend} | {n_jobs} | {seconds:.2f} | {len(sources) / seconds:.2f} "
            f"| {megapixels / seconds:.2f} |"
        )


if __name__ == "__main__":
    main()
