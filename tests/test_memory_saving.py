"""memory_saving=True: the same gradients as ordinary backpropagation, without stored activations."""

import pytest
import torch
from FrEIA.framework import InputNode, Node, OutputNode
from helpers import WAVELETS, images
from hypothesis import given, settings
from hypothesis import strategies as st

from invhide import HiNet, InvertibleGraph, InvertibleHider
from invhide.nn import subnets
from invhide.nn.modules import AffineCoupling, WaveletDownsampling
from invhide.testing import randomize_
from invhide.training.step import round_ste


def step(model, cover, secret, z, memory_saving, jac=False):
    """hide, round, reveal, loss (with the log-det when jac): returns the loss and every gradient."""
    model.memory_saving = memory_saving
    model.zero_grad(set_to_none=True)
    cover = cover.clone().requires_grad_(True)
    (stego, lost), log_det = model([cover, secret], jac=jac)
    recovered = model.reveal(round_ste(stego), z=z)
    loss = (stego - cover.detach()).square().sum() + (recovered - secret).square().sum() + lost.abs().mean()
    if jac:
        loss = loss + 1e-3 * log_det.sum()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()], cover.grad.clone()


@settings(max_examples=15)
@given(
    seed=st.integers(0, 2**31),
    wavelet=st.sampled_from(WAVELETS),
    blocks=st.integers(1, 4),
    num_secrets=st.integers(1, 2),
    jac=st.booleans(),
)
def test_gradients_match_ordinary_backprop_float64(seed, wavelet, blocks, num_secrets, jac):
    model = InvertibleHider(
        num_secrets=num_secrets, num_blocks=blocks, subnet=subnets.dense(growth=4, depth=3), wavelet=wavelet
    )
    model = randomize_(model, seed, gain=0.3).double()
    cover = images(seed, 2, 3, 8, 8, dtype=torch.float64)
    secret = images(seed + 1, 2, 3 * num_secrets, 8, 8, dtype=torch.float64)
    z = images(seed + 2, 2, 3 * num_secrets, 8, 8, dtype=torch.float64)
    loss_a, grads_a, input_a = step(model, cover, secret, z, memory_saving=False, jac=jac)
    loss_b, grads_b, input_b = step(model, cover, secret, z, memory_saving=True, jac=jac)
    assert torch.allclose(loss_a, loss_b, rtol=1e-12)
    for a, b in zip(grads_a, grads_b):
        assert torch.allclose(a, b, rtol=1e-7, atol=1e-9), (a - b).abs().max()
    assert torch.allclose(input_a, input_b, rtol=1e-7, atol=1e-9)


def test_gradients_match_float32_hinet():
    model = randomize_(HiNet(num_blocks=4, init="identity"), 0, gain=0.1)
    cover, secret, z = images(0, 2, 3, 32, 32), images(1, 2, 3, 32, 32), images(2, 2, 3, 32, 32)
    loss_a, grads_a, _ = step(model, cover, secret, z, memory_saving=False)
    loss_b, grads_b, _ = step(model, cover, secret, z, memory_saving=True)
    worst = max(((a - b).abs().max() / a.abs().max().clamp_min(1e-12)).item() for a, b in zip(grads_a, grads_b))
    assert worst < 1e-3, f"largest relative gradient difference {worst:.2e}"


def saved_bytes(model, cover, secret, z):
    """Bytes of tensors autograd keeps for the backward pass of one training step (unique storages)."""
    seen = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        stego, _ = model.hide(cover, secret)
        recovered = model.reveal(stego, z=z)
        loss = (stego - cover).square().sum() + (recovered - secret).square().sum()
    loss.backward()
    parameter_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(size for pointer, size in seen.items() if pointer not in parameter_storages)


def test_stored_activations_do_not_grow_with_depth():
    cover, secret, z = images(0, 1, 3, 32, 32), images(1, 1, 3, 32, 32), images(2, 1, 3, 32, 32)
    sizes = {}
    for blocks in (2, 8):
        for saving in (False, True):
            model = randomize_(HiNet(num_blocks=blocks, init="identity", memory_saving=saving), 0)
            sizes[blocks, saving] = saved_bytes(model, cover, secret, z)
    assert sizes[8, False] > 3 * sizes[2, False]  # ordinary: grows with depth
    assert sizes[8, True] == sizes[2, True]  # memory saving: only the graph outputs
    assert sizes[8, True] < sizes[8, False] / 50


def test_no_effect_without_gradients_and_on_outputs():
    model = randomize_(InvertibleHider(num_blocks=2, subnet="conv"), 0)
    cover, secret = images(0, 1, 3, 8, 8), images(1, 1, 3, 8, 8)
    with torch.no_grad():
        plain = model.hide(cover, secret)
        model.memory_saving = True
        saving = model.hide(cover, secret)
    assert all(torch.equal(a, b) for a, b in zip(plain, saving))
    stego, _ = model.hide(cover, secret)  # with gradients: same values, from the recomputing path
    assert torch.allclose(stego, plain[0], atol=1e-6) and stego.grad_fn is not None


def test_generic_graph_and_errors():
    x = InputNode(3, 8, 8, name="x")
    down = Node(x, WaveletDownsampling, {"wavelet": "db2"}, name="down")
    block = Node(down, AffineCoupling, {"subnet": "conv"}, name="block")
    graph = randomize_(InvertibleGraph([x, down, block, OutputNode(block, name="z")], memory_saving=True), 0)
    (z,), log_det = graph([images(0, 2, 3, 8, 8)])
    (z.square().sum() + log_det.sum()).backward()
    assert all(p.grad is not None for p in graph.parameters())
    with pytest.raises(ValueError, match="got 2 inputs, but expected 1"):
        graph([images(0, 2, 3, 8, 8), images(1, 2, 3, 8, 8)])
