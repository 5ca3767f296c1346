"""The model zoo (invhide.models.zoo) and how the commands choose a model (invhide.cli.models).

Every test works in its own folder (the ``folder`` argument or
``$INVHIDE_MODELS_DIR``); only ``test_the_shipped_models_verify`` reads the
package's own folder, and nothing writes into it.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
from pathlib import Path

import pytest
import torch
from helpers import images

from invhide import InvertibleHider
from invhide.cli import models as cli_models
from invhide.cli.main import run_reporting_errors
from invhide.errors import ConfigError, FileFormatError, InputError, MissingPathError, NotAFolderError, PathExistsError
from invhide.io.checkpoint import CheckpointError, load_tensors, save
from invhide.io.checkpoint import load as load_path
from invhide.models import inference, zoo
from invhide.testing import randomize_

pytestmark = pytest.mark.filterwarnings("error")


def fields(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "headline": "kodak24 8-bit: 30.00 / 29.00 dB (a test model, not measured)",
        "default": False,
        "training": {"data": "random tensors", "validation": "none"},
        "steps": 12,
        "wall_seconds": 3.5,
        "hardware": {"cpu": "test CPU", "threads": 2, "gpu": None},
        "command": "python -m pytest tests/test_zoo.py",
        "tables": {"kodak24": {"note": "not measured"}},
    }
    base.update(changes)
    return base


def hider(seed: int = 0) -> InvertibleHider:
    """A small hider away from the identity (a fresh one would hide nothing and prove nothing)."""
    return randomize_(InvertibleHider(num_blocks=2, subnet="conv"), seed=seed, gain=0.5).eval()


def outputs(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    cover, secret = images(1, 2, 3, 32, 32), images(2, 2, 3, 32, 32)
    with torch.inference_mode():
        stego, _ = model.hide(cover, secret)
        recovered = model.reveal(stego, z=torch.zeros_like(stego))
    return stego, recovered


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No test sees the caller's $INVHIDE_MODEL or $INVHIDE_MODELS_DIR."""
    monkeypatch.delenv("INVHIDE_MODEL", raising=False)
    monkeypatch.delenv(zoo.MODELS_DIR_ENV, raising=False)


# --------------------------------------------------------------------------
# publish and load
# --------------------------------------------------------------------------


def test_publish_then_load_by_name_gives_the_same_model(tmp_path):
    model = hider()
    published = zoo.publish(model, "tiny", tmp_path, fields())
    assert (tmp_path / "tiny.safetensors").is_file() and (tmp_path / "tiny.json").is_file()
    assert published.sha256 == zoo.file_sha256(tmp_path / "tiny.safetensors")
    assert published.architecture == model.config() and published.dtype == "float32"
    assert zoo.record("tiny", tmp_path) == published
    assert [r.name for r in zoo.available(tmp_path)] == ["tiny"]

    loaded = zoo.load("tiny", folder=tmp_path)
    assert not loaded.training and loaded.config() == model.config()
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    for ours, theirs in zip(outputs(loaded), outputs(model)):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert abs(outputs(model)[0] - images(1, 2, 3, 32, 32)).max() > 1e-2  # the hider really hides


def test_the_record_file_holds_every_field(tmp_path):
    published = zoo.publish(hider(), "tiny", tmp_path, fields(steps=7))
    data = json.loads((tmp_path / "tiny.json").read_text())
    assert data == published.to_dict()
    assert data["format"] == zoo.RECORD_FORMAT and data["steps"] == 7 and data["weights"] == "tiny.safetensors"
    assert set(data) == {
        "format", "name", "headline", "default", "weights", "sha256", "dtype", "architecture", "training", "steps",
        "wall_seconds", "hardware", "command", "tables", "trained_channels",
    }  # fmt: skip
    assert data["trained_channels"] == ["lossless"]  # left out: trained on lossless stegos only


