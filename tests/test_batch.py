import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skvq.batch import (
    FileResult,
    decode_files,
    encode_files,
    expand_inputs,
    plan_outputs,
)


@pytest.fixture
def crops(tmp_path, china):
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for i in range(4):
        path = folder / f"tile{i}.png"
        Image.fromarray(china[100 * i : 100 * i + 32, 50:90]).save(path)
        paths.append(path)
    return paths


def _check_encoded(results, k):
    assert all(result.ok for result in results), results
    for result in results:
        with Image.open(result.target) as image:
            assert image.format == "VQ"
            assert len(image.convert("RGB").getcolors()) <= k


def test_encode_and_decode_files(tmp_path, crops):
    pairs = plan_outputs(crops, tmp_path, ".vq")
    results = encode_files(pairs, k=4, random_state=0, n_jobs=2)
    assert sorted(r.source for r in results) == sorted(map(str, crops))
    _check_encoded(results, 4)
    back = decode_files(plan_outputs([r.target for r in results], tmp_path, ".png"))
    assert all(r.ok for r in back)
    for result in back:
        with Image.open(result.target) as png, Image.open(result.source) as vq:
            np.testing.assert_array_equal(
                np.asarray(png.convert("RGB")), np.asarray(vq.convert("RGB"))
            )


def test_a_failing_file_is_reported_not_raised(tmp_path, crops):
    missing = tmp_path / "missing.png"
    pairs = plan_outputs([crops[0], missing], tmp_path / "out", ".vq")
    (tmp_path / "out").mkdir()
    seen = []
    results = encode_files(pairs, k=2, progress=seen.append)
    assert seen == results
    by_source = {r.source: r for r in results}
    assert by_source[str(crops[0])].ok
    assert by_source[str(missing)] == FileResult(
        str(missing),
        str(tmp_path / "out" / "missing.vq"),
        f"no such file or directory: {missing}",
    )


def test_existing_targets_are_not_overwritten(tmp_path, crops):
    target = tmp_path / "tile0.vq"
    target.write_bytes(b"keep me")
    (result,) = encode_files([(crops[0], target)], k=2)
    assert not result.ok
    assert result.error == f"{target} already exists (use --force to overwrite)"
    assert target.read_bytes() == b"keep me"
    (result,) = encode_files([(crops[0], target)], k=2, overwrite=True)
    assert result.ok and target.read_bytes() != b"keep me"


def test_bad_options_fail_before_any_file(tmp_path, crops, monkeypatch):
    from skvq import batch

    monkeypatch.setattr(batch, "_run", None)  # no file may be touched
    pairs = plan_outputs(crops, tmp_path, ".vq")
    with pytest.raises(ValueError, match="Unknown VQ save option 'n_clusters'"):
        encode_files(pairs, n_clusters=4)
    with pytest.raises(ValueError, match="color_space must be one of"):
        encode_files(pairs, color_space="hsv")
    with pytest.raises(ValueError, match="k must be an integer"):
        encode_files(pairs, k=0)
    assert not list(tmp_path.glob("*.vq"))


def test_encode_options_reach_every_file(tmp_path, crops):
    from skvq import quantize_image

    pairs = plan_outputs(crops, tmp_path, ".vq")
    results = encode_files(pairs, k=4, color_space="oklab", random_state=0)
    for result in results:
        expected = quantize_image(result.source, 4, color_space="oklab", random_state=0)
        with Image.open(result.target) as image:
            np.testing.assert_array_equal(np.asarray(image), expected.codes)


# The CLI's encode options go through the batch runner.


def test_cli_color_space_and_dither(tmp_path, crops, monkeypatch):
    from skvq import batch, quantize_image
    from skvq.cli import EXIT_OK, main

    target = tmp_path / "one.vq"
    argv = ["encode", str(crops[0]), str(target), "-k", "4", "--color-space", "oklab"]
    assert main(argv) == EXIT_OK
    expected = quantize_image(crops[0], 4, color_space="oklab", random_state=0)
    with Image.open(target) as image:
        np.testing.assert_array_equal(np.asarray(image), expected.codes)
    seen = []
    monkeypatch.setattr(batch, "encode_files", lambda *a, **kw: seen.append(kw) or [])
    main(["encode", str(crops[0]), str(target), "-f"])
    assert seen[0]["dither"] is False  # the default: no dithering
    assert seen[0]["color_space"] == "rgb"


