"""InvertibleHider: an image hider assembled from FrEIA nodes.

The graph (node names in quotes)::

    "cover"  -> "cover_dwt"  -\\                                  /-> "stego_idwt" -> "stego"
                               "coupling_1" -> ... "coupling_M"
    "secret" -> "secret_dwt" -/                                  \\-> "lost_idwt"  -> "lost"

Running it forward hides; running it with ``rev=True`` reveals. Nothing but
the direction of the run distinguishes the two.

Revealing needs a stand-in ``z`` for ``lost``, which the receiver does not
have. Training reveals with ``z`` drawn from ``N(0, 1)``, as HiNet does, so
the reverse pass learns to answer any such draw; :meth:`InvertibleHider.reveal`
gives it their mean, zeros, unless told to draw. Zeros measure as the average
of many drawn reveals does (the least-squares guess over the draws), and
better than any one draw: kodak24, 8-bit PNG, ``conv8-photos49-v2``, 37.45 dB
with zeros, 37.39 for the mean of eight drawn reveals, 36.99 for one
(clamped to ``[0, 1]``; ``benchmarks/stand_in.py``).

A keyed hider *locks* the secret with its key before the graph sees it
(:meth:`InvertibleHider.lock`): the secret's wavelet coefficients are permuted
in tiles of :data:`KEY_TILE` x :data:`KEY_TILE` (8x8 pixels for Haar) by
:class:`~invhide.nn.keys.KeyedPermutation`, a FrEIA module keyed at call time,
so no path leads from the secret to the stego around the key; revealing
unlocks what the graph gives back. The lock works on the whole image, outside
the graph, so that a large image hidden or revealed window by window
(:mod:`invhide.models.inference`) is locked once, as one image: a permutation
of tiles across the image cannot be cut into windows. Without the key, the
tiles' content survives in an unknown order (the Keys page measures what
that leaves to an attacker).

A hider may carry a :class:`~invhide.nn.refiners.Refiner` (``refiner=``):
an ordinary, non-invertible network that :meth:`InvertibleHider.reveal`
applies to what the graph gives back, before the key unlocks it. Hiding never
uses it, and ``reveal(..., refine=False)`` is the invertible path alone.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from FrEIA.framework import InputNode, Node, OutputNode
from torch import Tensor

from invhide.checks import build_from_config, image_batch, positive_int
from invhide.errors import InputError, InputTypeError, ModelError
from invhide.io.checkpoint import register_model_class
from invhide.nn import functional
from invhide.nn.graph import InvertibleGraph
from invhide.nn.keys import KEY_BYTES, KeyedPermutation, key_tensor
from invhide.nn.modules import HidingCoupling, WaveletDownsampling, WaveletUpsampling
from invhide.nn.refiners import Refiner
from invhide.nn.subnets import SubnetFactory, SubnetSpec, resolve

__all__ = ["KEY_TILE", "PUBLIC_KEY", "InvertibleHider", "PublicKeyWarning", "public_key"]

KEY_TILE = 4
"""Side of the wavelet-domain tiles a keyed hider's key permutes (4: 8x8-pixel tiles of the secret)."""
PUBLIC_KEY = bytes(KEY_BYTES)
"""The key a keyed hider uses when given none: 32 zero bytes, published here, so anyone can reveal with it."""

Key = bytes | Sequence[bytes] | Tensor
"""A key: 32 bytes for the whole batch, one 32-byte key per image, or their ``(B, 32)`` ``torch.uint8`` tensor."""


class PublicKeyWarning(UserWarning):
    """A keyed hider was used without a key: it used :data:`PUBLIC_KEY`, which anyone can reveal with."""


def public_key(model: object) -> dict[str, bytes]:
    """``{"key": PUBLIC_KEY}`` for a keyed model, ``{}`` for any other: the key of a measurement, said, not warned.

    Evaluations, benchmarks and self-checks measure a keyed model under the
    public key (any key measures alike): ``model.hide(cover, secret,
    **public_key(model))`` works with every model.

    Example:
        >>> public_key(InvertibleHider(num_blocks=1, keyed=True)) == {"key": PUBLIC_KEY}, public_key(object())
        (True, {})
    """
    return {"key": PUBLIC_KEY} if getattr(model, "keyed", False) else {}


