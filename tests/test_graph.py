import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from FrEIA.framework import InputNode, Node, OutputNode
from helpers import images

from invhide import InvertibleGraph, InvertibleHider
from invhide.nn.modules import AffineCoupling, WaveletDownsampling
from invhide.testing import randomize_

ROOT = Path(__file__).resolve().parents[1]

# Builds a hider with two parallel input branches (the case FrEIA 0.2 may order
# differently per process), then either saves its weights or loads them, and
# prints the state_dict keys, FrEIA's topological order and an output.
SCRIPT = """
import json, sys, torch
sys.path.insert(0, {tests!r})
from helpers import images
from invhide.testing import randomize_
from invhide import InvertibleHider
hider = InvertibleHider(num_secrets=2, num_blocks=3, subnet="conv", wavelet="db2")
if sys.argv[1] == "save":
    randomize_(hider, seed=7)
    torch.save(hider.state_dict(), sys.argv[2])
else:
    hider.load_state_dict(torch.load(sys.argv[2], weights_only=True))
with torch.no_grad():
    stego, lost = hider.hide(images(1, 1, 3, 8, 8), images(2, 1, 3, 8, 8), images(3, 1, 3, 8, 8))
print(json.dumps({{"keys": list(hider.state_dict()), "order": [n.name for n in hider.node_list],
                  "stego": stego.flatten().tolist()}}))
"""


def _run(mode: str, path: Path, hash_seed: str) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    script = SCRIPT.format(tests=str(ROOT / "tests"))
    out = subprocess.run(
        [sys.executable, "-c", script, mode, str(path)], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    return json.loads(out.stdout)


def test_state_dict_keys_and_weights_survive_separate_processes(tmp_path):
    path = tmp_path / "weights.pt"
    saved = _run("save", path, "1")
    loaded = _run("load", path, "2")
    local = InvertibleHider(num_secrets=2, num_blocks=3, subnet="conv", wavelet="db2")
    assert saved["keys"] == loaded["keys"] == list(local.state_dict())
    assert all(k.startswith("nodes.") for k in saved["keys"])
    # The same weights give the same output in the other process, whatever FrEIA's node order.
    assert saved["stego"] == loaded["stego"]


def test_keys_name_the_nodes():
    hider = InvertibleHider(num_blocks=2, subnet="conv")
    modules = {k.split(".")[1] for k in hider.state_dict()}
    assert modules == {"coupling_1", "coupling_2"}
    assert list(hider.nodes) == ["cover_dwt", "secret_dwt", "coupling_1", "coupling_2", "stego_idwt", "lost_idwt"]
    assert not hasattr(hider, "module_list")


def test_save_load_round_trip_in_process(tmp_path):
    a = randomize_(InvertibleHider(num_blocks=2, subnet="residual"), seed=3)
    torch.save(a.state_dict(), tmp_path / "w.pt")
    b = InvertibleHider(num_blocks=2, subnet="residual")
    b.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    x, s = images(0, 1, 3, 8, 8), images(1, 1, 3, 8, 8)
    with torch.no_grad():
        assert all(torch.equal(u, v) for u, v in zip(a.hide(x, s), b.hide(x, s)))


def test_node_names_are_checked():
    x = InputNode(4, 8, 8, name="x")
    a = Node(x, AffineCoupling, {"subnet": "conv"}, name="block")
    b = Node(a, AffineCoupling, {"subnet": "conv"}, name="block")
    with pytest.raises(ValueError, match="repeated: \\['block'\\]"):
        InvertibleGraph([x, a, b, OutputNode(b, name="z")])
    x = InputNode(4, 8, 8, name="x")
    a = Node(x, AffineCoupling, {"subnet": "conv"}, name="a.b")
    with pytest.raises(ValueError, match="without dots, got 'a.b'"):
        InvertibleGraph([x, a, OutputNode(a, name="z")])


def test_module_errors_are_not_wrapped():
    x = InputNode(3, 8, 8, name="x")
    down = Node(x, WaveletDownsampling, {}, name="down")
    graph = InvertibleGraph([x, down, OutputNode(down, name="z")])
    with pytest.raises(ValueError, match="even height and width"):
        graph([torch.zeros(1, 3, 7, 8)])
    (z,), _ = graph([torch.zeros(1, 3, 8, 8)])
    assert z.shape == (1, 12, 4, 4)
    assert json.dumps(list(graph.state_dict())) == "[]"


def test_inputs_are_checked_once_at_the_edge():
    x = InputNode(4, 8, 8, name="x")
    block = Node(x, AffineCoupling, {"subnet": "conv"}, name="block")
    graph = InvertibleGraph([x, block, OutputNode(block, name="z")])
    with pytest.raises(ValueError, match="got 2 inputs, but expected 1"):
        graph([torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 8, 8)])
    with pytest.raises(ValueError, match="x must have shape \\(B, 4, ...\\)"):
        graph([torch.zeros(1, 5, 8, 8)])
    with pytest.raises(TypeError, match="x must be a floating-point tensor"):
        graph([torch.zeros(1, 4, 8, 8, dtype=torch.int64)])
    with pytest.raises(ValueError, match="x must have 4 dimensions"):
        graph([torch.zeros(4, 8, 8)])


def test_the_run_follows_the_listed_order():
    hider = InvertibleHider(num_blocks=2, subnet="conv")
    names = [node.name for node in hider.node_list]
    assert names == [
        "cover",
        "secret",
        "cover_dwt",
        "secret_dwt",
        "coupling_1",
        "coupling_2",
        "stego_idwt",
        "lost_idwt",
        "stego",
        "lost",
    ]
