"""Image quality metrics (PSNR, SSIM, MAE, RMSE) and the HiNet Table 2 evaluation.

Images are ``(B, C, H, W)`` floats, nominally in ``[0, 1]``. Every metric is computed per image in float64 (on
the CPU for MPS, which has no float64) on the 0..255 scale, on every channel as given (``channel="rgb"``: RGB,
or any other number of channels, such as ``k`` stacked secrets) or on the BT.601 luma Y of RGB images that
MATLAB's ``rgb2ycbcr`` and the reference evaluation scripts use (``channel="y"``), and returned as a ``(B,)``
float64 tensor. Metrics never clamp or round: a float stego may overshoot ``[0, 1]`` and is measured as it is
(:func:`invhide.nn.functional.quantize_8bit` gives what an 8-bit PNG of it would hold).

:func:`evaluate` runs a hider over cover/secret pairs and gathers all of this into an :class:`Evaluation`,
printed in the layout of the paper's Table 2.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pytorch_msssim
import torch
from torch import Tensor, nn

from invhide.checks import image_batch, one_of, positive_int
from invhide.errors import InputError, InputTypeError
from invhide.evaluation.channels import RealChannel
from invhide.models.hider import public_key
from invhide.nn.functional import quantize_8bit

__all__ = [
    "CHANNELS",
    "METRICS",
    "ROWS",
    "SSIM_WINDOW",
    "STEGO_SETTINGS",
    "Evaluation",
    "evaluate",
    "mae",
    "psnr",
    "rgb_to_y",
    "rmse",
    "ssim",
]

Channel = Literal["rgb", "y"]
CHANNELS: tuple[str, ...] = ("rgb", "y")
"""Where the metrics are computed: every channel as given, or the BT.601 luma Y (:func:`rgb_to_y`)."""
METRICS: tuple[str, ...] = ("psnr", "ssim", "mae", "rmse")
"""The metrics of an :class:`Evaluation`, in the column order of the paper's Table 2."""
ROWS: tuple[str, ...] = ("cover/stego", "secret/recovery")
"""The two comparisons of an :class:`Evaluation`: stego against cover, recovered secret against secret."""
STEGO_SETTINGS: tuple[str, ...] = ("float", "8-bit")
"""The stego an :class:`Evaluation` reveals from: as the network outputs it, or ``quantize_8bit`` of it."""
_SETTING_NAMES = dict(zip((False, True), STEGO_SETTINGS, strict=True))  # quantize flag -> stego setting
_TITLES = {"float": "stego kept as floats (not rounded)", "8-bit": "stego rounded to 8 bits (as a PNG)"}

# ITU-R BT.601 luma for RGB in [0, 1], in 0..255 units (range 16..235), as MATLAB's rgb2ycbcr.
_Y_OFFSET = 16.0
_Y_WEIGHTS = (65.481, 128.553, 24.966)
SSIM_WINDOW = 11
"""Side of SSIM's Gaussian window: the smallest height and width :func:`ssim` and :func:`evaluate` take."""
# SSIM as Wang et al. 2004: 11x11 Gaussian window of standard deviation 1.5, K1 = 0.01, K2 = 0.03.
_SSIM_SIGMA = 1.5
_SSIM_K = (0.01, 0.03)
_PEAK = 255.0


# --------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------


def _luma(x: Tensor) -> Tensor:
    red, green, blue = x.unbind(dim=1)
    return (_Y_OFFSET + _Y_WEIGHTS[0] * red + _Y_WEIGHTS[1] * green + _Y_WEIGHTS[2] * blue).unsqueeze(1)


def rgb_to_y(x: Tensor) -> Tensor:
    """ITU-R BT.601 luma, as MATLAB's ``rgb2ycbcr``, in 0..255 units.

    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for ``R, G, B`` in ``[0, 1]``,
    so ``Y`` lies in ``[16, 235]``. Not rounded.

    Args:
        x: ``(B, 3, H, W)`` RGB floats in ``[0, 1]``.

    Returns:
        ``(B, 1, H, W)`` in ``x``'s dtype.

    Raises:
        ValueError: not shaped ``(B, 3, H, W)``.
        TypeError: a non-tensor or non-float input.

    Example:
        >>> x = torch.tensor([0.0, 1.0]).reshape(2, 1, 1, 1).expand(2, 3, 1, 1)  # black, white
        >>> [round(v, 3) for v in rgb_to_y(x).flatten().tolist()]
        [16.0, 235.0]
    """
    return _luma(image_batch("x", x, channels=3))


