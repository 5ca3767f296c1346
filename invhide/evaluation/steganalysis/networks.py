"""Learned detectors: SRNet, and a small CNN on fixed SRM high-pass residuals.

Both take ``(B, C, H, W)`` images with values in ``[0, 1]`` (any height and
width of at least :data:`MIN_SIDE`) and return ``(B,)`` logits: positive for
"stego". A two-way softmax, as in the papers, depends only on the difference
of its two logits, so one logit is the same model.

- :class:`SRNet` (``"srnet"``): Boroumand, Chen and Fridrich's 12-layer
  residual network, built from the paper's four layer types.
- :class:`SRMNet` (``"srm-cnn"``): the 30 basic SRM high-pass kernels
  (Fridrich and Kodovsky 2012), frozen and applied to each colour channel,
  truncated as in Ye, Ni and Yi (2017), then five convolutions with batch
  normalisation and average pooling, and a linear head: small enough to train
  on a CPU.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from invhide.checks import image_batch, number, one_of, positive_int

__all__ = ["COMPACT_KERNELS", "MIN_SIDE", "SRMNet", "SRNet", "srm_kernels"]

MIN_SIDE = 16
"""The smallest height and width the networks take (SRNet halves the image four times)."""

COMPACT_KERNELS: tuple[int, ...] = (0, 2, 8, 10, 12, 14, 20, 25)
"""Indices into :func:`srm_kernels` of :class:`SRMNet`'s default bank: first-, second- and third-order
residuals along the rows and along the columns, and the square kernels ``KB`` (3x3) and ``KV`` (5x5).

Eight kernels instead of thirty cut the cost of the residual layers by about four."""

# The eight directions around a pixel, as (row, column) steps.
_DIRECTIONS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))

_KB = ((-1, 2, -1), (2, -4, 2), (-1, 2, -1))
_KV = (
    (-1, 2, -2, 2, -1),
    (2, -6, 8, -6, 2),
    (-2, 8, -12, 8, -2),
    (2, -6, 8, -6, 2),
    (-1, 2, -2, 2, -1),
)


def _line_kernel(coefficients: tuple[int, ...], offsets: range, direction: tuple[int, int]) -> Tensor:
    kernel = torch.zeros(5, 5, dtype=torch.float64)
    for coefficient, step in zip(coefficients, offsets, strict=True):
        kernel[2 + step * direction[0], 2 + step * direction[1]] = coefficient
    return kernel


def _centred(kernel: tuple[tuple[int, ...], ...]) -> Tensor:
    values = torch.tensor(kernel, dtype=torch.float64)
    pad = (5 - values.shape[0]) // 2
    return nn.functional.pad(values, (pad, pad, pad, pad))


def srm_kernels() -> Tensor:
    """The 30 basic high-pass kernels of the spatial rich model, each normalised by its central coefficient.

    Classes (all 5x5, zero-padded): 8 first-order (``[-1 1]`` in 8
    directions), 4 second-order (``[1 -2 1]``, horizontal, vertical and both
    diagonals, divided by 2), 8 third-order (``[1 -3 3 -1]`` in 8 directions,
    divided by 3), the 3x3 "square" ``KB`` and its 4 "edge" halves (divided by
    4), the 5x5 "square" ``KV`` and its 4 "edge" halves (divided by 12). Each
    kernel sums to zero: it predicts a pixel from its neighbours and keeps the
    prediction error, the noise that embedding changes.

    Returns:
        ``(30, 5, 5)`` float64.

    References:
        J. Fridrich, J. Kodovsky, "Rich models for steganalysis of digital
        images", IEEE Trans. Information Forensics and Security 7(3), 2012.

    Example:
        >>> kernels = srm_kernels()
        >>> tuple(kernels.shape), bool(kernels.sum(dim=(1, 2)).abs().max() < 1e-12)
        ((30, 5, 5), True)
    """
    kernels = [_line_kernel((-1, 1), range(0, 2), direction) for direction in _DIRECTIONS]
    kernels += [_line_kernel((1, -2, 1), range(-1, 2), direction) / 2 for direction in _DIRECTIONS[:4]]
    kernels += [_line_kernel((1, -3, 3, -1), range(-1, 3), direction) / 3 for direction in _DIRECTIONS]
    for square, scale in ((_centred(_KB), 4), (_centred(_KV), 12)):
        kernels.append(square / scale)
        # The "edge" kernels: the square kernel with the half beyond one side zeroed, in 4 orientations.
        edge = square.clone()
        edge[3:, :] = 0
        kernels += [torch.rot90(edge, turn) / scale for turn in range(4)]
    return torch.stack(kernels)


def _convolution(
    in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, bias: bool = False
) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=bias)


def _initialise(module: nn.Module, generator: torch.Generator | None) -> None:
    """He-normal convolutions (for the ReLUs that follow), a small normal linear head, zero biases."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", generator=generator)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=0.01, generator=generator)
            nn.init.zeros_(layer.bias)


