import subprocess
import sys

import pytest

import skvq


def _run(code):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )


def test_opening_a_vq_file_does_not_import_scikit_learn(tmp_path):
    from PIL import Image

    path = tmp_path / "x.vq"
    Image.new("RGB", (4, 3), (10, 20, 30)).save(path, k=2)
    result = _run(
        "import sys, skvq\n"
        "from PIL import Image\n"
        f"with Image.open({str(path)!r}) as im:\n"
        "    print(im.convert('RGB').getpixel((0, 0)))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["(10, 20, 30)", "[]"]


@pytest.mark.parametrize("name", sorted(skvq.__all__))
def test_every_public_name_resolves(name):
    assert getattr(skvq, name) is not None
    assert name in dir(skvq)


def test_lazy_names_are_the_submodule_objects():
    from skvq.imaging import quantize_image
    from skvq.quantizer import VectorQuantizer

    assert skvq.VectorQuantizer is VectorQuantizer
    assert skvq.quantize_image is quantize_image


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        skvq.nope  # noqa: B018


def test_the_install_docs_name_every_runtime_dependency():
    import re
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=!~\[; ]", spec)[0] for spec in project["dependencies"]]
    install = (root / "docs" / "index.rst").read_text().split("Install\n")[1]
    install = install.split("Quickstart\n")[0].lower()
    assert names, "no dependencies parsed"
    missing = [name for name in names if name.lower() not in install]
    assert not missing, f"docs/index.rst's Install section omits {missing}"
