"""Griffe extension: render invhide's docstrings, written for ``help()`` and Sphinx habits, as Markdown.

invhide's docstrings are Google style and are read by people in ``help()``
and in editors as much as on this site. mkdocstrings would print four of
their habits literally; this extension translates them when the site is
built, and leaves the source as it is:

- Sphinx cross-reference roles, ``:class:`~invhide.InvertibleHider```,
  ``:func:`dwt```, ``:meth:`HidingLoss.with_term```, ``:mod:`invhide.nn.graph```,
  ``:data:`SAMPLE_TEST```, ``:attr:`min_size```: each becomes an autorefs link
  (``[`InvertibleHider`][invhide.models.hider.InvertibleHider]``) when its target is
  an object the API reference renders, resolved the way Sphinx would (the
  object itself, its class, its module, then absolute paths; imported names
  followed to where they are defined), and inline code otherwise, so a
  strict build never fails on a reference to an undocumented name;
- ``paragraph::`` before an indented literal block: the ``::`` becomes ``:``
  (the indented block is already a Markdown code block);
- simple tables (``=====  =====`` borders): they become Markdown tables, or
  definition lists when they have two columns and no header;
- the house style titles the doctest section ``Example:`` (STYLE.md), which
  griffe's Google parser knows only as ``Examples:``: without the plural the
  section would render as a note with the ``>>>`` lines as nested quotes.

Loaded by mkdocstrings through ``extensions: [docs/_griffe/docstrings.py]``
in ``mkdocs.yml``; unlinked references are logged at debug level
(``mkdocs build --verbose``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?P<role>class|func|meth|mod|data|attr|exc|obj|const):`(?P<body>[^`]+)`")
_LITERAL_INTRO = re.compile(r"(?m)^(?P<text>[^\n]*\S)::[ \t]*\n(?=[ \t]*\n[ \t]+\S)")
_BORDER = re.compile(r"^[ \t]*=+(?:[ \t]+=+)+[ \t]*$")
_EXAMPLE_TITLE = re.compile(r"(?m)^Example:[ \t]*$")

logger = griffe.get_logger("invhide.docs")


# --------------------------------------------------------------------------
# Cross-references
# --------------------------------------------------------------------------


def _final(obj: griffe.Object | griffe.Alias) -> griffe.Object | None:
    """The object an alias points to, or ``None`` when it leads outside the loaded packages."""
    try:
        return obj.final_target if obj.is_alias else obj  # type: ignore[union-attr,return-value]
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


def _lookup(scope: griffe.Object | None, dotted: str) -> griffe.Object | None:
    """``scope.a.b.c`` for ``dotted = "a.b.c"``, following aliases at every step."""
    current: griffe.Object | None = scope
    for part in dotted.split("."):
        if current is None:
            return None
        member = current.members.get(part)
        current = None if member is None else _final(member)
    return current


def _is_rendered(target: griffe.Object) -> bool:
    """Whether the API reference renders ``target`` under its canonical path (and so can link to it)."""
    if not target.path.startswith("invhide") or any(
        part.startswith("_") and not (part.startswith("__") and part.endswith("__")) for part in target.path.split(".")
    ):
        return False
    if target.is_module:
        return True
    if not target.docstring:
        return False
    parent = target.parent
    if parent is None or not _is_rendered(parent):
        return False
    if parent.is_module:
        return bool(target.is_public)
    return True


def _resolve(obj: griffe.Object, name: str) -> griffe.Object | None:
    """The target of ``name`` written in ``obj``'s docstring, searched as Sphinx does."""
    scopes: list[griffe.Object] = []
    current: griffe.Object | None = obj
    while current is not None:  # the object, its class(es), its module, its package...
        scopes.append(current)
        current = current.parent
    for scope in scopes:
        found = _lookup(scope, name)
        if found is not None:
            return found
    root = scopes[-1]
    first, _, rest = name.partition(".")
    if first == root.name:  # an absolute path, e.g. invhide.evaluation.metrics.evaluate
        return _lookup(root, rest) if rest else root
    return None


