"""Smoke test of the dithering benchmark: it runs, prints its table and targets."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "bench_dither.py"


def test_quick_benchmark_prints_the_table_and_the_targets(tmp_path):
    pytest.importorskip("ssimulacra2")
    pytest.importorskip("imagequant")
    pytest.importorskip("matplotlib")
    results, plot = tmp_path / "rows.json", tmp_path / "plot.png"
    args = ["--quick", "--json", str(results), "--plot", str(plot)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "| set | K | method | SSIMULACRA2 | PSNR (dB) | mean ΔE2000 |" in done.stdout
    assert "| photos | 16 | skvq-adaptive |" in done.stdout
    assert "gradients K=16: SSIMULACRA2 >= imagequant-1" in done.stdout
    rows = json.loads(results.read_text())["rows"]
    assert {row["method"] for row in rows} >= {"skvq-adaptive", "imagequant-1"}
    adaptive = [row for row in rows if row["method"] == "skvq-adaptive"]
    assert all(row["vq_bytes"] > 0 and row["seconds"] > 0 for row in adaptive)
    assert plot.stat().st_size > 0


def test_specks_are_lone_far_pixels_in_flat_areas():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_dither", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    flat = np.full((12, 12, 3), 60, np.uint8)
    dusty = flat.copy()
    dusty[3, 3] = dusty[8, 7] = 250  # two lone white pixels
    dusty[0:2, 10:12] = 250  # a 2 x 2 block is not a speck
    assert bench.count_specks(flat, dusty) == 2
    textured = np.random.default_rng(0).integers(0, 256, (12, 12, 3), np.uint8)
    assert bench.count_specks(textured, dusty) == 0  # no flat area there
    assert bench.count_specks(flat, flat) == 0
