"""Keys on the command line: keygen, --key-file, --passphrase, $INVHIDE_KEY_FILE, the public key, refusals."""

import io
import os

import pytest
import torch
from helpers import images

from invhide import InvertibleHider, save
from invhide.cli.main import main
from invhide.io.images import read_image, write_image
from invhide.io.keyfiles import read_key_file
from invhide.models.hider import PUBLIC_KEY
from invhide.models.inference import hide, reveal
from invhide.nn import subnets
from invhide.nn.keys import from_passphrase
from invhide.testing import randomize_


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    keyed = randomize_(InvertibleHider(num_blocks=2, subnet=subnets.conv(hidden=8, depth=2), keyed=True), 0, gain=0.02)
    save(keyed, folder / "keyed.safetensors")
    save(randomize_(InvertibleHider(num_blocks=2, subnet=subnets.conv(hidden=8, depth=2)), 0), folder / "plain")
    write_image(images(0, 3, 40, 48), folder / "cover.png")
    write_image(images(1, 3, 40, 48), folder / "secret.png")
    return folder


@pytest.fixture(autouse=True)
def no_key_settings(monkeypatch):
    for name in ("INVHIDE_KEY_FILE", "INVHIDE_MODEL", "INVHIDE_MODELS_DIR"):
        monkeypatch.delenv(name, raising=False)


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def keygen(capsys, path):
    status, out, err = run(capsys, "keygen", "-o", path)
    assert status == 0, err
    return read_key_file(path)


def hide_with(capsys, files, out, *key_options):
    cover, secret = files / "cover.png", files / "secret.png"
    return run(
        capsys, "hide", cover, secret, "-o", out, "--model", files / "keyed.safetensors", "--no-check", *key_options
    )


def reveal_with(capsys, files, stego, out, *key_options):
    return run(capsys, "reveal", stego, "-o", out, "--model", files / "keyed.safetensors", "--no-check", *key_options)


def library(files, key):
    """The stego the library makes under ``key``, and what it reveals of that stego's PNG under ``key``."""
    from invhide import load
    from invhide.nn.functional import quantize_8bit

    model = load(files / "keyed.safetensors")
    cover, secret = read_image(files / "cover.png"), read_image(files / "secret.png")
    stego = quantize_8bit(hide(model, cover, secret, key=key))
    return stego, reveal(model, stego, key=key)


def test_keygen_makes_a_private_32_byte_key_and_never_replaces_one(capsys, tmp_path):
    first = keygen(capsys, tmp_path / "k")
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600 and len(first) == 32
    assert keygen(capsys, tmp_path / "k2") != first
    status, out, err = run(capsys, "keygen", "-o", tmp_path / "k")
    assert status == 2 and "already exists" in err and err.count("\n") == 1
    assert read_key_file(tmp_path / "k") == first


def test_hide_and_reveal_with_a_key_file_are_the_library_under_that_key(files, capsys, tmp_path):
    key = keygen(capsys, tmp_path / "k")
    status, out, err = hide_with(capsys, files, tmp_path / "st.png", "--key-file", tmp_path / "k")
    assert status == 0 and err == "", err
    stego, revealed = library(files, key)
    assert torch.equal(read_image(tmp_path / "st.png"), stego)
    status, out, err = reveal_with(capsys, files, tmp_path / "st.png", tmp_path / "r.png", "--key-file", tmp_path / "k")
    assert status == 0 and err == "", err
    assert (read_image(tmp_path / "r.png") - revealed).abs().max() <= 0.5 / 255 + 1e-6
    assert key.hex() not in out + err and repr(key) not in out + err


def test_a_wrong_key_reveals_something_else_and_succeeds_all_the_same(files, capsys, tmp_path):
    keygen(capsys, tmp_path / "k")
    keygen(capsys, tmp_path / "other")
    hide_with(capsys, files, tmp_path / "st.png", "--key-file", tmp_path / "k")
    # One drawn z for both: this near-identity test model reveals little beyond z, which the key permutes.
    right = reveal_with(
        capsys, files, tmp_path / "st.png", tmp_path / "r.png", "--key-file", tmp_path / "k", "--seed", 0
    )
    wrong = reveal_with(
        capsys, files, tmp_path / "st.png", tmp_path / "w.png", "--key-file", tmp_path / "other", "--seed", 0
    )
    assert right[0] == wrong[0] == 0 and right[2] == wrong[2] == ""  # nothing tells a wrong key from a right one
    assert (read_image(tmp_path / "r.png") - read_image(tmp_path / "w.png")).abs().mean() > 0.05


