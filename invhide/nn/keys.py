"""Keys: 32-byte secrets expanded with SHAKE-256 into the permutations and sign flips of keyed invertible modules.

A key is 32 random bytes (256 bits). It reaches a keyed module at call time,
as a FrEIA condition: a ``(B, 32)`` ``torch.uint8`` tensor, one key per image,
never a parameter or a buffer, so no key is ever written into a model file.

:func:`expand` stretches a key into as many bytes as a module needs with
SHAKE-256 (an extendable-output function of the SHA-3 family), under a label
that names the use, so every module and every tensor size gets its own
independent stream and the key's full 256 bits of strength reach every mask (a
64-bit generator seed would cap it at 64). :func:`permutation` turns a stream
into a uniformly random permutation (sorting 64-bit random values), and
:class:`KeyedPermutation` applies one, with sign flips, to every value of an
image batch: exactly invertible, volume-preserving (log-determinant 0).

Example:
    >>> key = bytes(range(32))
    >>> block = KeyedPermutation([(4, 2, 2)], [(KEY_BYTES,)])
    >>> x = torch.rand(1, 4, 2, 2)
    >>> (y,), log_det = block([x], c=[key_tensor([key])])
    >>> (back,), _ = block([y], c=[key_tensor([key])], rev=True)
    >>> bool(torch.equal(back, x)), log_det.tolist()
    (True, [0.0])
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from FrEIA.modules import InvertibleModule
from torch import Tensor

from invhide.checks import positive_int
from invhide.errors import InputError, InputTypeError

__all__ = [
    "KEY_BYTES",
    "PASSPHRASE_SALT",
    "KeyedPermutation",
    "expand",
    "from_passphrase",
    "generate",
    "key_tensor",
    "permutation",
    "signs",
]

KEY_BYTES = 32
"""Length of a key in bytes (256 bits)."""
_DOMAIN = b"invhide.keys.v1"

PASSPHRASE_SALT = b"invhide.passphrase.v1"
"""scrypt's salt for :func:`from_passphrase`: fixed, so that a passphrase gives the same key everywhere.

A fixed salt lets an attacker test one guessed passphrase against every
invhide user at once: prefer a random key file (:func:`generate`).
"""
_SCRYPT = {"n": 2**16, "r": 8, "p": 1, "maxmem": 128 << 20}

Dims = Sequence[tuple[int, ...]]


def generate() -> bytes:
    """A fresh random key: 32 bytes from the operating system's cryptographic generator (``os.urandom``).

    Example:
        >>> len(generate()), generate() != generate()
        (32, True)
    """
    return os.urandom(KEY_BYTES)


def from_passphrase(passphrase: str) -> bytes:
    """A key stretched from a passphrase with scrypt (N = 2^16, r = 8, p = 1: 64 MiB and a fraction of a second).

    Args:
        passphrase: any non-empty text; its UTF-8 bytes are stretched.

    Example:
        >>> key = from_passphrase("correct horse battery staple")
        >>> len(key), key == from_passphrase("correct horse battery staple")
        (32, True)
    """
    if not isinstance(passphrase, str) or not passphrase:
        raise InputError(argument="passphrase", problem="must be non-empty text")
    return hashlib.scrypt(passphrase.encode(), salt=PASSPHRASE_SALT, dklen=KEY_BYTES, **_SCRYPT)


def expand(key: bytes, label: str, length: int) -> bytes:
    """``length`` bytes of SHAKE-256 over the key and a label naming their use.

    Args:
        key: the 32-byte key.
        label: what the bytes are for (different labels give independent streams).
        length: how many bytes.

    Example:
        >>> a, b = expand(bytes(32), "x", 8), expand(bytes(32), "y", 8)
        >>> len(a), a == b
        (8, False)
    """
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        raise InputError(f"a key must be {KEY_BYTES} bytes, got {len(key) if isinstance(key, bytes) else type(key)}")
    label_bytes = label.encode()
    header = _DOMAIN + len(label_bytes).to_bytes(2, "big") + label_bytes
    return hashlib.shake_256(header + key).digest(length)


@functools.lru_cache(maxsize=64)
def _permutation(key: bytes, label: str, size: int) -> np.ndarray:
    values = np.frombuffer(expand(key, f"{label}/permutation/{size}", 8 * size), dtype="<u8")
    return np.argsort(values, kind="stable")


def permutation(key: bytes, label: str, size: int) -> Tensor:
    """A uniformly random permutation of ``range(size)`` made from the key: the order of ``size`` 64-bit values.

    Example:
        >>> p = permutation(bytes(32), "demo", 6)
        >>> sorted(p.tolist()), p.tolist() == permutation(bytes(31) + b"\\x01", "demo", 6).tolist()
        ([0, 1, 2, 3, 4, 5], False)
    """
    return torch.from_numpy(_permutation(key, label, size).copy())


@functools.lru_cache(maxsize=64)
def _signs(key: bytes, label: str, size: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(expand(key, f"{label}/signs/{size}", (size + 7) // 8), dtype=np.uint8))
    return 1.0 - 2.0 * bits[:size].astype(np.float32)


def signs(key: bytes, label: str, size: int) -> Tensor:
    """``size`` values of +1 or -1 made from the key, each with probability one half.

    Example:
        >>> s = signs(bytes(32), "demo", 1000)
        >>> set(s.tolist()) == {1.0, -1.0}, abs(s.mean().item()) < 0.1
        (True, True)
    """
    return torch.from_numpy(_signs(key, label, size).copy())


def key_tensor(keys: Sequence[bytes], device: torch.device | str = "cpu") -> Tensor:
    """Keys as the ``(B, 32)`` ``torch.uint8`` condition that keyed modules take.

    Example:
        >>> key_tensor([bytes(32), bytes(32)]).shape
        torch.Size([2, 32])
    """
    for key in keys:
        if not isinstance(key, bytes):
            raise InputTypeError(argument="key", problem=f"must be bytes, got {type(key).__name__}")
        if len(key) != KEY_BYTES:
            raise InputError(argument="key", problem=f"must be {KEY_BYTES} bytes, got {len(key)}")
    data = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES)
    return torch.from_numpy(data.copy()).to(device)


def _layout(x: Tensor) -> torch.memory_format:
    """``x``'s memory layout, which the convolutions after a keyed module expect back."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


