"""Progress output: a bar on a terminal, plain lines in a log (a file, a pipe, ``io.StringIO``)."""

import io

import pytest
import torch
from helpers import images
from tqdm.auto import tqdm

from invhide import InvertibleHider
from invhide.errors import InputError
from invhide.io.progress import PlainProgress, progress_bar
from invhide.models import inference
from invhide.nn import subnets
from invhide.testing import randomize_


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_plain_lines_not_redraws():
    out = io.StringIO()
    with progress_bar(total=5000, desc="training", unit="step", file=out) as bar:
        for step in range(5000):
            bar.update(1)
            bar.set_postfix(loss=f"{1 / (step + 1):.3f}")
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert len(lines) <= 2, lines  # 5000 updates in well under 10 s: the final line (and at most one more)
    assert lines[-1].startswith("training: 5000/5000 steps (100%), ") and lines[-1].endswith("loss=0.000"), lines


def test_a_line_every_interval_and_at_the_end():
    out = io.StringIO()
    bar = progress_bar(total=4, desc="tiles", unit="tile", initial=1, file=out, interval=0)
    assert isinstance(bar, PlainProgress)
    for _ in range(3):
        bar.update(1)
    bar.write("a message of its own")
    bar.close()
    bar.close()  # a second close writes nothing
    lines = out.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "tiles: 2/4 tiles (50%)",
        "tiles: 3/4 tiles (75%)",
        "tiles: 4/4 tiles (100%)",
        "a message of its own",
        "tiles: 4/4 tiles (100%)",
    ]
    assert "left" in lines[0] and "left" not in lines[-1]


def test_iteration_and_leave():
    out = io.StringIO()
    assert list(progress_bar(range(3), desc="tiles", unit="tile", file=out)) == [0, 1, 2]
    assert out.getvalue().count("\n") == 1 and out.getvalue().startswith("tiles: 3/3 tiles (100%), ")
    quiet = io.StringIO()
    assert list(progress_bar(range(3), leave=False, file=quiet)) == [0, 1, 2]
    assert quiet.getvalue() == ""  # transient and quick: nothing to tell a log


def test_a_terminal_gets_the_bar_and_disabled_gets_nothing():
    terminal = Terminal()
    with progress_bar(total=3, desc="training", file=terminal) as bar:
        assert isinstance(bar, tqdm)
        bar.update(3)
    assert "\r" in terminal.getvalue()
    silent = io.StringIO()
    with progress_bar(total=3, enabled=False, file=silent) as bar:
        bar.update(3)
        bar.set_postfix(loss=1)
    assert silent.getvalue() == ""


def test_bad_interval():
    with pytest.raises(InputError, match="interval must be a finite number"):
        progress_bar(total=3, file=io.StringIO(), interval=-1)


def test_tiled_hiding_writes_plain_lines_into_a_log(capsys):
    model = randomize_(InvertibleHider(num_blocks=1, subnet=subnets.conv(hidden=8, depth=2)), 0, gain=0.05).eval()
    cover, secret = images(0, 2, 1, 3, 64, 64)
    with torch.no_grad():
        inference.hide(model, cover, secret, tile=16, overlap=4, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and len(err.splitlines()) <= 2, repr(err[:300])
