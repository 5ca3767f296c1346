"""The keyed models that ship in the package, as a user meets them: keygen, hide and reveal in fresh processes.

Each keyed model's record is checked against its weights on a few kodak24
pairs (``../shared/data``; skipped without it), under a random key; the
command round trip uses a new process for each step, as the issue that asked
for keys describes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import shared

from invhide.evaluation.metrics import psnr
from invhide.io.datasets import evaluation_pairs
from invhide.io.images import read_image, write_image
from invhide.models import inference, zoo
from invhide.nn.functional import quantize_8bit

KEYED = [r.name for r in zoo.available(zoo.SHIPPED) if r.architecture.get("keyed", False)]
pytestmark = pytest.mark.skipif(not KEYED, reason="no keyed model ships in invhide/models/trained")
ROOT = Path(__file__).resolve().parents[1]
MARGIN_DB = 1.5  # 6 pairs at 128x128 against the record's 24 at 256x256


def command(*argv, **env):
    return subprocess.run(
        [sys.executable, "-m", "invhide.cli", *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("INVHIDE_")}, **env},
    )


@pytest.mark.parametrize("name", KEYED)
def test_the_record_says_what_the_weights_measure_under_a_random_key(name):
    model = zoo.load(name, folder=zoo.SHIPPED)
    table = zoo.record(name, zoo.SHIPPED).tables["kodak24@256"]["results"]["8-bit"]
    pairs = evaluation_pairs(shared("kodak24"), size=128)[::4]
    cover = torch.stack([c for c, _ in pairs])
    secret = torch.stack([s for _, s in pairs])
    key = [os.urandom(32) for _ in pairs]
    stego = quantize_8bit(inference.hide(model, cover, secret, key=key))
    revealed = inference.reveal(model, stego, key=key, generator=torch.Generator().manual_seed(0))
    stego_db, secret_db = psnr(stego, cover).mean().item(), psnr(quantize_8bit(revealed), secret).mean().item()
    print(f"\n{name}: 6 kodak24 pairs at 128, random keys: {stego_db:.2f} / {secret_db:.2f} dB")
    assert stego_db > table["cover/stego"]["rgb"]["psnr"]["mean"] - MARGIN_DB
    assert secret_db > table["secret/recovery"]["rgb"]["psnr"]["mean"] - MARGIN_DB


@pytest.mark.parametrize("name", KEYED)
def test_keygen_hide_reveal_in_new_processes(name, tmp_path):
    cover, secret = evaluation_pairs(shared("kodak24"), size=128)[0]
    write_image(cover, tmp_path / "c.png")
    write_image(secret, tmp_path / "s.png")
    for key in ("k", "other"):
        done = command("keygen", "-o", tmp_path / key)
        assert done.returncode == 0, done.stderr
    done = command("hide", tmp_path / "c.png", tmp_path / "s.png", "-o", tmp_path / "st.png", "--model", name,
                   "--key-file", tmp_path / "k")  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr
    results = {}
    for label, extra, env in (
        ("right", ["--key-file", tmp_path / "k"], {}),
        ("environment", [], {"INVHIDE_KEY_FILE": str(tmp_path / "k")}),
        ("wrong", ["--key-file", tmp_path / "other"], {}),
        ("none", [], {}),
    ):
        done = command("reveal", tmp_path / "st.png", "-o", tmp_path / f"{label}.png", "--model", name, *extra, **env)
        assert done.returncode == 0, done.stderr  # a wrong key is not told from a right one
        results[label] = (psnr(read_image(tmp_path / f"{label}.png")[None], secret[None]).item(), done.stderr)
    assert results["right"][1] == results["wrong"][1] == "" and results["right"][0] > 28
    assert results["environment"][0] == results["right"][0]
    assert results["wrong"][0] < 20 and results["none"][0] < 20, results
    assert results["none"][1].count("\n") == 1 and "uses the public key" in results["none"][1]
