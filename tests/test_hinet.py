"""HiNet preset and the import of the reference code's checkpoints.

``ReferenceModel`` (``reference_hinet.py``) transcribes the reference
implementation (TomTomTommi/HiNet) as DESIGN.md describes it.
"""

import os

import pytest
import torch
from helpers import images
from reference_hinet import ReferenceModel
from test_functional import reference_iwt
from torch import nn

from invhide import HiNet
from invhide.errors import FileFormatError, IsAFolderError, MissingPathError
from invhide.models.hinet import reference_init_
from invhide.models.official import from_official_state_dict, load_official, to_official_state_dict


def far_from_identity_checkpoint(num_blocks, seed=0):
    """A reference-code state dict (DataParallel keys) with every tensor non-zero."""
    reference = ReferenceModel(num_blocks).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in reference.named_parameters():
            fan_in = param[0].numel() if param.dim() > 1 else 1
            param.copy_(torch.randn(param.shape, generator=generator, dtype=torch.float64) * 0.3 / fan_in**0.5)
    return reference, {f"module.{k}": v for k, v in reference.state_dict().items()}


class TestPreset:
    def test_paper_configuration(self):
        model = HiNet()
        assert model.num_blocks == 16 and model.clamp == 2.0 and model.wavelet == "haar" and model.layout == "hinet"
        assert len(model.state_dict()) == 480  # 16 blocks x 3 subnets x 5 convs x (weight, bias)
        assert sum(p.numel() for p in model.parameters()) == 4_050_240  # the paper's 4.05M
        assert model.config() == {
            "class": "HiNet",
            "num_blocks": 16,
            "num_secrets": 1,
            "channels": 3,
            "clamp": 2.0,
            "growth": 32,
        }

    def test_reference_initialisation(self):
        model = HiNet(num_blocks=2, generator=torch.Generator().manual_seed(0))
        for name, param in model.named_parameters():
            if ".conv5." in name:
                assert torch.equal(param, torch.zeros_like(param)), name
            else:
                assert 0.008 < param.std().item() < 0.012 or param.numel() < 64, name
                assert param.abs().min() > 0 or param.numel() < 64, name
        again = HiNet(num_blocks=2, generator=torch.Generator().manual_seed(0))
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))
        # Zero last convolutions: the fresh model is exactly the identity map.
        cover, secret = images(0, 1, 3, 16, 16), images(1, 1, 3, 16, 16)
        with torch.no_grad():
            stego, lost = model.hide(cover, secret)
        assert (stego - cover).abs().max() < 1e-6 and (lost - secret).abs().max() < 1e-6

    def test_reference_init_only_zeros_output_layers(self):
        net = nn.Sequential(nn.Conv2d(2, 2, 1), HiNet(num_blocks=1, init="identity"))
        reference_init_(net, scale=0.5)
        assert net[0].weight.abs().min() > 0

    def test_16_blocks_round_trip_float32(self, capsys):
        from invhide.testing import randomize_

        model = randomize_(HiNet(init="identity"), seed=0, gain=0.1)
        cover, secret = images(0, 2, 3, 64, 64), images(1, 2, 3, 64, 64)
        with torch.no_grad():
            stego, lost = model.hide(cover, secret)
            recovered = model.reveal(stego, z=lost)
            (cover_back, _), _ = model([stego, lost], rev=True)
        change = (stego - cover).abs().max().item()
        secret_error = (recovered - secret).abs().max().item()
        cover_error = (cover_back - cover).abs().max().item()
        with capsys.disabled():
            print(
                f"\n16-block HiNet, random weights, 2x3x64x64 float32: stego-cover max |diff| {change:.3f}, "
                f"round-trip max abs error secret {secret_error:.2e}, cover {cover_error:.2e}"
            )
        assert change > 0.1
        assert secret_error < 1e-4 and cover_error < 1e-4


