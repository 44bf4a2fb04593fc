"""The K-Means engine against issue 18's targets, side by side in one run.

Sections (``--sections``; all by default):

- ``large-k``: ``VectorQuantizer(K).fit`` on photos at K = 256, 4,096 and
  65,536 (china only); targets: K = 4,096 at most 5 times the K = 256 time
  of the same photo, K = 65,536 on china within 60 s.
- ``partial-fit``: ``partial_fit`` over chunks (in image order: bands of
  rows; and in a shuffled order) of a photo as float64 and float32 in
  [0, 1] and as integral floats, against ``fit`` on the whole photo and
  against :class:`~sklearn.cluster.MiniBatchKMeans` ``partial_fit`` on the
  same chunks; on general vectors (4x4 blocks of a photo), against
  MiniBatchKMeans. Targets: float images within 1 % of ``fit``'s
  distortion; vectors no worse than MiniBatchKMeans.
- ``collection``: :func:`skvq.batch.fit_codebook` of photo crops on a dask
  ``LocalCluster`` against ``fit`` on the colors of their concatenation
  weighted by their counts (target: the same codebook), and ``fit`` on the
  concatenated pixels (KMeans's seeds: the distortion, side by side).
- ``vectors``: general vectors (``load_digits``, 64 features; 4x4 blocks
  of the gray china photo, 16; Gaussian mixtures of 10**6 points in 2 and
  4 dimensions) at K = 8, 64 and 256, ``VectorQuantizer`` (and with
  ``algorithm="hartigan"``) against ``KMeans(n_init=1)``, each seed of
  ``--rounds`` run by both in turn (a fit of less than 0.2 s timed as the
  median of up to ten). Targets: inertia at most KMeans's for every seed,
  median time at most KMeans's.
- ``big``: a float32 (N, 3) array of ``--rows`` uniform rows (one or
  more N) at K = 256, ``max_iter=3``, skvq against ``KMeans(n_init=1)``,
  each in a fresh process: time, inertia and peak memory (tracemalloc, and
  the peak resident size less the size before the array was made), as
  ratios to the input's bytes. Targets: time and inertia at most KMeans's,
  the input plus the peak allocations at most twice the input.

Times are medians of ``--rounds`` (skvq and the peer take turns); the
machine is shared: read ratios, not seconds::

    python benchmarks/bench_engine.py                  # the full run
    python benchmarks/bench_engine.py --quick          # a smoke run
    python benchmarks/bench_engine.py --sections big --rows 2000000 5000000
    python benchmarks/bench_engine.py --sections vectors --rounds 5
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np


def timed(function, rounds):
    """Median seconds of ``rounds`` calls, and the last result."""
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def photo(name, quick):
    from sklearn.datasets import load_sample_image

    image = load_sample_image(f"{name}.jpg")
    return image[::4, ::4] if quick else image


def large_k(quick, rounds):
    from skvq import VectorQuantizer

    rows, checks = [], []
    ks = (64, 512) if quick else (256, 4096)
    for name in ("china", "flower"):
        X = photo(name, quick).reshape(-1, 3)
        times = {}
        for k in ks:
            times[k], vq = timed(
                lambda k=k, X=X: VectorQuantizer(k, random_state=0).fit(X), rounds
            )
            rows.append(
                [
                    name,
                    f"{k:,}",
                    f"{times[k]:.2f}",
                    vq.n_iter_,
                    f"{vq.inertia_ / len(X):.3f}",
                ]
            )
        ratio = times[ks[1]] / times[ks[0]]
        checks.append(
            (f"{name}: K={ks[1]:,} time / K={ks[0]:,} time <= 5", ratio, ratio <= 5)
        )
    if not quick:
        X = photo("china", quick).reshape(-1, 3)
        seconds, vq = timed(lambda: VectorQuantizer(65536, random_state=0).fit(X), 1)
        rows.append(
            [
                "china",
                "65,536",
                f"{seconds:.2f}",
                vq.n_iter_,
                f"{vq.inertia_ / len(X):.3f}",
            ]
        )
        checks.append(("china: K=65,536 within 60 s", seconds, seconds <= 60))
    return ["image", "K", "fit (s)", "passes", "MSE"], rows, checks


def vector_sets(quick):
    """The general vectors of issue 18: name -> (n, d) float64 array."""
    from sklearn.datasets import load_digits, load_sample_image

    gray = load_sample_image("china.jpg").mean(axis=2)
    h, w = (side - side % 4 for side in gray.shape)
    blocks = gray[:h, :w].reshape(h // 4, 4, w // 4, 4).swapaxes(1, 2).reshape(-1, 16)
    sets = {"digits (64-d)": load_digits().data, "4x4 blocks (16-d)": blocks}
    n = 20_000 if quick else 1_000_000
    rng = np.random.default_rng(0)
    for d in (2, 4):
        means = rng.uniform(0, 40, (50, d))
        sets[f"mixture {n:,} ({d}-d)"] = means[rng.integers(0, 50, n)] + rng.normal(
            size=(n, d)
        )
    return sets


def fit_timed(make, X):
    """``make().fit(X)`` and its seconds: the median of up to ten fits when
    one takes less than a fifth of a second (a few milliseconds: the noise
    of a shared machine is as large)."""
    start = time.perf_counter()
    model = make().fit(X)
    spent = [time.perf_counter() - start]
    for _ in range(min(9, int(0.2 / spent[0]))):
        start = time.perf_counter()
        make().fit(X)
        spent.append(time.perf_counter() - start)
    return model, statistics.median(spent)


def vectors(quick, rounds):
    from sklearn.cluster import KMeans

    from skvq import VectorQuantizer

    fits = {
        "KMeans": lambda k, r: KMeans(k, n_init=1, random_state=r),
        "skvq": lambda k, r: VectorQuantizer(k, random_state=r),
        "skvq hartigan": lambda k, r: VectorQuantizer(
            k, random_state=r, algorithm="hartigan"
        ),
    }
    rows, checks = [], []
    for name, X in vector_sets(quick).items():
        for k in (8, 64) if quick else (8, 64, 256):
            seconds = {fit: [] for fit in fits}
            inertia = {fit: [] for fit in fits}
            for seed in range(rounds):
                for fit, make in fits.items():
                    model, spent = fit_timed(functools.partial(make, k, seed), X)
                    seconds[fit].append(spent)
                    inertia[fit].append(model.inertia_)
            reference = statistics.median(seconds["KMeans"])
            for fit in fits:
                time_ratio = statistics.median(seconds[fit]) / reference
                ratios = np.array(inertia[fit]) / np.array(inertia["KMeans"])
                rows.append(
                    [
                        name,
                        k,
                        fit,
                        f"{statistics.median(seconds[fit]):.3f}",
                        f"{time_ratio:.2f}",
                        f"{ratios.max():.6f}",
                        f"{np.median(ratios):.4f}",
                    ]
                )
            for fit in ("skvq",):
                worst = max(np.array(inertia[fit]) / np.array(inertia["KMeans"]))
                ratio = statistics.median(seconds[fit]) / reference
                checks.append(
                    (
                        f"{name}, K={k}: {fit} inertia / KMeans <= 1, every seed",
                        worst,
                        worst <= 1 + 1e-12,
                    )
                )
                checks.append(
                    (f"{name}, K={k}: {fit} time / KMeans <= 1", ratio, ratio <= 1)
                )
    header = [
        "data",
        "K",
        "fit",
        "seconds (median)",
        "time / KMeans",
        "inertia / KMeans (worst seed)",
        "inertia / KMeans (median)",
    ]
    return header, rows, checks


def mse(X, codebook):
    from skvq._engine.kmeans import assign

    _, sq = assign(np.asarray(X, dtype=np.float64), codebook)
    return float(sq.mean())


def stream_of(make, chunks, X):
    """The MSE on ``X`` after ``partial_fit`` of each chunk, and the seconds."""
    model = make()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for chunk in chunks:
            model.partial_fit(chunk)
    seconds = time.perf_counter() - start
    codebook = getattr(model, "codebook_", None)
    if codebook is None:
        codebook = model.cluster_centers_
    return mse(X, codebook), seconds


def partial_fit(quick, rounds):
    from sklearn.cluster import MiniBatchKMeans

    from skvq import VectorQuantizer

    k = 16 if quick else 64
    n_chunks = 8
    image = photo("china", quick)
    u = image.reshape(-1, 3)
    forms = {
        "float64 [0, 1]": u / 255,
        "float32 [0, 1]": (u / np.float32(255)).astype(np.float32),
        "float64 0..255": u.astype(np.float64),
    }
    # 4x4 blocks of the gray photo: 16-d vectors, no levels.
    gray = image.mean(axis=2)[: image.shape[0] // 4 * 4, : image.shape[1] // 4 * 4]
    h, w = gray.shape
    blocks = gray.reshape(h // 4, 4, w // 4, 4).swapaxes(1, 2).reshape(-1, 16) + 0.5
    rows, checks = [], []
    rng = np.random.default_rng(0)
    for form, X in [*forms.items(), ("4x4 blocks (16-d)", blocks)]:
        full = VectorQuantizer(k, random_state=0).fit(X)
        reference = mse(X, full.codebook_)
        for order_name, chunks in [
            ("bands", np.array_split(X, n_chunks)),
            ("shuffled", np.array_split(X[rng.permutation(len(X))], n_chunks)),
        ]:
            ours, our_s = stream_of(
                lambda: VectorQuantizer(k, random_state=0), chunks, X
            )
            theirs, their_s = stream_of(
                lambda: MiniBatchKMeans(k, random_state=0, n_init="auto"), chunks, X
            )
            rows.append(
                [
                    form,
                    order_name,
                    f"{reference:.4g}",
                    f"{ours / reference:.4f}",
                    f"{theirs / reference:.4f}",
                    f"{our_s:.2f}",
                    f"{their_s:.2f}",
                ]
            )
            if form.startswith("4x4"):
                checks.append(
                    (
                        f"{form}, {order_name}: MSE <= MiniBatchKMeans's",
                        ours / theirs,
                        ours <= theirs * (1 + 1e-9),
                    )
                )
            else:
                checks.append(
                    (
                        f"{form}, {order_name}: MSE within 1 % of fit",
                        ours / reference,
                        ours <= 1.01 * reference,
                    )
                )
    header = [
        "data",
        "chunks",
        "fit MSE",
        "partial_fit / fit",
        "MiniBatchKMeans / fit",
        "partial_fit (s)",
        "MiniBatchKMeans (s)",
    ]
    return header, rows, checks


def collection(quick, rounds):
    import joblib
    from dask.distributed import Client, LocalCluster

    from skvq import VectorQuantizer
    from skvq._engine.kmeans import REPLAY_MAX_SAMPLES
    from skvq.batch import fit_codebook

    halves = []
    for name in ("china", "flower"):
        image = photo(name, quick)
        halves += [image[: image.shape[0] // 2], image[image.shape[0] // 2 :]]
    # A collection of more than REPLAY_MAX_SAMPLES pixels is fitted on its
    # histogram, a smaller one on its pixels read again in order.
    many = []
    while sum(image.size // 3 for image in many) <= REPLAY_MAX_SAMPLES and not quick:
        turn = len(many) // len(halves)
        many += [np.rot90(half, turn)[:: 1 - 2 * (turn % 2)] for half in halves]
    collections = {"4 photo halves": halves}
    if many:
        collections[f"{len(many)} turned photo halves"] = many
    k = 16 if quick else 256
    header = ["collection", "fit", "pixels", "seconds", "same codebook", "MSE"]
    rows, checks = [], []
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        for label, images in collections.items():
            concatenated = np.concatenate([image.reshape(-1, 3) for image in images])
            full_s, full = timed(
                functools.partial(VectorQuantizer(k, random_state=0).fit, concatenated),
                rounds,
            )
            of_images = functools.partial(fit_codebook, images, k, random_state=0)
            local_s, local = timed(of_images, rounds)
            with joblib.parallel_config(backend="dask"):
                dask_s, on_dask = timed(of_images, rounds)
            for fit, seconds, vq in [
                ("fit on the concatenated pixels", full_s, full),
                ("fit_codebook, local", local_s, local),
                ("fit_codebook, dask LocalCluster", dask_s, on_dask),
            ]:
                same = np.array_equal(vq.codebook_, full.codebook_)
                rows.append(
                    [
                        label,
                        fit,
                        f"{len(concatenated):,}",
                        f"{seconds:.2f}",
                        "reference" if vq is full else str(same),
                        f"{-vq.score(concatenated):.3f}",
                    ]
                )
            same = np.array_equal(on_dask.codebook_, full.codebook_)
            checks.append(
                (
                    f"{label}: dask collection fit (K={k}) equals fit on the "
                    "concatenation",
                    float(same),
                    same,
                )
            )
    return header, rows, checks


def big_worker(n_rows, which):
    """Fit one (N, 3) float32 array in this process; print time and memory."""
    import tracemalloc

    def rss_peak_and_now():
        with open("/proc/self/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        return (int(fields[key].split()[0]) * 1024 for key in ("VmHWM", "VmRSS"))

    from sklearn.cluster import KMeans

    from skvq import VectorQuantizer

    _, before = rss_peak_and_now()
    X = np.random.default_rng(0).random((n_rows, 3), dtype=np.float32)
    tracemalloc.start()
    start = time.perf_counter()
    if which == "skvq":
        model = VectorQuantizer(256, max_iter=3, random_state=0).fit(X)
    else:
        model = KMeans(256, n_init=1, max_iter=3, random_state=0).fit(X)
    seconds = time.perf_counter() - start
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak, _ = rss_peak_and_now()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "traced": traced,
                "rss": peak - before,
                "input": X.nbytes,
                "inertia": float(model.inertia_),
            }
        )
    )


def big(quick, rounds, row_counts):
    rows, checks = [], []
    for n_rows in row_counts:
        n_rows = min(n_rows, 200_000) if quick else n_rows
        results = {}
        for which in ("KMeans", "skvq"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--big-worker",
                    which,
                    "--rows",
                    str(n_rows),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results[which] = json.loads(out.strip().splitlines()[-1])
        for which, r in results.items():
            rows.append(
                [
                    which,
                    f"{n_rows:,}",
                    f"{r['seconds']:.1f}",
                    f"{r['traced'] / r['input']:.2f}",
                    f"{r['rss'] / r['input']:.2f}",
                    f"{r['inertia'] / n_rows:.6f}",
                ]
            )
        ours, theirs = results["skvq"], results["KMeans"]
        ratio = ours["seconds"] / theirs["seconds"]
        memory = 1 + ours["traced"] / ours["input"]
        inertia = ours["inertia"] / theirs["inertia"]
        checks += [
            (f"{n_rows:,} rows: time <= KMeans(n_init=1)'s", ratio, ratio <= 1),
            (
                f"{n_rows:,} rows: input + peak allocations <= 2 x input",
                memory,
                memory <= 2,
            ),
            (f"{n_rows:,} rows: inertia <= KMeans's", inertia, inertia <= 1),
        ]
    header = [
        "fit",
        "rows",
        "seconds",
        "peak traced / input",
        "peak RSS growth / input",
        "inertia / row",
    ]
    return header, rows, checks


SECTIONS = {
    "large-k": large_k,
    "vectors": vectors,
    "partial-fit": partial_fit,
    "collection": collection,
    "big": big,
}


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument(
        "--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS)
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[20_000_000],
        help="rows of the big array (several: one fit of each, for the trend)",
    )
    parser.add_argument(
        "--big-worker", choices=["skvq", "KMeans"], help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.big_worker:
        big_worker(args.rows[0], args.big_worker)
        return 0
    rounds = 1 if args.quick else args.rounds
    print(f"load average {os.getloadavg()[0]:.1f} at the start, {os.cpu_count()} CPUs")
    all_met = True
    for name in args.sections:
        function = SECTIONS[name]
        header, rows, checks = (
            function(args.quick, rounds, args.rows)
            if name == "big"
            else function(args.quick, rounds)
        )
        print(f"\n## {name} (load average {os.getloadavg()[0]:.1f})\n")
        print(table(header, rows))
        print()
        for label, value, met in checks:
            print(f"- [{'x' if met else ' '}] {label}: {value:.3f}")
            all_met = all_met and met
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
