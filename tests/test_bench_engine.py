"""Smoke tests of the engine's benchmarks (the full runs take minutes, by hand)."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_threads_benchmark_times_a_fit_in_a_worker_and_reports_ratios():
    bench = load("bench_threads")
    worker = bench.Worker("1 thread")
    try:
        seconds = worker.time("china-crop", 4)
    finally:
        worker.close()
    assert 0 < seconds < 60
    rows = [
        {"phase": phase, "image": "x", "k": 16, "config": config, "seconds": s}
        for phase, times in [("idle", (1.0, 2.0, 4.0)), ("busy", (3.0, 2.0, 9.0))]
        for config, s in zip(bench.CONFIGS, times, strict=True)
    ]
    table, checks, notes = bench.report(rows, {"idle": (1, 1), "busy": (3, 3)}, 2)
    assert "| idle | x | 16 | 1.000 | 2.000 | 4.000 | 0.50 | 2.00 | 0.25 |" in table
    assert "- [x] idle, x, K=16: threads <= 1.1 x spinning: 0.25" in checks
    assert "- [x] busy, x, K=16: threads <= 1.5 x 1 thread: 1.50" in checks
    assert any("2 busy processes" in note for note in notes)


@pytest.mark.parametrize("ratio, ok", [(1.49, "x"), (1.51, " ")])
def test_threads_benchmark_flags_a_missed_target(ratio, ok):
    bench = load("bench_threads")
    rows = [
        {"phase": "busy", "image": "x", "k": 4, "config": config, "seconds": s}
        for config, s in zip(bench.CONFIGS, (ratio, 1.0, 5.0), strict=True)
    ]
    _, checks, _ = bench.report(rows, {"busy": (0, 0)}, 2)
    assert checks == [f"- [{ok}] busy, x, K=4: threads <= 1.5 x 1 thread: {ratio:.2f}"]


@pytest.mark.parametrize("which", ["skvq", "KMeans"])
def test_engine_benchmark_measures_a_big_fit(capsys, which):
    bench = load("bench_engine")
    bench.big_worker(3000, which)
    measured = json.loads(capsys.readouterr().out)
    assert measured["input"] == 3000 * 3 * 4
    assert 0 < measured["seconds"] < 60
    # The fit allocates at least its float64 copy of the data.
    assert measured["traced"] >= 2 * measured["input"]
    assert 0 < measured["inertia"] / 3000 < 3 / 12


def test_engine_benchmark_tables():
    bench = load("bench_engine")
    rows = [["china", "4,096", "1.00"]]
    assert bench.table(["image", "K", "s"], rows).splitlines() == [
        "| image | K | s |",
        "|---|---|---|",
        "| china | 4,096 | 1.00 |",
    ]
