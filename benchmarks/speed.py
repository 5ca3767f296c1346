#!/usr/bin/env python
"""Speed and memory benchmark: the same as ``invhide bench`` (see ``invhide.evaluation.speed``).

python benchmarks/speed.py                                  # 256 and 1024, depths 4 8 16, crops 64 128
python benchmarks/speed.py --sizes 256 --skip memory --json speed.json
"""

import argparse

from invhide.evaluation.speed import add_arguments, main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    main(parser.parse_args())