class InvertibleHider(InvertibleGraph):
    """Hide ``k`` secret images in a cover with one invertible network.

    Cover and secrets go through a wavelet downsampling, then ``num_blocks``
    :class:`~invhide.nn.modules.HidingCoupling` blocks (cover branch ``4C``
    channels wide, secret branch ``4kC``), then back through the inverse
    wavelet: the cover branch becomes the stego image, the secret branch the
    lost information ``r``. Revealing runs the same graph backwards from the
    stego image and an auxiliary ``z`` in place of ``r``.

    A hider is built with its convolution weights stored channels-last
    (``torch.channels_last``, NHWC), and :meth:`hide` and :meth:`reveal` hand
    their inputs to the graph in the layout of those weights, which is markedly
    faster on CPUs and recent GPUs than the default NCHW layout, and return
    their results in the layout of their inputs (NCHW for ordinary tensors);
    the values are the same up to float rounding. The layout survives
    ``.to(device)``, ``.double()`` and ``load_state_dict``;
    ``hider.to(memory_format=torch.contiguous_format)`` returns to NCHW, and
    hide and reveal follow.

    As an :class:`~invhide.nn.graph.InvertibleGraph`, ``hider([cover, secret])`` returns
    ``((stego, lost), log_det)`` and ``hider([stego, z], rev=True)`` returns
    ``((cover, secret), log_det)``. Any batch size and any even height and
    width (at least :attr:`min_size`) work, whatever the graph was built with.

    Args:
        num_secrets: secret images per cover, ``k``.
        num_blocks: coupling blocks, ``M`` (HiNet: 16).
        subnet: subnet constructor or registered name (see
            :mod:`invhide.nn.subnets`).
        wavelet: orthogonal wavelet name (``"haar"``, ``"db2"``, ...).
        clamp: soft-clamp bound of the log-scales (HiNet: 2.0).
        clamp_activation: ``"sigmoid"`` (HiNet), ``"tanh"`` or ``"atan"``.
        channels: image channels ``C`` (3 for RGB).
        layout: wavelet subband layout, ``"subband"`` or ``"hinet"``.
        wavelet_backend: ``"auto"``, ``"haar"`` or ``"pytorch_wavelets"``.
        memory_saving: train without storing activations, recomputing them
            through the exact inverse in the backward pass (see
            :mod:`invhide.nn.graph`): activation memory independent of
            ``num_blocks``, for about twice the time per training step. A runtime
            switch (the attribute ``memory_saving``), not part of the config.
        keyed: hide under a key that :meth:`hide` and :meth:`reveal` take
            (see the module docstring); a wrong key reveals an image unrelated
            to the secret. Keys are never parameters: no model file holds one.
        refiner: add a :class:`~invhide.nn.refiners.Refiner` that
            :meth:`reveal` applies to the revealed secret before unlocking it:
            ``True`` for the default options, or a mapping of its options but
            ``channels`` (its ``period`` defaults to the key's tile in pixels,
            ``2 * KEY_TILE``, for a keyed hider and to none otherwise). A new
            refiner is the identity; train one with
            :func:`invhide.training.refine.train_refiner`.

    Attributes:
        num_secrets: ``k``.
        num_blocks: ``M``.
        channels: ``C``.
        min_size: smallest height and width the wavelet allows (2 for Haar,
            4 for ``"db2"``, 8 for ``"sym4"``); sides must also be even.
        memory_saving: see the argument of the same name.
        keyed: see the argument of the same name.
        refiner: the :class:`~invhide.nn.refiners.Refiner`, or ``None``.

    Example:
        >>> hider = InvertibleHider(num_secrets=2, num_blocks=2, subnet=invhide.nn.subnets.conv(hidden=16))
        >>> cover, s1, s2 = torch.rand(3, 1, 3, 32, 32)
        >>> stego, lost = hider.hide(cover, s1, s2)
        >>> tuple(stego.shape), tuple(lost.shape)
        ((1, 3, 32, 32), (1, 6, 32, 32))
        >>> recovered = hider.reveal(stego, z=lost)
        >>> r1, r2 = recovered.chunk(2, dim=1)
        >>> bool(torch.allclose(r2, s2, atol=1e-5))
        True
    """

    def __init__(
        self,
        num_secrets: int = 1,
        num_blocks: int = 16,
        subnet: SubnetSpec = "dense",
        wavelet: str = "haar",
        clamp: float = 2.0,
        clamp_activation: str = "sigmoid",
        channels: int = 3,
        layout: functional.Layout = "subband",
        wavelet_backend: functional.Backend = "auto",
        memory_saving: bool = False,
        keyed: bool = False,
        refiner: bool | Mapping[str, Any] = False,
    ) -> None:
        self.keyed = bool(keyed)
        self.num_secrets = positive_int("num_secrets", num_secrets)
        self.num_blocks = positive_int("num_blocks", num_blocks)
        self.channels = positive_int("channels", channels)
        self.subnet = resolve(subnet)
        self.wavelet = wavelet
        self.min_size = functional.min_wavelet_size(wavelet)
        self.clamp = clamp
        self.clamp_activation = clamp_activation
        self.layout = layout
        self.wavelet_backend = wavelet_backend

        size = self.min_size  # nominal: the graph is checked at this size, runs at any valid size
        wavelet_args = {"wavelet": wavelet, "layout": layout, "backend": wavelet_backend}
        coupling_args = {"subnet": self.subnet, "clamp": clamp, "clamp_activation": clamp_activation}
        cover = InputNode(channels, size, size, name="cover")
        secret = InputNode(num_secrets * channels, size, size, name="secret")
        cover_dwt = Node(cover, WaveletDownsampling, wavelet_args, name="cover_dwt")
        secret_dwt = Node(secret, WaveletDownsampling, wavelet_args, name="secret_dwt")
        nodes: list[Node] = [cover, secret, cover_dwt, secret_dwt]
        branches = [(cover_dwt, 0), (secret_dwt, 0)]
        for i in range(1, num_blocks + 1):
            block = Node(branches, HidingCoupling, coupling_args, name=f"coupling_{i}")
            nodes.append(block)
            branches = [(block, 0), (block, 1)]
        stego_idwt = Node(branches[0], WaveletUpsampling, wavelet_args, name="stego_idwt")
        lost_idwt = Node(branches[1], WaveletUpsampling, wavelet_args, name="lost_idwt")
        nodes += [stego_idwt, lost_idwt, OutputNode(stego_idwt, name="stego"), OutputNode(lost_idwt, name="lost")]
        super().__init__(nodes, memory_saving=memory_saving)
        if self.keyed:  # outside the graph: see lock()
            secret_dims = [(num_secrets * channels, size, size)]
            self.secret_wavelet = WaveletDownsampling(secret_dims, **wavelet_args)
            branch = self.secret_wavelet.output_dims(secret_dims)
            self.secret_lock = KeyedPermutation(branch, [(KEY_BYTES,)], tile=KEY_TILE, flip=False, label="secret")
        self.refiner = self._refiner(refiner)
        # Channels-last weights make hide and reveal run channels-last (see _memory_format).
        self.to(memory_format=torch.channels_last)

    def _refiner(self, options: bool | Mapping[str, Any]) -> Refiner | None:
        """The refiner ``refiner=`` asks for, or ``None``."""
        if options is False or options is None:
            return None
        if options is True:
            options = {}
        if not isinstance(options, Mapping):
            raise InputTypeError(
                argument="refiner", problem=f"must be True, False or a mapping of Refiner options, got {options!r}"
            )
        if "channels" in options:
            raise InputError(argument="refiner", problem="takes no 'channels': the hider's secret channels are used")
        options = {"period": 2 * KEY_TILE if self.keyed else None, **options}
        return Refiner(self.num_secrets * self.channels, **options)

    @property
    def window_step(self) -> int:
        """The multiple of pixels that windows of a large image start on (:mod:`~invhide.models.inference`).

        Even, and at least :attr:`min_size`, so that every window sees the
        whole image's wavelet blocks; a multiple of the refiner's ``period`` too,
        so that it sees the whole image's tile borders.
        """
        step = functional.even_step(self.min_size)
        period = self.refiner.period if self.refiner is not None else None
        return step if period is None else math.lcm(step, period)

    # ------------------------------------------------------------------
    # Hiding and revealing
    # ------------------------------------------------------------------

    def _check_image(
        self, name: str, image: object, channels: int, finite: bool, like: tuple[str, Tensor] | None = None
    ) -> Tensor:
        """Refuse an input the graph cannot take, naming it: type, shape, size, dtype, device, values.

        The first input (``like=None``) must have the weights' dtype and
        device (an :class:`~invhide.errors.InputTypeError` saying how to
        convert either); the others must match ``like``, the first input and its name.
        """
        image = image_batch(name, image, channels=channels, even=True, min_size=self.min_size, finite=finite)
        if like is None:
            self._check_against_weights(name, image)
            return image
        first, like = like
        if image.shape[0] != like.shape[0] or image.shape[2:] != like.shape[2:]:
            raise InputError(
                f"{name} must match the {first}'s batch and size {tuple(like.shape[:1] + like.shape[2:])}, "
                f"got shape {tuple(image.shape)}"
            )
        if image.dtype != like.dtype or image.device != like.device:
            raise InputError(
                f"{name} must be on the {first}'s device and dtype ({like.device}, {like.dtype}), "
                f"got ({image.device}, {image.dtype}): convert it with {name.split()[0]}.to({first})"
            )
        return image

    def _check_against_weights(self, name: str, image: Tensor) -> None:
        """An :class:`~invhide.errors.InputTypeError` unless ``image`` has the weights' device and dtype."""
        weight = next((p for p in self.parameters() if p.is_floating_point()), None)
        if weight is None:
            return
        if image.device != weight.device:
            raise InputTypeError(
                f"{name} is on {image.device} but the model is on {weight.device}: move the input "
                f"({name}.to({str(weight.device)!r})) or the model (model.to({str(image.device)!r}))"
            )
        if image.dtype != weight.dtype and not torch.is_autocast_enabled(image.device.type):
            raise InputTypeError(
                f"{name} has dtype {image.dtype} but the model's weights are {weight.dtype}: convert the input "
                f"({name}{_conversion(weight.dtype)}) or the model (model{_conversion(image.dtype)})"
            )

    def _refuse_non_finite(self, name: str, output: Tensor) -> None:
        """A :class:`~invhide.errors.ModelError` when finite inputs gave a non-finite output."""
        if not output.numel():
            return
        bad = int((~torch.isfinite(output)).sum())
        if bad:
            overflow = ""
            if output.dtype in (torch.float16, torch.bfloat16):
                overflow = f", or {output.dtype} overflowed (try model.float() and float32 inputs)"
            raise ModelError(
                f"the model turned finite inputs into {bad} NaN or infinite value(s) in the {name}: its weights "
                f"are corrupt or diverged{overflow}; use another model, or retrain it (or resume from an earlier "
                f"checkpoint)"
            )

    def _memory_format(self) -> torch.memory_format:
        """``torch.channels_last`` when the convolution weights are stored so, else ``torch.contiguous_format``.

        Convolutions are fastest when inputs and weights share a layout (mixing
        the two is slower than either).
        The first weight whose layout is unambiguous decides: a 4-D weight with
        more than one input channel and a kernel wider than 1 (a ``(O, 1, k, k)``
        or ``(O, I, 1, 1)`` weight is contiguous in both layouts).
        """
        for param in self.parameters():
            if param.dim() == 4 and param.shape[1] > 1 and param.shape[-1] > 1:
                if param.is_contiguous(memory_format=torch.channels_last) and not param.is_contiguous():
                    return torch.channels_last
                return torch.contiguous_format
        return torch.contiguous_format

    @staticmethod
    def _layout_of(image: Tensor) -> torch.memory_format:
        """``torch.channels_last`` for a channels-last-only tensor, else ``torch.contiguous_format``.

        :meth:`hide` and :meth:`reveal` return their results in their first
        input's layout, so the fast layout inside stays invisible outside.
        """
        if image.is_contiguous(memory_format=torch.channels_last) and not image.is_contiguous():
            return torch.channels_last
        return torch.contiguous_format

    def hide(
        self,
        cover: Tensor,
        *secrets: Tensor,
        key: Key | None = None,
        locked: bool = False,
        check_finite: bool = False,
    ) -> tuple[Tensor, Tensor]:
        """Hide the secret images in the cover.

        Args:
            cover: ``(B, C, H, W)`` floats, usually in ``[0, 1]``, on the
                model's device and in its dtype (``B`` may be 0).
            *secrets: ``num_secrets`` tensors shaped like ``cover``.
            key: a keyed hider's key (see :data:`Key`); without one it uses
                :data:`PUBLIC_KEY` and warns (:class:`PublicKeyWarning`). An
                unkeyed hider refuses a key.
            locked: a keyed hider's secrets come already locked by
                :meth:`lock` (no ``key`` then), as when a large image is hidden
                window by window.
            check_finite: refuse NaN or infinite inputs and outputs: one pass
                over each and, on an accelerator, one wait for the device, so
                it is off unless asked for.

        Returns:
            ``(stego, lost)``: the stego image ``(B, C, H, W)`` (float, not
            clamped or rounded) and the lost information ``r``,
            ``(B, kC, H, W)``.

        Raises:
            invhide.errors.InputError: wrong number of secrets, mismatched or
                invalid shapes, NaN or infinite values (names the input).
            invhide.errors.InputTypeError: a non-tensor or non-float input, or
                one whose dtype or device is not the model's (says how to
                convert either).
            invhide.errors.ModelError: finite inputs gave a NaN or infinite
                stego or ``lost``: the weights are corrupt or diverged.
        """
        if len(secrets) != self.num_secrets:
            raise InputError(f"this hider takes {self.num_secrets} secret image(s), got {len(secrets)}")
        self._check_image("cover", cover, self.channels, check_finite)
        for i, secret in enumerate(secrets):
            name = f"secret {i + 1}" if self.num_secrets > 1 else "secret"
            self._check_image(name, secret, self.channels, check_finite, ("cover", cover))
        secret = secrets[0] if self.num_secrets == 1 else torch.cat(secrets, dim=1)
        if self._locks(key, locked):
            secret = self._lock(secret, key, rev=False)
        given, layout = self._layout_of(cover), self._memory_format()
        cover, secret = cover.contiguous(memory_format=layout), secret.contiguous(memory_format=layout)
        (stego, lost), _ = self._run([cover, secret], [], rev=False, jac=False)
        stego, lost = stego.contiguous(memory_format=given), lost.contiguous(memory_format=given)
        if check_finite:
            self._refuse_non_finite("stego", stego)
            self._refuse_non_finite("lost information", lost)
        return stego, lost

    def reveal(
        self,
        stego: Tensor,
        z: Tensor | None = None,
        generator: torch.Generator | None = None,
        *,
        key: Key | None = None,
        locked: bool = False,
        refine: bool = True,
        check_finite: bool = False,
    ) -> Tensor:
        """Recover the secret images from a stego image.

        Args:
            stego: ``(B, C, H, W)``, on the model's device and in its dtype.
            z: stand-in for the lost information, ``(B, kC, H, W)`` (the true
                ``lost`` gives the exact secrets back). Not given: zeros, the
                mean of the ``N(0, 1)`` draws the reveal was trained with (see
                the module's docstring).
            generator: draw ``z`` from ``N(0, 1)`` with this generator instead
                of zeros, as HiNet's reference code does (must live on
                ``stego``'s device).
            key: the key of :meth:`hide`; a wrong one reveals something unrelated to the secret.
            locked: a keyed hider returns the secrets still locked, for
                :meth:`unlock` to open (no ``key`` then).
            refine: apply the hider's :attr:`refiner`, if it has one, to what
                the graph gives back (before unlocking); ``False``: the
                invertible path alone, whose reveal with ``z = lost`` gives
                the hidden secrets back exactly.
            check_finite: refuse NaN or infinite inputs and outputs (see
                :meth:`hide`).

        Returns:
            The recovered secrets ``(B, kC, H, W)``; for several secrets,
            ``recovered.chunk(k, dim=1)`` splits them.

        Raises:
            invhide.errors.InputError: invalid shapes, a ``z`` that does not
                match the stego, a generator on another device, NaN or
                infinite values (names the input).
            invhide.errors.InputTypeError: a non-tensor or non-float input, one whose dtype
                or device is not the model's, or a ``generator`` that is not a ``torch.Generator``.
            invhide.errors.ModelError: finite inputs gave a NaN or infinite
                result: the weights are corrupt or diverged.
        """
        self._check_image("stego", stego, self.channels, check_finite)
        unlock = self._locks(key, locked)
        z = self._latent(stego, z, generator, check_finite)
        given, layout = self._layout_of(stego), self._memory_format()
        stego, z = stego.contiguous(memory_format=layout), z.contiguous(memory_format=layout)
        (_, secret), _ = self._run([stego, z], [], rev=True, jac=False)
        if refine and self.refiner is not None:
            secret = self.refiner(secret)
        if unlock:
            secret = self._lock(secret, key, rev=True)
        secret = secret.contiguous(memory_format=given)
        if check_finite:
            self._refuse_non_finite("recovered secret", secret)
        return secret

    def _latent(self, stego: Tensor, z: Tensor | None, generator: torch.Generator | None, finite: bool) -> Tensor:
        """``z`` checked against ``stego``; or drawn from ``N(0, 1)`` with ``generator`` (checked too); or zeros."""
        lost_channels = self.num_secrets * self.channels
        if z is not None:
            return self._check_image("z", z, lost_channels, finite, ("stego", stego))
        if generator is not None:
            if not isinstance(generator, torch.Generator):
                raise InputTypeError(
                    argument="generator", problem=f"must be a torch.Generator, got {type(generator).__name__}"
                )
            if generator.device.type != stego.device.type:
                raise InputError(
                    f"generator is on {generator.device} but stego is on {stego.device}: create it with "
                    f"torch.Generator({str(stego.device)!r})"
                )
        shape = (stego.shape[0], lost_channels, *stego.shape[2:])
        if generator is None:
            return stego.new_zeros(shape)
        return torch.randn(shape, generator=generator, dtype=stego.dtype, device=stego.device)

    def lock(self, secret: Tensor, key: Key | None = None) -> Tensor:
        """A keyed hider's secret as its key scrambles it before any coupling, in the image domain.

        The secret's wavelet tiles (:data:`KEY_TILE` x :data:`KEY_TILE`, all
        channels together) are permuted by the key, and the result brought
        back to pixels: ``hide(cover, secret, key=k)`` is ``hide(cover,
        lock(secret, k), locked=True)``, and ``unlock(reveal(stego,
        locked=True), k)`` is ``reveal(stego, key=k)``. The permutation
        depends on the image's size, so lock whole images.

        Args:
            secret: ``(B, kC, H, W)`` (several secrets concatenated along the
                channels), H and W even.
            key: as :meth:`hide` takes it (``None``: :data:`PUBLIC_KEY`, with a warning).

        Raises:
            invhide.errors.InputError: an unkeyed hider, or a bad key or image.

        Example:
            >>> hider = InvertibleHider(num_blocks=1, subnet="conv", keyed=True)
            >>> secret, key = torch.rand(1, 3, 16, 16), bytes(range(32))
            >>> locked = hider.lock(secret, key)
            >>> bool(torch.allclose(hider.unlock(locked, key), secret, atol=1e-6)), bool(torch.equal(locked, secret))
            (True, False)
        """
        if not self.keyed:
            raise InputError("this model is not keyed: it hides without a key, so there is nothing to lock")
        secret = self._check_image("secret", secret, self.num_secrets * self.channels, False)
        return self._lock(secret, key, rev=False)

    def unlock(self, locked: Tensor, key: Key | None = None) -> Tensor:
        """The inverse of :meth:`lock` under the same key (a wrong key gives the secret's tiles in another order)."""
        if not self.keyed:
            raise InputError("this model is not keyed: it hides without a key, so there is nothing to unlock")
        locked = self._check_image("locked secret", locked, self.num_secrets * self.channels, False)
        return self._lock(locked, key, rev=True)

    def _locks(self, key: Key | None, locked: bool) -> bool:
        """Whether :meth:`hide` or :meth:`reveal` locks with ``key``; refuses a key it cannot use."""
        if not self.keyed:
            if key is not None:
                raise InputError("this model is not keyed: it hides without a key, so drop the key")
            if locked:
                raise InputError(argument="locked", problem="applies to a keyed model only; this one is not keyed")
            return False
        if locked and key is not None:
            raise InputError(argument="key", problem="comes with locked=True: the key locked the secret already")
        return not locked

    def _lock(self, image: Tensor, key: Key | None, rev: bool) -> Tensor:
        """``image`` locked (or with ``rev``, unlocked) by ``key``: wavelet, keyed permutation, inverse wavelet."""
        (coefficients,), _ = self.secret_wavelet([image], jac=False)  # inputs checked at the edge
        (coefficients,), _ = self.secret_lock([coefficients], c=self._keys(key, image), rev=rev, jac=False)
        (image,), _ = self.secret_wavelet([coefficients], rev=True, jac=False)
        return image

    def _keys(self, key: Key | None, like: Tensor) -> list[Tensor]:
        """The ``(B, 32)`` key tensor for ``key``, :data:`PUBLIC_KEY` (with a warning) when ``None``."""
        if key is None:
            warnings.warn(
                "a keyed model used without a key uses the published public key: anyone can reveal its secrets",
                PublicKeyWarning,
                stacklevel=4,
            )
            key = PUBLIC_KEY
        batch = like.shape[0]
        if isinstance(key, Tensor):
            if key.dtype != torch.uint8 or tuple(key.shape) != (batch, KEY_BYTES):
                raise InputError(
                    argument="key",
                    problem=f"must be a (B, {KEY_BYTES}) torch.uint8 tensor with B = {batch}, "
                    f"got {key.dtype} of shape {tuple(key.shape)}",
                )
            return [key.to(like.device)]
        keys = [key] * batch if isinstance(key, (bytes, bytearray)) else list(key)
        if len(keys) != batch:
            raise InputError(argument="key", problem=f"must hold one key per image ({batch}), got {len(keys)}")
        return [key_tensor([bytes(k) if isinstance(k, bytearray) else k for k in keys], like.device)]

    # ------------------------------------------------------------------
    # Configuration
    # ------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """A JSON-ready description from which :meth:`from_config` rebuilds the architecture.

        Raises:
            TypeError: the subnet is a plain callable, which cannot be
                described; use a registered name or :func:`invhide.nn.subnets.register`.

        Example:
            >>> InvertibleHider(num_blocks=2, subnet="conv").config()["subnet"]
            {'name': 'conv'}
        """
        if not isinstance(self.subnet, SubnetFactory):
            raise InputTypeError(
                f"cannot describe the custom subnet {self.subnet!r} in a config; register its class with "
                f"invhide.nn.subnets.register(name, cls) and pass a SubnetFactory or name instead"
            )
        return {
            "class": "InvertibleHider",
            "num_secrets": self.num_secrets,
            "num_blocks": self.num_blocks,
            "subnet": self.subnet.config(),
            "wavelet": self.wavelet,
            "clamp": self.clamp,
            "clamp_activation": self.clamp_activation,
            "channels": self.channels,
            "layout": self.layout,
            "wavelet_backend": self.wavelet_backend,
            **({"keyed": True} if self.keyed else {}),
            **({"refiner": _options(self.refiner)} if self.refiner is not None else {}),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> InvertibleHider:
        """Build a freshly initialised hider from :meth:`config`'s output.

        Raises:
            ValueError: the config names another class or has unknown keys.
        """
        config = dict(config)
        if isinstance(config.get("subnet"), Mapping):
            config["subnet"] = SubnetFactory.from_config(config["subnet"])
        return build_from_config(cls, config)

    def extra_repr(self) -> str:
        return (
            f"num_secrets={self.num_secrets}, num_blocks={self.num_blocks}, wavelet={self.wavelet!r}, "
            f"clamp={self.clamp}, channels={self.channels}, layout={self.layout!r}"
            + (", keyed=True" if self.keyed else "")
            + (", refined=True" if self.refiner is not None else "")
        )


def _options(refiner: Refiner) -> dict[str, Any]:
    """A refiner's config without its channels, which the hider gives it."""
    return {name: value for name, value in refiner.config().items() if name != "channels"}


_CONVERSIONS = {
    torch.float32: ".float()",
    torch.float64: ".double()",
    torch.float16: ".half()",
    torch.bfloat16: ".bfloat16()",
}


def _conversion(dtype: torch.dtype) -> str:
    """The method call that converts a tensor or module to ``dtype`` (``".float()"``)."""
    return _CONVERSIONS.get(dtype, f".to({dtype})")


register_model_class("InvertibleHider", InvertibleHider.from_config)