def _scaled(x: Tensor, channel: str) -> Tensor:
    """``x`` in float64 on the 0..255 scale: every channel as given, or the luma ``(B, 1, H, W)``."""
    x = (x.cpu() if x.device.type == "mps" else x).double()  # MPS has no float64
    return _luma(x) if channel == "y" else x * _PEAK


def _prepare(x: Tensor, y: Tensor, channel: str) -> tuple[Tensor, Tensor]:
    """Both images checked, then :func:`_scaled`."""
    channel = one_of("channel", channel, CHANNELS)
    channels = 3 if channel == "y" else None
    image_batch("x", x, channels=channels)
    image_batch("y", y, channels=channels)
    if x.shape != y.shape:
        raise InputError(
            argument="x and y", problem=f"must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    return _scaled(x, channel), _scaled(y, channel)


# --------------------------------------------------------------------------
# Metrics: the math on 0..255 float64 images, then the public, checked functions
# --------------------------------------------------------------------------


def _mse(x: Tensor, y: Tensor) -> Tensor:
    return (x - y).square().flatten(1).mean(dim=1)


def _psnr(x: Tensor, y: Tensor) -> Tensor:
    return 10 * torch.log10(_PEAK**2 / _mse(x, y))


def _mae(x: Tensor, y: Tensor) -> Tensor:
    return (x - y).abs().flatten(1).mean(dim=1)


def _rmse(x: Tensor, y: Tensor) -> Tensor:
    return _mse(x, y).sqrt()


def _check_window(name: str, image: Tensor) -> None:
    """Refuse an image smaller than SSIM's window (pytorch-msssim would silently skip the smoothing along it)."""
    height, width = image.shape[-2:]
    if height < SSIM_WINDOW or width < SSIM_WINDOW:
        raise InputError(
            argument=name,
            problem=f"must be at least {SSIM_WINDOW}x{SSIM_WINDOW} (SSIM's window), got {height}x{width}",
        )


def _ssim(x: Tensor, y: Tensor) -> Tensor:
    # pytorch-msssim's default window is built in float32 (SSIM off by about 1e-6 even for float64 images):
    # the same normalised exp(-k^2 / (2 sigma^2)), at the images' precision, repeated per channel.
    offsets = torch.arange(SSIM_WINDOW, dtype=x.dtype, device=x.device) - SSIM_WINDOW // 2
    window = torch.exp(-offsets.square() / (2 * _SSIM_SIGMA**2))
    window = (window / window.sum()).reshape(1, 1, 1, SSIM_WINDOW).repeat(x.shape[1], 1, 1, 1)
    return pytorch_msssim.ssim(x, y, data_range=_PEAK, size_average=False, win=window, K=_SSIM_K)


def psnr(x: Tensor, y: Tensor, channel: Channel = "rgb") -> Tensor:
    """Peak signal-to-noise ratio per image, ``10 log10(255^2 / MSE)`` on 0..255.

    The MSE is over all pixels and, for ``"rgb"``, all channels. Peak 255 on
    Y too, as the reference scripts compute it. One figure for a batch is
    ``psnr(x, y).mean().item()``, the mean of the per-image values.

    Args:
        x: ``(B, C, H, W)`` floats, nominally in ``[0, 1]`` (not clamped);
            ``C == 3`` for ``"y"``.
        y: the same shape as ``x``.
        channel: ``"rgb"`` (every channel) or ``"y"`` (BT.601 luma, :func:`rgb_to_y`).

    Returns:
        ``(B,)`` float64 in dB; ``inf`` where the two images are identical.

    Raises:
        ValueError: shapes differ or are not ``(B, C, H, W)``, unknown channel.
        TypeError: a non-tensor or non-float input.

    Example:
        >>> x = torch.zeros(2, 3, 4, 4)
        >>> y = x.clone()
        >>> y[0] += 1 / 255  # every value off by one level: MSE 1
        >>> [round(value, 4) for value in psnr(x, y).tolist()]  # 10 log10(255^2), and identical images
        [48.1308, inf]
    """
    return _psnr(*_prepare(x, y, channel))


def mae(x: Tensor, y: Tensor, channel: Channel = "rgb") -> Tensor:
    """Mean absolute error per image on the 0..255 scale.

    Args and raises as :func:`psnr`.

    Returns:
        ``(B,)`` float64.

    Example:
        >>> x = torch.zeros(1, 3, 2, 2)
        >>> mae(x, x + 2 / 255).tolist()
        [2.0...]
    """
    return _mae(*_prepare(x, y, channel))


def rmse(x: Tensor, y: Tensor, channel: Channel = "rgb") -> Tensor:
    """Root mean squared error per image on the 0..255 scale.

    Args and raises as :func:`psnr`.

    Returns:
        ``(B,)`` float64.

    Example:
        >>> x = torch.zeros(1, 3, 2, 2)
        >>> y = x.clone()
        >>> y[..., 0, 0] = 4 / 255  # one pixel in four off by 4: sqrt(16 / 4)
        >>> rmse(x, y).tolist()
        [2.0...]
    """
    return _rmse(*_prepare(x, y, channel))


def ssim(x: Tensor, y: Tensor, channel: Channel = "rgb") -> Tensor:
    """Structural similarity per image (Wang et al. 2004), on 0..255.

    An 11x11 Gaussian window of standard deviation 1.5, ``K = (0.01, 0.03)``,
    data range 255, population (not sample) covariances, averaged over the
    valid region (every window inside the image, no padding) and, for
    ``"rgb"``, over the channels. Computed by ``pytorch_msssim.ssim`` in
    float64; equal to scikit-image's ``structural_similarity(...,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=255)``.

    Args:
        x: ``(B, C, H, W)`` floats, nominally in ``[0, 1]`` (not clamped),
            H and W at least :data:`SSIM_WINDOW` (11); ``C == 3`` for ``"y"``.
        y: the same shape as ``x``.
        channel: ``"rgb"`` (every channel) or ``"y"`` (BT.601 luma, :func:`rgb_to_y`).

    Returns:
        ``(B,)`` float64, 1 for identical images.

    Raises:
        ValueError: shapes differ, are not ``(B, C, H, W)`` or are smaller
            than the window, unknown channel.
        TypeError: a non-tensor or non-float input.

    References:
        Wang, Bovik, Sheikh and Simoncelli, "Image quality assessment: from
        error visibility to structural similarity", IEEE TIP 13(4), 2004.

    Example:
        >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> ssim(x, x).tolist()
        [1.0, 1.0]
    """
    x, y = _prepare(x, y, channel)
    _check_window("x and y", x)
    return _ssim(x, y)


_METRIC_MATH = {"psnr": _psnr, "ssim": _ssim, "mae": _mae, "rmse": _rmse}


def _measure(reference: Tensor, result: Tensor) -> dict[tuple[str, str], Tensor]:
    """Every metric on every channel of checked images: ``{(channel, metric): (B,) float64 on the CPU}``."""
    measured = {}
    for channel in CHANNELS:
        x, y = _scaled(reference, channel), _scaled(result, channel)
        measured |= {(channel, metric): math_(x, y).cpu() for metric, math_ in _METRIC_MATH.items()}
    return measured


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------


Key = tuple[str, str, str, str]  # (stego setting, row, channel, metric)


def _format_value(value: float, metric: str) -> str:
    if math.isinf(value) or math.isnan(value):
        return str(value)
    return f"{value:.4f}" if metric == "ssim" else f"{value:.2f}"


def _json_number(value: float) -> float | str:
    """JSON has no infinity or NaN: write them as the strings ``"inf"``, ``"-inf"``, ``"nan"``."""
    return value if math.isfinite(value) else str(value)


@dataclass(frozen=True)
class Evaluation:
    """Per-image metrics of a hider over a set of cover/secret pairs.

    Attributes:
        values: ``{(stego, row, channel, metric): (N,) float64 tensor}`` with
            ``stego`` in the evaluated settings (``"float"``, ``"8-bit"``),
            ``row`` in :data:`ROWS`, ``channel`` in :data:`CHANNELS` and
            ``metric`` in :data:`METRICS`; images in the order given.
        num_pairs: ``N``, the number of cover/secret pairs.
        sizes: the distinct image sizes ``(H, W)``, in order of appearance.
        stego_settings: the evaluated stego settings, in order.
    """

    values: dict[Key, Tensor]
    num_pairs: int
    sizes: tuple[tuple[int, int], ...]
    stego_settings: tuple[str, ...]

    def per_image(self, row: str, metric: str, channel: Channel = "rgb", stego: str = "float") -> Tensor:
        """The ``(N,)`` per-image values of one cell of the table.

        Raises:
            ValueError: an unknown row, metric, channel or stego setting.
        """
        one_of("stego", stego, self.stego_settings)
        one_of("row", row, ROWS)
        one_of("channel", channel, CHANNELS)
        one_of("metric", metric, METRICS)
        return self.values[(stego, row, channel, metric)]

    def mean(self, row: str, metric: str, channel: Channel = "rgb", stego: str = "float") -> float:
        """The mean over images of one cell of the table.

        A PSNR of ``inf`` (an image reproduced exactly) makes the mean
        ``inf``: the arithmetic mean of per-image values, like the reference
        scripts, with nothing dropped.

        Raises:
            ValueError: an unknown row, metric, channel or stego setting.
        """
        return self.per_image(row, metric, channel, stego).mean().item()

    def format(self) -> str:
        """A plain-text table in the layout of the paper's Table 2, one block per stego setting.

        Example:
            >>> cells = [("float", row, channel, metric) for row in ROWS for channel in CHANNELS for metric in METRICS]
            >>> values = {key: torch.full((2,), 1.0 if key[3] == "ssim" else 40.0) for key in cells}
            >>> print(Evaluation(values, 2, ((64, 64),), ("float",)).format())
            2 cover/secret pairs, 64x64
            <BLANKLINE>
            stego kept as floats (not rounded)
                  cover/stego                       secret/recovery
                  PSNR     SSIM    MAE     RMSE     PSNR     SSIM    MAE     RMSE
            RGB   40.00    1.0000  40.00   40.00    40.00    1.0000  40.00   40.00
            Y     40.00    1.0000  40.00   40.00    40.00    1.0000  40.00   40.00
        """
        sizes = ", ".join(f"{h}x{w}" for h, w in self.sizes)
        lines = [f"{self.num_pairs} cover/secret pairs, {sizes}"]
        widths = {"psnr": 9, "ssim": 8, "mae": 8, "rmse": 9}
        for stego in self.stego_settings:
            title = _TITLES.get(stego, f"stego as a PNG, then {stego} for real (Pillow's codec or the operation)")
            groups = "".join(f"{row:<{sum(widths.values())}}" for row in ROWS)
            header = "".join(f"{metric.upper():<{widths[metric]}}" for _ in ROWS for metric in METRICS)
            lines += ["", title, f"{'':6}{groups}".rstrip(), f"{'':6}{header}".rstrip()]
            for channel in CHANNELS:
                cells = "".join(
                    f"{_format_value(self.mean(row, metric, channel, stego), metric):<{widths[metric]}}"
                    for row in ROWS
                    for metric in METRICS
                )
                lines.append(f"{channel.upper():<6}{cells}".rstrip())
            exact = int(torch.isinf(self.per_image("cover/stego", "psnr", "rgb", stego)).sum())
            if exact:
                lines.append(f"({exact} of {self.num_pairs} stego images equal their cover exactly: PSNR inf)")
        return "\n".join(lines)

    def to_dict(self, per_image: bool = True) -> dict[str, Any]:
        """A JSON-ready dictionary (``inf`` and ``nan`` written as strings).

        Layout: ``{"num_pairs", "sizes", "results": {stego: {row: {channel:
        {metric: {"mean": ..., "per_image": [...]}}}}}}``.

        Args:
            per_image: include the per-image values, not only the means.
        """
        results: dict[str, Any] = {}
        for (stego, row, channel, metric), values in self.values.items():
            cell: dict[str, Any] = {"mean": _json_number(values.mean().item())}
            if per_image:
                cell["per_image"] = [_json_number(value) for value in values.tolist()]
            results.setdefault(stego, {}).setdefault(row, {}).setdefault(channel, {})[metric] = cell
        return {"num_pairs": self.num_pairs, "sizes": [list(size) for size in self.sizes], "results": results}

    def __repr__(self) -> str:
        return f"Evaluation(num_pairs={self.num_pairs}, sizes={self.sizes}, stego_settings={self.stego_settings})"


def _single_pairs(pairs: Iterable[tuple[Tensor, Tensor]]) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(cover, secret)`` one image each, ``(3, H, W)``, from single or batched pairs, checked."""
    for index, pair in enumerate(pairs):
        try:
            if isinstance(pair, Tensor):
                raise TypeError
            cover, secret = pair  # a tuple, a list, or anything that unpacks into two, such as data.ImagePair
        except (TypeError, ValueError):
            raise InputTypeError(
                f"pair {index} must be a (cover, secret) pair of tensors, got {type(pair).__name__}"
            ) from None
        cover, secret = (
            image.unsqueeze(0) if isinstance(image, Tensor) and image.dim() == 3 else image for image in (cover, secret)
        )
        for name, image in (("cover", cover), ("secret", secret)):
            image_batch(f"{name} of pair {index}", image, channels=3)
        if cover.shape != secret.shape:
            raise InputError(
                f"cover and secret of pair {index} must have the same shape, "
                f"got {tuple(cover.shape)} and {tuple(secret.shape)}"
            )
        _check_window(f"cover and secret of pair {index}", cover)
        for name, image in (("cover", cover), ("secret", secret)):
            low, high = image.min().item(), image.max().item()
            if low < 0 or high > 1:
                raise InputError(f"{name} of pair {index} must have values in [0, 1], got [{low:.4g}, {high:.4g}]")
        yield from zip(cover, secret, strict=True)


def _batches(pairs: Iterable[tuple[Tensor, Tensor]], batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Stack consecutive same-size pairs into batches of at most ``batch_size``."""
    covers: list[Tensor] = []
    secrets: list[Tensor] = []
    for cover, secret in _single_pairs(pairs):
        if covers and (len(covers) == batch_size or cover.shape != covers[0].shape):
            yield torch.stack(covers), torch.stack(secrets)
            covers, secrets = [], []
        covers.append(cover)
        secrets.append(secret)
    if covers:
        yield torch.stack(covers), torch.stack(secrets)


def _check_quantize(quantize: object) -> tuple[bool, ...]:
    if isinstance(quantize, bool) or not isinstance(quantize, Sequence):
        raise InputTypeError(f"quantize must be a sequence of booleans such as (False, True), got {quantize!r}")
    settings = tuple(quantize)
    if not settings or any(not isinstance(q, bool) for q in settings) or len(set(settings)) != len(settings):
        raise InputError(f"quantize must hold False and/or True, each at most once, got {quantize!r}")
    return settings


def _check_channels(channels: Sequence[RealChannel], settings: tuple[bool, ...]) -> tuple[RealChannel, ...]:
    """``channels`` as a tuple, refused unless each is a :class:`RealChannel` whose name no other setting has."""
    channels = tuple(channels)
    names = [_SETTING_NAMES[rounded] for rounded in settings]
    for channel in channels:
        if not isinstance(channel, RealChannel):
            raise InputTypeError(
                argument="channels",
                problem=f"must hold invhide.evaluation.channels.parse(...) results, got {channel!r}",
            )
        if channel.name in names:
            raise InputError(argument="channels", problem=f"names {channel.name!r} twice (or as a stego setting)")
        names.append(channel.name)
    return channels


def _resolve(device: torch.device | str) -> torch.device:
    """The full device name, with its index: ``cuda`` becomes ``cuda:0`` where 0 is the current one."""
    return torch.empty(0, device=device).device


def _placement(
    model: nn.Module, device: torch.device | str | None, generator: torch.Generator | None
) -> tuple[torch.device, torch.dtype]:
    """The device and dtype to evaluate in (the model's), checked against the generator of ``z``; a one-secret
    model."""
    if getattr(model, "num_secrets", 1) != 1:
        raise InputError(f"evaluate measures hiders of one secret image, got num_secrets={model.num_secrets}")
    parameter = next(model.parameters(), None)
    model_device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.get_default_dtype()
    device = model_device if device is None else _resolve(device)
    if parameter is not None and device != model_device:
        raise InputError(f"the model is on {model_device}, not on the requested device {device}; move it first")
    if generator is not None and _resolve(generator.device) != device:
        raise InputError(f"generator must live on {device}, got a generator on {generator.device}")
    return device, dtype


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """``model.eval()`` for the block; every module's mode restored afterwards, even on an error."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def _hide_and_measure(
    model: nn.Module,
    cover: Tensor,
    secret: Tensor,
    generators: tuple[torch.Generator | None, torch.Generator],
    settings: tuple[bool, ...],
    channels: Sequence[RealChannel],
) -> Iterator[tuple[Key, Tensor]]:
    """Hide one batch, reveal it under each stego setting and channel with one shared ``z``; yield every cell.

    ``generators``: the one of ``z`` (``None``: zeros), and a CPU one for the channels that draw noise.
    """
    stego, lost = model.hide(cover, secret, **public_key(model))
    if generators[0] is None:
        z = torch.zeros_like(lost)
    else:
        z = torch.randn(lost.shape, generator=generators[0], dtype=lost.dtype, device=lost.device)
    png = quantize_8bit(stego)
    received = {_SETTING_NAMES[rounded]: png if rounded else stego for rounded in settings}
    for channel in channels:  # the real codec works on the 8-bit PNG, on the CPU
        passed = channel(png.float().cpu(), generator=generators[1])
        received[channel.name] = passed.to(device=stego.device, dtype=stego.dtype)
    for name, shown in received.items():
        compared = {
            "cover/stego": (cover, shown),
            "secret/recovery": (secret, model.reveal(shown, z=z, **public_key(model))),
        }
        for row, (reference, result) in compared.items():
            for (channel, metric), value in _measure(reference, result).items():
                yield (name, row, channel, metric), value


def evaluate(
    model: nn.Module,
    pairs: Iterable[tuple[Tensor, Tensor]],
    *,
    batch_size: int = 4,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
    quantize: Sequence[bool] = (False, True),
    channels: Sequence[RealChannel] = (),
) -> Evaluation:
    """Measure a hider as in the paper's Table 2: cover/stego and secret/recovery quality.

    For each batch the model hides the secret in the cover, then, for each ``quantize`` setting
    and channel, reveals from the stego as received (the cover/stego row measures that stego):
    ``False`` the float stego, ``True`` ``quantize_8bit`` of it (an 8-bit PNG). The lost part is
    zeros, as :meth:`~invhide.models.hider.InvertibleHider.reveal` gives it by default (with
    ``generator``, ``z ~ N(0, 1)`` drawn once per batch for all settings). In eval mode (restored afterwards),
    under ``torch.inference_mode()``; recovered images are measured unclamped.

    Args:
        model: a hider of one secret (``hide(cover, secret) -> (stego, lost)``, ``reveal(stego, z=...)``).
        pairs: ``(cover, secret)`` pairs, each ``(3, H, W)`` or ``(B, 3, H, W)`` in ``[0, 1]``, H, W >= 11.
        batch_size: images per forward pass (consecutive same-size pairs).
        device: where to run; the model's device (the model is not moved).
        generator: draws ``z`` on ``device`` from ``N(0, 1)``; ``None``: ``z`` is zeros.
        quantize: the stego settings, ``False`` (``"float"``) and/or ``True`` (``"8-bit"``).
        channels: real channels (:func:`invhide.evaluation.channels.parse`), each a stego setting
            named as the channel (``"jpeg:90"``): the 8-bit stego through it (noise seeded with 0).

    Returns:
        An :class:`Evaluation`.

    Raises:
        ValueError: no pairs, images outside ``[0, 1]`` or under :data:`SSIM_WINDOW`, mismatched shapes,
            a bad ``batch_size`` or ``quantize``, several secrets, a model, generator and device that disagree.
        TypeError: a pair that is not two float tensors.

    Example:
        >>> hider = invhide.InvertibleHider(num_blocks=1, subnet="conv")
        >>> result = evaluate(hider, [tuple(torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)))])
        >>> result.mean("cover/stego", "psnr", stego="float") > 100  # a fresh hider is the identity (up to rounding)
        True
        >>> result.mean("secret/recovery", "psnr", channel="y", stego="8-bit") < 20  # z is not the lost part
        True
    """
    batch_size, settings = positive_int("batch_size", batch_size), _check_quantize(quantize)
    device, dtype = _placement(model, device, generator)
    channels, generators = _check_channels(channels, settings), (generator, torch.Generator().manual_seed(0))
    collected: dict[Key, list[Tensor]] = {}
    sizes: dict[tuple[int, int], None] = {}
    with _eval_mode(model), torch.inference_mode():
        for cover, secret in _batches(pairs, batch_size):
            cover, secret = cover.to(device=device, dtype=dtype), secret.to(device=device, dtype=dtype)
            for key, value in _hide_and_measure(model, cover, secret, generators, settings, channels):
                collected.setdefault(key, []).append(value)
            sizes[(cover.shape[-2], cover.shape[-1])] = None
    if not collected:
        raise InputError("evaluate needs at least one cover/secret pair, got none")
    values = {key: torch.cat(parts) for key, parts in collected.items()}  # outside inference mode: plain tensors
    stego_settings = tuple(_SETTING_NAMES[rounded] for rounded in settings) + tuple(c.name for c in channels)
    return Evaluation(values, len(next(iter(values.values()))), tuple(sizes), stego_settings)