def test_the_channels_a_model_was_trained_for_reach_its_record_and_the_loaded_model(tmp_path):
    """Issue 22: ``invhide reveal`` checks a lossy file against what the model says (its weights file stores it)."""
    robust = hider()
    robust.trained_channels = frozenset({"jpeg", "lossless"})
    zoo.publish(robust, "robust", tmp_path, fields())
    zoo.publish(hider(), "plain", tmp_path, fields())
    assert zoo.record("robust", tmp_path).trained_channels == ("lossless", "jpeg")
    assert inference.trained_channels(zoo.load("robust", folder=tmp_path)) == {"lossless", "jpeg"}
    assert inference.trained_channels(zoo.load("plain", folder=tmp_path)) == {"lossless"}
    with pytest.raises(InputError, match=r"must not set \['trained_channels'\]: publish computes them"):
        zoo.publish(hider(), "other", tmp_path, fields(trained_channels=["lossless", "jpeg"]))
    data = json.loads((tmp_path / "plain.json").read_text())
    del data["trained_channels"]  # a record written before the field existed
    (tmp_path / "plain.json").write_text(json.dumps(data))
    assert zoo.record("plain", tmp_path).trained_channels == ("lossless",)
    (tmp_path / "robust.json").write_text(json.dumps({**data, "name": "robust", "weights": "robust.safetensors",
        "sha256": zoo.file_sha256(tmp_path / "robust.safetensors")}))  # fmt: skip
    with pytest.raises(CheckpointError, match="its trained_channels differ from those stored in"):
        zoo.load("robust", folder=tmp_path)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_halves_the_file_and_loads_as_float32(tmp_path, dtype):
    model = hider()
    zoo.publish(model, "full", tmp_path, fields())
    zoo.publish(model, "half", tmp_path, fields(), dtype=dtype)
    assert next(model.parameters()).dtype == torch.float32  # the caller's model is not converted
    full, half = (os.path.getsize(tmp_path / f"{n}.safetensors") for n in ("full", "half"))
    assert half < 0.55 * full, (half, full)
    tensors, _ = load_tensors(tmp_path / "half.safetensors")
    assert {t.dtype for t in tensors.values()} == {getattr(torch, dtype)}

    loaded = zoo.load("half", folder=tmp_path)
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    for key, value in model.state_dict().items():  # exactly the rounded weights
        assert torch.equal(loaded.state_dict()[key], value.to(getattr(torch, dtype)).float()), key
    stego, recovered = outputs(loaded)
    stego_full, recovered_full = outputs(model)
    stego_diff = (stego - stego_full).abs().max().item()
    recovered_diff = (recovered - recovered_full).abs().max().item()
    print(f"{dtype} weights: max |output difference| stego {stego_diff:.2e}, recovered {recovered_diff:.2e}")
    assert stego_diff > 0 and recovered_diff > 0  # the rounding is real ...
    bound = 2e-3 if dtype == "float16" else 2e-2  # ... and small: 10 and 7 mantissa bits
    assert stego_diff < bound and recovered_diff < 4 * bound, (stego_diff, recovered_diff)


def test_weights_beyond_float16_are_refused(tmp_path):
    model = hider()
    with torch.no_grad():
        next(model.parameters())[0] = 1e6
    with pytest.raises(InputError, match="do not fit float16"):
        zoo.publish(model, "big", tmp_path, fields(), dtype="float16")
    assert list(tmp_path.iterdir()) == []


def test_a_path_goes_to_the_checkpoint_loader(tmp_path):
    model = hider()
    file = save(model, tmp_path / "run")  # a training run's folder
    for spec in (str(tmp_path / "run"), tmp_path / "run", str(file)):
        loaded = zoo.load(spec, folder=tmp_path / "empty-zoo")
        assert loaded.config() == model.config()
        assert torch.equal(outputs(loaded)[0], outputs(load_path(file))[0])


def test_a_name_wins_over_a_path_of_the_same_name_and_a_path_object_is_a_path(tmp_path, monkeypatch):
    shipped, local = hider(0), hider(1)
    zoo.publish(shipped, "tiny", tmp_path / "zoo", fields())
    save(local, tmp_path / "tiny")  # a run folder called like the shipped model
    monkeypatch.chdir(tmp_path)
    by_name = zoo.load("tiny", folder=tmp_path / "zoo")
    torch.testing.assert_close(outputs(by_name)[0], outputs(shipped)[0], rtol=0, atol=1e-6)
    for path in (Path("tiny"), "./tiny"):
        by_path = zoo.load(path, folder=tmp_path / "zoo")
        torch.testing.assert_close(outputs(by_path)[0], outputs(local)[0], rtol=0, atol=1e-6)


