"""HiNet preset and the import of the reference code's checkpoints.

``ReferenceHinet`` below transcribes the reference implementation
(TomTomTommi/HiNet: ``invblock.py``, ``rrdb_denselayer.py``, ``hinet.py``,
``model.py`` and the DWT of ``modules/Unet_common.py``) as DESIGN.md describes
it: one network on the channel-concatenated DWT of cover and secret, branches
taken with ``narrow``, the inverse dividing by the scale.
"""

import pytest
import torch
from helpers import images
from test_functional import reference_dwt, reference_iwt
from torch import nn

from invhide import HiNet
from invhide.models.hinet import reference_init_
from invhide.models.official import from_official_state_dict, to_official_state_dict


class ReferenceDense(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, 32, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_in + 32, 32, 3, 1, 1)
        self.conv3 = nn.Conv2d(c_in + 64, 32, 3, 1, 1)
        self.conv4 = nn.Conv2d(c_in + 96, 32, 3, 1, 1)
        self.conv5 = nn.Conv2d(c_in + 128, c_out, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(inplace=True)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        return self.conv5(torch.cat((x, x1, x2, x3, x4), 1))


class ReferenceBlock(nn.Module):
    def __init__(self, clamp=2.0, in_1=3, in_2=3):
        super().__init__()
        self.split_len1, self.split_len2 = in_1 * 4, in_2 * 4
        self.clamp = clamp
        self.r = ReferenceDense(self.split_len1, self.split_len2)
        self.y = ReferenceDense(self.split_len1, self.split_len2)
        self.f = ReferenceDense(self.split_len2, self.split_len1)

    def e(self, s):
        return torch.exp(self.clamp * 2 * (torch.sigmoid(s) - 0.5))

    def forward(self, x, rev=False):
        x1, x2 = x.narrow(1, 0, self.split_len1), x.narrow(1, self.split_len1, self.split_len2)
        if not rev:
            y1 = x1 + self.f(x2)
            s1, t1 = self.r(y1), self.y(y1)
            y2 = self.e(s1) * x2 + t1
        else:
            s1, t1 = self.r(x1), self.y(x1)
            y2 = (x2 - t1) / self.e(s1)
            y1 = x1 - self.f(y2)
        return torch.cat((y1, y2), 1)


class ReferenceHinet(nn.Module):
    def __init__(self, num_blocks=16):
        super().__init__()
        for i in range(1, num_blocks + 1):
            self.add_module(f"inv{i}", ReferenceBlock())
        self.num_blocks = num_blocks

    def forward(self, x, rev=False):
        order = range(1, self.num_blocks + 1)
        for i in reversed(order) if rev else order:
            x = getattr(self, f"inv{i}")(x, rev=rev)
        return x


class ReferenceModel(nn.Module):
    def __init__(self, num_blocks=16):
        super().__init__()
        self.model = ReferenceHinet(num_blocks)

    def hide(self, cover, secret):
        out = self.model(torch.cat((reference_dwt(cover), reference_dwt(secret)), 1))
        return reference_iwt(out.narrow(1, 0, 12)), out.narrow(1, 0, 12), out.narrow(1, 12, out.shape[1] - 12)

    def reveal(self, stego_dwt, z_dwt):
        out = self.model(torch.cat((stego_dwt, z_dwt), 1), rev=True)
        return reference_iwt(out.narrow(1, 12, out.shape[1] - 12))


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
        from helpers import randomize_

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


class TestOfficialCheckpoint:
    @pytest.mark.parametrize("num_blocks", [2, 16])
    def test_tensors_and_outputs_match_the_reference_code(self, tmp_path, num_blocks):
        reference, state = far_from_identity_checkpoint(num_blocks)
        path = tmp_path / "model.pt"
        torch.save({"opt": {"state": {}, "param_groups": []}, "net": state}, path)
        model = HiNet.from_official_checkpoint(path).double()
        assert model.num_blocks == num_blocks and not model.training

        ours = model.state_dict()
        assert len(ours) == len(state) == num_blocks * 30
        for key, value in state.items():
            _, _, block, branch, conv, kind = key.split(".")
            mapped = f"nodes.coupling_{block[3:]}.{ {'f': 'phi', 'r': 'rho', 'y': 'eta'}[branch] }.{conv}.{kind}"
            assert torch.equal(ours[mapped], value), key

        cover, secret = images(0, 2, 3, 32, 32, dtype=torch.float64), images(1, 2, 3, 32, 32, dtype=torch.float64)
        z_dwt = torch.randn(2, 12, 16, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        with torch.no_grad():
            ref_stego, ref_stego_dwt, ref_lost_dwt = reference.hide(cover, secret)
            ref_recovered = reference.reveal(ref_stego_dwt, z_dwt)
            stego, lost = model.hide(cover, secret)
            # invhide draws z in the image domain; the reference in the DWT domain.
            recovered = model.reveal(stego, z=reference_iwt(z_dwt))
        assert (stego - cover).abs().max() > 0.05, "weights are too close to the identity"
        assert (stego - ref_stego).abs().max() < 1e-10
        assert (lost - reference_iwt(ref_lost_dwt)).abs().max() < 1e-10
        assert (recovered - ref_recovered).abs().max() < 1e-10
        assert (recovered - secret).abs().max() > 1e-3  # a random z does not give the secret back exactly

    def test_accepts_bare_and_prefixless_state_dicts(self, tmp_path):
        _, state = far_from_identity_checkpoint(1)
        torch.save({k.removeprefix("module.model."): v for k, v in state.items()}, tmp_path / "bare.pt")
        model = HiNet.from_official_checkpoint(tmp_path / "bare.pt")
        assert model.num_blocks == 1

    def test_export_is_the_inverse_of_import(self):
        _, state = far_from_identity_checkpoint(2)
        model = HiNet(num_blocks=2, init="identity").double()
        model.load_state_dict(from_official_state_dict(state))
        exported = to_official_state_dict(model)
        assert exported.keys() == state.keys()
        assert all(torch.equal(exported[k], state[k]) for k in state)

    def test_bad_checkpoints(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="no such checkpoint file"):
            HiNet.from_official_checkpoint(tmp_path / "missing.pt")
        (tmp_path / "text.pt").write_text("not a checkpoint")
        with pytest.raises(ValueError, match="text.pt: not a readable PyTorch checkpoint"):
            HiNet.from_official_checkpoint(tmp_path / "text.pt")
        (tmp_path / "empty.pt").write_bytes(b"")
        with pytest.raises(ValueError, match="empty.pt: not a readable PyTorch checkpoint"):
            HiNet.from_official_checkpoint(tmp_path / "empty.pt")

        _, state = far_from_identity_checkpoint(2)
        torch.save({"net": {**state, "module.model.extra.weight": torch.zeros(1)}}, tmp_path / "extra.pt")
        with pytest.raises(ValueError, match="1 key\\(s\\) are not reference HiNet parameters.*extra.weight"):
            HiNet.from_official_checkpoint(tmp_path / "extra.pt")

        broken = dict(state)
        del broken["module.model.inv2.y.conv3.bias"]
        torch.save({"net": broken}, tmp_path / "missing_tensor.pt")
        with pytest.raises(ValueError, match="missing 1 tensor.*coupling_2.eta.conv3.bias"):
            HiNet.from_official_checkpoint(tmp_path / "missing_tensor.pt")

        reshaped = dict(state)
        reshaped["module.model.inv1.r.conv2.weight"] = torch.zeros(32, 40, 3, 3)
        torch.save({"net": reshaped}, tmp_path / "shape.pt")
        with pytest.raises(
            ValueError, match="wrong shape.*coupling_1.rho.conv2.weight \\(32, 40, 3, 3\\), model \\(32, 44, 3, 3\\)"
        ):
            HiNet.from_official_checkpoint(tmp_path / "shape.pt")

        torch.save(
            {"net": {f"module.model.inv{i}.f.conv1.weight": torch.zeros(1) for i in (1, 3)}}, tmp_path / "gap.pt"
        )
        with pytest.raises(ValueError, match="numbered 1..N without gaps"):
            HiNet.from_official_checkpoint(tmp_path / "gap.pt")

        torch.save([1, 2, 3], tmp_path / "list.pt")
        with pytest.raises(ValueError, match="expected a dict with a 'net' state dict, got list"):
            HiNet.from_official_checkpoint(tmp_path / "list.pt")

    def test_refuses_pickled_code(self, tmp_path):
        class Payload:
            def __reduce__(self):
                return (print, ("executed",))

        torch.save({"net": Payload()}, tmp_path / "evil.pt")
        with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
            HiNet.from_official_checkpoint(tmp_path / "evil.pt")
