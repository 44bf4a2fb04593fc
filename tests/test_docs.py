"""The Sphinx docs build with warnings as errors, running every example.

Slow (the whole gallery runs): deselect with ``pytest -m "not docs"``.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(path.stem for path in (ROOT / "examples").glob("*.py"))

# Runs a notebook's code cells in order, in one namespace, and renders the
# value of a cell's last expression as Jupyter would (HTML if it has any).
NOTEBOOK_RUNNER = textwrap.dedent(
    """
    import ast, json, sys

    namespace = {"__name__": "__main__"}
    cells = json.load(open(sys.argv[1], encoding="utf-8"))["cells"]
    for number, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        name = f"<cell {number}>"
        tree = ast.parse("".join(cell["source"]))
        last = tree.body[-1] if tree.body else None
        if isinstance(last, ast.Expr):
            tree.body.pop()
        exec(compile(tree, name, "exec"), namespace)
        if isinstance(last, ast.Expr):
            value = eval(compile(ast.Expression(last.value), name, "eval"), namespace)
            render = getattr(value, "_repr_html_", None)
            print(render() if render is not None else repr(value))
    """
)


@pytest.fixture(scope="module")
def html_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "html"
    command = ["-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    result = subprocess.run(
        [sys.executable, *command, str(ROOT / "docs"), str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
        timeout=900,
    )
    assert result.returncode == 0, (
        f"sphinx-build failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    )
    return out


def test_the_gallery_index_links_every_example(html_dir):
    # Guards the parametrized tests below too: an empty glob would run none.
    assert "plot_compress_photo" in EXAMPLES
    index = (html_dir / "auto_examples" / "index.html").read_text(encoding="utf-8")
    linked = set(re.findall(r'href="(plot_\w+)\.html', index))
    assert linked == set(EXAMPLES)


def test_index_page_links_the_guide_gallery_and_api(html_dir):
    index = (html_dir / "index.html").read_text(encoding="utf-8")
    for page in ("user_guide.html", "auto_examples/index.html", "api.html"):
        assert f'href="{page}' in index
        assert (html_dir / page).is_file()


def test_api_pages_are_generated(html_dir):
    api = (html_dir / "api.html").read_text(encoding="utf-8")
    for name in (
        "skvq.VectorQuantizer",
        "skvq.BitReport",
        "skvq.quantize_image",
        "skvq.metrics.smallest_k_reaching",
        "skvq.display.compare_k",
        "skvq.plotting.RateDistortionDisplay",
    ):
        assert f'href="gen_modules/{name}.html' in api
        assert (html_dir / "gen_modules" / f"{name}.html").is_file()
    estimator = (html_dir / "gen_modules" / "skvq.VectorQuantizer.html").read_text(
        encoding="utf-8"
    )
    for method in ("fit", "transform", "inverse_transform", "score", "bit_report"):
        assert f'id="skvq.VectorQuantizer.{method}"' in estimator


@pytest.mark.parametrize("example", EXAMPLES)
def test_gallery_page_has_output_and_downloads(html_dir, example):
    page = (html_dir / "auto_examples" / f"{example}.html").read_text(encoding="utf-8")
    assert "sphx-glr-single-img" in page or "sphx-glr-multi-img" in page
    assert f"{example}.ipynb" in page
    assert f"{example}.py" in page
    assert len(list(html_dir.glob(f"_downloads/*/{example}.ipynb"))) == 1


def test_walkthrough_shows_the_bit_table_and_comparison(html_dir):
    page = (html_dir / "auto_examples" / "plot_compress_photo.html").read_text(
        encoding="utf-8"
    )
    assert "skvq-bit-report" in page  # BitReport._repr_html_, captured
    assert "40,384 bits" in page  # the tutorial's worked example
    assert "skvq-comparison" in page


@pytest.mark.parametrize("example", ["plot_compress_photo", "plot_vq_file_format"])
def test_downloaded_notebook_runs(html_dir, tmp_path, example):
    (notebook,) = html_dir.glob(f"_downloads/*/{example}.ipynb")
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    assert any(cell["cell_type"] == "code" for cell in cells)
    result = subprocess.run(
        [sys.executable, "-c", NOTEBOOK_RUNNER, str(notebook)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MPLBACKEND": "Agg"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "<table class='skvq-bit-report'>" in result.stdout
