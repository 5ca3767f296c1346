#!/usr/bin/env python
"""Speed and memory benchmark: ``invhide bench`` (the figures come from ``invhide.evaluation.speed.run``).

python benchmarks/speed.py                                  # 256 and 1024, depths 4 8 16, crops 64 128
python benchmarks/speed.py --sizes 256 --skip memory --json speed.json

Takes the options of ``invhide bench --help``; from Python, call
``invhide.evaluation.speed.run(sizes=(256,), skip=("memory",), json_path="speed.json")``.
"""

import sys

from invhide.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