def test_a_changed_weights_file_is_refused_naming_it(tmp_path):
    zoo.publish(hider(), "tiny", tmp_path, fields())
    weights = tmp_path / "tiny.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01  # one bit of the last tensor: still a valid safetensors file with finite values
    weights.write_bytes(bytes(data))
    load_path(weights)  # the checkpoint loader alone would not notice
    with pytest.raises(CheckpointError, match="SHA-256") as caught:
        zoo.load("tiny", folder=tmp_path)
    assert str(weights) in str(caught.value) and str(tmp_path / "tiny.json") in str(caught.value)


def test_missing_weights_are_named(tmp_path):
    zoo.publish(hider(), "tiny", tmp_path, fields())
    (tmp_path / "tiny.safetensors").unlink()
    with pytest.raises(MissingPathError, match="tiny.safetensors: the weights of model 'tiny' are missing"):
        zoo.load("tiny", folder=tmp_path)


def test_a_record_whose_architecture_differs_from_the_weights_is_refused(tmp_path):
    zoo.publish(hider(), "tiny", tmp_path, fields())
    other = InvertibleHider(num_blocks=2, subnet="conv", clamp=1.5)  # same tensors, other config
    save(other, tmp_path / "tiny.safetensors")
    record = json.loads((tmp_path / "tiny.json").read_text())
    record["sha256"] = zoo.file_sha256(tmp_path / "tiny.safetensors")
    (tmp_path / "tiny.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="architecture differs"):
        zoo.load("tiny", folder=tmp_path)


def test_an_unknown_name_lists_the_available_ones(tmp_path):
    with pytest.raises(
        MissingPathError, match=r"^nope: not a model name \(\S+ holds no models\), nor a file or folder$"
    ):
        zoo.load("nope", folder=tmp_path)
    zoo.publish(hider(), "first", tmp_path, fields())
    zoo.publish(hider(), "second", tmp_path, fields())
    with pytest.raises(MissingPathError, match="first, second") as caught:
        zoo.load("nope", folder=tmp_path)
    assert isinstance(caught.value, FileNotFoundError)
    with pytest.raises(MissingPathError, match="no model named 'nope'; models in .*: first, second"):
        zoo.record("nope", tmp_path)


# --------------------------------------------------------------------------
# The folder and the default
# --------------------------------------------------------------------------


def test_the_folder_comes_from_the_argument_then_the_environment_then_the_package(tmp_path, monkeypatch):
    assert zoo.models_dir() == zoo.SHIPPED
    assert Path(zoo.__file__).parent / "trained" == zoo.SHIPPED
    zoo.publish(hider(), "from-env", tmp_path / "env", fields())
    zoo.publish(hider(), "from-arg", tmp_path / "arg", fields())
    monkeypatch.setenv(zoo.MODELS_DIR_ENV, str(tmp_path / "env"))
    assert [r.name for r in zoo.available()] == ["from-env"]
    assert [r.name for r in zoo.available(tmp_path / "arg")] == ["from-arg"]
    assert type(zoo.load("from-env")).__name__ == "InvertibleHider"
    monkeypatch.setenv(zoo.MODELS_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(MissingPathError, match=r"^\$INVHIDE_MODELS_DIR=\S+/missing: no such model folder$"):
        zoo.available()
    with pytest.raises(MissingPathError, match=r"^nope: not a model name \(\$INVHIDE_MODELS_DIR=\S+/missing: no such"):
        zoo.load("nope")
    (tmp_path / "missing").mkdir()
    assert zoo.contents() == f"${zoo.MODELS_DIR_ENV}={tmp_path / 'missing'} holds no models"
    monkeypatch.delenv(zoo.MODELS_DIR_ENV)
    shipped = zoo.names()
    assert zoo.contents() == (
        f"shipped: {', '.join(shipped)}" if shipped else "no trained models ship with this installation yet"
    )


def test_one_default_per_folder(tmp_path):
    assert zoo.default_name(tmp_path) is None
    zoo.publish(hider(), "first", tmp_path, fields(default=True))
    zoo.publish(hider(), "plain", tmp_path, fields())
    assert zoo.default_name(tmp_path) == "first"
    zoo.publish(hider(), "second", tmp_path, fields(default=True))  # the new default demotes the old one
    assert {r.name: r.default for r in zoo.available(tmp_path)} == {"first": False, "plain": False, "second": True}
    chosen = zoo.set_default("plain", tmp_path)
    assert chosen.default and zoo.default_name(tmp_path) == "plain"
    assert zoo.load("first", folder=tmp_path) is not None  # rewriting the flag keeps the SHA-256 valid
    with pytest.raises(MissingPathError, match="no model named 'other'"):
        zoo.set_default("other", tmp_path)


def test_publish_refuses_to_overwrite_unless_asked(tmp_path):
    zoo.publish(hider(0), "tiny", tmp_path, fields())
    with pytest.raises(PathExistsError, match="a model named 'tiny' exists"):
        zoo.publish(hider(1), "tiny", tmp_path, fields())
    replaced = zoo.publish(hider(1), "tiny", tmp_path, fields(steps=99), overwrite=True)
    assert replaced.steps == 99 and zoo.load("tiny", folder=tmp_path) is not None


def test_publish_never_replaces_a_model_written_meanwhile(tmp_path, monkeypatch):
    """Without overwrite, weights that another process wrote after the check are left as they are."""
    save = zoo.checkpoint.save

    def another_process_first(model, path, **kwargs):
        Path(path).write_bytes(b"another process's weights")
        return save(model, path, **kwargs)

    monkeypatch.setattr(zoo.checkpoint, "save", another_process_first)
    with pytest.raises(PathExistsError, match=r"tiny.safetensors exists; pass replace=True"):
        zoo.publish(hider(0), "tiny", tmp_path, fields())
    assert (tmp_path / "tiny.safetensors").read_bytes() == b"another process's weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.safetensors"]


def test_remeasure_replaces_the_measured_fields_only_and_checks_the_weights(tmp_path):
    published = zoo.publish(hider(0), "tiny", tmp_path, fields(default=True))
    weights = (tmp_path / "tiny.safetensors").read_bytes()
    new = zoo.remeasure("tiny", tmp_path, headline="measured again", tables={"kodak24": {"psnr": 31.5}})
    assert new.headline == "measured again" and new.tables == {"kodak24": {"psnr": 31.5}}
    assert zoo.record("tiny", tmp_path) == new
    assert dataclasses.replace(new, headline=published.headline, tables=published.tables) == published
    assert (tmp_path / "tiny.safetensors").read_bytes() == weights  # the weights are not written
    with pytest.raises(ConfigError, match="no NaN or infinity"):
        zoo.remeasure("tiny", tmp_path, headline="h", tables={"psnr": float("nan")})
    with pytest.raises(ConfigError, match="headline must be"):
        zoo.remeasure("tiny", tmp_path, headline="", tables={})
    with pytest.raises(MissingPathError, match="no model named 'other'"):
        zoo.remeasure("other", tmp_path, headline="h", tables={})
    (tmp_path / "tiny.safetensors").write_bytes(weights[:-1] + bytes([weights[-1] ^ 1]))
    with pytest.raises(CheckpointError, match="does not match the SHA-256 of its record"):
        zoo.remeasure("tiny", tmp_path, headline="h", tables={})
    assert zoo.record("tiny", tmp_path) == new  # nothing written on a refusal


def test_publish_into_a_file_is_refused(tmp_path):
    (tmp_path / "models").write_bytes(b"not a folder")
    with pytest.raises(NotAFolderError, match=r"models: is a file, not a model folder$"):
        zoo.publish(hider(0), "tiny", tmp_path / "models", fields())


@pytest.mark.parametrize(
    ("name", "given", "kind", "message"),
    [
        ("Tiny", fields(), InputError, "lower-case letters and digits"),
        ("a/b", fields(), InputError, "lower-case letters and digits"),
        ("tiny.v2", fields(), InputError, "lower-case letters and digits"),
        ("tiny", fields(sha256="0" * 64), InputError, r"must not set \['sha256'\]"),
        (
            "tiny",
            {k: v for k, v in fields().items() if k != "command"},
            ConfigError,
            r"missing field\(s\) \['command'\]",
        ),
        ("tiny", fields(colour="blue"), ConfigError, r"unknown field\(s\) \['colour'\]"),
        ("tiny", fields(steps=0), ConfigError, "steps must be a positive integer"),
        ("tiny", fields(steps=True), ConfigError, "steps must be a positive integer"),
        ("tiny", fields(headline="two\nlines"), ConfigError, "headline must be one line"),
        ("tiny", fields(wall_seconds=float("nan")), ConfigError, "JSON values only"),
        ("tiny", fields(hardware={"cpu": "x"}), ConfigError, "hardware must be"),
        ("tiny", fields(training={"steps": 3}), ConfigError, "'data' names the training images"),
        ("tiny", fields(tables=[1, 2]), ConfigError, "tables must be a JSON object"),
        ("tiny", fields(tables={"t": object()}), ConfigError, "JSON values only"),
    ],
)
def test_publish_checks_the_record_before_writing(tmp_path, name, given, kind, message):
    with pytest.raises(kind, match=message):
        zoo.publish(hider(), name, tmp_path / "zoo", given)
    assert not (tmp_path / "zoo").exists()


def edit(data: dict, **changes: object) -> dict:
    data = dict(data)
    for key, value in changes.items():
        if value is KeyError:
            del data[key]
        else:
            data[key] = value
    return data


BAD_RECORDS = [
    ("not JSON", lambda d: b"{not json", "not a JSON model record"),
    ("a list", lambda d: json.dumps([d]).encode(), "must be a JSON object, got list"),
    ("no headline", lambda d: edit(d, headline=KeyError), r"missing field\(s\) \['headline'\]"),
    ("an unknown field", lambda d: edit(d, extra=1), r"unknown field\(s\) \['extra'\]"),
    ("another format", lambda d: edit(d, format="v0"), "format must be"),
    ("another name", lambda d: edit(d, name="other", weights="other.safetensors"), "differs from its file name"),
    ("weights elsewhere", lambda d: edit(d, weights="../x.safetensors"), "weights must be 'tiny.safetensors'"),
    ("a short sha256", lambda d: edit(d, sha256="abc"), "sha256 must be 64"),
    ("an unknown dtype", lambda d: edit(d, dtype="int8"), "dtype must be one of"),
    ("steps as text", lambda d: edit(d, steps="12"), "steps must be a positive integer"),
    ("negative time", lambda d: edit(d, wall_seconds=-1), "wall_seconds must be a finite number"),
    ("default as text", lambda d: edit(d, default="yes"), "default must be true or false"),
    ("no class", lambda d: edit(d, architecture={"num_blocks": 2}), "architecture must be a model config"),
    ("threads as text", lambda d: edit(d, hardware={"cpu": "x", "threads": "2", "gpu": None}), "hardware must be"),
    ("an empty command", lambda d: edit(d, command=" "), "command must be"),
    ("channels without lossless", lambda d: edit(d, trained_channels=["jpeg"]), "'lossless' among them"),
    ("an unknown channel", lambda d: edit(d, trained_channels=["lossless", "fax"]), "trained_channels must be"),
    ("channels as text", lambda d: edit(d, trained_channels="jpeg"), "trained_channels must be a list"),
]


@pytest.mark.parametrize(("what", "change", "message"), BAD_RECORDS, ids=[b[0] for b in BAD_RECORDS])
def test_a_bad_record_is_refused_naming_its_file(tmp_path, what, change, message):
    zoo.publish(hider(), "tiny", tmp_path, fields())
    path = tmp_path / "tiny.json"
    changed = change(json.loads(path.read_text()))
    path.write_bytes(changed if isinstance(changed, bytes) else json.dumps(changed).encode())
    for read in (lambda: zoo.available(tmp_path), lambda: zoo.load("tiny", folder=tmp_path)):
        with pytest.raises(CheckpointError, match=message) as caught:
            read()
        assert str(caught.value).startswith(f"{path}: "), caught.value
        assert isinstance(caught.value, ValueError)


def test_two_defaults_are_refused(tmp_path):
    zoo.publish(hider(), "first", tmp_path, fields(default=True))
    zoo.publish(hider(), "second", tmp_path, fields())
    data = json.loads((tmp_path / "second.json").read_text())
    (tmp_path / "second.json").write_text(json.dumps({**data, "default": True}))
    with pytest.raises(CheckpointError, match="first.json and .*second.json are both marked default"):
        zoo.default_name(tmp_path)


def test_hidden_files_and_folders_are_not_records(tmp_path):
    zoo.publish(hider(), "tiny", tmp_path, fields())
    (tmp_path / ".tiny.json.1234.tmp").write_text("half written")
    (tmp_path / ".half.json").write_text("{")
    (tmp_path / "folder.json").mkdir()
    (tmp_path / "README.md").write_text("notes")
    assert zoo.names(tmp_path) == ["tiny"]
    assert [r.name for r in zoo.available(tmp_path)] == ["tiny"]


def test_the_shipped_models_verify():
    """Whatever ships in the package: valid records, weights matching their SHA-256, at most one default."""
    shipped = zoo.available(zoo.SHIPPED)
    assert sum(r.default for r in shipped) <= 1
    for entry in shipped:
        model = zoo.load(entry.name, folder=zoo.SHIPPED)
        assert model.config() == entry.architecture
    allowed = {"README.md"} | {f"{r.name}.json" for r in shipped} | {r.weights for r in shipped}
    stray = sorted(p.name for p in zoo.SHIPPED.iterdir() if p.name not in allowed and p.name != "__pycache__")
    assert stray == [], f"files in {zoo.SHIPPED} that no record names (they would ship in the wheel)"
    size = sum(p.stat().st_size for p in zoo.SHIPPED.iterdir() if p.is_file())
    assert size < 20 << 20, f"{size / 2**20:.1f} MiB of shipped models: the wheel must stay under 25 MB"


def test_hardware_describes_this_machine():
    described = zoo.hardware("cpu")
    assert described["threads"] == torch.get_num_threads() and described["gpu"] is None
    assert described["cpu"] and described["logical_cpus"] == os.cpu_count()


# --------------------------------------------------------------------------
# The command line: invhide models, and which model a command uses
# --------------------------------------------------------------------------


def test_the_choice_is_the_option_then_the_environment_then_the_default(tmp_path):
    env = {"INVHIDE_MODEL": "from-env"}
    assert cli_models.choose_model("given", environ=env, folder=tmp_path) == cli_models.ModelChoice("given", "--model")
    assert cli_models.choose_model(None, environ=env, folder=tmp_path).origin == "$INVHIDE_MODEL"
    with pytest.raises(InputError, match=r"^no model given, and no default model \(\S+ holds no models\)") as caught:
        cli_models.choose_model(None, environ={"INVHIDE_MODEL": "  "}, folder=tmp_path)
    assert "invhide train --recipe quick" in str(caught.value) and "$INVHIDE_MODEL" in str(caught.value)
    with pytest.raises(InputError, match="--model is empty"):
        cli_models.choose_model("", environ=env, folder=tmp_path)
    zoo.publish(hider(), "tiny", tmp_path, fields(default=True))
    assert cli_models.choose_model(None, environ={}, folder=tmp_path) == cli_models.ModelChoice("tiny", "default")
    assert cli_models.choose_model(None, environ=env, folder=tmp_path).spec == "from-env"


def load_model(option, environ, folder=None, stderr=None):
    """What a command does: find the chosen model, then load it on the CPU."""
    return cli_models.find_model(option, environ=environ, folder=folder).load("cpu", stderr=stderr)


def test_the_default_model_is_loaded_and_announced_in_one_line(tmp_path):
    model = hider()
    zoo.publish(model, "tiny", tmp_path, fields(default=True))
    stderr = io.StringIO()
    loaded = load_model(None, environ={}, folder=tmp_path, stderr=stderr)
    torch.testing.assert_close(outputs(loaded)[0], outputs(model)[0], rtol=0, atol=1e-6)
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("invhide: using the default model tiny (kodak24 8-bit: 30.00")
    stderr = io.StringIO()
    load_model("tiny", environ={}, folder=tmp_path, stderr=stderr)  # chosen, not defaulted
    assert stderr.getvalue() == ""


def test_errors_name_where_the_model_came_from(tmp_path):
    zoo.publish(hider(), "tiny", tmp_path, fields(default=True))
    with pytest.raises(MissingPathError) as caught:
        load_model(None, environ={"INVHIDE_MODEL": "nope"}, folder=tmp_path)
    message = str(caught.value)
    assert message == f"$INVHIDE_MODEL=nope: not a model name (models in {tmp_path}: tiny), nor a file or folder"
    with pytest.raises(MissingPathError, match=r"^--model nope: not a model name \(models in \S+: tiny\)"):
        load_model("nope", environ={}, folder=tmp_path)

    (tmp_path / "bad.safetensors").write_bytes(b"not a model")
    with pytest.raises(CheckpointError) as caught:
        load_model(None, environ={"INVHIDE_MODEL": str(tmp_path / "bad.safetensors")})
    assert str(caught.value).startswith(f"$INVHIDE_MODEL: {tmp_path / 'bad.safetensors'}: "), caught.value

    (tmp_path / "model.pt").write_bytes(b"pickle")
    with pytest.raises(FileFormatError, match=r"^--model: .*model.pt: a PyTorch pickle.*convert-official"):
        load_model(str(tmp_path / "model.pt"), environ={}, folder=tmp_path)

    weights = tmp_path / "tiny.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(CheckpointError, match=r"^the default model tiny: .*tiny.safetensors: SHA-256"):
        load_model(None, environ={}, folder=tmp_path, stderr=io.StringIO())


def test_a_model_file_or_run_folder_in_the_model_folder_loads_by_name(tmp_path, monkeypatch):
    """$INVHIDE_MODELS_DIR also holds plain model files and training runs, found by their names."""
    model = hider()
    save(model, tmp_path / "models" / "run")  # a training run's folder: run/model.safetensors
    save(model, tmp_path / "models" / "mine.safetensors")
    monkeypatch.setenv(zoo.MODELS_DIR_ENV, str(tmp_path / "models"))
    assert zoo.find("mine") == tmp_path / "models" / "mine.safetensors"
    assert zoo.find("run") == tmp_path / "models" / "run"
    for name in ("mine", "run"):
        torch.testing.assert_close(outputs(zoo.load(name))[0], outputs(model)[0], rtol=0, atol=1e-6)
        torch.testing.assert_close(outputs(load_model(name, environ={}))[0], outputs(model)[0], rtol=0, atol=1e-6)
    with pytest.raises(MissingPathError, match=r"^--model nope: not a model name \(\$INVHIDE_MODELS_DIR=\S+ holds no"):
        load_model("nope", environ={})


def models_command(*argv: str) -> tuple[argparse.Namespace, int]:
    parser = argparse.ArgumentParser(prog="invhide")
    cli_models.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["models", *argv])
    return args, run_reporting_errors(args.run, args)


