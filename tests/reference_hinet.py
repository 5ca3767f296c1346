"""A transcription of the reference HiNet code's forward and backward passes, for comparison.

``ReferenceModel`` follows the reference implementation (TomTomTommi/HiNet:
``rrdb_denselayer.py``, ``invblock.py``, ``hinet.py``, ``model.py`` and the
DWT/IWT of ``modules/Unet_common.py``) as DESIGN.md describes it and as its
``train.py`` and ``test.py`` call it: one network on the channel-concatenated
DWT of cover and secret, each block taking its branches with ``narrow`` and
concatenating them again, the inverse dividing by the scale, everything in the
default (NCHW) memory layout. Its parameter names are the reference code's
(``model.inv{i}.{f,r,y}.conv{j}``, without DataParallel's ``module.`` prefix), so
:func:`invhide.models.official.from_official_state_dict` maps them onto
:class:`invhide.HiNet`.

The tests (``test_hinet.py``) check invhide against it; ``benchmarks/reference_speed.py``
times it.
"""

import torch
from test_functional import reference_dwt, reference_iwt
from torch import nn

__all__ = ["ReferenceBlock", "ReferenceDense", "ReferenceHinet", "ReferenceModel"]


class ReferenceDense(nn.Module):
    """The reference dense block: five 3x3 convolutions, growth 32, LeakyReLU (slope 0.01) after the first four."""

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
    """The reference invertible block on the concatenated ``(B, 24, h, w)`` tensor: ``f`` = phi, ``r`` = rho, ``y`` = eta."""

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
    """``num_blocks`` blocks ``inv1 .. invN``, run in order, or in reverse order with ``rev=True``."""

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
    """The reference ``Model`` with the surrounding steps of its ``train.py``/``test.py``.

    ``hide`` returns ``(stego image, stego DWT, lost DWT)``; ``reveal`` starts,
    as the reference code does, from the float DWT-domain stego and a
    DWT-domain ``z``, and returns the recovered secret image.
    """

    def __init__(self, num_blocks=16):
        super().__init__()
        self.model = ReferenceHinet(num_blocks)

    def hide(self, cover, secret):
        out = self.model(torch.cat((reference_dwt(cover), reference_dwt(secret)), 1))
        return reference_iwt(out.narrow(1, 0, 12)), out.narrow(1, 0, 12), out.narrow(1, 12, out.shape[1] - 12)

    def reveal(self, stego_dwt, z_dwt):
        out = self.model(torch.cat((stego_dwt, z_dwt), 1), rev=True)
        return reference_iwt(out.narrow(1, 12, out.shape[1] - 12))
