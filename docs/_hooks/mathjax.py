"""mkdocs hook: serve MathJax from the site itself, so the equations render without a network.

MathJax 3.2.2 comes from PyPI, in the package ``django-static-mathjax`` (a
copy of the MathJax release with no dependencies; its import name is
``mathjax``), which the ``docs`` extra installs. The hook adds the files
MathJax loads for TeX input and CommonHTML output to the site under
``javascripts/mathjax/``: the combined ``tex-mml-chtml.js`` component (which
mkdocs.yml's ``extra_javascript`` loads), its web fonts, the TeX extensions
it loads on demand, and its menu and accessibility parts. ``mkdocs build``
then copies them and ``mkdocs serve`` serves them; nothing is fetched from a
CDN, by the build or by the reader's browser.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

DISTRIBUTION = "django-static-mathjax"
DESTINATION = "javascripts/mathjax"
# What MathJax 3's tex-mml-chtml component loads, relative to its es5/ folder.
ENTRY = "tex-mml-chtml.js"
FOLDERS = ("output/chtml", "input/tex/extensions", "input/mml", "ui", "a11y", "sre")


def mathjax_root() -> Path:
    """The ``es5/`` folder of the installed MathJax 3 (``django-static-mathjax``)."""
    spec = importlib.util.find_spec("mathjax")
    help_ = f'pip install ".[docs]" (or pip install {DISTRIBUTION}) to bring MathJax 3 in from PyPI'
    if spec is None or not spec.submodule_search_locations:
        raise PluginError(f"MathJax is not installed: {help_}")
    package = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"
    root = package / "es5"
    if not (root / ENTRY).is_file():
        raise PluginError(f"the 'mathjax' package at {package.parent} is not {DISTRIBUTION}: {help_}")
    version = json.loads((package / "package.json").read_text()).get("version", "")
    if not version.startswith("3."):
        raise PluginError(f"docs/javascripts/mathjax.js configures MathJax 3, found MathJax {version!r} at {package}")
    return root


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = mathjax_root()
    paths = [root / ENTRY]
    for folder in FOLDERS:
        paths.extend(sorted(p for p in (root / folder).rglob("*") if p.is_file()))
    for path in paths:
        uri = f"{DESTINATION}/{path.relative_to(root).as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
