"""Smoke test of the benchmark script: it runs and prints its table."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "bench_quantization.py"


def test_quick_benchmark_prints_the_table_and_writes_json(tmp_path):
    pytest.importorskip("matplotlib")
    results, plot = tmp_path / "results.json", tmp_path / "plot.png"
    args = [sys.executable, str(SCRIPT), "--quick", "--json", str(results)]
    done = subprocess.run(
        [*args, "--plot", str(plot)], capture_output=True, text=True, check=True
    )
    assert "| image | MP | K | method | seconds | PSNR (dB) |" in done.stdout
    assert "| china-crop | 0.01 | 16 | skvq |" in done.stdout
    assert "K=16: PSNR >= textbook" in done.stdout
    rows = json.loads(results.read_text())["rows"]
    assert {row["method"] for row in rows} >= {"skvq", "textbook", "pillow-mediancut"}
    assert all(row["psnr"] > 20 for row in rows if row["method"] == "skvq")
    assert plot.stat().st_size > 0


@pytest.mark.parametrize("single_run_seconds, expected_runs", [(1e9, 3), (0.0, 1)])
def test_a_long_first_run_is_not_repeated(
    monkeypatch, single_run_seconds, expected_runs
):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_quantization", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    calls = []

    def runner(image, k):
        calls.append(k)
        return image + 1

    monkeypatch.setitem(bench.RUNNERS, "skvq", runner)
    monkeypatch.setattr(bench, "SINGLE_RUN_SECONDS", single_run_seconds)
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    row = bench.measure("skvq", image, 16, repeats=3)
    assert len(calls) == expected_runs
    assert row["psnr"] == pytest.approx(10 * np.log10(255.0**2))


def test_quality_benchmark_parts_run_and_check_their_targets(china):
    """Smoke test of benchmarks/bench_quality.py on a crop: each part's rows,
    the tables and the summary of the targets."""
    import importlib.util

    path = SCRIPT.parent / "bench_quality.py"
    spec = importlib.util.spec_from_file_location("bench_quality", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    image = np.ascontiguousarray(china[100:124, 200:232])
    results = {
        "parity": bench.parity("crop", image, [4]),
        "quality": [],
        "psnr": bench.psnr_targets("crop", image, [25.0]),
        "size": bench.size_targets("crop", image, [0.5]),
    }
    (psnr_row,) = results["psnr"]
    assert psnr_row["psnr"] >= 25.0
    assert psnr_row["k"] <= 1.05 * psnr_row["reference_k"]
    (size_row,) = results["size"]
    assert size_row["n_bytes"] <= size_row["budget"] == int(0.5 * image.size)
    for part in ("parity", "psnr", "size"):
        assert "| crop |" in bench.table(results[part], bench.COLUMNS[part])
    assert "psnr targets: reached 1/1" in bench.summary(results)
