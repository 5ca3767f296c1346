"""A learned refiner of revealed secrets: the one part of a hider that is not invertible, and may be left out.

An invertible hider reveals exactly what it hid only with the lost information
``r`` it never sends; from the stego alone it reveals with a stand-in ``z``,
and what the stand-in misses shows as an error the network's inverse cannot
remove. A keyed hider adds a structured one: its key shuffles the secret's
8x8-pixel tiles before the couplings, whose convolutions then smear each tile
into its random neighbours, so the revealed (still locked) secret is wrong
mostly along the tile borders (on kodak24 with the shipped keyed model, the
pixels on a border carry 1.6 times the squared error of the others; an
unkeyed model's are even). A refiner trained for the shipped keyed model
lifts its kodak24 secret from 34.53 to 36.63 dB; one trained the same way for
the unkeyed ``conv8-photos49-v2`` gains nothing (37.27 to 37.26 dB): it learns the key's
damage, not a general denoiser (the Keys page).

:class:`Refiner` is a small residual convolution network applied to the
revealed secret, in the locked domain, before the key unlocks it
(:meth:`InvertibleHider.reveal <invhide.models.hider.InvertibleHider.reveal>`
with ``refine=True``, the default when the hider has one). With ``period``
it also sees where the tile borders are: four constant channels marking the
first and last row and column of each ``period`` x ``period`` tile, counted
from the image's top-left pixel, which is why a hider with such a refiner
reveals large images in windows that start on multiples of ``period``
(:attr:`InvertibleHider.window_step <invhide.models.hider.InvertibleHider.window_step>`).
It never sees the key, which no model file holds.

Its last convolution starts at zero, so a new refiner changes nothing;
:func:`invhide.training.refine.train_refiner` trains one beside a frozen
hider. Hiding never uses it, so the stego and the exactness of the
invertible part (``reveal(stego, z=lost, refine=False)`` gives the secret
back) are untouched. Fine-tuning a refined hider with
:class:`~invhide.training.trainer.Trainer` trains its refiner with it, since
the trainer reveals through :meth:`reveal
<invhide.models.hider.InvertibleHider.reveal>`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from invhide.checks import integer, number, positive_int

__all__ = ["GRID_CHANNELS", "Refiner", "tile_borders"]

GRID_CHANNELS = 4
"""Constant input channels a :class:`Refiner` with a ``period`` adds: first row, last row, first column, last column."""


def tile_borders(height: int, width: int, period: int, like: Tensor) -> Tensor:
    """``(1, 4, H, W)`` masks of the first and last row and column of each ``period`` x ``period`` tile.

    Tiles are counted from the top-left pixel; the masks are 1 on a border and 0
    elsewhere, in ``like``'s dtype and on its device.

    Example:
        >>> tile_borders(4, 4, 2, torch.zeros(1))[0, 0].tolist()
        [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    """
    rows = torch.arange(height, device=like.device) % period
    cols = torch.arange(width, device=like.device) % period
    first_row, last_row = (rows == 0)[:, None], (rows == period - 1)[:, None]
    first_col, last_col = (cols == 0)[None], (cols == period - 1)[None]
    masks = [first_row.expand(height, width), last_row.expand(height, width)]
    masks += [first_col.expand(height, width), last_col.expand(height, width)]
    return torch.stack(masks)[None].to(like.dtype)


class Refiner(nn.Module):
    """Residual convolutions that refine a revealed image: ``x + net(x)``, the identity when new.

    Args:
        channels: image channels in and out (``num_secrets * channels`` of the hider).
        hidden: width of the hidden convolutions.
        depth: number of 3x3 convolutions (at least 2).
        period: the side of the tiles whose borders the refiner is told of
            (see the module docstring); ``None``: no border channels.
        negative_slope: of the LeakyReLU between the convolutions.

    Raises:
        invhide.errors.InputError: an option out of range.

    Example:
        >>> refiner = Refiner(3, hidden=8, depth=2, period=8)
        >>> x = torch.rand(1, 3, 16, 16)
        >>> bool(torch.equal(refiner(x), x))  # new: the identity
        True
    """

    def __init__(
        self,
        channels: int,
        hidden: int = 48,
        depth: int = 5,
        period: int | None = None,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.channels = positive_int("channels", channels)
        self.hidden = positive_int("hidden", hidden)
        self.depth = integer("depth", depth, low=2, what="an integer of at least 2")
        self.period = (
            None if period is None else integer("period", period, low=2, what="an integer of at least 2, or None")
        )
        self.negative_slope = number("negative_slope", negative_slope, low=0, high=1, high_open=True)
        inputs = channels + (GRID_CHANNELS if self.period is not None else 0)
        layers: list[nn.Module] = []
        for i in range(self.depth):
            last = i == self.depth - 1
            layers.append(nn.Conv2d(inputs if i == 0 else hidden, channels if last else hidden, 3, padding=1))
            if not last:
                layers.append(nn.LeakyReLU(self.negative_slope))
        self.net = nn.Sequential(*layers)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        inputs = x
        if self.period is not None:
            borders = tile_borders(x.shape[-2], x.shape[-1], self.period, x).expand(x.shape[0], -1, -1, -1)
            inputs = torch.cat([x, borders], dim=1)
        return x + self.net(inputs)

    def config(self) -> dict[str, Any]:
        """The options that rebuild this refiner (``Refiner(**config)``)."""
        return {
            "channels": self.channels,
            "hidden": self.hidden,
            "depth": self.depth,
            "period": self.period,
            "negative_slope": self.negative_slope,
        }

    def extra_repr(self) -> str:
        return f"channels={self.channels}, hidden={self.hidden}, depth={self.depth}, period={self.period}"
