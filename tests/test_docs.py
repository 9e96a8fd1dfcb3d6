"""The documentation builds with warnings as errors.

A reduced build: the user guide, the API pages generated from the
docstrings, the Markdown pages and the gallery pages, with the gallery's
examples not executed (``-D plot_gallery=0``). It fails when a docstring or
a page breaks the build. The full build, which runs the examples, is
``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
"""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import myst_parser  # noqa: F401  (the build needs them; a missing one must fail here)
import numpydoc  # noqa: F401
import pydata_sphinx_theme  # noqa: F401
import pytest
import sphinx  # noqa: F401
import sphinx_gallery  # noqa: F401

DOCS = Path(__file__).resolve().parents[1] / "docs"
BUILD_OUTPUTS = ("_build", "auto_examples", "generated")


def _sphinx(source, output, *options):
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q",
         *options, str(source), str(output)],
        capture_output=True, text=True, timeout=600,
    )


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    """A copy of docs/ without previous build outputs, built without the examples."""
    root = tmp_path_factory.mktemp("docs")
    source = root / "source"
    shutil.copytree(DOCS, source, ignore=shutil.ignore_patterns(*BUILD_OUTPUTS))
    output = root / "html"
    result = _sphinx(source, output, "-D", "plot_gallery=0")
    return result, output


def test_reduced_build_passes_with_warnings_as_errors(built_docs):
    result, _ = built_docs
    assert result.returncode == 0, f"Sphinx failed:\n{result.stderr}"


@pytest.mark.parametrize("page, expected", [
    ("generated/sksatae.SaturatingAutoEncoder.html",
     ["alpha_path_", "learning_rate_", "score_samples", "partial_fit", "Goroshin"]),
    ("generated/sksatae.SATAEOutlierDetector.html",
     ["contamination", "decision_scores_", "threshold_", "decision_function", "Hampel"]),
    ("generated/sksatae.DivergenceError.html", ["diverges"]),
    ("generated/sksatae.activations.complementary_function.html", ["flat set"]),
    ("generated/sksatae.activations.TabulatedActivation.html",
     ["from_function", "tabulation_error", "smoothing"]),
    ("generated/sksatae.datasets.make_manifold_2d.html", ["n_samples", "noise"]),
    ("generated/sksatae.plotting.plot_energy_landscape.html", ["vmax", "show_bases"]),
    ("user_guide/model.html", ["complementary function", "contrast function"]),
    ("user_guide/training.html", ["alpha_step", "warm_start", "learning_rate_"]),
    ("user_guide/activations.html", ["shrink_width", "tied_weights",
                                     "normalize_decoder_every", "Figure 6", "Your own activation"]),
    ("user_guide/anomaly.html", ["score_samples", "threshold_", "PyOD"]),
    ("auto_examples/index.html", ["Energy landscape", "Novelty detection", "Dask"]),
])
def test_pages_hold_their_content(built_docs, page, expected):
    result, output = built_docs
    assert result.returncode == 0, f"Sphinx failed:\n{result.stderr}"
    html = (output / page).read_text(encoding="utf-8")
    missing = [text for text in expected if text not in html]
    assert not missing, f"{page} lacks {missing}"


def test_every_markdown_page_is_built(built_docs):
    result, output = built_docs
    assert result.returncode == 0, f"Sphinx failed:\n{result.stderr}"
    pages = sorted(path.stem for path in DOCS.glob("*.md"))
    assert pages, "docs/ has no Markdown pages"
    missing = [page for page in pages if not (output / f"{page}.html").is_file()]
    assert not missing, f"Markdown pages not built: {missing}"


def test_broken_docstring_fails_the_build(tmp_path):
    # The checks above rely on -W turning a malformed docstring into a
    # failure; check that with the same extensions on a minimal project.
    (tmp_path / "broken_module.py").write_text(textwrap.dedent('''
        def documented(x):
            """Return x.

            Parameters
            ----------
            x : float
                A value, |undefined substitution|.
            """
            return x
    '''))
    (tmp_path / "conf.py").write_text(textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        extensions = ["sphinx.ext.autodoc", "numpydoc"]
    '''))
    (tmp_path / "index.rst").write_text("Broken\n======\n\n.. autofunction:: broken_module.documented\n")
    result = _sphinx(tmp_path, tmp_path / "html")
    assert result.returncode != 0
    assert "undefined substitution" in result.stderr.lower()
