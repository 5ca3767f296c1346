import json

import pytest
import torch
from helpers import images, randomize_

import invhide
from invhide import HiNet, InvertibleHider, subnets
from invhide.io.checkpoint import CheckpointError, load, load_tensors, model_from_config, save, save_tensors
from invhide.io.files import atomic_write


def outputs(model, seed=0):
    with torch.no_grad():
        return model.hide(images(seed, 1, 3, 16, 16), images(seed + 1, 1, 3, 16, 16))


@pytest.mark.parametrize(
    "build",
    [
        lambda: HiNet(num_blocks=2),
        lambda: InvertibleHider(num_secrets=2, num_blocks=2, subnet=subnets.residual(hidden=8), wavelet="db2"),
    ],
    ids=["hinet", "custom"],
)
def test_round_trip_file_and_folder(tmp_path, build):
    model = randomize_(build(), seed=1)
    file = save(model, tmp_path / "model.safetensors")
    folder_file = save(model, tmp_path / "run")
    assert folder_file == tmp_path / "run" / "model.safetensors"
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == model.config()
    for path in (file, tmp_path / "run"):
        loaded = invhide.load(path)
        assert type(loaded) is type(model) and loaded.config() == model.config() and not loaded.training
        assert loaded.state_dict().keys() == model.state_dict().keys()
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
        if model.num_secrets == 1:
            # channels-last by default: the same values up to float rounding; exact in the default layout
            assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(outputs(loaded), outputs(model)))
            exact = invhide.load(path, channels_last=False)
            assert all(torch.equal(a, b) for a, b in zip(outputs(exact), outputs(model)))


def test_float64_weights_stay_float64(tmp_path):
    model = randomize_(HiNet(num_blocks=1), seed=0).double()
    loaded = load(save(model, tmp_path / "m.safetensors"))
    assert next(loaded.parameters()).dtype == torch.float64


def test_loading_never_unpickles(tmp_path):
    # A pickle-based .pt file is refused as "not a safetensors file" without being executed.
    class Payload:
        def __reduce__(self):
            return (exec, ("raise SystemExit('executed')",))

    torch.save({"x": Payload()}, tmp_path / "evil.safetensors")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load(tmp_path / "evil.safetensors")


def write(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p, good: write(p, b""), "empty file"),
        (lambda p, good: write(p, b"hello"), "too short"),
        (lambda p, good: write(p, b"this is a plain text file, not weights"), "not a safetensors file"),
        (lambda p, good: write(p, good[: len(good) // 2]), "truncated"),
        (lambda p, good: write(p, good[:12]), "not a safetensors file"),
    ],
    ids=["empty", "tiny", "text", "truncated", "cut-header"],
)
def test_broken_files(tmp_path, make, message):
    good = save(HiNet(num_blocks=1), tmp_path / "good.safetensors").read_bytes()
    path = make(tmp_path / "bad.safetensors", good)
    with pytest.raises(CheckpointError, match=message):
        load(path)
    with pytest.raises(FileNotFoundError, match="no such checkpoint file"):
        load(tmp_path / "missing.safetensors")


def test_mismatched_tensors_are_named(tmp_path):
    model = HiNet(num_blocks=2)
    tensors = dict(model.state_dict())
    metadata = {"format": "invhide.model.v1", "config": json.dumps(HiNet(num_blocks=3).config())}
    save_tensors(tensors, tmp_path / "fewer.safetensors", metadata)
    with pytest.raises(CheckpointError, match="missing 30 tensor\\(s\\), e.g. \\['nodes.coupling_3"):
        load(tmp_path / "fewer.safetensors")
    tensors["nodes.coupling_1.phi.conv1.weight"] = torch.zeros(32, 13, 3, 3)
    metadata["config"] = json.dumps(model.config())
    save_tensors(tensors, tmp_path / "shape.safetensors", metadata)
    with pytest.raises(CheckpointError, match="wrong shape.*coupling_1.phi.conv1.weight \\(32, 13, 3, 3\\)"):
        load(tmp_path / "shape.safetensors")


def test_other_safetensors_and_bad_configs(tmp_path):
    save_tensors({"w": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="not an invhide model"):
        load(tmp_path / "other.safetensors")
    save_tensors({"w": torch.zeros(2)}, tmp_path / "cfg.safetensors", {"format": "invhide.model.v1", "config": "{"})
    with pytest.raises(CheckpointError, match="corrupt model config"):
        load(tmp_path / "cfg.safetensors")
    with pytest.raises(CheckpointError, match="unknown model class 'UNet'"):
        model_from_config({"class": "UNet"})
    with pytest.raises(CheckpointError, match="invalid HiNet config"):
        model_from_config({"class": "HiNet", "num_blocks": -1})


def test_nan_weights_are_refused(tmp_path):
    model = HiNet(num_blocks=1)
    with torch.no_grad():
        model.nodes.coupling_1.phi.conv1.weight[0, 0, 0, 0] = float("nan")
    save(model, tmp_path / "nan.safetensors")
    with pytest.raises(CheckpointError, match="coupling_1.phi.conv1.weight holds NaN"):
        load(tmp_path / "nan.safetensors")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as file:
        file.write(b"partial")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    with pytest.raises(FileNotFoundError, match="output folder .* does not exist"):
        save(HiNet(num_blocks=1), tmp_path / "missing" / "m.safetensors")


def test_custom_callable_subnet_cannot_be_saved(tmp_path):
    model = InvertibleHider(num_blocks=1, subnet=lambda i, o: torch.nn.Conv2d(i, o, 1))
    with pytest.raises(TypeError, match="register its class"):
        save(model, tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())


def test_load_tensors_returns_metadata(tmp_path):
    save_tensors({"a": torch.arange(3.0)}, tmp_path / "t.safetensors", {"k": "v"})
    tensors, metadata = load_tensors(tmp_path / "t.safetensors")
    assert torch.equal(tensors["a"], torch.arange(3.0)) and metadata == {"k": "v"}
