"""What users install: the sdist and the wheel, built and used outside the checkout.

The rest of the suite runs on the in-place (editable) build of the checkout,
which hides a missing file in the sdist, a subpackage left out of the wheel
or a module that only imports from the source tree. Here the release is
built as a packager builds it (``python -m build``: the sdist, then the
wheel from the sdist, each in an isolated build environment), installed into
a new virtual environment, and run from a directory outside the checkout.
"""

import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest

import skvq

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "skvq"


def _run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (
        f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def _sources(suffix):
    """Paths below the package, relative to the checkout root."""
    return sorted(
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob(f"*{suffix}")
        if "__pycache__" not in path.parts
    )


def _extension_names():
    """The dotted module names of the compiled modules (one per .pyx)."""
    return [name.removesuffix(".pyx").replace("/", ".") for name in _sources(".pyx")]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The sdist and wheel, as ``python -m build`` makes them."""
    pytest.importorskip("build")
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)])
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    return sdist, wheel


@pytest.mark.release
def test_the_sdist_holds_the_sources_and_the_license(release):
    sdist, _ = release
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        names = {name.removeprefix(f"{top}/") for name in archive.getnames()}
    assert {"LICENSE", "README.md", "pyproject.toml", "setup.py"} <= names
    missing = set(_sources(".pyx") + _sources(".py")) - names
    assert not missing, f"missing from the sdist: {sorted(missing)}"
    generated = sorted(name for name in names if name.endswith((".c", ".so")))
    assert not generated, f"generated files in the sdist: {generated}"


@pytest.mark.release
def test_the_wheel_holds_every_module_without_debug_info(release):
    _, wheel = release
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
        missing = set(_sources(".py")) - names
        assert not missing, f"missing from the wheel: {sorted(missing)}"
        for module in _extension_names():
            stem = module.replace(".", "/")
            (binary,) = [
                name
                for name in names
                if any(name == stem + suffix for suffix in EXTENSION_SUFFIXES)
            ]
            # A release build has no DWARF sections (they were 1-3 MB each).
            assert b".debug_info" not in archive.read(binary), binary


@pytest.mark.release
def test_the_wheel_installs_and_runs_outside_the_checkout(release, tmp_path):
    _, wheel = release
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", str(wheel)])
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"} | {
        "PATH": f"{environment / 'bin'}{os.pathsep}{os.environ['PATH']}"
    }

    imports = ", ".join(["skvq", *_extension_names()])
    code = f"import {imports}; print(skvq.__file__)"
    location = _run([str(python), "-c", code], cwd=outside, env=env)
    assert Path(location.strip()).is_relative_to(environment)

    command = str(environment / "bin" / "skvq")
    version = _run([command, "--version"], cwd=outside, env=env)
    assert version.split() == ["skvq", skvq.__version__]
    demo = _run([command, "demo", "-k", "4", "-o", "c.png"], cwd=outside, env=env)
    assert "K = 4 colors" in demo
    assert (outside / "c.png").stat().st_size > 0
    assert (outside / "c.vq").stat().st_size > 0


def test_a_source_tree_never_built_says_how_to_build_it(tmp_path):
    """Not numpy's misleading "partially initialized module" error."""
    tree = tmp_path / "checkout"
    for source in _sources(".py"):
        target = tree / source
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / source).read_bytes())
    # The editable install of the test environment would otherwise supply
    # the compiled modules of this checkout.
    code = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]\n"
        "import skvq\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "compiled modules are missing" in result.stderr
    assert "pip install -e ." in result.stderr
    assert "circular import" not in result.stderr.splitlines()[-1]
