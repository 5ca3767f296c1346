"""The invhide command, including a table of hostile and broken inputs."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import images, randomize_
from PIL import Image

from invhide import InvertibleHider, save, subnets
from invhide.cli.main import main
from invhide.io.images import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    model = randomize_(InvertibleHider(num_blocks=2, subnet=subnets.conv(hidden=8, depth=2)), 0, gain=0.02)
    save(model, folder / "model.safetensors")
    write_image(images(0, 3, 40, 48), folder / "cover.png")
    write_image(images(1, 3, 40, 48), folder / "secret.png")
    write_image(images(2, 3, 32, 32), folder / "small.png")
    write_image(images(3, 3, 333, 517), folder / "odd_cover.png")
    write_image(images(4, 3, 333, 517), folder / "odd_secret.png")
    write_image(images(5, 3, 1, 1), folder / "dot.png")
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
    import struct
    import zlib

    small[16:24] = struct.pack(">II", 100_000, 100_000)
    small[29:33] = struct.pack(">I", zlib.crc32(bytes(small[12:29])))
    (folder / "huge.png").write_bytes(bytes(small))
    return folder


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def leftovers(folder, before):
    return sorted(set(os.listdir(folder)) - before)


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
        "do not match",
    ),
    ("NaN weights", ["hide", "{d}/cover.png", "{d}/secret.png", "--model", "{d}/nan.safetensors"], "NaN"),
    ("pickled .pt model", ["hide", "{d}/cover.png", "{d}/secret.png", "--model", "{d}/model.pt"], "convert-official"),
    ("unknown model", ["hide", "{d}/cover.png", "{d}/secret.png", "--model", "nonexistent-model"], "no model named"),
    ("lossy output", ["hide", "{d}/cover.png", "{d}/secret.png", "-o", "{d}/stego.jpg"], "lossless"),
    (
        "missing output folder",
        ["hide", "{d}/cover.png", "{d}/secret.png", "-o", "{d}/no/such/stego.png"],
        "does not exist",
    ),
    ("output is a folder", ["hide", "{d}/cover.png", "{d}/secret.png", "-o", "{d}/folder.png"], "folder.png"),
    ("CUDA on a CPU machine", ["hide", "{d}/cover.png", "{d}/secret.png", "--device", "cuda:0"], "CUDA"),
    ("reveal a text file", ["reveal", "{d}/text.png"], "not an image"),
    ("eval an empty folder", ["eval", "{d}/folder.png"], "no image"),
    (
        "convert a non-checkpoint",
        ["convert-official", "{d}/text.png", "-o", "{d}/converted"],
        "not a readable PyTorch checkpoint",
    ),
]


@pytest.mark.parametrize(("name", "argv", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gives_one_line_and_no_output(files, capsys, monkeypatch, name, argv, expected):
    if torch.cuda.is_available() and "CUDA" in expected:
        pytest.skip("this machine has CUDA")
    monkeypatch.delenv("INVHIDE_MODEL", raising=False)
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
    assert expected in errors[0], errors[0]
    assert leftovers(files, before) == [], "partial output left behind"


def test_no_model_given(files, capsys, monkeypatch):
    monkeypatch.delenv("INVHIDE_MODEL", raising=False)
    status, _, err = run(capsys, "hide", files / "cover.png", files / "secret.png", "-o", files / "out.png")
    assert status == 2 and "no model given" in err


def test_hide_and_reveal(files, capsys, tmp_path):
    model = files / "model.safetensors"
    status, out, _ = hide(capsys, files, tmp_path / "stego.png", model)
    assert status == 0 and "cover/stego PSNR" in out
    assert read_image(tmp_path / "stego.png").shape == (3, 40, 48)
    status, out, _ = run(capsys, "reveal", tmp_path / "stego.png", "-o", tmp_path / "secret.png", "--model", model)
    assert status == 0 and read_image(tmp_path / "secret.png").shape == (3, 40, 48)


@pytest.mark.parametrize(("cover", "secret", "extra", "size"), [
    ("odd_cover.png", "odd_secret.png", [], (333, 517)),
    ("dot.png", "dot.png", [], (1, 1)),
    ("cover.png", "small.png", ["--fit", "crop"], (40, 48)),
    ("cover.png", "small.png", ["--fit", "resize"], (40, 48)),
    ("odd_cover.png", "odd_secret.png", ["--tile", "128", "--overlap", "16"], (333, 517)),
])  # fmt: skip
def test_any_size_comes_back_at_its_size(files, capsys, tmp_path, cover, secret, extra, size):
    model = files / "model.safetensors"
    status, _, err = run(
        capsys, "hide", files / cover, files / secret, "-o", tmp_path / "s.png", "--model", model, *extra
    )
    assert status == 0, err
    tiling = [a for a in extra if a not in ("--fit", "crop", "resize")]
    status, _, err = run(capsys, "reveal", tmp_path / "s.png", "-o", tmp_path / "r.png", "--model", model, *tiling)
    assert status == 0, err
    assert read_image(tmp_path / "s.png").shape[-2:] == read_image(tmp_path / "r.png").shape[-2:] == size


def hide(capsys, files, output, model):
    """``invhide hide cover.png secret.png -o OUTPUT --model MODEL``."""
    return run(capsys, "hide", files / "cover.png", files / "secret.png", "-o", output, "--model", model)


def test_float64_model_with_8_bit_images(files, capsys, tmp_path):
    model = randomize_(InvertibleHider(num_blocks=1, subnet=subnets.conv(hidden=8, depth=2)), 0, gain=0.02).double()
    save(model, tmp_path / "double.safetensors")
    status, _, err = hide(capsys, files, tmp_path / "s.png", tmp_path / "double.safetensors")
    assert status == 0, err
    status, _, err = run(
        capsys, "reveal", tmp_path / "s.png", "-o", tmp_path / "r.png", "--model", tmp_path / "double.safetensors"
    )
    assert status == 0, err


def test_a_model_with_several_secrets_is_refused_by_hide(files, capsys, tmp_path):
    save(InvertibleHider(num_secrets=2, num_blocks=1, subnet="conv"), tmp_path / "two.safetensors")
    status, _, err = hide(capsys, files, tmp_path / "s.png", tmp_path / "two.safetensors")
    assert status == 2 and "hides 2 secrets per cover" in err and not (tmp_path / "s.png").exists()


def test_grayscale_input_warns_in_one_line(files, capsys, tmp_path):
    model = files / "model.safetensors"
    status, _, err = run(
        capsys, "hide", files / "gray.png", files / "secret.png", "-o", tmp_path / "s.png", "--model", model
    )
    assert status == 0
    warnings = [line for line in err.splitlines() if line.startswith("invhide: warning: ")]
    assert len(warnings) == 1 and "grayscale" in warnings[0]


def test_convert_official_and_eval(files, capsys, tmp_path):
    from test_hinet import far_from_identity_checkpoint

    _, state = far_from_identity_checkpoint(2)
    torch.save({"net": state}, tmp_path / "model.pt")
    status, out, err = run(capsys, "convert-official", tmp_path / "model.pt", "-o", tmp_path / "converted")
    assert status == 0, err
    assert (tmp_path / "converted" / "model.safetensors").is_file()
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        write_image(images(10 + i, 3, 24, 24), folder / f"{i}.png")
    status, out, err = run(
        capsys, "eval", folder, "--model", tmp_path / "converted", "--size", "16", "--json", tmp_path / "r.json"
    )
    assert status == 0, err
    assert "cover/stego" in out and "rounded to 8 bits" in out and (tmp_path / "r.json").is_file()


def test_every_command_has_help():
    for command in ("hide", "reveal", "train", "eval", "bench", "convert-official"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0


def test_console_script_in_new_processes(files, tmp_path):
    """hide in one process, reveal from the PNG in another, as a user would."""
    model = str(files / "model.safetensors")
    env = {**os.environ, "INVHIDE_MODEL": model}
    hide = [
        sys.executable,
        "-m",
        "invhide.cli",
        "hide",
        str(files / "cover.png"),
        str(files / "secret.png"),
        "-o",
        str(tmp_path / "s.png"),
    ]
    reveal = [sys.executable, "-m", "invhide.cli", "reveal", str(tmp_path / "s.png"), "-o", str(tmp_path / "r.png")]
    for command in (hide, reveal):
        out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
        assert out.returncode == 0, out.stderr
    bad = subprocess.run(
        [*hide[:4], str(files / "text.png"), *hide[5:]], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_example_script_reports_errors_in_one_line(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "examples" / "hinet_div2k.py"),
        "--quick",
        "--train-dir",
        str(tmp_path / "none"),
    ]
    out = subprocess.run([*command, "--out", str(tmp_path / "run")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.strip().startswith("invhide: error: ") and "Traceback" not in out.stderr
    assert "none: no such folder" in out.stderr