# --------------------------------------------------------------------------
# SRNet
# --------------------------------------------------------------------------


class _Type1(nn.Sequential):
    """SRNet layer type 1: convolution, batch normalisation, ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(_convolution(in_channels, out_channels), nn.BatchNorm2d(out_channels), nn.ReLU())


class _Type2(nn.Module):
    """SRNet layer type 2: type 1, convolution and batch normalisation, plus the input (a residual block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _Type1(channels, channels), _convolution(channels, channels), nn.BatchNorm2d(channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class _Type3(nn.Module):
    """SRNet layer type 3: type 1, convolution, batch normalisation, 3x3 average pooling with stride 2,
    plus a 1x1 convolution with stride 2 and batch normalisation of the input."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _Type1(in_channels, out_channels),
            _convolution(out_channels, out_channels),
            nn.BatchNorm2d(out_channels),
            nn.AvgPool2d(3, stride=2, padding=1),
        )
        self.shortcut = nn.Sequential(
            _convolution(in_channels, out_channels, 1, stride=2), nn.BatchNorm2d(out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.shortcut(x)


class _Type4(nn.Sequential):
    """SRNet layer type 4: type 1, convolution, batch normalisation, global average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            _Type1(in_channels, out_channels),
            _convolution(out_channels, out_channels),
            nn.BatchNorm2d(out_channels),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )


class SRNet(nn.Module):
    """SRNet (Boroumand, Chen and Fridrich 2019): a deep residual steganalysis network, as in the paper.

    Twelve layers: two of type 1 (64 and 16 filters; no pooling, so that the
    faint stego signal is not averaged away early), five of type 2 (16
    filters, residual), four of type 3 (16, 64, 128 and 256 filters, each
    halving the size by 3x3 average pooling with a strided 1x1 shortcut) and
    one of type 4 (512 filters, global average pooling), then a fully
    connected layer. All convolutions are 3x3 with stride 1 but the
    shortcuts. No layer is fixed: the network learns its own residuals, and
    needs many pairs and steps to do it (the paper trains it for hundreds of
    thousands of steps on a GPU).

    Args:
        channels: input channels (3 for RGB; the paper's grayscale is 1).
        generator: seeds the initial weights (He-normal convolutions; the
            linear layer ``N(0, 0.01)``).

    References:
        M. Boroumand, M. Chen, J. Fridrich, "Deep residual network for
        steganalysis of digital images", IEEE Trans. Information Forensics
        and Security 14(5), 2019.

    Example:
        >>> net = SRNet(generator=torch.Generator().manual_seed(0)).eval()
        >>> tuple(net(torch.rand(2, 3, 32, 32)).shape)
        (2,)
    """

    def __init__(self, channels: int = 3, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.channels = positive_int("channels", channels)
        self.features = nn.Sequential(
            _Type1(channels, 64),
            _Type1(64, 16),
            *(_Type2(16) for _ in range(5)),
            _Type3(16, 16),
            _Type3(16, 64),
            _Type3(64, 128),
            _Type3(128, 256),
            _Type4(256, 512),
        )
        self.head = nn.Linear(512, 1)
        _initialise(self, generator)

    def forward(self, images: Tensor) -> Tensor:
        """``(B, C, H, W)`` images in ``[0, 1]`` to ``(B,)`` logits (positive: stego)."""
        image_batch("images", images, channels=self.channels, min_size=MIN_SIDE)
        return self.head(self.features(images * 255 - 127.5)).squeeze(1)


# --------------------------------------------------------------------------
# The small CNN on SRM residuals
# --------------------------------------------------------------------------


class SRMNet(nn.Module):
    """A small steganalysis CNN on fixed SRM residuals (``"srm-cnn"``).

    Fixed SRM kernels (by default the eight of :data:`COMPACT_KERNELS`;
    ``kernels="all"`` takes the 30 of :func:`srm_kernels`) filter each colour
    channel (a frozen convolution, ``K C`` residual maps of the image in grey
    levels), which are truncated to ``[-threshold, threshold]`` (Ye et al.'s
    TLU: large residuals are edges, not embedding). Learned layers follow: a
    1x1 convolution mixing the residuals into ``width`` maps, then 3x3
    convolutions of ``width``, ``width``, ``2 width``, ``4 width`` and ``8
    width`` filters, each with batch normalisation and ReLU, the last four
    after 3x3 average pooling with stride 2; global average pooling and a
    linear layer give the logit.

    Args:
        channels: input channels (3 for RGB).
        kernels: ``"compact"`` (:data:`COMPACT_KERNELS`) or ``"all"`` (the 30 SRM kernels).
        width: filters of the first learned layers.
        threshold: truncation of the residuals, in grey levels.
        generator: seeds the initial weights.

    References:
        J. Ye, J. Ni, Y. Yi, "Deep learning hierarchical representations for
        image steganalysis", IEEE Trans. Information Forensics and Security
        12(11), 2017 (SRM initialisation and the TLU).

    Example:
        >>> net = SRMNet(generator=torch.Generator().manual_seed(0)).eval()
        >>> tuple(net(torch.rand(2, 3, 32, 32)).shape)
        (2,)
    """

    def __init__(
        self,
        channels: int = 3,
        *,
        kernels: str = "compact",
        width: int = 16,
        threshold: float = 3.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.channels = positive_int("channels", channels)
        self.width = positive_int("width", width)
        self.threshold = number("threshold", threshold, low=0, low_open=True)
        self.kernel_set = one_of("kernels", kernels, ("compact", "all"))
        bank = srm_kernels().float()
        if kernels == "compact":
            bank = bank[list(COMPACT_KERNELS)]
        self.register_buffer("kernels", bank.unsqueeze(1), persistent=False)
        residuals = bank.shape[0] * channels
        widths = (width, width, 2 * width, 4 * width, 8 * width)
        layers: list[nn.Module] = [_convolution(residuals, width, 1), nn.BatchNorm2d(width), nn.ReLU()]
        for index, (before, after) in enumerate(itertools.pairwise((width, *widths))):
            if index >= 1:
                layers.append(nn.AvgPool2d(3, stride=2, padding=1))
            layers += [_convolution(before, after), nn.BatchNorm2d(after), nn.ReLU()]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], 1)
        _initialise(self, generator)

    def residuals(self, images: Tensor) -> Tensor:
        """The truncated SRM residuals: ``(B, K C, H, W)`` in ``[-threshold, threshold]`` (channel-major)."""
        image_batch("images", images, channels=self.channels, min_size=MIN_SIDE)
        batch, channels, height, width = images.shape
        # Every channel through every kernel: one ordinary convolution of the channels stacked as a batch.
        flat = images.reshape(batch * channels, 1, height, width) * 255
        maps = nn.functional.conv2d(flat, self.kernels.to(images.dtype), padding=2)
        return maps.reshape(batch, -1, height, width).clamp(-self.threshold, self.threshold)

    def forward(self, images: Tensor) -> Tensor:
        """``(B, C, H, W)`` images in ``[0, 1]`` to ``(B,)`` logits (positive: stego)."""
        return self.head(self.features(self.residuals(images))).squeeze(1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, kernels={self.kernel_set!r}, width={self.width}, threshold={self.threshold}"
