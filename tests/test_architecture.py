"""The package's layering, read from the source with ``ast`` (nothing is imported).

The rules of docs/architecture.md:

- each module imports only from its own layer and the layers below it
  (errors/checks < nn < io < models < evaluation < training < cli);
  ``invhide.testing`` only from errors, checks and nn; the package root
  ``invhide/__init__.py``, which re-exports the user-facing names of every
  layer but cli, is exempt, and only cli may use it (``invhide.__version__``);
- no module uses another invhide module's private name (one starting with an
  underscore), by import or as an attribute, nor imports a private module;
- no module uses a private name of another package (``torch._C``, FrEIA's
  ``GraphINN._check_output`` reached through ``self``): those change without
  notice between releases;
- argparse is imported only under ``invhide/cli/``;
- the architecture page lists every module.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "invhide"

# Layer of each top-level part of the package, lowest first.
LAYERS = {
    "errors": 0,
    "checks": 0,
    "nn": 1,
    "io": 2,
    "models": 3,
    "evaluation": 4,
    "training": 5,
    "cli": 6,
}
LAYER_NAMES = ["errors/checks", "nn", "io", "models", "evaluation", "training", "cli"]
# Modules outside the stack, with the parts they may import.
SIDE_MODULES = {"testing": {"errors", "checks", "nn"}}
# The package root re-exports every layer but cli: exempt from the rules, and only cli may use it.
EXEMPT = {"invhide"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@dataclass(frozen=True)
class Use:
    """One use of another invhide module: ``target`` (a module) and, for ``from ... import name``, ``name``."""

    source: str
    line: int
    target: str
    name: str | None = None

    def __str__(self) -> str:
        what = self.target if self.name is None else f"{self.target}.{self.name}"
        return f"{MODULES[self.source].relative_to(ROOT)}:{self.line}: {self.source} uses {what}"


def resolve_from(source: str, node: ast.ImportFrom) -> str:
    """The absolute module of a (possibly relative) ``from X import ...``."""
    if not node.level:
        return node.module or ""
    package = source.split(".")
    if MODULES[source].name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def uses(source: str) -> list[Use]:
    """Every invhide module (and private name) that ``source`` imports or reaches through an imported module."""
    tree = ast.parse(MODULES[source].read_text(), filename=str(MODULES[source]))
    found: list[Use] = []
    bound: dict[str, str] = {}  # local name -> invhide module it refers to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "invhide" or alias.name.startswith("invhide."):
                    found.append(Use(source, node.lineno, alias.name))
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:
                        bound[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            module = resolve_from(source, node)
            if module != "invhide" and not module.startswith("invhide."):
                continue
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                if submodule in MODULES:  # from invhide.nn import functional
                    found.append(Use(source, node.lineno, submodule))
                    bound[alias.asname or alias.name] = submodule
                else:  # from invhide.nn.functional import dwt
                    found.append(Use(source, node.lineno, module, alias.name))
    # Attributes reached through an imported module: functional._backend, invhide.nn.functional._backend.
    # Each chain is read from its outermost Attribute node.
    inner = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            chain, current = [], node
            while isinstance(current, ast.Attribute):
                chain.append(current.attr)
                current = current.value
            if isinstance(current, ast.Name) and current.id in bound:
                target = bound[current.id]
                for attr in reversed(chain):
                    if f"{target}.{attr}" not in MODULES:
                        found.append(Use(source, node.lineno, target, attr))
                        break
                    target = f"{target}.{attr}"
    return found


def part(module: str) -> str:
    """The top-level part a module belongs to: invhide.nn.modules -> nn."""
    return module.split(".")[1] if module.count(".") else module


def test_every_module_has_a_layer():
    unknown = sorted({part(name) for name in MODULES} - set(LAYERS) - set(SIDE_MODULES) - EXEMPT)
    assert not unknown, f"add {unknown} to LAYERS (and to docs/architecture.md)"


@pytest.mark.parametrize("source", sorted(set(MODULES) - EXEMPT))
def test_imports_run_down_the_layers(source):
    mine = part(source)
    violations = []
    for use in uses(source):
        theirs = part(use.target)
        if use.target in EXEMPT:
            if mine != "cli":
                violations.append(f"{use} (the package root, which imports every layer below cli)")
        elif mine in SIDE_MODULES:
            if theirs != mine and theirs not in SIDE_MODULES[mine]:
                violations.append(f"{use} ({mine} may import only {sorted(SIDE_MODULES[mine])})")
        elif theirs in SIDE_MODULES:
            violations.append(f"{use} ({theirs} is for users' tests, not for the library)")
        elif LAYERS[theirs] > LAYERS[mine]:
            violations.append(
                f"{use} (layer {LAYER_NAMES[LAYERS[mine]]} must not import from the layer above, "
                f"{LAYER_NAMES[LAYERS[theirs]]})"
            )
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("source", sorted(MODULES))
def test_no_private_names_of_other_modules(source):
    violations = []
    for use in uses(source):
        if use.target != source and any(is_private(p) for p in use.target.split(".")):
            violations.append(f"{use} (a private module)")
        elif use.name is not None and is_private(use.name) and use.target != source:
            violations.append(f"{use} (a private name of another module)")
    assert not violations, "\n".join(violations)


def own_private_names() -> set[str]:
    """Every private name invhide defines: functions, classes, variables and attributes it assigns."""
    names = set()
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
    return {name for name in names if is_private(name)}


def foreign_private_uses(source: str, own: set[str]) -> list[str]:
    """Private names of other packages that ``source`` imports, reaches through an import, or inherits and calls."""
    tree = ast.parse(MODULES[source].read_text())
    found, bound = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "invhide":
                    if any(is_private(p) for p in alias.name.split(".")):
                        found.append(f"{node.lineno}: import {alias.name}")
                    bound[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] != "invhide":
            for alias in node.names:
                if any(is_private(p) for p in [*(node.module or "").split("."), alias.name]):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not is_private(node.attr):
            continue
        root = node.value
        while isinstance(root, ast.Attribute):
            root = root.value
        if isinstance(root, ast.Name) and root.id in bound:
            found.append(f"{node.lineno}: {bound[root.id]}...{node.attr}")
        elif node.attr not in own and (
            (isinstance(root, ast.Name) and root.id in ("self", "cls"))
            or (isinstance(root, ast.Call) and isinstance(root.func, ast.Name) and root.func.id == "super")
        ):
            found.append(f"{node.lineno}: {node.attr}, inherited from another package")
    return found


OWN_PRIVATE = own_private_names()


@pytest.mark.parametrize("source", sorted(MODULES))
def test_no_private_names_of_other_packages(source):
    found = foreign_private_uses(source, OWN_PRIVATE)
    assert not found, f"{MODULES[source].relative_to(ROOT)} uses private names of other packages: {found}"


@pytest.mark.parametrize("source", sorted(MODULES))
def test_argparse_only_in_the_cli(source):
    if part(source) == "cli":
        return
    tree = ast.parse(MODULES[source].read_text())
    lines = [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names))
        or (isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "argparse")
    ]
    assert not lines, (
        f"{MODULES[source].relative_to(ROOT)} imports argparse on line(s) {lines}: it belongs in invhide/cli/"
    )


def test_the_architecture_page_lists_every_module():
    page = (ROOT / "docs" / "architecture.md").read_text()
    missing = [name for name in sorted(MODULES) if f"`{name}`" not in page]
    assert not missing, f"docs/architecture.md does not mention {missing}"


class TestTheChecksThemselves:
    """The parser finds what the rules forbid (on source written here, not on the package)."""

    def check(self, tmp_path, monkeypatch, name, code):
        path = tmp_path / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code)
        monkeypatch.setitem(MODULES, name, path)
        monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
        return [str(u).split(": ", 1)[1] for u in uses(name)]

    def test_finds_imports_relative_imports_and_attributes(self, tmp_path, monkeypatch):
        found = self.check(
            tmp_path,
            monkeypatch,
            "invhide.nn.fake",
            "from invhide.nn import functional\n"
            "from . import graph as g\n"
            "from ..training.losses import HidingLoss\n"
            "import invhide.io.images\n"
            "def f():\n"
            "    from invhide.models.hider import _private\n"
            "    return functional._backend, invhide.nn.functional._soft, g.InvertibleGraph\n",
        )
        assert sorted(found) == [
            "invhide.nn.fake uses invhide.io.images",
            "invhide.nn.fake uses invhide.models.hider._private",
            "invhide.nn.fake uses invhide.nn.functional",
            "invhide.nn.fake uses invhide.nn.functional._backend",
            "invhide.nn.fake uses invhide.nn.functional._soft",
            "invhide.nn.fake uses invhide.nn.graph",
            "invhide.nn.fake uses invhide.nn.graph.InvertibleGraph",
            "invhide.nn.fake uses invhide.training.losses.HidingLoss",
        ]
        with pytest.raises(AssertionError, match="must not import from the layer above, training"):
            test_imports_run_down_the_layers("invhide.nn.fake")
        with pytest.raises(AssertionError, match=r"functional\._backend \(a private name of another module\)"):
            test_no_private_names_of_other_modules("invhide.nn.fake")

    def test_finds_private_names_of_other_packages(self, tmp_path, monkeypatch):
        self.check(
            tmp_path,
            monkeypatch,
            "invhide.nn.fake",
            "import torch\n"
            "import argparse as ap\n"
            "from FrEIA.framework import GraphINN\n"
            "from torch.nn.modules.conv import _ConvNd\n"
            "class G(GraphINN):\n"
            "    def _mine(self):\n"
            "        return self._check_output, super()._private, self._mine, torch._C, ap._SubParsersAction\n",
        )
        found = foreign_private_uses("invhide.nn.fake", {"_mine"})
        assert sorted(found) == [
            "4: from torch.nn.modules.conv import _ConvNd",
            "7: _check_output, inherited from another package",
            "7: _private, inherited from another package",
            "7: argparse..._SubParsersAction",
            "7: torch..._C",
        ]

    def test_finds_argparse_and_the_root(self, tmp_path, monkeypatch):
        self.check(tmp_path, monkeypatch, "invhide.io.fake", "import argparse\nfrom invhide import HiNet\n")
        with pytest.raises(AssertionError, match=r"imports argparse on line\(s\) \[1\]"):
            test_argparse_only_in_the_cli("invhide.io.fake")
        with pytest.raises(AssertionError, match="the package root"):
            test_imports_run_down_the_layers("invhide.io.fake")

    def test_the_cli_may_use_argparse_and_the_root(self, tmp_path, monkeypatch):
        found = self.check(
            tmp_path, monkeypatch, "invhide.cli.fake", "import argparse\nimport invhide\nprint(invhide.__version__)\n"
        )
        assert sorted(found) == ["invhide.cli.fake uses invhide", "invhide.cli.fake uses invhide.__version__"]
        test_argparse_only_in_the_cli("invhide.cli.fake")
        test_imports_run_down_the_layers("invhide.cli.fake")
        test_no_private_names_of_other_modules("invhide.cli.fake")
