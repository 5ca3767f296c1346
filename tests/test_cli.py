"""The invhide command: its outputs against the library's, its error policy, and a table of hostile inputs."""

import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import images, shared
from PIL import Image

import invhide
from invhide import InvertibleHider, save
from invhide.cli.main import build_parser, main
from invhide.errors import InputError, InputTypeError, InvhideError, MissingPathError
from invhide.evaluation import speed
from invhide.evaluation.metrics import psnr
from invhide.io.datasets import evaluation_pairs
from invhide.io.images import read_image, write_image
from invhide.models import zoo
from invhide.models.hider import public_key
from invhide.models.inference import hide, reveal
from invhide.nn import subnets
from invhide.nn.subnets import ConvSubnet
from invhide.testing import randomize_
from invhide.training.recipes import RECIPES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "hinet_div2k.py"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    # Far from the identity: the stego differs from the cover by about 36 grey levels on average.
    model = randomize_(InvertibleHider(num_blocks=2, subnet=subnets.conv(hidden=8, depth=2)), 0, gain=0.1)
    save(model, folder / "model.safetensors")
    write_image(images(0, 3, 40, 48), folder / "cover.png")
    write_image(images(1, 3, 40, 48), folder / "secret.png")
    write_image(images(2, 3, 32, 32), folder / "small.png")
    write_image(images(3, 3, 37, 45), folder / "odd_cover.png")
    write_image(images(4, 3, 37, 45), folder / "odd_secret.png")
    write_image(images(5, 3, 1, 1), folder / "dot.png")
    (folder / "photos").mkdir()
    for i in range(4):
        write_image(images(10 + i, 3, 24, 24), folder / "photos" / f"{i}.png")
    Image.fromarray(np.full((40, 48), 128, np.uint8), mode="L").save(folder / "gray.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("hello, I am not a picture")
    data = (folder / "cover.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    (folder / "empty.safetensors").write_bytes(b"")
    (folder / "folder.png").mkdir()
    torch.save({"net": {}}, folder / "model.pt")
    other = InvertibleHider(num_blocks=3, subnet=subnets.conv(hidden=8, depth=2))
    save(other, folder / "other.safetensors")
    # a checkpoint whose tensors do not match its config: 3-block config, 2-block weights
    from invhide.io.checkpoint import load_tensors, save_tensors

    tensors, metadata = load_tensors(folder / "model.safetensors")
    _, other_metadata = load_tensors(folder / "other.safetensors")
    save_tensors(tensors, folder / "wrong.safetensors", other_metadata)
    tensors = dict(tensors)
    tensors[next(iter(tensors))] = torch.full_like(tensors[next(iter(tensors))], float("nan"))
    save_tensors(tensors, folder / "nan.safetensors", metadata)
    # a PNG that declares 100000 x 100000 pixels in a few bytes
    small = bytearray((folder / "dot.png").read_bytes())
    small[16:24] = struct.pack(">II", 100_000, 100_000)
    small[29:33] = struct.pack(">I", zlib.crc32(bytes(small[12:29])))
    (folder / "huge.png").write_bytes(bytes(small))
    return folder


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def hide_files(capsys, files, output, model, *extra):
    """``invhide hide cover.png secret.png -o OUTPUT --model MODEL --no-check ...``.

    ``--no-check``: the shared models are random, far from the identity, and
    the secret does not come back from their stegos, which ``hide`` refuses
    otherwise (see the tests of the check below).
    """
    return run(
        capsys, "hide", files / "cover.png", files / "secret.png", "-o", output, "--model", model, "--no-check", *extra
    )


def leftovers(folder, before):
    return sorted(set(os.listdir(folder)) - before)


def levels(path):
    """The 8-bit RGB levels stored in an image file, as written (no conversion to floats)."""
    with Image.open(path) as image:
        assert image.mode == "RGB", image.mode
        return np.asarray(image).copy()


def command(*argv):
    """``invhide ARGV...`` in a fresh Python process (``python -m invhide.cli``)."""
    return subprocess.run(
        [sys.executable, "-m", "invhide.cli", *map(str, argv)], capture_output=True, text=True, cwd=ROOT
    )


def console_script():
    """The installed ``invhide`` script of this environment, or skip."""
    found = shutil.which("invhide", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.skip("the `invhide` console script is not installed (pip install -e .) beside this Python or on PATH")
    return found


# --------------------------------------------------------------------------
# The files written are the library's results, bit for bit
# --------------------------------------------------------------------------


def library_stego(model_path, cover_path, secret_path, out_path, **tiling):
    """What invhide.models.inference.hide gives for these files, written by invhide.io.images.write_image."""
    model = invhide.load(model_path)
    write_image(hide(model, read_image(cover_path), read_image(secret_path), **tiling), out_path)
    return levels(out_path)


def library_secret(model_path, stego_path, seed, out_path, **tiling):
    """What the library reveals: ``z`` zeros (``seed=None``, invhide reveal's default) or drawn with ``seed``."""
    model = invhide.load(model_path)
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    write_image(reveal(model, read_image(stego_path), generator=generator, **tiling), out_path)
    return levels(out_path)


@pytest.mark.parametrize(
    ("cover", "secret", "tiling"),
    [("cover.png", "secret.png", {}), ("odd_cover.png", "odd_secret.png", {"tile": 16, "overlap": 4})],
    ids=["whole image", "tiles of 16"],
)
def test_hide_and_reveal_write_the_library_results(files, tmp_path, cover, secret, tiling):
    """hide in one process, reveal from its PNG in another; each PNG is what the library computes."""
    model = files / "model.safetensors"
    options = [f"--{key}={value}" for key, value in tiling.items()]
    done = command("hide", files / cover, files / secret, "-o", tmp_path / "stego.png", "--model", model,
                   "--device", "cpu", "--no-check", *options)  # fmt: skip
    assert done.returncode == 0, done.stderr
    stego = levels(tmp_path / "stego.png")
    expected = library_stego(model, files / cover, files / secret, tmp_path / "expected_stego.png", **tiling)
    even = tuple(side + side % 2 for side in read_image(files / cover).shape[1:])  # 37x45 gives a 38x46 stego
    assert stego.dtype == np.uint8 and stego.shape == expected.shape == (*even, 3)
    assert np.array_equal(stego, expected), f"{np.count_nonzero(stego != expected)} levels differ"
    # Not vacuous: the model really changes the cover, so writing the cover (or the secret) would fail above.
    height, width = levels(files / cover).shape[:2]
    assert np.abs(stego[:height, :width].astype(int) - levels(files / cover)).mean() > 10
    assert np.abs(stego[:height, :width].astype(int) - levels(files / secret)).mean() > 10
    if tiling:  # and the tiles matter: the whole-image stego is another image
        whole = library_stego(model, files / cover, files / secret, tmp_path / "whole.png")
        assert not np.array_equal(stego, whole)

    done = command("reveal", tmp_path / "stego.png", "-o", tmp_path / "recovered.png", "--model", model,
                   "--seed", 3, "--device", "cpu", *options)  # fmt: skip
    assert done.returncode == 0, done.stderr
    recovered = levels(tmp_path / "recovered.png")
    expected = library_secret(model, tmp_path / "stego.png", 3, tmp_path / "expected_secret.png", **tiling)
    assert np.array_equal(recovered, expected), f"{np.count_nonzero(recovered != expected)} levels differ"
    assert np.abs(recovered.astype(int) - stego).mean() > 10  # writing the stego back would fail
    other_seed = library_secret(model, tmp_path / "stego.png", 4, tmp_path / "seed4.png", **tiling)
    assert not np.array_equal(recovered, other_seed)  # --seed reaches z


def test_console_script_writes_the_library_results(files, tmp_path):
    """The installed `invhide` script, as a user runs it: hide, reveal from the PNG, then a bad file."""
    script = console_script()
    model = files / "model.safetensors"
    env = {**os.environ, "INVHIDE_MODEL": str(model)}
    env.pop("INVHIDE_DEBUG", None)
    hide_ = [script, "hide", files / "cover.png", files / "secret.png", "-o", tmp_path / "s.png", "--device", "cpu",
             "--no-check"]  # fmt: skip
    reveal_ = [script, "reveal", tmp_path / "s.png", "-o", tmp_path / "r.png", "--device", "cpu"]
    for argv in (hide_, reveal_):
        done = subprocess.run(list(map(str, argv)), capture_output=True, text=True, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    expected = library_stego(model, files / "cover.png", files / "secret.png", tmp_path / "expected_s.png")
    assert np.array_equal(levels(tmp_path / "s.png"), expected)
    expected = library_secret(model, tmp_path / "s.png", None, tmp_path / "expected_r.png")  # z zeros by default
    assert np.array_equal(levels(tmp_path / "r.png"), expected)

    bad = [script, "hide", files / "text.png", files / "secret.png", "-o", tmp_path / "bad.png"]
    done = subprocess.run(list(map(str, bad)), capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("invhide: error: ") and "text.png" in done.stderr
    assert not (tmp_path / "bad.png").exists()


@pytest.mark.parametrize(("cover", "secret", "extra", "size"), [
    ("dot.png", "dot.png", [], (2, 2)),  # 1x1: made even (and refused by the check, see below)
    ("odd_cover.png", "odd_secret.png", [], (38, 46)),  # 45x37: the padding is kept
    ("cover.png", "small.png", ["--fit", "crop"], (40, 48)),
    ("cover.png", "small.png", ["--fit", "resize"], (40, 48)),
])  # fmt: skip
def test_any_size_comes_back_at_its_size_made_even(files, capsys, tmp_path, cover, secret, extra, size):
    model = files / "model.safetensors"
    status, _, err = run(
        capsys, "hide", files / cover, files / secret, "-o", tmp_path / "s.png", "--model", model, "--no-check", *extra
    )
    assert status == 0, err
    fit = extra[1] if extra else "refuse"
    expected = hide(invhide.load(model), read_image(files / cover), read_image(files / secret), fit=fit)
    write_image(expected, tmp_path / "expected.png")
    assert np.array_equal(levels(tmp_path / "s.png"), levels(tmp_path / "expected.png"))
    assert levels(tmp_path / "s.png").shape[:2] == size
    status, _, err = run(capsys, "reveal", tmp_path / "s.png", "-o", tmp_path / "r.png", "--model", model)
    assert status == 0, err
    assert levels(tmp_path / "r.png").shape[:2] == size


def test_hide_prints_the_psnr_of_the_saved_stego(files, capsys, tmp_path):
    status, out, _ = hide_files(capsys, files, tmp_path / "stego.png", files / "model.safetensors")
    assert status == 0
    cover, stego = levels(files / "cover.png").astype(float), levels(tmp_path / "stego.png").astype(float)
    psnr = 10 * np.log10(255**2 / np.mean((cover - stego) ** 2))
    printed = float(re.search(r"cover/stego PSNR (\d+\.\d\d) dB", out).group(1))
    assert abs(printed - psnr) <= 0.006 and psnr < 30, (out, psnr)


def test_float64_model_with_8_bit_images(files, capsys, tmp_path):
    model = randomize_(InvertibleHider(num_blocks=1, subnet=subnets.conv(hidden=8, depth=2)), 0, gain=0.1).double()
    save(model, tmp_path / "double.safetensors")
    status, _, err = hide_files(capsys, files, tmp_path / "s.png", tmp_path / "double.safetensors")
    assert status == 0, err
    expected = library_stego(tmp_path / "double.safetensors", files / "cover.png", files / "secret.png",
                             tmp_path / "expected.png")  # fmt: skip
    assert np.array_equal(levels(tmp_path / "s.png"), expected)


def test_grayscale_input_warns_in_one_line(files, capsys, tmp_path):
    model = files / "model.safetensors"
    status, _, err = run(capsys, "hide", files / "gray.png", files / "secret.png", "-o", tmp_path / "s.png",
                         "--model", model, "--no-check")  # fmt: skip
    assert status == 0
    lines = err.splitlines()
    assert all(line.startswith("invhide: warning: ") for line in lines), err  # every warning is one line
    assert len([line for line in lines if "grayscale" in line]) == 1, err


def test_convert_official_and_eval(files, capsys, tmp_path):
    from test_hinet import far_from_identity_checkpoint

    _, state = far_from_identity_checkpoint(2)
    torch.save({"net": state}, tmp_path / "model.pt")
    status, out, err = run(capsys, "convert-official", tmp_path / "model.pt", "-o", tmp_path / "converted")
    assert status == 0, err
    converted = invhide.load(tmp_path / "converted")
    reference = invhide.models.official.load_official(tmp_path / "model.pt")
    assert all(torch.equal(a, b) for a, b in zip(converted.state_dict().values(), reference.state_dict().values()))
    status, out, err = run(
        capsys,
        "eval",
        files / "photos",
        "--model",
        tmp_path / "converted",
        "--size",
        "16",
        "--json",
        tmp_path / "r.json",
    )
    assert status == 0, err
    assert "cover/stego" in out and "rounded to 8 bits" in out and (tmp_path / "r.json").is_file()


def test_every_command_has_help():
    for name in ("", "hide", "reveal", "train", "eval", "bench", "convert-official", "models"):
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"] if name else ["--help"])
        assert exit_info.value.code == 0


def test_train_recipe_names_are_the_recipes():
    parser = build_parser()
    assert parser.parse_args(["train"]).recipe == "paper"
    for name in RECIPES:
        assert parser.parse_args(["train", "--recipe", name]).recipe == name
    for argv in (["--recipe", "no-such-recipe"], ["--preset", "quick"], ["--quick"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ema", "1"], "argument --ema: expected a number in (0, 1), got '1'"),
        (["--ema", "nan"], "argument --ema: expected a number in (0, 1), got 'nan'"),
        (["--quantize", "--quantize-from", "5"], "argument --quantize-from: not allowed with argument --quantize"),
        (["--amp", "int8"], "argument --amp: invalid choice: 'int8'"),
        (["--workers", "100000"], "argument --workers: expected an integer in [0, "),
        (["--workers", "-1"], "argument --workers: expected an integer in [0, "),
        # checkpoints are named step_%08d: a 9-digit step would sort before the 8-digit ones
        (["--steps", "100000000"], "argument --steps: expected an integer in [1, 99999999], got '100000000'"),
    ],
)
def test_train_precision_average_and_rounding_options_are_checked(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["train", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_train_options_reach_the_trainer_settings(files, capsys, tmp_path, monkeypatch):
    import invhide.training.recipes as recipes

    seen = {}

    def capture(chosen, *args, **kwargs):
        seen["config"] = chosen.config
        raise KeyboardInterrupt  # stop before any training; the command reports it and exits 130

    monkeypatch.setattr(recipes, "train_and_evaluate", capture)
    argv = ["train", "--recipe", "cpu", "--train-dir", files / "photos", "--val-dir", files / "photos",
            "--eval-size", "16", "--crop", "16", "--steps", "20", "--out", tmp_path / "run"]  # fmt: skip
    run(capsys, *argv, "--amp", "float32", "--ema", "0.99", "--quantize-from", "7")
    config = seen["config"]
    assert (config.amp, config.ema_decay, config.quantize_from, config.quantize) == ("float32", 0.99, 7, False)
    run(capsys, *argv, "--amp", "bfloat16")
    assert (seen["config"].amp, seen["config"].ema_decay, seen["config"].quantize_from) == ("bfloat16", None, 17)


def test_train_init_starts_from_the_given_model(files, capsys, tmp_path, monkeypatch):
    import invhide.training.recipes as recipes

    seen = {}

    def capture(chosen, *args, **kwargs):
        seen["model"] = chosen.build_model()
        raise KeyboardInterrupt

    monkeypatch.setattr(recipes, "train_and_evaluate", capture)
    given = files / "model.safetensors"  # a 2-block model: its architecture replaces the quick recipe's 4 blocks
    argv = ["train", "--recipe", "quick", "--train-dir", files / "photos", "--val-dir", files / "photos", "--eval-size", "16",
            "--crop", "16", "--steps", "2", "--out", tmp_path / "run"]  # fmt: skip
    run(capsys, *argv, "--init", given)
    want = invhide.load(given).state_dict()
    got = seen["model"].state_dict()
    assert seen["model"].config() == invhide.load(given).config() and want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
    status, _, err = run(capsys, *argv, "--init", tmp_path / "missing.safetensors")
    assert status == 2 and err.startswith("invhide: error: --init ") and err.count("\n") == 1
    assert "missing.safetensors: not a model name" in err
    assert not (tmp_path / "run").exists()


def test_tif_output_is_lossless_and_accepted(files, capsys, tmp_path):
    model = files / "model.safetensors"
    for name in ("stego.tif", "stego.png"):
        status, _, err = hide_files(capsys, files, tmp_path / name, model)
        assert status == 0, err
    assert np.array_equal(levels(tmp_path / "stego.tif"), levels(tmp_path / "stego.png"))
    status, _, err = run(capsys, "reveal", tmp_path / "stego.tif", "-o", tmp_path / "r.tiff", "--model", model)
    assert status == 0, err
    assert np.array_equal(
        levels(tmp_path / "r.tiff"), library_secret(model, tmp_path / "stego.png", None, tmp_path / "e.png")
    )


def test_an_existing_output_is_replaced_only_with_force(files, capsys, tmp_path):
    model = files / "model.safetensors"
    (tmp_path / "s.png").write_bytes(b"precious")
    status, _, err = hide_files(capsys, files, tmp_path / "s.png", model, "--quiet")
    assert status == 2 and "exists; pass --force" in err and (tmp_path / "s.png").read_bytes() == b"precious"
    status, _, err = hide_files(capsys, files, tmp_path / "s.png", model, "--quiet", "--force")
    assert status == 0, err
    expected = library_stego(model, files / "cover.png", files / "secret.png", tmp_path / "expected.png")
    assert np.array_equal(levels(tmp_path / "s.png"), expected)
    # --force never reaches an input
    status, _, err = hide_files(capsys, files, files / "secret.png", model, "--force")
    assert status == 2 and "is the secret image" in err


def test_hide_warns_in_one_line_when_the_stego_shows_the_hiding(files, capsys, tmp_path):
    """The shared model changes the cover by about 36 levels (PSNR near 15 dB); a gentle one stays invisible."""
    status, _, err = hide_files(capsys, files, tmp_path / "loud.png", files / "model.safetensors", "--quiet")
    assert status == 0
    (line,) = err.splitlines()
    assert line.startswith("invhide: warning: the stego differs visibly from the cover (PSNR 1") and "--model" in line
    gentle = randomize_(InvertibleHider(num_blocks=2, subnet=subnets.conv(hidden=8, depth=2)), 0, gain=0.01)
    save(gentle, tmp_path / "gentle.safetensors")
    status, out, err = hide_files(capsys, files, tmp_path / "quiet.png", tmp_path / "gentle.safetensors")
    psnr = float(re.search(r"cover/stego PSNR (\d+\.\d\d) dB", out).group(1))
    assert status == 0 and err == "" and psnr > 20, (err, psnr)


# --------------------------------------------------------------------------
# hide checks itself; reveal says what it cannot know (issue 20)
# --------------------------------------------------------------------------


def without_model_settings(monkeypatch):
    """The command then uses the default shipped model, as after a fresh install."""
    for name in ("INVHIDE_MODEL", "INVHIDE_MODELS_DIR", "INVHIDE_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    if zoo.default_name(zoo.SHIPPED) is None:
        pytest.skip("no default model ships in invhide/models/trained")


def test_hide_prints_the_secret_it_verified_from_the_saved_stego(capsys, monkeypatch, tmp_path):
    """From a fresh install: the recovered figure is what `invhide reveal` of the written file gives, odd sizes too."""
    without_model_settings(monkeypatch)
    cover, secret = evaluation_pairs(shared("kodak24"), size=96)[0]
    write_image(cover[:, :65, :63], tmp_path / "cover.png")
    write_image(secret[:, :65, :63], tmp_path / "secret.png")
    status, out, err = run(capsys, "hide", tmp_path / "cover.png", tmp_path / "secret.png", "-o", tmp_path / "s.png")
    assert status == 0, err
    printed = re.fullmatch(
        rf"wrote {re.escape(str(tmp_path / 's.png'))} \(64x66: the 63x65 cover made even\); cover/stego PSNR "
        r"(\d+\.\d\d) dB as saved \(8-bit\); secret/recovery PSNR (\d+\.\d\d) dB, revealed from it as `invhide "
        r"reveal` will\n",
        out,
    )
    assert printed, out
    status, _, err = run(capsys, "reveal", tmp_path / "s.png", "-o", tmp_path / "r.png")
    assert status == 0 and "warning" not in err, err
    stego, recovered = read_image(tmp_path / "s.png"), read_image(tmp_path / "r.png")
    assert stego.shape == recovered.shape == (3, 66, 64)
    stego_db = psnr(stego[None, :, :65, :63], read_image(tmp_path / "cover.png")[None]).item()
    secret_db = psnr(recovered[None, :, :65, :63], read_image(tmp_path / "secret.png")[None]).item()
    assert abs(float(printed.group(1)) - stego_db) < 0.006 and abs(float(printed.group(2)) - secret_db) < 0.006
    assert stego_db > 30 and secret_db > 30, (stego_db, secret_db)


def test_hide_refuses_a_model_whose_secret_does_not_come_back(files, capsys, tmp_path):
    """Issue 20: a barely trained model's stego was written and reported as a success (6.96 dB reveal)."""
    model = files / "model.safetensors"
    status, out, err = run(capsys, "hide", files / "cover.png", files / "secret.png", "-o", tmp_path / "s.png",
                           "--model", model)  # fmt: skip
    assert status == 2 and out == "" and os.listdir(tmp_path) == [], (out, err)
    assert re.fullmatch(
        rf"invhide: error: --model {re.escape(str(model))} does not hide this secret: revealed from the stego as "
        r"saved, as `invhide reveal` will, it comes back at \d\.\d\d dB PSNR, below 20 dB \(cover/stego "
        r"PSNR 1\d\.\d\d dB\); nothing written \(an untrained or undertrained model\?; --no-check writes the stego "
        r"anyway\)\n",
        err,
    ), err


def test_hide_refuses_a_stego_that_is_its_cover(files, capsys, tmp_path):
    """Issue 20: a model whose only trained weight is 1e-3 passed the hides-nothing probe and printed PSNR inf."""
    faint = InvertibleHider(num_blocks=1, subnet=subnets.conv(hidden=8, depth=2))
    with torch.no_grad():
        faint.nodes.coupling_1.phi.output_layer.weight[0, 0, 0, 0] = 1e-3
    save(faint, tmp_path / "faint.safetensors")
    status, out, err = run(capsys, "hide", files / "cover.png", files / "secret.png", "-o", tmp_path / "s.png",
                           "--model", tmp_path / "faint.safetensors")  # fmt: skip
    assert status == 2 and out == "" and sorted(os.listdir(tmp_path)) == ["faint.safetensors"], (out, err)
    assert err == (
        f"invhide: error: --model {tmp_path / 'faint.safetensors'} hides nothing: the stego as saved is the cover, "
        f"to within rounding (cover/stego PSNR inf dB); nothing written (train the model first; --no-check writes "
        f"the stego anyway)\n"
    )


@pytest.fixture(scope="module")
def received(tmp_path_factory):
    """A stego of the default model (as `invhide hide` writes it), copies of it as lossy files, and its cover."""
    name = zoo.default_name(zoo.SHIPPED)
    if name is None:
        pytest.skip("no default model ships in invhide/models/trained")
    folder = tmp_path_factory.mktemp("received")
    cover, secret = evaluation_pairs(shared("kodak24"), size=64)[3]
    write_image(cover, folder / "cover.png")
    model = zoo.load(name, folder=zoo.SHIPPED)
    write_image(hide(model, cover, secret, **public_key(model)), folder / "stego.png")  # as hide does without a key
    with Image.open(folder / "stego.png") as stego:
        stego.save(folder / "stego.jpg", quality=95)
        stego.save(folder / "q100.jpg", quality=100)
        stego.save(folder / "jpeg.png", format="JPEG", quality=95)
        stego.save(folder / "stego.webp", quality=90)
        stego.save(folder / "lossless.webp", lossless=True)
    return folder


LOSSY = r"{name} is a lossy file \({codec}\) and the default model \S+ was trained to reveal from lossless files only"
NOTHING = r"{name} does not look like a stego image of the default model \S+: blurring it hardly changes what it "


@pytest.mark.parametrize(("name", "extra", "warning"), [
    ("stego.png", [], None),
    ("lossless.webp", [], None),
    ("stego.jpg", [], LOSSY.format(name="stego.jpg", codec="JPEG")),
    ("q100.jpg", [], LOSSY.format(name="q100.jpg", codec="JPEG")),
    ("jpeg.png", [], LOSSY.format(name="jpeg.png", codec="JPEG by its header, though named .png")),
    ("stego.webp", [], LOSSY.format(name="stego.webp", codec="VP8 WebP")),
    ("cover.png", [], NOTHING.format(name="cover.png")),
    ("cover.png", ["--no-check"], None),
])  # fmt: skip
def test_reveal_warns_when_it_cannot_give_the_secret_back(
    received, capsys, monkeypatch, tmp_path, name, extra, warning
):
    """Issue 20: a JPEG, a lossy WebP or a plain photograph revealed as if it were a stego, without a word."""
    without_model_settings(monkeypatch)
    status, out, err = run(capsys, "reveal", received / name, "-o", tmp_path / "r.png", *extra)
    assert status == 0 and (tmp_path / "r.png").is_file(), err  # written all the same
    warnings = [line for line in err.splitlines() if line.startswith("invhide: warning: ")]
    if warning is None:
        assert warnings == [], err
    else:
        pattern = f"invhide: warning: {re.escape(str(received))}/{warning}"
        assert len(warnings) == 1 and re.match(pattern, warnings[0]), err


def test_the_lossy_warning_names_the_models_trained_for_that_file(capsys, monkeypatch, tmp_path):
    """Issue 22: a JPEG revealed by a model not trained for it points to the ones that are (by their records)."""
    fields = dict(headline="a test model", training={"data": "none"}, steps=1, wall_seconds=1.0,
                  hardware={"cpu": "c", "threads": 1, "gpu": None}, command="c", tables={})  # fmt: skip
    hider = randomize_(InvertibleHider(num_blocks=1, subnet="conv"), seed=0, gain=0.5)
    zoo.publish(hider, "plain", tmp_path / "models", {**fields, "default": True})
    hider.trained_channels = {"lossless", "jpeg"}  # as the trainer sets it for a run through a JPEG channel
    zoo.publish(hider, "robust", tmp_path / "models", {**fields, "default": False})
    monkeypatch.setenv("INVHIDE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("INVHIDE_MODEL", raising=False)
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(tmp_path / "stego.jpg", quality=90)
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(tmp_path / "stego.webp", quality=90)
    status, _, err = run(capsys, "reveal", tmp_path / "stego.jpg", "-o", tmp_path / "a.png", "--no-check")
    assert status == 0 and err.count("invhide: warning: ") == 1, err
    assert err.rstrip().endswith("or hide with a model trained for jpeg files: robust"), err
    status, _, err = run(capsys, "reveal", tmp_path / "stego.webp", "-o", tmp_path / "b.png", "--no-check")
    assert status == 0 and "was trained to reveal from lossless files only" in err and "robust" not in err, err
    status, _, err = run(capsys, "reveal", tmp_path / "stego.jpg", "-o", tmp_path / "c.png", "--no-check",
                         "--model", "robust")  # fmt: skip
    assert status == 0 and "warning" not in err, err
    status, _, err = run(capsys, "reveal", tmp_path / "stego.webp", "-o", tmp_path / "d.png", "--no-check",
                         "--model", "robust")  # fmt: skip
    assert status == 0 and "was trained to reveal from jpeg or lossless files only: the secret written may be " in err
    assert "robust" in err and err.count("invhide: warning: ") == 1, err


def test_convert_official_to_a_file_that_model_loads(capsys, tmp_path):
    from test_hinet import far_from_identity_checkpoint

    _, state = far_from_identity_checkpoint(2)
    torch.save({"net": state}, tmp_path / "model.pt")
    (tmp_path / "out").mkdir()
    status, out, err = run(capsys, "convert-official", tmp_path / "model.pt", "-o", tmp_path / "out" / "m.safetensors")
    assert status == 0, err
    assert f"use it with --model {tmp_path / 'out' / 'm.safetensors'}" in out
    write_image(images(0, 3, 16, 16), tmp_path / "c.png")
    write_image(images(1, 3, 16, 16), tmp_path / "s.png")
    status, _, err = run(capsys, "hide", tmp_path / "c.png", tmp_path / "s.png", "-o", tmp_path / "st.png",
                         "--model", tmp_path / "out" / "m.safetensors", "--no-check")  # fmt: skip
    assert status == 0 and "error" not in err, err
    status, _, err = run(capsys, "convert-official", tmp_path / "model.pt", "-o", tmp_path / "out" / "m.pt")
    assert status == 2 and "a .pt name would be taken for a PyTorch pickle" in err
    assert sorted(os.listdir(tmp_path / "out")) == ["m.safetensors"]


def test_invhide_models_is_a_command(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("INVHIDE_MODELS_DIR", str(tmp_path))
    status, out, err = run(capsys, "models")
    assert status == 0 and err == "" and out.startswith(f"$INVHIDE_MODELS_DIR={tmp_path} holds no models; train one")


def test_train_interrupted_then_resumed_by_the_printed_command(files, capsys, monkeypatch, tmp_path):
    """Ctrl-C before the first periodic checkpoint saves the last step; the printed command finishes the run.

    The resumed run has no matplotlib: the figures are skipped with a note and the command still succeeds.
    """
    import shlex

    from invhide.training.trainer import Trainer

    step, calls = Trainer._train_step, []

    def interrupted_second_step(self, images):
        calls.append(self.step)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return step(self, images)

    monkeypatch.delenv("INVHIDE_DEBUG", raising=False)
    monkeypatch.setattr(Trainer, "_train_step", interrupted_second_step)
    argv = ["train", "--recipe", "quick", "--train-dir", files / "photos", "--val-dir", files / "photos", "--eval-size", "16",
            "--crop", "16", "--batch-size", "2", "--steps", "2", "--checkpoint-every", "0", "--out", tmp_path / "run"]  # fmt: skip
    status, _, err = run(capsys, *argv)
    last = err.strip().splitlines()[-1]
    assert status == 130, err
    saved = tmp_path / "run" / "checkpoints" / "step_00000001"
    assert last.startswith(f"invhide: interrupted: the checkpoint of step 1 is in {saved}; resume with: invhide train ")
    assert json.loads((saved / "trainer.json").read_text())["config"]["checkpoint_every"] == 0  # the option took
    command = shlex.split(last.split("resume with: ", 1)[1])
    assert command[0] == "invhide" and command[-1] == "--resume" and command[1:-1] == [str(a) for a in argv]

    monkeypatch.setattr(Trainer, "_train_step", step)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    status, out, err = run(capsys, *command[1:])
    assert status == 0, err
    assert 'note: no figures (figures need matplotlib: pip install "invhide[plot]")' in out.splitlines()
    assert "cover/stego" in out and "stego rounded to 8 bits" in out
    assert sorted(p.name for p in (tmp_path / "run").glob("*.png")) == []
    assert json.loads((tmp_path / "run" / "results.json").read_text())
    assert (tmp_path / "run" / "checkpoints" / "step_00000002").is_dir()


# --------------------------------------------------------------------------
# Error policy: a user error is one line (exit 2), a bug a traceback (exit 1)
# --------------------------------------------------------------------------

BAD = [
    ("empty cover file", ["hide", "{d}/empty.png", "{d}/secret.png"], "empty"),
    ("text file named .png", ["hide", "{d}/text.png", "{d}/secret.png"], "not an image"),
    ("truncated PNG", ["hide", "{d}/truncated.png", "{d}/secret.png"], "truncated"),
    ("missing cover", ["hide", "{d}/nope.png", "{d}/secret.png"], "nope.png"),
    ("a folder as cover", ["hide", "{d}/folder.png", "{d}/secret.png"], "folder.png"),
    ("huge declared dimensions", ["hide", "{d}/huge.png", "{d}/secret.png"], "100000x100000"),
    ("mismatched sizes", ["hide", "{d}/cover.png", "{d}/small.png"], "--fit"),
    (
        "0-byte checkpoint",
        ["hide", "{d}/cover.png", "{d}/secret.png", "--model", "{d}/empty.safetensors"],
        "empty file",
    ),
    (
        "wrong-architecture checkpoint",
        ["hide", "{d}/cover.png", "{d}/secret.png", "--model", "{d}/wrong.safetensors"],
        "wrong.safetensors",
    ),
    ("NaN weights", ["hide", "{d}/cover.png", "{d}/secret.png", "--model", "{d}/nan.safetensors"], "NaN"),
    ("pickled .pt model", ["hide", "{d}/cover.png", "{d}/secret.png", "--model", "{d}/model.pt"], "convert-official"),
    ("unknown model", ["hide", "{d}/cover.png", "{d}/secret.png", "--model", "nonexistent-model"], "not a model name"),
    ("lossy output", ["hide", "{d}/cover.png", "{d}/secret.png", "-o", "{d}/stego.jpg"], "lossless"),
    (
        "missing output folder",
        ["hide", "{d}/cover.png", "{d}/secret.png", "-o", "{d}/no/such/stego.png"],
        "does not exist",
    ),
    ("output is a folder", ["hide", "{d}/cover.png", "{d}/secret.png", "-o", "{d}/folder.png"], "folder.png"),
    ("CUDA on a CPU machine", ["hide", "{d}/cover.png", "{d}/secret.png", "--device", "cuda:0"], "CUDA"),
    ("MPS off a Mac", ["hide", "{d}/cover.png", "{d}/secret.png", "--device", "mps"], "'mps'"),
    ("XPU on this build", ["hide", "{d}/cover.png", "{d}/secret.png", "--device", "xpu"], "'xpu'"),
    ("meta device", ["hide", "{d}/cover.png", "{d}/secret.png", "--device", "meta"], "'meta'"),
    ("not a device", ["reveal", "{d}/cover.png", "--device", "gpu"], "--device must name a device"),
    ("overlap as large as the tile", ["hide", "{d}/cover.png", "{d}/secret.png", "--tile", "8"], "--overlap"),
    ("reveal a text file", ["reveal", "{d}/text.png"], "not an image"),
    ("eval an empty folder", ["eval", "{d}/folder.png"], "no image"),
    ("eval --json in a missing folder", ["eval", "{d}/photos", "--json", "{d}/no/r.json"], "does not exist"),
    (
        "convert a non-checkpoint",
        ["convert-official", "{d}/text.png", "-o", "{d}/converted"],
        "not a readable PyTorch checkpoint",
    ),
    ("convert into a file's folder", ["convert-official", "{d}/model.pt", "-o", "{d}/cover.png/x"], "is a file"),
    ("train --out is a file", ["train", "--recipe", "quick", "--out", "{d}/cover.png"], "is a file"),
    (
        "train on a missing folder",
        ["train", "--recipe", "quick", "--train-dir", "{d}/nope", "--out", "{d}/run"],
        "no such",
    ),
    (
        "train on a device this build lacks",
        ["train", "--recipe", "quick", "--device", "xpu", "--out", "{d}/run"],
        "'xpu'",
    ),
    ("bench --json in a missing folder", ["bench", "--json", "{d}/no/b.json"], "--json {d}/no/b.json: the folder"),
]


@pytest.mark.parametrize(("name", "argv", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gives_one_line_and_no_output(files, capsys, monkeypatch, name, argv, expected):
    device = argv[argv.index("--device") + 1] if "--device" in argv else None
    if device is not None and device != "gpu":
        try:
            torch.empty(1, device=device)
            torch.Generator(device)
        except Exception:
            pass
        else:
            pytest.skip(f"this machine has {device}")
    monkeypatch.delenv("INVHIDE_MODEL", raising=False)
    monkeypatch.delenv("INVHIDE_DEBUG", raising=False)
    argv = [a.format(d=files) for a in argv]
    if argv[0] in ("hide", "reveal") and "-o" not in argv:
        argv += ["-o", str(files / "out.png")]
    if argv[0] in ("hide", "reveal", "eval") and "--model" not in argv:
        argv += ["--model", str(files / "model.safetensors")]
    before = set(os.listdir(files))
    status, out, err = run(capsys, *argv)
    assert status == 2, (out, err)
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("invhide: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert expected.format(d=files) in errors[0], errors[0]
    assert leftovers(files, before) == [], "partial output left behind"


def test_no_model_given(files, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("INVHIDE_MODEL", raising=False)
    monkeypatch.setenv("INVHIDE_MODELS_DIR", str(tmp_path))  # a registry without a default model
    status, _, err = run(capsys, "hide", files / "cover.png", files / "secret.png", "-o", files / "out.png")
    assert status == 2 and "no model given" in err


def test_a_model_with_several_secrets_is_refused_by_hide(files, capsys, tmp_path):
    model = randomize_(InvertibleHider(num_secrets=2, num_blocks=1, subnet="conv"), 0, gain=0.05)
    save(model, tmp_path / "two.safetensors")
    status, _, err = hide_files(capsys, files, tmp_path / "s.png", tmp_path / "two.safetensors")
    assert status == 2 and "hides 2 secrets per cover" in err and not (tmp_path / "s.png").exists()


def break_subnets(monkeypatch, error):
    """Every ConvSubnet raises ``error`` when called, as a bug deep in the library would."""

    def forward(self, x):
        raise error

    monkeypatch.setattr(ConvSubnet, "forward", forward)


def test_a_bug_in_the_library_shows_its_traceback(files, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("INVHIDE_DEBUG", raising=False)
    break_subnets(monkeypatch, ValueError("bug"))
    status, _, err = hide_files(capsys, files, tmp_path / "s.png", files / "model.safetensors")
    assert status == 1, err
    assert "Traceback (most recent call last)" in err and "ValueError: bug" in err and "forward" in err
    assert "invhide: error:" not in err
    assert not (tmp_path / "s.png").exists()


def test_a_plain_oserror_from_the_library_is_a_bug_too(files, capsys, monkeypatch, tmp_path):
    """Only InvhideErrors are user errors: a FileNotFoundError about an internal file is a bug to report."""
    import invhide.models.inference

    def broken_hide(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", "/some/internal/file")

    monkeypatch.delenv("INVHIDE_DEBUG", raising=False)
    monkeypatch.setattr(invhide.models.inference, "hide", broken_hide)
    status, _, err = hide_files(capsys, files, tmp_path / "s.png", files / "model.safetensors")
    assert status == 1 and "Traceback" in err and "FileNotFoundError" in err and "invhide: error:" not in err, err


@pytest.mark.parametrize(
    ("argv", "advice"),
    [
        (["hide", "{d}/cover.png", "{d}/secret.png", "-o", "{d}/oom.png"], "--tile"),
        (["eval", "{d}/photos", "--size", "16"], "--batch-size"),
    ],
)
@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 8 GiB"),
        RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: 9 GB"),
    ],
    ids=["CUDA", "CPU"],
)
def test_out_of_memory_gives_advice_in_one_line(files, capsys, monkeypatch, argv, advice, error):
    monkeypatch.delenv("INVHIDE_DEBUG", raising=False)
    break_subnets(monkeypatch, error)
    status, _, err = run(capsys, *[a.format(d=files) for a in argv], "--model", files / "model.safetensors")
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("invhide: error: out of memory") and advice in lines[0], lines[0]
    assert not (files / "oom.png").exists()


def test_interrupt_is_one_line_and_status_130(files, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("INVHIDE_DEBUG", raising=False)
    break_subnets(monkeypatch, KeyboardInterrupt())
    status, _, err = hide_files(capsys, files, tmp_path / "s.png", files / "model.safetensors")
    assert status == 130 and err.strip() == "invhide: interrupted" and not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("how", ["--debug first", "--debug after the command", "INVHIDE_DEBUG=1"])
def test_debug_shows_the_traceback_of_a_user_error(files, capsys, monkeypatch, how):
    argv = [
        "hide",
        files / "text.png",
        files / "secret.png",
        "-o",
        files / "out.png",
        "--model",
        files / "model.safetensors",
    ]
    monkeypatch.delenv("INVHIDE_DEBUG", raising=False)
    if how == "--debug first":
        argv.insert(0, "--debug")
    elif how == "--debug after the command":
        argv.insert(1, "--debug")
    else:
        monkeypatch.setenv("INVHIDE_DEBUG", "1")
    status, _, err = run(capsys, *argv)
    assert status == 2 and "Traceback (most recent call last)" in err and "ImageError" in err, err
    assert err.strip().splitlines()[-1].startswith("invhide: error: ") and "not an image" in err


def test_argparse_errors_stay_argparse_errors(capsys):
    for argv in (["hide", "a.png", "b.png", "-o", "c.png", "--tile", "abc"], ["reveal", "a.png"], ["nope"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "usage: invhide" in capsys.readouterr().err


# --------------------------------------------------------------------------
# invhide bench and its library side, invhide.evaluation.speed.run
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--repeat", "0"], "--repeat: expected an integer in [1, 1000], got '0'"),
        (["--repeat", "1000000000"], "--repeat: expected an integer in [1, 1000], got '1000000000'"),
        (["--threads", "-1"], "--threads: expected an integer in [1, "),
        (["--threads", "100000"], "--threads: expected an integer in [1, "),  # torch crashes (SIGSEGV) at 100000
        (["--blocks", "1000000000"], "--blocks: expected an integer in [1, 1024], got '1000000000'"),
        (["--depths", "4", "100000"], "--depths: expected an integer in [1, 1024], got '100000'"),
        (["--sizes", "-8"], "--sizes: expected an even integer in [2, 8192], got '-8'"),
        (["--sizes", "255"], "--sizes: expected an even integer in [2, 8192], got '255'"),
        (["--sizes", "1000000"], "--sizes: expected an even integer in [2, 8192], got '1000000'"),
        (["--crops", "64", "x"], "--crops: expected an even integer in [2, 8192], got 'x'"),
        (["--skip", "speed"], "--skip: invalid choice: 'speed'"),
    ],
)
def test_bench_refuses_bad_options_in_one_line(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    (line,) = [line for line in err.splitlines() if "error:" in line]
    assert line.startswith(f"invhide bench: error: argument {expected}"), line


@pytest.mark.parametrize(
    ("arguments", "error", "expected"),
    [
        ({"repeat": 0}, InputError, "repeat must be a positive integer, got 0"),
        ({"threads": -1}, InputError, "threads must be a positive integer, got -1"),
        ({"sizes": (256, -8)}, InputError, "sizes[1] must be an even integer >= 2, got -8"),
        ({"sizes": (7,)}, InputError, "sizes[0] must be an even integer >= 2, got 7"),
        ({"sizes": ()}, InputError, "sizes must hold at least one size"),
        ({"sizes": "256"}, InputTypeError, "sizes must be a sequence"),
        ({"train_crop": 3}, InputError, "train_crop must be an even integer >= 2, got 3"),
        ({"depths": (4, 0)}, InputError, "depths[1] must be a positive integer, got 0"),
        ({"dtype": "float8"}, InputError, "dtype must be one of"),
        ({"skip": ("speed",)}, InputError, "skip[0] must be one of"),
        ({"autocast": ("float32",)}, InputError, "autocast[0] must be one of"),
        ({"compile_subnets": "yes"}, InputTypeError, "compile_subnets must be a bool"),
        ({"device": "gpu"}, InputError, "device must name a device"),
        ({"json_path": "/no/such/folder/b.json"}, MissingPathError, "/no/such/folder does not exist"),
    ],
)
def test_bench_library_checks_every_argument_before_any_work(arguments, error, expected):
    lines = []
    with pytest.raises(error) as info:
        speed.run(**arguments, log=lines.append)
    assert isinstance(info.value, InvhideError) and expected in str(info.value)
    assert lines == [], "work started before the arguments were checked"


def test_bench_runs_and_writes_its_figures(capsys, tmp_path):
    status, out, err = run(capsys, "bench", "--sizes", "16", "--blocks", "1", "--repeat", "1", "--device", "cpu",
                           "--skip", "training", "autocast", "--depths", "1", "--crops", "8", "--train-batch", "1",
                           "--json", tmp_path / "bench.json")  # fmt: skip
    assert status == 0, err
    results = json.loads((tmp_path / "bench.json").read_text())
    assert [row["layout"] for row in results["inference"]] == ["NCHW", "channels-last"]
    assert all(row["size"] == 16 and row["hide_images_per_s"] > 0 for row in results["inference"])
    # measured in fresh processes (`from invhide.evaluation.speed import training_step_memory`)
    (memory,) = results["memory"]
    assert memory["blocks"] == 1 and memory["crop"] == 8
    assert all(math.isfinite(memory[key]) for key in ("ordinary_mib", "memory_saving_mib"))
    assert "training" not in results and "hide img/s" in out


# --------------------------------------------------------------------------
# No race: outputs created, not replaced; output folders held by one run
# --------------------------------------------------------------------------


def test_two_hides_to_one_output_never_both_succeed(files, capsys, tmp_path, monkeypatch):
    """Another process writes -o while this one computes: its file stays, this command fails in one line."""
    import invhide.cli.commands as commands

    output = tmp_path / "same.png"
    compute = commands.inference.hide

    def other_process_finishes_first(*args, **kwargs):
        output.write_bytes(b"the other run's stego")
        return compute(*args, **kwargs)

    monkeypatch.setattr(commands.inference, "hide", other_process_finishes_first)
    status, out, err = hide_files(capsys, files, output, files / "model.safetensors")
    assert status == 2 and err.count("\n") == 1, err
    assert err == (
        f"invhide: error: -o {output}: was written by another process while this one ran; it was left as it is and "
        f"nothing was written: pass --force to replace it, or choose another name\n"
    )
    assert output.read_bytes() == b"the other run's stego" and sorted(os.listdir(tmp_path)) == ["same.png"]
    status, _, err = hide_files(capsys, files, output, files / "model.safetensors", "--force")  # --force replaces
    assert status == 0, err
    assert levels(output).shape == (40, 48, 3)


def test_concurrent_hides_to_one_output_one_succeeds(files, tmp_path):
    """Two real `invhide hide -o same.png` processes started together: exactly one writes the file."""
    argv = [sys.executable, "-m", "invhide.cli", "hide", files / "cover.png", files / "secret.png", "-o",
            tmp_path / "same.png", "--model", files / "model.safetensors", "--no-check"]  # fmt: skip
    runs = [subprocess.Popen(list(map(str, argv)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    done = [(run.communicate(timeout=120), run.returncode) for run in runs]
    assert sorted(status for _, status in done) == [0, 2], done
    [((_, refused), _)] = [entry for entry in done if entry[1] == 2]
    assert refused.count("\n") == 1 and "Traceback" not in refused and f"-o {tmp_path / 'same.png'}" in refused
    assert sorted(os.listdir(tmp_path)) == ["same.png"] and levels(tmp_path / "same.png").shape == (40, 48, 3)


def quick_train(files, out, *extra):
    return ["train", "--recipe", "quick", "--train-dir", files / "photos", "--val-dir", files / "photos",
            "--eval-size", "16", "--crop", "16", "--steps", "2", "--out", out, *extra]  # fmt: skip


def test_a_second_train_into_a_held_out_folder_fails_at_once(files, capsys, tmp_path, monkeypatch):
    """While a run trains into --out, another run into it (in any process) is refused in one line."""
    import invhide.training.recipes as recipes

    out = tmp_path / "run"
    seen = {}

    def train_and_meet_another_run(chosen, folder, **kwargs):
        if "lock" not in seen:  # the first run; the second one, if it gets here, stops at once
            seen["lock"] = sorted(os.listdir(folder))
            seen["second"] = run(capsys, *quick_train(files, out, "--force"))
        raise KeyboardInterrupt  # the run stops here: nothing trained, nothing saved

    monkeypatch.setattr(recipes, "train_and_evaluate", train_and_meet_another_run)
    status, _, err = run(capsys, *quick_train(files, out))
    assert status == 130, err
    assert seen["lock"] == [".invhide.lock"]
    second, _, second_err = seen["second"]
    assert second == 2 and second_err.count("\n") == 1, second_err
    assert re.fullmatch(
        rf"invhide: error: --out {re.escape(str(out))} is in use by another invhide run \(process {os.getpid()} "
        rf"holds {re.escape(str(out / '.invhide.lock'))}\); wait for it to end, or choose another --out\n",
        second_err,
    ), second_err
    assert not out.exists(), "the lock is removed, and the folder the run created with it"


def test_an_out_folder_held_by_another_process_is_refused(files, capsys, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from invhide.io import files\n"
         f"with files.locked_folder({str(out)!r}):\n    print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        status, _, err = run(capsys, *quick_train(files, out))
        assert status == 2 and err.count("\n") == 1, err
        assert f"--out {out} is in use by another invhide run (process {holder.pid} holds " in err
        assert os.listdir(out) == [".invhide.lock"]  # the holder's, untouched; nothing written
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("delay", [0.2, 0.8], ids=["while torch loads", "later"])
def test_ctrl_c_from_the_first_instruction_is_one_line(files, tmp_path, delay):
    """SIGINT early in `python -m invhide.cli hide`: no import traceback, exit status 130, nothing written."""
    import signal
    import time

    argv = [sys.executable, "-m", "invhide.cli", "hide", files / "cover.png", files / "secret.png", "-o",
            tmp_path / "s.png", "--model", files / "model.safetensors", "--no-check"]  # fmt: skip
    process = subprocess.Popen(list(map(str, argv)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the command finished before the interrupt")
    # 130, or killed by SIGINT while the modules load (a shell reports 130 too)
    assert process.returncode in (130, -signal.SIGINT) and err == "invhide: interrupted\n", (process.returncode, err)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------
# examples/hinet_div2k.py: `invhide train` as a script
# --------------------------------------------------------------------------


def test_example_script_is_invhide_train(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # the same help layout in both processes
    done = subprocess.run([sys.executable, str(EXAMPLE), "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert done.stdout == capsys.readouterr().out
    assert "--recipe" in done.stdout and "--resume-or-start" in done.stdout and "--debug" in done.stdout


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "--debug"])
def test_example_script_reports_errors_in_one_line(tmp_path, debug):
    argv = [sys.executable, str(EXAMPLE), "--recipe", "quick", "--train-dir", str(tmp_path / "none"),
            "--out", str(tmp_path / "run")]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key != "INVHIDE_DEBUG"}
    done = subprocess.run([*argv, *(["--debug"] if debug else [])], capture_output=True, text=True, env=env)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("invhide: error: --train-dir ") and "none: no such folder" in last
    assert ("Traceback" in done.stderr) == debug, done.stderr
