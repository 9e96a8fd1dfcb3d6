"""Sphinx configuration for the sksatae documentation.

Build with warnings as errors from the repository root::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Add ``-D plot_gallery=0`` to build the gallery pages without running the
examples. The build needs no network: there is no intersphinx, and the
gallery's examples use bundled or generated data only.
"""

import os

import sksatae

project = "sksatae"
author = "The sksatae developers"
copyright = "The sksatae developers"
version = release = sksatae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
# The gallery's sources are read by sphinx-gallery, not by Sphinx.
exclude_patterns = ["_build", "examples", "auto_examples/*.ipynb"]
default_role = "literal"
pygments_style = "sphinx"

# -- API pages ------------------------------------------------------------------

autosummary_generate = True
autodoc_default_options = {"inherited-members": True}
autodoc_typehints = "none"
# Members are listed by the autosummary templates; numpydoc's own tables
# would list them a second time.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- Markdown pages -------------------------------------------------------------

myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- Gallery --------------------------------------------------------------------

os.environ.setdefault("MPLBACKEND", "agg")

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "doc_module": ("sksatae",),
    "reference_url": {"sksatae": None},
    "backreferences_dir": os.path.join("generated", "backreferences"),
    "inspect_global_variables": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "show_memory": False,
    "write_computation_times": False,
    "min_reported_time": 1,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
}

# -- HTML -----------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sksatae {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "auto_examples/index": []}
html_show_sourcelink = False
html_copy_source = False
