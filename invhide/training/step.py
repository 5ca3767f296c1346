"""The training forward pass: hide, optionally round to 8 bits with a straight-through gradient, reveal."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from invhide.models.hider import InvertibleHider
from invhide.nn.functional import quantize_8bit

__all__ = ["HidingStep", "round_ste"]


def round_ste(x: Tensor) -> Tensor:
    """Round to 8 bits in the forward pass, identity in the backward pass (straight-through).

    Example:
        >>> x = torch.tensor([0.1, 0.5004], requires_grad=True)
        >>> y = round_ste(x)
        >>> (y * 255).round().tolist(), torch.autograd.grad(y.sum(), x)[0].tolist()
        ([26.0, 128.0], [1.0, 1.0])
    """
    return x + (quantize_8bit(x.detach()) - x.detach())


class HidingStep(nn.Module):
    """One training forward pass as a module: hide, optionally round, reveal.

    Wrapping the whole pass in one ``forward`` lets ``DistributedDataParallel``
    see every use of the parameters.

    Args:
        model: an :class:`~invhide.InvertibleHider`.
        quantize: reveal from :func:`round_ste` of the stego, or from what
            ``channel`` makes of it when one is given.
        channel: a lossy channel (:mod:`invhide.training.channels`) that
            stands for the rounding; it draws its strengths from the
            attribute ``generator`` (set it before each step; ``None``: torch's).

    Example:
        >>> step = HidingStep(invhide.InvertibleHider(num_blocks=1, subnet="conv"), quantize=True)
        >>> stego, lost, recovered = step(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), torch.randn(2, 3, 8, 8))
        >>> stego.shape, lost.shape, recovered.shape
        (torch.Size([2, 3, 8, 8]), torch.Size([2, 3, 8, 8]), torch.Size([2, 3, 8, 8]))
    """

    def __init__(self, model: nn.Module, quantize: bool = False, channel: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model
        self.quantize = quantize
        self.channel = channel
        self.generator: torch.Generator | None = None

    def forward(
        self, cover: Tensor, secret: Tensor, z: Tensor, key: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(stego, lost, recovered)`` of ``(B, C, H, W)`` covers in ``[0, 1]``, ``(B, kC, H, W)`` secrets (``k``
        concatenated along the channels), the ``(B, kC, H, W)`` latent ``z`` the reveal starts from, and for a keyed
        hider the ``(B, 32)`` ``torch.uint8`` keys."""
        # No finiteness checks for invhide's hiders: the trainer's explosion guard rolls a non-finite step back.
        options: dict[str, Any] = {"check_finite": False} if isinstance(self.model, InvertibleHider) else {}
        if key is not None:
            options["key"] = key
        stego, lost = self.model.hide(cover, *secret.chunk(self.model.num_secrets, dim=1), **options)
        received = stego
        if self.quantize:
            received = round_ste(stego) if self.channel is None else self.channel(stego, generator=self.generator)
        recovered = self.model.reveal(received, z=z, **options)
        return stego, lost, recovered
