"""The ``invhide`` command. argparse lives here and nowhere else in the package.

- :mod:`invhide.cli.main`: the parser, the entry point :func:`main` and the
  error policy (a user error is one line and exit status 2, a bug a traceback
  and exit status 1).
- :mod:`invhide.cli.commands`: what each command does with its options.
- :mod:`invhide.cli.common`: the option types, the device, the image reading
  and the output checks the commands share.
- :mod:`invhide.cli.models`: the ``invhide models`` command and which model a
  command uses.
- :mod:`invhide.cli.steganalysis`: ``invhide steganalysis`` and ``invhide
  eval --security``.

Ctrl-C is one line (``invhide: interrupted``) and exit status 130 from the
command's first instruction: while the modules load (torch among them), the
package root has the command end at once, killed by SIGINT (a shell reports
130; it installs that SIGINT handler only when it runs as the ``invhide``
command or ``python -m invhide.cli``), and :func:`~invhide.cli.main.main`
puts Python's default handler back as it starts, so that an interrupted
command reports what it saved and exits with status 130.
"""

from invhide.cli.main import main

__all__ = ["main"]
