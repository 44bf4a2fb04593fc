"""Smoke test of the benchmark script: it runs and prints its table."""

import json
import subprocess
import sys
from pathlib import Path

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
