"""Sphinx configuration for the skvq documentation.

Build with warnings as errors, which also runs every example::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import re
from pathlib import Path

import skvq

project = "skvq"
author = "The skvq developers"
copyright = "The skvq developers"
release = skvq.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",  # docs/format.md and docs/benchmarks.md are Markdown
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# The build is offline, so there is no intersphinx: references to numpy,
# scikit-learn or Pillow objects render as plain literals, and numpydoc does
# not turn parameter types into links that could not resolve.
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
myst_heading_anchors = 3

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Run every example, not only those named plot_*: a broken example must
    # fail the build.
    "filename_pattern": r".*\.py$",
    # Re-run unchanged examples too, so that a library change that breaks one
    # is caught even when docs/auto_examples is left from an earlier build.
    "run_stale_examples": True,
    "doc_module": ("skvq",),
    "backreferences_dir": "gen_modules/backreferences",
    # Alphabetical; plot_compress_photo.py, the walkthrough, comes first.
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "pydata_sphinx_theme"
html_title = f"skvq {release}"
html_theme_options = {"show_toc_level": 2}
# _static holds the benchmark figures once they are generated.
html_static_path = ["_static"] if (Path(__file__).parent / "_static").is_dir() else []


def _skip_metadata_request_methods(app, what, name, obj, skip, options):
    # scikit-learn generates set_{method}_request methods for estimators whose
    # methods take sample_weight; their docstrings point into scikit-learn's
    # own user guide, and scikit-learn documents them there.
    if what == "class" and re.fullmatch(r"set_\w+_request", name):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_request_methods)