class KeyedPermutation(InvertibleModule):
    """A key-dependent permutation (and sign flip) of each image's values or tiles, as a FrEIA module.

    With ``tile=None`` each image ``b`` of the batch, flattened to ``C*H*W``
    values, is permuted by :func:`permutation` of its own key; with
    ``tile=t`` the image is cut into ``t x t`` tiles (each with all ``C``
    channels) and the tiles are permuted. Any size works: where ``t`` does
    not divide ``H`` (or ``W``), the last ``H mod t`` rows are cut into
    ``(H mod t) x t`` tiles, permuted among themselves (likewise the last
    columns), and the corner that both strips leave, at most
    ``(t - 1) x (t - 1)`` values, stays in place (flipped with ``flip``):
    what the tiles hold stays whole everywhere, which a network that learnt to
    hide a tile-shuffled secret can carry. With ``flip=True`` every value
    (``tile=None``) or every channel of every tile is also multiplied by
    :func:`signs` of the key. Both are orthogonal maps: exactly invertible,
    log-determinant 0. The key comes at call time as the module's one
    condition, a ``(B, 32)`` ``torch.uint8`` tensor (:func:`key_tensor`).

    Without the key, ``tile=None`` leaves only the multiset of the values;
    ``t x t`` tiles leave each tile's content, in an unknown order (and with
    unknown signs).

    Args:
        dims_in: ``[(C, H, W)]``.
        dims_c: ``[(32,)]``: the key.
        tile: side of the tiles permuted as wholes, or ``None`` for every value.
        flip: also flip signs.
        label: names this module's use of the key, so two keyed modules with
            one key draw independent masks.

    Example:
        >>> block = KeyedPermutation([(3, 4, 4)], [(KEY_BYTES,)], tile=2)
        >>> x = torch.rand(1, 3, 4, 4).expand(2, -1, -1, -1)
        >>> (y,), _ = block([x], c=[key_tensor([bytes(32), bytes([1] * 32)])])
        >>> bool(torch.equal(y[0], y[1]))  # one image, two keys: two orders
        False
    """

    def __init__(
        self,
        dims_in: Dims,
        dims_c: Dims | None = None,
        tile: int | None = None,
        flip: bool = True,
        label: str = "secret",
    ) -> None:
        if len(dims_in) != 1 or len(dims_in[0]) != 3:
            raise InputError(f"KeyedPermutation takes one input of shape (C, H, W), got dims_in={list(dims_in)!r}")
        if not dims_c or [tuple(d) for d in dims_c] != [(KEY_BYTES,)]:
            raise InputError(f"KeyedPermutation takes one condition, the key, of dims ({KEY_BYTES},), got {dims_c!r}")
        super().__init__([tuple(dims_in[0])], [(KEY_BYTES,)])
        self.tile = None if tile is None else positive_int("tile", tile)
        self.flip = bool(flip)
        self.label = label
        self.output_dims(dims_in)

    def _masks(self, key: bytes, label: str, units: Tensor, channels: int) -> tuple[Tensor, Tensor | None]:
        """The permutation of the ``(n, m)`` units and, with ``flip``, their ``(n, m)`` signs, one per channel."""
        n, width = units.shape
        order = permutation(key, label, n).to(units.device)
        if not self.flip:
            return order, None
        sign = signs(key, label, n * channels).to(units.device, units.dtype).view(n, channels, 1)
        return order, sign.expand(n, channels, width // channels).reshape(n, width)

    def _shuffle(self, units: Tensor, keys: Tensor, label: str, rev: bool, channels: int = 1) -> Tensor:
        """``(B, n, m)`` units of ``channels`` channels permuted, then flipped, by each key; back with ``rev``."""
        rows = []
        for b, key in enumerate(keys.cpu().numpy()):
            order, sign = self._masks(key.tobytes(), label, units[b], channels)
            if rev:  # forward: permute, then flip the permuted units
                row = units[b] if sign is None else units[b] * sign
                rows.append(torch.empty_like(row).index_copy_(0, order, row))
            else:
                row = units[b].index_select(0, order)
                rows.append(row if sign is None else row * sign)
        return torch.stack(rows) if rows else units.clone()

    def _regions(self, h: int, w: int, t: int) -> Iterator[tuple[slice, slice, str]]:
        """The regions whose tiles permute among themselves: the ``t x t`` grid, the strips left over, the corner."""
        hc, wc = h - h % t, w - w % t
        for rows, row_name in ((slice(0, hc), ""), (slice(hc, h), "bottom")):
            for cols, col_name in ((slice(0, wc), ""), (slice(wc, w), "right")):
                if rows.stop > rows.start and cols.stop > cols.start:
                    name = "/".join(n for n in (row_name, col_name) if n)
                    yield rows, cols, self.label if not name else f"{self.label}/{name}"

    def _shuffle_tiles(self, region: Tensor, keys: Tensor, label: str, rev: bool, t: int) -> Tensor:
        """``region`` cut into tiles of at most ``t x t`` (as many rows and columns as it has), permuted by the key."""
        b, channels, h, w = region.shape
        th, tw = min(t, h), min(t, w)
        units = region.reshape(b, channels, h // th, th, w // tw, tw).permute(0, 2, 4, 1, 3, 5)
        units = self._shuffle(units.reshape(b, -1, channels * th * tw), keys, label, rev, channels)
        units = units.reshape(b, h // th, w // tw, channels, th, tw).permute(0, 3, 1, 4, 2, 5)
        return units.reshape(b, channels, h, w)

    def forward(
        self, x_or_z: Sequence[Tensor], c: Sequence[Tensor] | None = None, rev: bool = False, jac: bool = True
    ) -> tuple[tuple[Tensor], Tensor]:
        (x,), (keys,) = x_or_z, c  # type: ignore[misc]
        b, _, h, w = x.shape
        if self.tile is None:
            y = self._shuffle(x.reshape(b, -1, 1), keys, self.label, rev).reshape(x.shape)
            return (y.contiguous(memory_format=_layout(x)),), x.new_zeros(b)
        y = torch.empty_like(x, memory_format=torch.contiguous_format)
        for rows, cols, label in self._regions(h, w, self.tile):
            y[..., rows, cols] = self._shuffle_tiles(x[..., rows, cols], keys, label, rev, self.tile)
        return (y.contiguous(memory_format=_layout(x)),), x.new_zeros(b)

    def output_dims(self, input_dims: Dims) -> list[tuple[int, ...]]:
        return [tuple(input_dims[0])]

    def extra_repr(self) -> str:
        return f"tile={self.tile}, flip={self.flip}, label={self.label!r}"