def test_invhide_models_with_none_shipped_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(zoo.MODELS_DIR_ENV, str(tmp_path))
    _, status = models_command()
    out, err = capsys.readouterr()
    assert status == 0 and err == "" and out.count("\n") == 1
    assert out.startswith(f"$INVHIDE_MODELS_DIR={tmp_path} holds no models; ") and "invhide train --recipe quick" in out


def test_invhide_models_lists_names_headlines_and_the_default(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(zoo.MODELS_DIR_ENV, str(tmp_path))
    zoo.publish(hider(), "long-name", tmp_path, fields(headline="the first headline"))
    zoo.publish(hider(), "short", tmp_path, fields(headline="the second headline", default=True))
    keyed = randomize_(InvertibleHider(num_blocks=2, subnet="conv", keyed=True), seed=0, gain=0.5).eval()
    keyed.trained_channels = {"lossless", "jpeg"}
    zoo.publish(keyed, "with-key", tmp_path, fields(headline="the third headline"))
    _, status = models_command()
    out = capsys.readouterr().out.splitlines()
    assert status == 0
    assert out[:3] == [
        "  long-name  no key  lossless       the first headline",
        "* short      no key  lossless       the second headline",
        "  with-key   keyed   lossless+jpeg  the third headline",
    ]
    assert out[3].startswith("* the default of hide, reveal and eval")
    assert out[4].startswith("keyed: hides under a key")
    assert out[5].startswith("lossless, jpeg: the stego files it was trained to reveal from")

    _, status = models_command("short")
    shown = json.loads(capsys.readouterr().out)
    assert status == 0 and shown == zoo.record("short").to_dict()
    _, status = models_command("--json")
    assert status == 0 and [r["name"] for r in json.loads(capsys.readouterr().out)] == [
        "long-name",
        "short",
        "with-key",
    ]

    _, status = models_command("nope")
    out, err = capsys.readouterr()
    assert status == 2 and err.startswith("invhide: error: no model named 'nope'") and err.count("\n") == 1
