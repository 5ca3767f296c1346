import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from helpers import images

import invhide
from invhide import HiNet, InvertibleHider
from invhide.errors import InputTypeError, ModelError, NotAFolderError, PathError, PathExistsError
from invhide.io import files
from invhide.io.checkpoint import (
    MAX_TENSORS,
    CheckpointError,
    load,
    load_tensors,
    model_from_config,
    read_header,
    save,
    save_tensors,
)
from invhide.io.files import atomic_write
from invhide.nn import subnets
from invhide.testing import randomize_


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
            # channels-last by default, as the model was built: exact; NCHW: the same up to float rounding
            assert all(torch.equal(a, b) for a, b in zip(outputs(loaded), outputs(model)))
            nchw = invhide.load(path, channels_last=False)
            assert all(m.weight.is_contiguous() for m in nchw.modules() if isinstance(m, torch.nn.Conv2d))
            assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(outputs(nchw), outputs(model)))


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
    with pytest.raises(ModelError, match=r"not written: the model's tensor nodes.coupling_1.phi.conv1.weight holds 1"):
        save(model, tmp_path / "nan.safetensors")  # load would refuse it: save does not write it
    assert list(tmp_path.iterdir()) == []
    metadata = {"format": "invhide.model.v1", "config": json.dumps(model.config())}
    save_tensors(model.state_dict(), tmp_path / "nan.safetensors", metadata)  # written by other means
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


