"""Quality controls (issue 19) side by side with scikit-learn's KMeans, in one run.

Four checks on the sample photos, each printed as a markdown table with the
issue's target checked::

    python benchmarks/bench_quality.py                      # full run
    python benchmarks/bench_quality.py --quick              # a smoke test
    python benchmarks/bench_quality.py --images china --parts parity quality

- ``parity``: the default fit (``VectorQuantizer(K, random_state=s)``) against
  ``KMeans(K, n_init="auto", random_state=s)`` on all pixels, for the seeds
  ``SEEDS`` (42 first); PSNR from the inertia of the unrounded centroids.
  Target: skvq >= KMeans - 0.02 dB on every photo at K = 16, 64, 256 (the
  seed 42 pair and the median of the paired differences are both shown).
- ``quality``: ``algorithm="breathing"`` against ``KMeans(n_init=10)``, one
  seed. Target: median PSNR >= KMeans's, at <= 1/4 of its time.
- ``psnr``: :func:`skvq.choose_n_clusters` for PSNR targets, against the
  smallest K whose fit from scratch (``quantize_image(image, K)``, the same
  stored-image PSNR) reaches the target. That reference is found by
  bisection (PSNR is near-monotone in K) and then checked by a scan of the
  ``SCAN_POINTS`` sizes evenly spread over the 5 % below it, where a fit
  reaching the target by luck would lower the reference. Targets: always
  reached; K within 5 % of the reference; search time <= 3x one fit (a
  ``quantize_image``) at the chosen K.
- ``size``: ``max_bytes`` budgets of 2, 5 and 10 % of the raw RGB size.
  Targets: the file never exceeds the budget, and is >= 90 % of it.

Times are wall-clock seconds (``time.perf_counter``), one run each (the
psnr part: the median of ``--repeats`` runs of the search and of the fit,
taking turns): the machine is shared, so compare the ratios in one run.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_quantization import load_image

K_VALUES = (16, 64, 256)
PHOTOS = ("china", "flower", "astronaut", "coffee", "chelsea", "hubble_deep_field")
SEEDS = (42, 0, 1)
PSNR_TARGETS = (30.0, 35.0, 38.0)
BUDGETS = (0.02, 0.05, 0.10)  # of the raw RGB size
SCAN_POINTS = 4
PARTS = ("parity", "quality", "psnr", "size")


def psnr_of(inertia, pixels):
    return 10 * math.log10(255.0**2 * pixels.size / inertia)


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def fit_skvq(pixels, k, seed, algorithm="lloyd"):
    from skvq import VectorQuantizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vq, seconds = timed(
            lambda: VectorQuantizer(k, random_state=seed, algorithm=algorithm).fit(
                pixels
            )
        )
    return psnr_of(vq.inertia_, pixels), seconds


def fit_kmeans(pixels, k, seed, n_init):
    from sklearn.cluster import KMeans

    X = pixels.astype(np.float64)
    km, seconds = timed(lambda: KMeans(k, n_init=n_init, random_state=seed).fit(X))
    return psnr_of(km.inertia_, pixels), seconds


def parity(name, image, ks):
    pixels = image.reshape(-1, 3)
    rows = []
    for k in ks:
        ours = [fit_skvq(pixels, k, s)[0] for s in SEEDS]
        theirs = [fit_kmeans(pixels, k, s, "auto")[0] for s in SEEDS]
        gaps = [a - b for a, b in zip(ours, theirs, strict=True)]
        rows.append(
            dict(
                image=name,
                k=k,
                skvq_42=ours[0],
                kmeans_42=theirs[0],
                gap_42=gaps[0],
                median_gap=statistics.median(gaps),
                met=gaps[0] >= -0.02 and statistics.median(gaps) >= -0.02,
            )
        )
    return rows


def quality(name, image, ks):
    pixels = image.reshape(-1, 3)
    rows = []
    for k in ks:
        lloyd, lloyd_s = fit_skvq(pixels, k, 0)
        breathing, breathing_s = fit_skvq(pixels, k, 0, "breathing")
        kmeans, kmeans_s = fit_kmeans(pixels, k, 0, 10)
        rows.append(
            dict(
                image=name,
                k=k,
                lloyd=lloyd,
                breathing=breathing,
                kmeans10=kmeans,
                gain=breathing - kmeans,
                lloyd_s=lloyd_s,
                breathing_s=breathing_s,
                kmeans10_s=kmeans_s,
                time_ratio=breathing_s / kmeans_s,
            )
        )
    return rows


def stored_psnr(image, k):
    import skvq

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return skvq.quantize_image(image, k, random_state=0).psnr


def smallest_k(image, target, guess):
    """The smallest K whose fit from scratch reaches ``target`` (see above)."""
    cache = {}

    def reaches(k):
        if k not in cache:
            cache[k] = stored_psnr(image, k) >= target
        return cache[k]

    low, high = 0, max(2, guess)  # reaches(low) is False by convention
    while not reaches(high):
        low, high = high, high * 2
    low = max(low, high // 2) if low else 0
    while high - low > 1:
        mid = (low + high) // 2
        if reaches(mid):
            high = mid
        else:
            low = mid
    scan = np.unique(np.linspace(0.95 * high, high - 1, SCAN_POINTS).round())
    lucky = [int(k) for k in scan if 1 <= k < high and reaches(int(k))]
    return (min(lucky) if lucky else high), len(cache)


def psnr_targets(name, image, targets, repeats=1):
    import skvq

    rows = []
    for target in targets:
        # The search and one fit take turns; the medians are compared.
        search_times, fit_times = [], []
        for _ in range(repeats):
            choice, seconds = timed(
                skvq.choose_n_clusters, image, psnr=target, random_state=0
            )
            search_times.append(seconds)
            fit_times.append(timed(stored_psnr, image, choice.n_clusters)[1])
        search_s = statistics.median(search_times)
        fit_s = statistics.median(fit_times)
        reference, n_fits = smallest_k(image, target, choice.n_clusters)
        rows.append(
            dict(
                image=name,
                target=target,
                k=choice.n_clusters,
                psnr=choice.psnr,
                reference_k=reference,
                reference_fits=n_fits,
                k_ratio=choice.n_clusters / reference,
                trials=len(choice.trials),
                search_s=search_s,
                fit_s=fit_s,
                time_ratio=search_s / fit_s,
                met=(
                    choice.psnr >= target
                    and choice.n_clusters <= 1.05 * reference
                    and search_s <= 3 * fit_s
                ),
            )
        )
    return rows


def file_size(image, k):
    import io

    from PIL import Image

    import skvq  # noqa: F401 (registers the format)

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Image.fromarray(image).save(buffer, format="VQ", k=k, random_state=0)
    return buffer.tell()


def size_targets(name, image, budgets):
    import skvq

    rows = []
    for fraction in budgets:
        budget = int(fraction * image.size)
        choice, search_s = timed(
            skvq.choose_n_clusters, image, max_bytes=budget, random_state=0
        )
        # One color more, from scratch: if its file does not fit either, no
        # file of this image lies between the choice and the budget.
        next_bytes = file_size(image, choice.n_clusters + 1)
        rows.append(
            dict(
                image=name,
                budget=budget,
                k=choice.n_clusters,
                n_bytes=choice.n_bytes,
                fill=choice.n_bytes / budget,
                psnr=choice.psnr,
                trials=len(choice.trials),
                next_bytes=next_bytes,
                search_s=search_s,
                met=choice.n_bytes <= budget
                and (choice.n_bytes >= 0.9 * budget or next_bytes > budget),
            )
        )
    return rows


def table(rows, columns):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, "")
            if isinstance(value, float):
                value = f"{value:.3f}" if abs(value) < 100 else f"{value:,.0f}"
            cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _unreachable(row):
    """No file lies within 10 % of the budget: K + 1 does not fit either."""
    return row.get("next_bytes", 0) > row["budget"] > row["n_bytes"] / 0.9


def _median(rows, column):
    return statistics.median(row[column] for row in rows)


def summary(results):
    out = []
    if results["parity"]:
        rows = results["parity"]
        worst = min(min(r["gap_42"], r["median_gap"]) for r in rows)
        out.append(
            f"parity: worst gap {worst:+.3f} dB; target >= -0.02 dB on every "
            f"photo and K: {'met' if all(r['met'] for r in rows) else 'NOT met'}"
        )
        for k in sorted({r["k"] for r in rows}):
            at_k = [r for r in rows if r["k"] == k]
            out.append(
                f"  K={k}: seed-42 gap >= -0.02 dB on "
                f"{sum(r['gap_42'] >= -0.02 for r in at_k)}/{len(at_k)} photos, "
                f"median paired gap >= -0.02 dB on "
                f"{sum(r['median_gap'] >= -0.02 for r in at_k)}/{len(at_k)}; median "
                f"of the paired medians {_median(at_k, 'median_gap'):+.3f} dB"
            )
    if results["quality"]:
        for k in sorted({r["k"] for r in results["quality"]}):
            rows = [r for r in results["quality"] if r["k"] == k]
            gain = statistics.median(r["gain"] for r in rows)
            ratio = statistics.median(r["time_ratio"] for r in rows)
            out.append(
                f"quality K={k}: median PSNR gain over KMeans(n_init=10) "
                f"{gain:+.3f} dB, median time ratio {ratio:.3f} "
                f"({'met' if gain >= 0 and ratio <= 0.25 else 'NOT met'})"
            )
    if results["psnr"]:
        rows = results["psnr"]
        out.append(
            "psnr targets: reached "
            f"{sum(r['psnr'] >= r['target'] for r in rows)}/{len(rows)}, K within 5 % "
            f"{sum(r['k'] <= 1.05 * r['reference_k'] for r in rows)}/{len(rows)}, "
            f"search <= 3 fits {sum(r['time_ratio'] <= 3 for r in rows)}/{len(rows)}"
            f"; median K ratio {statistics.median(r['k_ratio'] for r in rows):.3f},"
            f" median time ratio {statistics.median(r['time_ratio'] for r in rows):.2f}"
        )
    if results["size"]:
        rows = results["size"]
        out.append(
            "max_bytes: within budget "
            f"{sum(r['n_bytes'] <= r['budget'] for r in rows)}/{len(rows)}, >= 90 % "
            f"{sum(r['fill'] >= 0.9 for r in rows)}/{len(rows)} (unreachable: "
            f"{sum(_unreachable(r) for r in rows)}"
            "); median fill "
            f"{statistics.median(r['fill'] for r in rows):.3f}"
        )
    return "\n".join(out)


COLUMNS = {
    "parity": ["image", "k", "skvq_42", "kmeans_42", "gap_42", "median_gap", "met"],
    "quality": [
        "image",
        "k",
        "lloyd",
        "breathing",
        "kmeans10",
        "gain",
        "lloyd_s",
        "breathing_s",
        "kmeans10_s",
        "time_ratio",
    ],
    "psnr": [
        "image",
        "target",
        "k",
        "psnr",
        "reference_k",
        "k_ratio",
        "trials",
        "search_s",
        "fit_s",
        "time_ratio",
        "met",
    ],
    "size": [
        "image",
        "budget",
        "k",
        "n_bytes",
        "fill",
        "psnr",
        "trials",
        "next_bytes",
        "search_s",
        "met",
    ],
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a crop, K=16 only")
    parser.add_argument("--images", nargs="+", default=PHOTOS)
    parser.add_argument("--k", nargs="+", type=int, default=K_VALUES)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS)
    parser.add_argument("--json", type=Path, help="append each row as JSON lines")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="psnr part: time the search and the fit this many times, in turns "
        "(medians)",
    )
    parser.add_argument(
        "--tables", type=Path, help="print the tables of a --json file, run nothing"
    )
    args = parser.parse_args(argv)
    if args.tables:
        rows = [json.loads(line) for line in args.tables.read_text().splitlines()]
        results = {p: [r for r in rows if r["part"] == p] for p in PARTS}
        for part in PARTS:
            if results[part]:
                print(f"\n### {part}\n\n{table(results[part], COLUMNS[part])}")
        print("\n" + summary(results))
        return
    images, ks, targets, budgets = args.images, args.k, PSNR_TARGETS, BUDGETS
    if args.quick:
        images, ks, targets, budgets = ["china-crop"], [16], [30.0], [0.1]
    # Imports and caches warm: a first run of each, untimed.
    crop = np.ascontiguousarray(load_image("china-crop"))
    parity("warm-up", crop, [16])
    psnr_targets("warm-up", crop[:40, :40], [25.0])
    results = {part: [] for part in PARTS}
    run = {"parity": parity, "quality": quality}
    for name in images:
        image = np.ascontiguousarray(load_image(name))
        for part in args.parts:
            if part in run:
                rows = run[part](name, image, ks)
            elif part == "psnr":
                rows = psnr_targets(name, image, targets, args.repeats)
            else:
                rows = size_targets(name, image, budgets)
            results[part] += rows
            for row in rows:
                print(json.dumps({"part": part, **row}), file=sys.stderr, flush=True)
                if args.json:
                    with args.json.open("a") as out:
                        out.write(json.dumps({"part": part, **row}) + "\n")
    for part in args.parts:
        print(f"\n### {part}\n\n{table(results[part], COLUMNS[part])}")
    print("\n" + summary(results))


if __name__ == "__main__":
    main()
