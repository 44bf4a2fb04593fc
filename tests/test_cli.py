import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import skvq  # registers the .vq format
from skvq.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main


def run_cli(*args, cwd=None, timeout=120):
    """``python -m skvq ARGS`` in a subprocess, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "skvq", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def photo_png(tmp_path, small_photo):
    path = tmp_path / "photo.png"
    Image.fromarray(small_photo).save(path)
    return path


@pytest.fixture
def image_dir(tmp_path, china):
    folder = tmp_path / "images"
    folder.mkdir()
    for i, (top, left) in enumerate([(0, 0), (100, 200), (300, 500)]):
        crop = china[top : top + 48, left : left + 64]
        Image.fromarray(crop).save(folder / f"crop{i}.png")
    (folder / "notes.txt").write_text("not an image, and not picked up")
    return folder


def leftovers(folder):
    return [p.name for p in Path(folder).rglob("*.tmp")]


@pytest.mark.parametrize("command", [[], ["encode"], ["decode"], ["info"], ["demo"]])
def test_help_for_every_command(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: skvq")
    assert result.stderr == ""


def test_version_is_the_installed_distribution_version():
    from importlib.metadata import version

    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["skvq", version("skvq")]
    assert version("skvq") == skvq.__version__


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "skvq"
    if not script.exists():
        pytest.skip("skvq is not installed as a console script in this environment")
    result = subprocess.run(
        [script, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "encode" in result.stdout


def test_usage_error_exit_code(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["encode"])
    assert exit_info.value.code == EXIT_USAGE
    assert "the following arguments are required" in capsys.readouterr().err


def test_encode_then_decode_a_single_file(tmp_path, photo_png, small_photo):
    target = tmp_path / "photo.vq"
    result = run_cli("encode", photo_png, target, "-k", "8")
    assert result.returncode == EXIT_OK, result.stderr
    with Image.open(target) as image:
        assert image.format == "VQ"
        assert image.size == (60, 40)
        assert len(image.convert("RGB").getcolors()) <= 8
        expected = np.asarray(image.convert("RGB"))
    decoded = tmp_path / "decoded.png"
    result = run_cli("decode", target, decoded)
    assert result.returncode == EXIT_OK, result.stderr
    with Image.open(decoded) as png:
        np.testing.assert_array_equal(np.asarray(png.convert("RGB")), expected)
    assert leftovers(tmp_path) == []


def test_existing_output_is_kept_without_force(tmp_path, photo_png, capsys):
    target = tmp_path / "photo.vq"
    target.write_bytes(b"precious")
    assert main(["encode", str(photo_png), str(target), "-k", "4"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 2  # the file's line and the summary
    assert "already exists (use --force to overwrite)" in err
    assert "Traceback" not in err
    assert target.read_bytes() == b"precious"
    assert main(["encode", str(photo_png), str(target), "-k", "4", "-f"]) == EXIT_OK
    with Image.open(target) as image:
        assert image.format == "VQ"
    assert leftovers(tmp_path) == []


def test_batch_goes_on_past_a_bad_file(tmp_path, image_dir, capsys):
    bad = image_dir / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    out = tmp_path / "out"
    status = main(["encode", str(image_dir), "-o", str(out), "-k", "4", "-j", "2"])
    assert status == EXIT_FAILED
    err = capsys.readouterr().err
    assert f"skvq: error: {bad}:" in err
    assert "3 of 4 files encoded, 1 failed" in err
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["crop0.vq", "crop1.vq", "crop2.vq"]
    for path in out.iterdir():
        with Image.open(path) as image:
            image.load()
    assert leftovers(tmp_path) == []


def test_batch_rerun_skips_existing_outputs_unless_forced(tmp_path, image_dir):
    out = tmp_path / "out"
    assert main(["encode", str(image_dir / "crop0.png"), "-o", str(out)]) == EXIT_OK
    first = (out / "crop0.vq").read_bytes()
    (out / "crop0.vq").write_bytes(b"kept")
    result = run_cli("encode", image_dir, "-o", out, "-k", "4")
    assert result.returncode == EXIT_OK, result.stderr
    assert result.stderr.strip() == (
        "skvq: 2 files encoded, 1 skipped (their output exists; --force overwrites)"
    )
    assert (out / "crop0.vq").read_bytes() == b"kept"
    assert main(["encode", str(image_dir), "-o", str(out), "--force"]) == EXIT_OK
    assert (out / "crop0.vq").read_bytes() == first


def test_batch_with_glob_and_quiet_when_not_a_tty(tmp_path, image_dir):
    out = tmp_path / "out"
    result = run_cli("encode", image_dir / "crop[01].png", "-o", out, "-k", "4")
    assert result.returncode == EXIT_OK, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["crop0.vq", "crop1.vq"]
    assert "%|" not in result.stderr  # no progress bar into a pipe
    assert result.stderr.strip() == "skvq: 2 files encoded"


def test_progress_bar_on_a_terminal(tmp_path, image_dir, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    status = main(["encode", str(image_dir), "-o", str(tmp_path / "out"), "-k", "2"])
    assert status == EXIT_OK
    err = capsys.readouterr().err
    assert "encoding" in err and "3/3" in err


def test_verbose_encode_reports_its_stages(tmp_path, photo_png, capsys):
    target = tmp_path / "out.vq"
    assert main(["encode", "-v", str(photo_png), str(target), "-k", "4"]) == EXIT_OK
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("skvq:") and f"read {photo_png}" in lines[0]
    assert any("seeding 1 of 1 (k-means++): 4 centroids" in line for line in lines)
    assert any("fixed point after" in line for line in lines)
    assert lines[-1].endswith(f"wrote {target}: {target.stat().st_size:,} bytes")


def test_one_file_reports_progress_on_a_terminal_only_when_slow(
    tmp_path, photo_png, capsys, monkeypatch
):
    import skvq.cli

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    target = tmp_path / "out.vq"
    monkeypatch.setattr(skvq.cli, "_QUIET_SECONDS", 1e6)
    assert main(["encode", str(photo_png), str(target), "-k", "4"]) == EXIT_OK
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(skvq.cli, "_QUIET_SECONDS", 0.0)
    assert main(["encode", "-f", str(photo_png), str(target), "-k", "4"]) == EXIT_OK
    err = capsys.readouterr().err
    assert "seeding" in err and "wrote" in err


def test_no_progress_lines_into_a_pipe(tmp_path, photo_png):
    result = run_cli("encode", photo_png, tmp_path / "out.vq", "-k", "4")
    assert result.returncode == EXIT_OK
    assert result.stderr == ""


def test_batch_refuses_two_inputs_for_one_output(tmp_path, china, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(china[:8, :8]).save(folder / "a.png")
    Image.fromarray(china[:8, :8]).save(folder / "a.bmp")
    status = main(["encode", str(folder), "-o", str(tmp_path / "out")])
    assert status == EXIT_FAILED
    assert "would both be written to" in capsys.readouterr().err


def test_missing_input_is_one_line(tmp_path, capsys):
    status = main(["encode", str(tmp_path / "nope.png"), str(tmp_path / "x.vq")])
    assert status == EXIT_FAILED
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err
    assert not (tmp_path / "x.vq").exists()


def test_interrupted_write_leaves_nothing_behind(tmp_path, photo_png, monkeypatch):
    target = tmp_path / "photo.vq"
    target.write_bytes(b"original")
    real_save = Image.Image.save

    def save_then_interrupt(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)  # bytes written to the temporary
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", save_then_interrupt)
    status = main(["encode", str(photo_png), str(target), "-k", "4", "--force"])
    assert status == EXIT_INTERRUPTED
    assert target.read_bytes() == b"original"
    assert leftovers(tmp_path) == []


def test_sigint_during_a_parallel_batch(tmp_path, china):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(12):
        crop = np.roll(china, 37 * i, axis=1)[:, :320]
        Image.fromarray(crop).save(folder / f"{i:02}.png")
    out = tmp_path / "out"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skvq",
            "encode",
            folder,
            "-o",
            out,
            "-k",
            "64",
            "-j",
            "2",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (out.exists() and any(out.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    if process.returncode == EXIT_OK:
        pytest.skip("the batch finished before the interrupt arrived")
    assert process.returncode == EXIT_INTERRUPTED, err
    assert "skvq: interrupted" in err
    assert leftovers(tmp_path) == []
    for path in out.iterdir():  # whatever was written is complete
        with Image.open(path) as image:
            image.load()
    # Re-running without --force keeps the finished files and writes the rest.
    finished = {path.name: path.read_bytes() for path in out.iterdir()}
    result = run_cli("encode", folder, "-o", out, "-k", "4")
    assert result.returncode == EXIT_OK, result.stderr
    assert f"{12 - len(finished)} files encoded" in result.stderr
    if finished:
        assert f"{len(finished)} skipped (their output exists" in result.stderr
    assert len(list(out.iterdir())) == 12
    for name, data in finished.items():
        assert (out / name).read_bytes() == data


def test_info(tmp_path, photo_png):
    target = tmp_path / "photo.vq"
    assert main(["encode", str(photo_png), str(target), "-k", "16"]) == EXIT_OK
    result = run_cli("info", target)
    assert result.returncode == EXIT_OK, result.stderr
    size = os.path.getsize(target)
    assert "60 x 40 RGB" in result.stdout
    assert "K = 16" in result.stdout
    assert f"{size:,} bytes" in result.stdout
    assert f"{size * 8 / 2400:.3f} stored" in result.stdout
    assert "4 = ceil(log2 K)" in result.stdout
    assert "Compressed size" in result.stdout and "9,984 bits" in result.stdout


def test_info_of_a_palette_source_counts_the_palette_channels(tmp_path, small_photo):
    target = tmp_path / "palette.vq"
    Image.fromarray(small_photo).quantize(8).save(target, k=8)
    result = run_cli("info", target)
    assert result.returncode == EXIT_OK, result.stderr
    assert "60 x 40 P" in result.stdout
    lines = {
        line.split("  ")[1]: line.split()[-2]
        for line in result.stdout.splitlines()
        if line.startswith("  ") and line.endswith(" bits")
    }
    # 8 colors x 3 channels x 8 bits; 2,400 pixels x 3 bits + the codebook
    assert lines["Centroids size"] == f"{8 * 3 * 8:,}"
    assert lines["Compressed size"] == f"{2400 * 3 + 8 * 3 * 8:,}"


def test_info_on_a_file_that_is_not_vq(photo_png):
    result = run_cli("info", photo_png)
    assert result.returncode == EXIT_FAILED
    assert result.stderr.startswith(f"skvq: error: {photo_png}:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_batch_decode(tmp_path, image_dir):
    vq_dir, png_dir = tmp_path / "vq", tmp_path / "png"
    assert main(["encode", str(image_dir), "-o", str(vq_dir), "-k", "4"]) == EXIT_OK
    assert main(["decode", str(vq_dir / "*.vq"), "-o", str(png_dir)]) == EXIT_OK
    assert sorted(p.name for p in png_dir.iterdir()) == [
        "crop0.png",
        "crop1.png",
        "crop2.png",
    ]


def test_demo_prints_the_bit_table(tmp_path):
    result = run_cli("demo", "-k", "4", "-o", "demo.png", cwd=tmp_path)
    assert result.returncode == EXIT_OK, result.stderr
    assert "Compressed size" in result.stdout
    assert (
        f"Compressed size          {427 * 640 * 2 + 4 * 3 * 8:,} bits" in result.stdout
    )
    with Image.open(tmp_path / "demo.png") as image:
        assert image.size == (640, 427)
        assert len(image.getcolors()) <= 4
        reconstruction = np.asarray(image)
    with Image.open(tmp_path / "demo.vq") as compressed:
        np.testing.assert_array_equal(compressed.convert("RGB"), reconstruction)
    size = (tmp_path / "demo.vq").stat().st_size
    assert f"wrote demo.vq ({size:,} bytes" in result.stdout


def test_readme_shows_what_skvq_demo_prints(tmp_path):
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What `skvq demo` prints", 1)[1]
    shown = section.split("```text\n", 1)[1].split("```", 1)[0]
    result = run_cli("demo", cwd=tmp_path)
    assert result.returncode == EXIT_OK, result.stderr
    assert result.stdout == shown


def test_missing_output_directory_is_named(tmp_path, photo_png, capsys):
    target = tmp_path / "missing" / "x.vq"
    assert main(["encode", str(photo_png), str(target)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert f"no such file or directory: {tmp_path / 'missing'}" in err


@pytest.mark.parametrize(
    ("command", "value"),
    [("encode", "abc"), ("encode", "70000"), ("encode", "0"), ("demo", "2.5")],
)
def test_a_bad_k_is_a_usage_error_before_any_image_is_read(tmp_path, command, value):
    # The input does not exist: only a check while parsing gives exit 2.
    paths = [tmp_path / "missing.png", tmp_path / "x.vq"] if command == "encode" else []
    result = run_cli(command, *paths, "-k", value, cwd=tmp_path)
    assert result.returncode == EXIT_USAGE
    assert (
        f"argument -k: expected a number of colors from 1 to 65,536, got {value!r}"
        in result.stderr
    )
    assert list(tmp_path.iterdir()) == []


def test_jobs_must_be_a_number(tmp_path, photo_png):
    result = run_cli("encode", photo_png, tmp_path / "x.vq", "-j", "many")
    assert result.returncode == EXIT_USAGE
    assert "expected a number of parallel jobs (-1 for all cores), got 'many'" in (
        result.stderr
    )


def test_decode_refuses_an_image_that_is_not_vq(tmp_path, photo_png, capsys):
    target = tmp_path / "out.png"
    assert main(["decode", str(photo_png), str(target)]) == EXIT_FAILED
    assert f"skvq: error: {photo_png}: not a .vq file" in capsys.readouterr().err
    assert not target.exists()


def test_decode_and_info_say_the_same_of_an_empty_file(tmp_path, capsys):
    empty = tmp_path / "empty.vq"
    empty.write_bytes(b"")
    assert main(["decode", str(empty), str(tmp_path / "out.png")]) == EXIT_FAILED
    decode_error = capsys.readouterr().err.splitlines()[0]
    assert main(["info", str(empty)]) == EXIT_FAILED
    info_error = capsys.readouterr().err.splitlines()[0]
    assert decode_error == info_error
    assert "not a .vq file" in info_error


def test_an_image_given_as_codebook_is_named(tmp_path, photo_png, capsys):
    target = tmp_path / "x.vq"
    args = ["encode", str(photo_png), str(target), "--codebook", str(photo_png)]
    assert main(args) == EXIT_FAILED
    assert (
        f"{photo_png}: not a codebook file (it is a PNG image); make one with "
        "'skvq fit-codebook'" in capsys.readouterr().err
    )
    assert not target.exists()


def test_demo_names_its_outputs_after_the_image_and_k(tmp_path):
    result = run_cli("demo", "-k", "4", "--image", "flower.jpg", cwd=tmp_path)
    assert result.returncode == EXIT_OK, result.stderr
    assert result.stdout.splitlines()[0] == "flower.jpg quantized to K = 4 colors"
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "flower-k4.png",
        "flower-k4.vq",
    ]
    with Image.open(tmp_path / "flower-k4.png") as image:
        assert len(image.getcolors()) <= 4


def test_an_unsupported_mode_names_the_option_that_converts_it(tmp_path, capsys):
    cmyk = tmp_path / "cmyk.tif"
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(cmyk)  # red
    target = tmp_path / "cmyk.vq"
    assert main(["encode", str(cmyk), str(target), "-k", "2"]) == EXIT_FAILED
    error = capsys.readouterr().err
    assert "Image mode 'CMYK' is not supported" in error
    assert "skvq encode --mode RGB" in error
    assert not target.exists()

    args = ["encode", str(cmyk), str(target), "-k", "2", "--mode", "RGB"]
    assert main(args) == EXIT_OK
    with Image.open(target) as image:
        assert image.convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_mode_converts_every_frame(tmp_path):
    frames = [Image.new("RGB", (5, 4), color) for color in ("red", "blue")]
    source = tmp_path / "anim.gif"
    frames[0].save(source, save_all=True, append_images=frames[1:])
    target = tmp_path / "anim.vq"
    assert main(["encode", str(source), str(target), "--mode", "L"]) == EXIT_OK
    with Image.open(target) as image:
        assert image.n_frames == 2
        grays = []
        for index in range(2):
            image.seek(index)
            grays.append(image.convert("L").getpixel((0, 0)))
    expected = [frame.convert("L").getpixel((0, 0)) for frame in frames]
    assert grays == expected