def reveal_like_the_reference(model, reference):
    """Hide and reveal two image pairs with invhide's model and with the reference one, from the same z."""
    cover, secret = images(0, 2, 3, 32, 32, dtype=torch.float64), images(1, 2, 3, 32, 32, dtype=torch.float64)
    z_dwt = torch.randn(2, 12, 16, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        ref_stego, ref_stego_dwt, ref_lost_dwt = reference.hide(cover, secret)
        ref_recovered = reference.reveal(ref_stego_dwt, z_dwt)
        stego, lost = model.hide(cover, secret)
        # invhide draws z in the image domain; the reference in the DWT domain.
        recovered = model.reveal(stego, z=reference_iwt(z_dwt))
    outputs = {"cover": cover, "secret": secret, "stego": stego, "lost": lost, "recovered": recovered}
    return outputs, {"stego": ref_stego, "lost": reference_iwt(ref_lost_dwt), "recovered": ref_recovered}


class TestOfficialCheckpoint:
    @pytest.mark.parametrize("num_blocks", [2, 16])
    def test_tensors_and_outputs_match_the_reference_code(self, tmp_path, num_blocks):
        reference, state = far_from_identity_checkpoint(num_blocks)
        path = tmp_path / "model.pt"
        torch.save({"opt": {"state": {}, "param_groups": []}, "net": state}, path)
        model = load_official(path)
        assert model.num_blocks == num_blocks and not model.training
        assert model.nodes.coupling_1.phi.conv1.weight.dtype == torch.float64  # the checkpoint's dtype

        ours = model.state_dict()
        assert len(ours) == len(state) == num_blocks * 30
        for key, value in state.items():
            _, _, block, branch, conv, kind = key.split(".")
            mapped = f"nodes.coupling_{block[3:]}.{ {'f': 'phi', 'r': 'rho', 'y': 'eta'}[branch] }.{conv}.{kind}"
            assert torch.equal(ours[mapped], value), key

        outputs, expected = reveal_like_the_reference(model, reference)
        assert (outputs["stego"] - outputs["cover"]).abs().max() > 0.05, "weights are too close to the identity"
        for name in ("stego", "lost", "recovered"):
            assert (outputs[name] - expected[name]).abs().max() < 1e-10, name
        # A random z does not give the secret back exactly.
        assert (outputs["recovered"] - outputs["secret"]).abs().max() > 1e-3

    @pytest.mark.parametrize("legacy_format", [False, True], ids=["zip", "legacy"])
    def test_drops_tmp_var_keys_as_the_reference_load_does(self, tmp_path, legacy_format):
        # The reference load() keeps {k: v for k, v in state_dicts['net'].items() if 'tmp_var' not in k}
        # (TomTomTommi/HiNet train.py line 65, test.py line 18) and then loads the optimizer state too.
        reference, _ = far_from_identity_checkpoint(2)
        optimizer = torch.optim.Adam(reference.parameters(), lr=10**-4.5, betas=(0.5, 0.999), eps=1e-6)
        sum(p.sum() for p in reference.parameters()).backward()
        optimizer.step()  # a real Adam state: step counts, exp_avg, exp_avg_sq, param_groups
        state = {f"module.{key}": value.detach().clone() for key, value in reference.state_dict().items()}
        tmp_vars = {
            "module.model.inv1.f.tmp_var": torch.zeros(7, dtype=torch.int64),  # an integer buffer
            "module.model.inv2.r.conv1.weight_tmp_var": torch.zeros(1, 2),  # would not fit conv1.weight
            "tmp_var": 3,  # not even a tensor
        }
        path = tmp_path / "model_checkpoint_00050.pt"
        torch.save(
            {"opt": optimizer.state_dict(), "net": {**state, **tmp_vars}},
            path,
            _use_new_zipfile_serialization=not legacy_format,
        )
        model = load_official(path)
        assert all(torch.equal(from_official_state_dict(state)[k], v) for k, v in model.state_dict().items())

        outputs, expected = reveal_like_the_reference(model, reference)
        for name in ("stego", "lost", "recovered"):
            assert (outputs[name] - expected[name]).abs().max() < 1e-10, name
        # Without the tmp_var keys: the same model.
        torch.save({"net": state}, tmp_path / "clean.pt")
        clean, _ = reveal_like_the_reference(load_official(tmp_path / "clean.pt"), reference)
        assert all(torch.equal(clean[name], outputs[name]) for name in outputs)
        # A key without tmp_var that is not a parameter is still refused (the reference's strict load would fail).
        torch.save({"net": {**state, "module.model.inv1.f.tmp": torch.zeros(1)}}, tmp_path / "extra.pt")
        with pytest.raises(FileFormatError, match="not reference HiNet parameters.*inv1.f.tmp'"):
            load_official(tmp_path / "extra.pt")

    @pytest.mark.parametrize("legacy_format", [False, True], ids=["zip", "legacy"])
    def test_reads_cuda_tensors_without_cuda(self, tmp_path, monkeypatch, legacy_format):
        # The reference code trains on CUDA (train.py:77) and saves CUDA tensors; torch.save records each
        # storage's device with torch.serialization.location_tag, so this writes the same file on any machine.
        reference, state = far_from_identity_checkpoint(1)
        path = tmp_path / "model.pt"
        with monkeypatch.context() as patch:
            patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
            torch.save({"net": state}, path, _use_new_zipfile_serialization=not legacy_format)
        if not torch.cuda.is_available():
            with pytest.raises(RuntimeError, match="CUDA"):  # what a plain torch.load does with it here
                torch.load(path, weights_only=True)
        model = load_official(path)
        assert model.nodes.coupling_1.phi.conv1.weight.device.type == "cpu"
        outputs, expected = reveal_like_the_reference(model, reference)
        assert (outputs["stego"] - expected["stego"]).abs().max() < 1e-10

    def test_accepts_bare_and_prefixless_state_dicts(self, tmp_path):
        _, state = far_from_identity_checkpoint(1)
        torch.save({k.removeprefix("module.model."): v for k, v in state.items()}, tmp_path / "bare.pt")
        model = load_official(tmp_path / "bare.pt")
        assert model.num_blocks == 1

    def test_takes_the_widest_dtype_of_mixed_tensors(self, tmp_path):
        _, state = far_from_identity_checkpoint(1)
        mixed = {key: value.float() for key, value in state.items()}
        mixed["module.model.inv1.y.conv5.bias"] = state["module.model.inv1.y.conv5.bias"]  # one float64 tensor
        torch.save({"net": mixed}, tmp_path / "mixed.pt")
        model = load_official(tmp_path / "mixed.pt")
        assert {p.dtype for p in model.parameters()} == {torch.float64}
        assert torch.equal(model.nodes.coupling_1.phi.conv1.weight, mixed["module.model.inv1.f.conv1.weight"].double())

    def test_export_is_the_inverse_of_import(self):
        _, state = far_from_identity_checkpoint(2)
        model = HiNet(num_blocks=2, init="identity").double()
        model.load_state_dict(from_official_state_dict(state))
        exported = to_official_state_dict(model)
        assert exported.keys() == state.keys()
        assert all(torch.equal(exported[k], state[k]) for k in state)

    def test_missing_paths_and_files_that_are_not_checkpoints(self, tmp_path):
        with pytest.raises(MissingPathError, match="missing.pt: no such checkpoint file"):
            load_official(tmp_path / "missing.pt")
        with pytest.raises(IsAFolderError, match="a folder, not a reference HiNet checkpoint file"):
            load_official(tmp_path)
        (tmp_path / "text.pt").write_text("not a checkpoint")
        with pytest.raises(FileFormatError, match="text.pt: not a readable PyTorch checkpoint") as caught:
            load_official(tmp_path / "text.pt")
        assert "weights_only" not in str(caught.value)
        (tmp_path / "empty.pt").write_bytes(b"")
        with pytest.raises(FileFormatError, match="empty.pt: an empty file, not a PyTorch checkpoint"):
            load_official(tmp_path / "empty.pt")
        torch.save(far_from_identity_checkpoint(1)[1], tmp_path / "whole.pt")
        (tmp_path / "cut.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:5000])  # truncated
        with pytest.raises(FileFormatError, match="cut.pt: not a readable PyTorch checkpoint"):
            load_official(tmp_path / "cut.pt")
        torch.save([1, 2, 3], tmp_path / "list.pt")
        with pytest.raises(FileFormatError, match="list.pt: expected a dict with a 'net' state dict.*got list"):
            load_official(tmp_path / "list.pt")

    def test_checkpoints_that_do_not_hold_a_reference_hinet(self, tmp_path):
        _, state = far_from_identity_checkpoint(2)

        def refused(name, net, match):
            torch.save({"net": net, "opt": {}}, tmp_path / f"{name}.pt")
            with pytest.raises(FileFormatError, match=f"{name}.pt: .*{match}"):
                load_official(tmp_path / f"{name}.pt")

        refused(
            "extra",
            {**state, "module.model.extra.weight": torch.zeros(1)},
            "1 key\\(s\\) are not reference HiNet parameters.*extra.weight",
        )
        refused("empty_net", {}, "the state dict holds no HiNet parameters")
        broken = dict(state)
        del broken["module.model.inv2.y.conv3.bias"]
        refused("missing_tensor", broken, "missing 1 tensor.*coupling_2.eta.conv3.bias")
        refused(
            "shape",
            {**state, "module.model.inv1.r.conv2.weight": torch.zeros(32, 40, 3, 3, dtype=torch.float64)},
            "wrong shape.*coupling_1.rho.conv2.weight \\(32, 40, 3, 3\\), model \\(32, 44, 3, 3\\)",
        )
        refused(
            "scalar",
            {**state, "module.model.inv1.f.conv5.weight": torch.zeros((), dtype=torch.float64)},
            "tensor 'module.model.inv1.f.conv5.weight' has shape \\(\\), not that of a convolution weight",
        )
        refused(
            "gap",
            {f"module.model.inv{i}.f.conv1.weight": torch.zeros(1) for i in (1, 3)},
            "numbered 1..N without gaps",
        )
        refused(
            "integer",
            {**state, "module.model.inv2.r.conv4.weight": state["module.model.inv2.r.conv4.weight"].long()},
            "tensor 'module.model.inv2.r.conv4.weight' holds torch.int64 values; .* floating point",
        )
        nan = state["module.model.inv1.y.conv2.bias"].clone()
        nan[3] = float("nan")
        refused("nan", {**state, "module.model.inv1.y.conv2.bias": nan}, "'module.model.inv1.y.conv2.bias' holds NaN")
        refused("not_a_tensor", {**state, "module.model.inv1.f.conv1.bias": [0.0]}, "inv1.f.conv1.bias' is a list")

    @pytest.mark.parametrize("legacy_format", [False, True], ids=["zip", "legacy"])
    def test_refuses_pickled_code_without_suggesting_to_run_it(self, tmp_path, legacy_format):
        marker = tmp_path / "the payload ran"

        class Payload:
            def __reduce__(self):
                return (os.mkdir, (str(marker),))

        path = tmp_path / "evil.pt"
        torch.save({"net": Payload()}, path, _use_new_zipfile_serialization=not legacy_format)
        with pytest.raises(FileFormatError, match="evil.pt: not a plain tensor checkpoint") as caught:
            load_official(path)
        message = str(caught.value)
        assert "'posix.mkdir'" in message or "'os.mkdir'" in message  # names what it wanted to run
        assert "refuses to run code" in message and "weights_only" not in message
        assert not marker.exists()
