"""``python -m invhide.cli``: the ``invhide`` command."""

import sys

from invhide.cli.main import main

sys.exit(main())