def test_no_key_uses_the_public_key_with_a_one_line_note(files, capsys, tmp_path):
    status, _, err = hide_with(capsys, files, tmp_path / "st.png")
    assert status == 0 and err.count("\n") == 1 and "uses the public key" in err and "anyone" in err, err
    stego, revealed = library(files, PUBLIC_KEY)
    assert torch.equal(read_image(tmp_path / "st.png"), stego)
    status, _, err = reveal_with(capsys, files, tmp_path / "st.png", tmp_path / "r.png")
    assert status == 0 and err.count("\n") == 1 and "public key" in err, err
    assert (read_image(tmp_path / "r.png") - revealed).abs().max() <= 0.5 / 255 + 1e-6


def test_the_key_file_of_the_environment(files, capsys, tmp_path, monkeypatch):
    key = keygen(capsys, tmp_path / "k")
    monkeypatch.setenv("INVHIDE_KEY_FILE", str(tmp_path / "k"))
    status, _, err = hide_with(capsys, files, tmp_path / "st.png")
    assert status == 0 and err == "", err
    assert torch.equal(read_image(tmp_path / "st.png"), library(files, key)[0])
    monkeypatch.setenv("INVHIDE_KEY_FILE", str(tmp_path / "missing"))
    status, _, err = hide_with(capsys, files, tmp_path / "st2.png")
    assert status == 2 and err.startswith("invhide: error: $INVHIDE_KEY_FILE: ") and "missing" in err, err
    assert not (tmp_path / "st2.png").exists()


def test_a_passphrase_read_from_standard_input(files, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery staple\n"))
    status, _, err = hide_with(capsys, files, tmp_path / "st.png", "--passphrase")
    assert status == 0 and err == "", err
    stego, _ = library(files, from_passphrase("correct horse battery staple"))
    assert torch.equal(read_image(tmp_path / "st.png"), stego)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    status, _, err = hide_with(capsys, files, tmp_path / "st2.png", "--passphrase")
    assert status == 2 and "--passphrase" in err and "empty" in err, err


def test_a_typed_passphrase_is_asked_twice_when_hiding(files, capsys, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    answers = iter(["one passphrase", "another"])
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    status, _, err = hide_with(capsys, files, tmp_path / "st.png", "--passphrase")
    assert status == 2 and "differ" in err and not (tmp_path / "st.png").exists(), err


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: (path.write_bytes(bytes(32)), os.chmod(path, 0o644)), "other users may read"),
        (lambda path: (path.write_bytes(bytes(31)), os.chmod(path, 0o600)), "exactly 32 bytes, this one 31"),
        (lambda path: (path.write_bytes(bytes(64)), os.chmod(path, 0o600)), "exactly 32 bytes"),
        (lambda path: path.mkdir(), "not a regular file"),
    ],
)
def test_a_bad_key_file_is_refused_in_one_line_and_nothing_written(files, capsys, tmp_path, make, message):
    make(tmp_path / "k")
    for status, _, err in (
        hide_with(capsys, files, tmp_path / "st.png", "--key-file", tmp_path / "k"),
        reveal_with(capsys, files, files / "cover.png", tmp_path / "r.png", "--key-file", tmp_path / "k"),
    ):
        assert status == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "st.png").exists() and not (tmp_path / "r.png").exists()


def test_an_unkeyed_model_refuses_a_key(files, capsys, tmp_path, monkeypatch):
    keygen(capsys, tmp_path / "k")
    argv = ["hide", files / "cover.png", files / "secret.png", "-o", tmp_path / "st.png", "--model", files / "plain"]
    status, _, err = run(capsys, *argv, "--no-check", "--key-file", tmp_path / "k")
    assert status == 2 and err.startswith(f"invhide: error: --key-file {tmp_path / 'k'}: ") and "not keyed" in err
    monkeypatch.setenv("INVHIDE_KEY_FILE", str(tmp_path / "k"))
    status, _, err = run(capsys, *argv, "--no-check")
    assert status == 2 and "$INVHIDE_KEY_FILE" in err and "not keyed" in err, err
    assert not (tmp_path / "st.png").exists()


def test_a_key_comes_one_way_only(files, capsys, tmp_path):
    argv = ["hide", files / "cover.png", files / "secret.png", "-o", tmp_path / "s.png", "--key-file", "k"]
    with pytest.raises(SystemExit):
        main([*map(str, argv), "--passphrase"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_models_marks_keyed_models(capsys):
    status, out, _ = run(capsys, "models")
    assert status == 0 and "keyed:" in out