def _replace_roles(obj: griffe.Object, text: str, unresolved: set[str]) -> str:
    def link(match: re.Match[str]) -> str:
        role, body = match["role"], match["body"].strip()
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", body)
        if explicit:
            title, name = explicit["title"], explicit["target"]
        else:
            name = body.lstrip("~!")
            title = name.rsplit(".", 1)[-1] if body.startswith("~") else name
        name = name.lstrip("~!").removesuffix("()")
        if role in ("func", "meth") and not explicit and not title.endswith("()"):
            title += "()"
        target = _resolve(obj, name)
        if target is None or not _is_rendered(target):
            unresolved.add(f"{obj.path}: :{role}:`{body}`")
            return f"`{title}`"
        return f"[`{title}`][{target.path}]"

    return _ROLE.sub(link, text)


# --------------------------------------------------------------------------
# Literal blocks and simple tables
# --------------------------------------------------------------------------


def _columns(border: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"=+", border)]


def _cells(line: str, columns: list[tuple[int, int]]) -> list[str]:
    cells = []
    for index, (start, _) in enumerate(columns):
        stop = columns[index + 1][0] if index + 1 < len(columns) else None
        cells.append(line[start:stop].strip())
    return cells


def _escape(cell: str) -> str:
    return cell.replace("|", r"\|")


def _table(lines: list[str]) -> list[str]:
    """A reStructuredText simple table (border lines included) as Markdown table lines."""
    columns = _columns(lines[0])
    borders = [i for i, line in enumerate(lines) if _BORDER.match(line)]
    header: list[str] | None = None
    rows: list[list[str]] = []
    body_start = 1
    if len(borders) >= 3:  # top border, header rows, header border, body, bottom border
        header_lines = [_cells(line, columns) for line in lines[1 : borders[1]]]
        header = [" ".join(parts).strip() for parts in zip(*header_lines, strict=True)]
        body_start = borders[1] + 1
    for line in lines[body_start : borders[-1]]:
        if not line.strip():
            continue
        cells = _cells(line, columns)
        if rows and not cells[0]:  # a continuation line: the first column is empty
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    indent = re.match(r"[ \t]*", lines[0]).group(0)  # type: ignore[union-attr]
    if header is None and len(columns) == 2:  # a headerless two-column table is a list of definitions
        out = []
        for term, definition in rows:
            out += [indent + term, indent + ":   " + definition, ""]
        return out[:-1]
    if header is None:
        header = [""] * len(columns)
    out = [indent + "| " + " | ".join(_escape(c) for c in header) + " |"]
    out.append(indent + "|" + "|".join(" --- " for _ in columns) + "|")
    out += [indent + "| " + " | ".join(_escape(c) for c in row) + " |" for row in rows]
    return out


def _replace_tables(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if _BORDER.match(lines[i]):
            # A table runs from this border to the last border before a blank line that follows a border.
            j = i + 1
            last = None
            while j < len(lines):
                if _BORDER.match(lines[j]):
                    last = j
                    if j + 1 >= len(lines) or not lines[j + 1].strip():
                        break
                j += 1
            if last is not None and last > i:
                if out and out[-1].strip():
                    out.append("")
                out += _table(lines[i : last + 1])
                i = last + 1
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def _replace_literal_intros(text: str) -> str:
    def colon(match: re.Match[str]) -> str:
        words = match["text"]
        return words + ":\n"  # "the graph::" -> "the graph:", as Sphinx renders it

    return _LITERAL_INTRO.sub(colon, text)


# --------------------------------------------------------------------------
# The extension
# --------------------------------------------------------------------------


def _walk(obj: griffe.Object) -> Any:
    yield obj
    for member in obj.members.values():
        if not member.is_alias and member.parent is obj:
            yield from _walk(member)  # type: ignore[arg-type]


class InvhideDocstrings(griffe.Extension):
    """Rewrite every docstring of a loaded package once the whole tree is known."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        unresolved: set[str] = set()
        for obj in _walk(pkg):
            docstring = obj.docstring
            if docstring is None:
                continue
            text = _EXAMPLE_TITLE.sub("Examples:", docstring.value)
            text = _replace_literal_intros(text)
            text = _replace_tables(text)
            docstring.value = _replace_roles(obj, text, unresolved)
        for entry in sorted(unresolved):
            logger.debug("not linked (no rendered target): %s", entry)