def test_cli_dither_flag_and_method(tmp_path, crops, monkeypatch):
    from skvq import batch, encoder
    from skvq.cli import EXIT_USAGE, main

    def resolve(dither):
        if dither is True or dither == "fancy":
            return "fancy"
        raise ValueError(f"dither must be True, False or 'fancy', got {dither!r}.")

    monkeypatch.setattr(encoder, "dither_method", resolve)
    seen = []
    monkeypatch.setattr(batch, "encode_files", lambda *a, **kw: seen.append(kw) or [])
    target = str(tmp_path / "one.vq")
    main(["encode", str(crops[0]), target, "--dither"])
    main(["encode", str(crops[0]), target, "--dither", "fancy"])
    main(["encode", str(crops[0]), target, "--dither=fancy"])
    # The bare flag means the best method, which the encoder resolves.
    assert [kw["dither"] for kw in seen] == [True, "fancy", "fancy"]
    with pytest.raises(SystemExit) as raised:
        main(["encode", "--dither", str(crops[0]), target])
    assert raised.value.code == EXIT_USAGE


def test_cli_help_describes_the_new_options(capsys):
    from skvq.cli import main

    with pytest.raises(SystemExit):
        main(["encode", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--dither [METHOD]" in help_text
    assert "--color-space {rgb,oklab}" in help_text


def test_expand_inputs(tmp_path, crops):
    folder = crops[0].parent
    (folder / "readme.txt").write_text("skipped: not an image extension")
    assert expand_inputs([folder]) == [str(p) for p in crops]
    assert expand_inputs([str(folder / "tile[12].png")]) == [
        str(crops[1]),
        str(crops[2]),
    ]
    assert expand_inputs([crops[0], folder]) == [str(p) for p in crops]
    with pytest.raises(ValueError, match="no image files found"):
        expand_inputs([str(folder / "*.jpg")])


def test_plan_outputs_refuses_collisions(tmp_path):
    with pytest.raises(ValueError, match="would both be written to"):
        plan_outputs(["a/x.png", "b/x.jpg"], tmp_path, ".vq")


def test_batch_on_a_dask_local_cluster(tmp_path, crops, joblib_on_dask):
    cluster = dict(n_workers=2, threads_per_worker=1, processes=True)
    with joblib_on_dask(**cluster) as (client, tasks):
        results = encode_files(
            plan_outputs(crops, tmp_path, ".vq"), k=4, random_state=0
        )
        cluster_workers = set(client.scheduler_info()["workers"])
    # The files were encoded by tasks on the cluster's workers.
    workers = {task["worker"] for task in tasks.data}
    assert workers and workers <= cluster_workers
    _check_encoded(results, 4)
    (tmp_path / "local").mkdir()
    local = encode_files(
        plan_outputs(crops, tmp_path / "local", ".vq"), k=4, random_state=0
    )
    assert len(local) == len(results) == len(crops)
    for result in results:  # deterministic wherever it runs
        twin = tmp_path / "local" / os.path.basename(result.target)
        assert twin.read_bytes() == Path(result.target).read_bytes()


def test_batch_benchmark_runs(tmp_path):
    script = Path(__file__).parents[1] / "benchmarks" / "bench_batch.py"
    result = subprocess.run(
        [sys.executable, script, "--quick", "--workers", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    header, _, row = result.stdout.strip().splitlines()[-3:]
    assert header.startswith("| backend | workers | seconds | images/s")
    backend, workers, seconds, per_second, _ = row.strip("| ").split(" | ")
    assert (backend, workers) == ("joblib (loky)", "1")
    assert float(seconds) > 0 and float(per_second) > 0
