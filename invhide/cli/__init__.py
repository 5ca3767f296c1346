"""The ``invhide`` command. argparse lives here and nowhere else in the package."""

from invhide.cli.main import main

__all__ = ["main"]
