#!/usr/bin/env python
"""Measure a shipped model's record again, same weights, after a change to how models are measured or revealed.

For the shipped model ``NAME``: every Table 2 table of its record
(``SET@256`` and ``SET@full``, the keys its publishing script wrote) is
measured again with :func:`invhide.evaluation.metrics.evaluate` as the
publishing scripts now call it, and, for a model trained through channels
(a ``channels`` table), the per-channel table is rebuilt from
``--robustness`` (``benchmarks/robustness.py``'s JSON, measured on the
shipped model). The headline's figures that moved (kodak24's 8-bit secret
and stego, and the channel figures) are replaced by the new ones, formatted
as before; the Table 2 tables are printed in Markdown. Every other field stays as published: the training facts, and the
tables that do not reveal (``speed``, ``security``) or that were measured by
their own benchmark with its own command (``keys``, ``float16_storage``),
except that ``--security-json`` (with ``--security-command``) stores a
security evaluation measured on the shipped model as ``tables.security``, as
``benchmarks/trained_model.py`` does, and ``--complete`` adds the Table 2
tables (every test set, at 256 and full size) and the speed table that
``trained_model.py`` writes and the record lacks (a model published by
another script). Only the record is rewritten (:func:`invhide.models.zoo.remeasure`, which
checks the weights file against the record first).

python benchmarks/remeasure_record.py conv8-photos49-v2
python benchmarks/remeasure_record.py conv8-photos49-robust \\
    --robustness benchmarks/results/robustness-conv8-photos49-robust.json
python benchmarks/remeasure_record.py conv8-photos49-keyed \\
    --security-json benchmarks/trained/keyed-conv8-wip/security.json --security-command "invhide eval --security ..."
python benchmarks/remeasure_record.py conv8-photos49-keyed --complete

A benchmark measures and prints; it never asserts.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from _shared import data_folder
from publish_robust import channel_table
from robustness import CHANNELS
from trained_model import SIZES, TEST_SETS, measure, security_tables, size_name, speeds, table_markdown

import invhide
from invhide.io.datasets import evaluation_pairs
from invhide.models import zoo

TABLE = re.compile(r"^(?P<set>\w+)@(?P<size>\d+|full)$")


def kodak_figures(tables: dict[str, Any]) -> dict[str, float]:
    """The headline's candidates: kodak24's 8-bit RGB PSNRs at 256, and the channel table's secrets."""
    k = tables["kodak24@256"]["results"]["8-bit"]
    found = {"stego": k["cover/stego"]["rgb"]["psnr"]["mean"], "secret": k["secret/recovery"]["rgb"]["psnr"]["mean"]}
    for setting, cell in tables.get("channels", {}).get("rgb_psnr_db", {}).items():
        found[f"{setting} secret"] = cell["secret"]
    return found


def new_headline(headline: str, old: dict[str, float], new: dict[str, float]) -> str:
    """``headline`` with each old figure (two decimals) that moved replaced by the new one; refuses an ambiguity."""
    for name, value in old.items():
        before, after = f"{value:.2f}", f"{new[name]:.2f}"
        if before == after or before not in headline:
            continue
        if headline.count(before) != 1:
            raise SystemExit(f"{before} ({name}) appears {headline.count(before)} times in the headline: {headline!r}")
        headline = headline.replace(before, after)
    return headline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="a shipped model's name")
    parser.add_argument("--robustness", type=Path, help="benchmarks/robustness.py's JSON of this model")
    parser.add_argument("--security-json", type=Path, help="`invhide eval --security --json` of this model")
    parser.add_argument("--security-command", help="the command that wrote --security-json")
    parser.add_argument(
        "--complete",
        action="store_true",
        help="also measure the Table 2 tables and the speed that trained_model.py writes and this record lacks",
    )
    parser.add_argument("--dry-run", action="store_true", help="measure and print, publish nothing")
    args = parser.parse_args()
    if (args.security_json is None) != (args.security_command is None):
        parser.error("--security-json and --security-command go together")
    entry = zoo.record(args.name)
    folder = Path(entry.path).parent
    model = invhide.load(args.name).eval()
    tables, evaluations = json.loads(json.dumps(entry.tables)), {}
    if args.complete:
        wanted = [f"{data}@{size_name(size)}" for data in TEST_SETS for size in SIZES]
        tables.update({key: {} for key in wanted if key not in tables})
    for key in tables:
        match = TABLE.match(key)
        if match is None:
            continue
        size = None if match["size"] == "full" else int(match["size"])
        evaluations[key] = measure(model, evaluation_pairs(data_folder(match["set"]), size=size))
        tables[key] = evaluations[key].to_dict(per_image=False)
        print(f"{key}: measured", flush=True)
    if "channels" in tables:
        if args.robustness is None:
            raise SystemExit(f"{args.name} has a channels table: pass --robustness (benchmarks/robustness.py's JSON)")
        robustness = json.loads(args.robustness.read_text())
        if robustness.get("channels") != list(CHANNELS) or robustness.get("model") != args.name:
            raise SystemExit(f"{args.robustness}: not benchmarks/robustness.py's channels measured on {args.name}")
        tables["channels"] = channel_table(robustness)
    tables.update(security_tables(args))
    if args.complete and "speed" not in tables:
        tables["speed"] = speeds(model)
        print(f"speed: {json.dumps({k: v for k, v in tables['speed'].items() if k[0].isdigit()})}")
    old, new = kodak_figures(entry.tables), kodak_figures(tables)
    print(json.dumps({name: [round(old[name], 3), round(new[name], 3)] for name in old}, indent=1))
    headline = new_headline(entry.headline, old, new)
    print(headline)
    for stego in ("8-bit", "float"):
        print(f"\n{stego} stego:\n{table_markdown(evaluations, stego)}")
    if args.dry_run:
        return
    zoo.remeasure(args.name, folder, headline=headline, tables=tables)
    print(f"{args.name}: record measured again, weights unchanged ({entry.sha256[:12]})")


if __name__ == "__main__":
    main()