@pytest.mark.parametrize("model", ["not a model", torch.nn.Linear(2, 2)], ids=["a string", "a plain module"])
def test_save_refuses_what_is_not_an_invhide_model(tmp_path, model):
    with pytest.raises(InputTypeError, match=r"^model must be an invhide model \(a torch.nn.Module with a config"):
        save(model, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_save_to_a_file_taken_for_a_folder_is_refused(tmp_path):
    (tmp_path / "weights").write_bytes(b"precious")
    with pytest.raises(NotAFolderError, match=r"weights: is a file, not a folder; save to a folder, or to a file"):
        save(HiNet(num_blocks=1), tmp_path / "weights")
    assert [p.name for p in tmp_path.iterdir()] == ["weights"] and (tmp_path / "weights").read_bytes() == b"precious"


def test_save_without_replace_never_replaces(tmp_path):
    save(HiNet(num_blocks=1), tmp_path / "run")
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(PathExistsError, match=r"run/model.safetensors exists; pass replace=True to replace it$"):
        save(HiNet(num_blocks=2), tmp_path / "run", replace=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before


def test_atomic_write_never_replaces_a_file_that_appeared_meanwhile(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(PathExistsError) as caught, atomic_write(target, "w", replace=False) as file:
        file.write("mine")
        target.write_text("another process's")  # written while this write was under way
    assert str(caught.value) == (
        f"{target} appeared while it was being written (another process?) and was left as it is; nothing was written"
    )
    assert target.read_text() == "another process's" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_of_two_writers_of_one_new_file_exactly_one_succeeds(tmp_path):
    target, both_written = tmp_path / "out.bin", threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def write(name: str) -> None:
        try:
            with atomic_write(target, replace=False) as file:
                file.write(name.encode())
                both_written.wait(timeout=30)  # both temporary files written before either is published
            outcomes[name] = "written"
        except PathExistsError as error:
            outcomes[name] = error

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [name for name, outcome in outcomes.items() if outcome == "written"]
    assert len(winners) == 1 and len(outcomes) == 2, outcomes
    assert target.read_bytes() == winners[0].encode() and [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
@pytest.mark.parametrize("replace", [True, False])
def test_a_path_that_is_not_a_regular_file_is_never_replaced(tmp_path, replace):
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)
    message = r"pipe.json: not a regular file \(a device, pipe or socket\), which invhide never replaces"
    with pytest.raises(PathError, match=message), atomic_write(pipe, "w", replace=replace) as file:
        file.write("{}")
    assert pipe.is_fifo() and [p.name for p in tmp_path.iterdir()] == ["pipe.json"]


def test_atomic_path_publishes_what_a_writer_wrote_under_the_temporary_name(tmp_path):
    target = tmp_path / "figure.png"
    with files.atomic_path(target, replace=False) as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".png" and temporary.name.startswith(".")
        temporary.write_bytes(b"png")
    assert target.read_bytes() == b"png" and [p.name for p in tmp_path.iterdir()] == ["figure.png"]
    with pytest.raises(RuntimeError), files.atomic_path(target) as temporary:
        temporary.write_bytes(b"partial")
        raise RuntimeError("the writer failed")
    assert target.read_bytes() == b"png" and [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def test_a_locked_folder_is_held_by_one_block_and_released(tmp_path):
    with files.locked_folder(tmp_path) as lock:
        assert lock == tmp_path / files.LOCK_FILE and lock.read_text() == f"{os.getpid()}\n"
        with pytest.raises(PathError) as caught, files.locked_folder(tmp_path):
            pass
        assert str(caught.value) == (
            f"{tmp_path} is in use by another invhide run (process {os.getpid()} holds {lock}); wait for it to end, "
            f"or choose another folder"
        )
    assert list(tmp_path.iterdir()) == []
    (tmp_path / files.LOCK_FILE).write_text("12345\n")  # left by a run that was killed: nobody holds it
    with files.locked_folder(tmp_path):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_folder_locked_by_another_process_is_refused(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from invhide.io import files\n"
         f"with files.locked_folder({str(tmp_path)!r}):\n    print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PathError, match=rf"\(process {holder.pid} holds "), files.locked_folder(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with files.locked_folder(tmp_path):  # the system released the killed holder's lock
        pass


def test_custom_callable_subnet_cannot_be_saved(tmp_path):
    model = InvertibleHider(num_blocks=1, subnet=lambda i, o: torch.nn.Conv2d(i, o, 1))
    with pytest.raises(TypeError, match="register its class"):
        save(model, tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())


def test_load_tensors_returns_metadata(tmp_path):
    save_tensors({"a": torch.arange(3.0)}, tmp_path / "t.safetensors", {"k": "v"})
    tensors, metadata = load_tensors(tmp_path / "t.safetensors")
    assert torch.equal(tensors["a"], torch.arange(3.0)) and metadata == {"k": "v"}


# ----------------------------------------------------------------------
# Untrusted files: refused from the header, before anything is built or read
# ----------------------------------------------------------------------

FORMAT = {"format": "invhide.model.v1"}


def hostile(path, tensors, config):
    """A model file with these tensors and this config (any JSON value, or raw text)."""
    text = config if isinstance(config, str) else json.dumps(config)
    save_tensors(tensors, path, {**FORMAT, "config": text})
    return path


def raw_file(path, header, data=b""):
    """A safetensors file with a hand-written header."""
    encoded = json.dumps(header).encode()
    path.write_bytes(len(encoded).to_bytes(8, "little") + encoded + data)
    return path


def one_block():
    model = HiNet(num_blocks=1, init="identity")
    return model.state_dict(), model.config()


TINY = {"w": torch.zeros(3)}
HOSTILE = [
    ("num-blocks-1e9", lambda: (TINY, {"class": "HiNet", "num_blocks": 10**9}), r"sets num_blocks = 1000000000, more"),
    ("growth-200000", lambda: (TINY, {"class": "HiNet", "num_blocks": 1, "growth": 200000}), r"sets growth = 200000"),
    (
        "growth-backed-by-one-big-tensor",
        lambda: ({"w": torch.zeros(200_000)}, {"class": "HiNet", "num_blocks": 1, "growth": 200000}),
        r"describes a model larger than the file \(far more parameters than the file's 200000 values\)",
    ),
    (
        "blocks-backed-by-many-tiny-tensors",
        lambda: ({f"w{i}": torch.zeros(1) for i in range(2000)}, {"class": "HiNet", "num_blocks": 2000}),
        r"describes a model larger than the file",
    ),
    (
        "nested-subnet-width",
        lambda: (TINY, {"class": "InvertibleHider", "num_blocks": 1, "subnet": {"name": "conv", "hidden": 10**7}}),
        r"sets subnet.hidden = 10000000",
    ),
    (
        "shapes",
        lambda: ({k: v[:1] for k, v in one_block()[0].items()}, one_block()[1]),
        r"tensors do not match the HiNet config: 30 with the wrong shape, e.g. "
        r"\['nodes.coupling_1.phi.conv1.weight \(1, 12, 3, 3\), model \(32, 12, 3, 3\)",
    ),
    (
        "int64-weights",
        lambda: ({k: v.long() for k, v in one_block()[0].items()}, one_block()[1]),
        r"tensor nodes.coupling_1.eta.conv1.bias has dtype I64; model weights must be floating-point",
    ),
    (
        "list-for-int",
        lambda: (TINY, {"class": "HiNet", "num_blocks": [1, 2]}),
        r"num_blocks must be a positive integer",
    ),
    ("string-for-int", lambda: (TINY, {"class": "HiNet", "num_blocks": "2"}), r"num_blocks must be a positive integer"),
    ("float-for-int", lambda: (TINY, {"class": "HiNet", "num_blocks": 1e9}), r"num_blocks must be a positive integer"),
    ("bool-for-int", lambda: (TINY, {"class": "HiNet", "num_blocks": True}), r"num_blocks must be a positive integer"),
    (
        "dict-as-subnet-name",
        lambda: (TINY, {"class": "InvertibleHider", "num_blocks": 1, "subnet": {"name": {"x": [1]}}}),
        r"unknown subnet \{'x': \[1\]\}",
    ),
    (
        "list-as-subnet",
        lambda: (TINY, {"class": "InvertibleHider", "num_blocks": 1, "subnet": [1, {"a": None}]}),
        r"subnet must be a registered name",
    ),
    (
        "unknown-subnet-option",
        lambda: (TINY, {"class": "InvertibleHider", "num_blocks": 1, "subnet": {"name": "conv", "bogus": 1}}),
        r"unexpected keyword argument 'bogus'",
    ),
    ("class-is-a-list", lambda: (TINY, {"class": ["HiNet"]}), r"a JSON object with a 'class' name"),
    ("config-is-a-list", lambda: (TINY, [1, 2, 3]), r"a JSON object with a 'class' name, got \[1, 2, 3\]"),
    ("deeply-nested", lambda: (TINY, "[" * 100_000 + "]" * 100_000), r"corrupt model config"),
    ("5000-digit-int", lambda: (TINY, '{"class": "HiNet", "num_blocks": ' + "9" * 5000 + "}"), r"corrupt model config"),
]


@pytest.mark.parametrize(("make", "message"), [case[1:] for case in HOSTILE], ids=[case[0] for case in HOSTILE])
def test_hostile_model_files_are_refused_from_the_header(tmp_path, make, message):
    tensors, config = make()
    path = hostile(tmp_path / "hostile.safetensors", tensors, config)
    with pytest.raises(CheckpointError, match=message) as caught:
        load(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


BAD_HEADERS = [
    ("shape-string", {"w": {"dtype": "F32", "shape": "big", "data_offsets": [0, 4]}}, "malformed shape 'big'"),
    ("shape-negative", {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, r"malformed shape \[-1\]"),
    (
        "shape-versus-bytes",
        {"w": {"dtype": "F32", "shape": [10**9, 10**9], "data_offsets": [0, 4]}},
        r"needs 4000000000000000000 bytes but its data offsets span 4",
    ),
    ("unknown-dtype", {"w": {"dtype": "F128", "shape": [1], "data_offsets": [0, 4]}}, "unknown dtype 'F128'"),
    ("entry-not-object", {"w": [1, 2]}, "header entry 'w' is not a tensor description"),
    (
        "overlapping-data",
        {
            "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
            "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
        },
        "overlaps or leaves a gap",
    ),
    ("metadata-not-strings", {"__metadata__": {"config": {"class": "HiNet"}}}, "metadata is not a map of strings"),
    (
        "too-many-tensors",
        {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(MAX_TENSORS + 1)},
        f"{MAX_TENSORS + 1} tensors, more than the {MAX_TENSORS}",
    ),
]


@pytest.mark.parametrize(("header", "message"), [c[1:] for c in BAD_HEADERS], ids=[c[0] for c in BAD_HEADERS])
def test_malformed_headers_are_refused(tmp_path, header, message):
    path = raw_file(tmp_path / "bad.safetensors", header, b"\0" * 8)
    with pytest.raises(CheckpointError, match=message):
        read_header(path)
    with pytest.raises(CheckpointError, match=message):
        load(path)


def test_read_header_reads_no_data(tmp_path):
    model = HiNet(num_blocks=1, init="identity").double()
    path = save(model, tmp_path / "m.safetensors")
    infos, metadata = read_header(path)
    assert {k: (i.dtype, tuple(i.shape)) for k, i in infos.items()} == {
        k: ("F64", tuple(v.shape)) for k, v in model.state_dict().items()
    }
    assert json.loads(metadata["config"]) == model.config()
    with pytest.raises(IsADirectoryError, match="a folder, not a safetensors checkpoint file"):
        read_header(tmp_path)
    with pytest.raises(FileNotFoundError, match="a folder without model.safetensors"):
        load(tmp_path)


LIMITED = """
import json, resource, sys
import torch
from invhide.io.checkpoint import CheckpointError, load
size = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + (768 << 20), resource.RLIM_INFINITY))
for path in sys.argv[1:]:
    try:
        load(path)
    except CheckpointError as error:
        print("refused", path)
    else:
        print("loaded", path)
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc and RLIMIT_AS")
def test_hostile_files_load_within_a_small_memory_cap(tmp_path):
    # The reported attacks (5 GB in 25 s for num_blocks 1e9, 1.4 TB for growth 200000), in a process that may
    # grow by at most 768 MiB beyond what importing torch took.
    paths = []
    for name, make, _ in HOSTILE[:4]:
        tensors, config = make()
        paths.append(str(hostile(tmp_path / f"{name}.safetensors", tensors, config)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", LIMITED, *paths], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [word for path in paths for word in ("refused", path)]


def test_training_checkpoint_weights_must_be_floats(tmp_path):
    save_tensors({"w": torch.zeros(2, dtype=torch.int64)}, tmp_path / "t.safetensors")
    with pytest.raises(CheckpointError, match="tensor w has dtype I64"):
        load_tensors(tmp_path / "t.safetensors", floating=True)
    save_tensors({"w": torch.tensor([1.0, float("inf")])}, tmp_path / "f.safetensors")
    with pytest.raises(CheckpointError, match="tensor w holds NaN or infinite values"):
        load_tensors(tmp_path / "f.safetensors", finite=True)


def test_no_tensors_round_trip(tmp_path):
    # An optimizer that has not stepped yet has no state: its file must still be readable (a run stopped in its
    # first step resumes from it).
    save_tensors({}, tmp_path / "empty.safetensors")
    assert load_tensors(tmp_path / "empty.safetensors") == ({}, {})


@pytest.mark.parametrize(
    ("stored", "message"),
    [('["jpeg"]', "'lossless' among them"), ('["lossless", "fax"]', "must be a JSON list"), ("{", "got '{'")],
    ids=["no-lossless", "unknown", "not-json"],
)
def test_the_files_a_model_was_trained_for_travel_with_it(tmp_path, stored, message):
    """Issue 22: a model trained through a JPEG channel says so in its weights file, checked when read."""
    from invhide.io.checkpoint import load_tensors, save_tensors

    model = InvertibleHider(num_blocks=1, subnet="conv")
    assert "trained_channels" not in load_tensors(save(model, tmp_path / "plain.safetensors"))[1]
    model.trained_channels = {"jpeg", "lossless"}
    path = save(model, tmp_path / "robust.safetensors")
    tensors, metadata = load_tensors(path)
    assert metadata["trained_channels"] == '["lossless", "jpeg"]'
    assert load(path).trained_channels == {"lossless", "jpeg"}
    save_tensors(tensors, tmp_path / "bad.safetensors", {**metadata, "trained_channels": stored})
    with pytest.raises(CheckpointError, match=message):
        load(tmp_path / "bad.safetensors")
