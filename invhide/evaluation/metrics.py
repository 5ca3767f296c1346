"""Image quality metrics (PSNR, SSIM, MAE, RMSE) and the HiNet Table 2 evaluation.

Images are ``(B, 3, H, W)`` floats, nominally in ``[0, 1]``. Every metric is
computed per image in float64 on the 0..255 scale, either on the three RGB
channels (``channel="rgb"``) or on the BT.601 luma Y that MATLAB's
``rgb2ycbcr`` and the reference evaluation scripts use (``channel="y"``), and
returned as a ``(B,)`` float64 tensor. Metrics never clamp or round their
inputs: a float stego may overshoot ``[0, 1]`` and is measured as it is; use
:func:`quantize_8bit` to measure what an 8-bit PNG of it would hold.

:func:`evaluate` runs a hider over cover/secret pairs and gathers all of this
into an :class:`Evaluation`, printed in the layout of the paper's Table 2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from invhide.checks import image_batch
from invhide.errors import InputError, InputTypeError
from invhide.nn.functional import quantize_8bit

__all__ = [
    "CHANNELS",
    "METRICS",
    "ROWS",
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
"""Where the metrics are computed: the three RGB channels, or the BT.601 luma Y (:func:`rgb_to_y`)."""
METRICS: tuple[str, ...] = ("psnr", "ssim", "mae", "rmse")
"""The metrics of an :class:`Evaluation`, in the column order of the paper's Table 2."""
ROWS: tuple[str, ...] = ("cover/stego", "secret/recovery")
"""The two comparisons of an :class:`Evaluation`: stego against cover, recovered secret against secret."""
STEGO_SETTINGS: tuple[str, ...] = ("float", "8-bit")
"""The stego an :class:`Evaluation` reveals from: as the network outputs it, or :func:`quantize_8bit` of it."""
_SETTING_NAMES = dict(zip((False, True), STEGO_SETTINGS, strict=True))  # quantize flag -> stego setting

# ITU-R BT.601 luma for RGB in [0, 1], in 0..255 units (range 16..235), as MATLAB's rgb2ycbcr.
_Y_OFFSET = 16.0
_Y_WEIGHTS = (65.481, 128.553, 24.966)
# SSIM as Wang et al. 2004: 11x11 Gaussian window of standard deviation 1.5, K1 = 0.01, K2 = 0.03.
_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_K = (0.01, 0.03)
_PEAK = 255.0


# --------------------------------------------------------------------------
# Conversions
# --------------------------------------------------------------------------


def _check_rgb(x: Tensor, name: str = "x") -> None:
    image_batch(name, x, channels=3)


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
    _check_rgb(x)
    red, green, blue = x.unbind(dim=1)
    luma = _Y_OFFSET + _Y_WEIGHTS[0] * red + _Y_WEIGHTS[1] * green + _Y_WEIGHTS[2] * blue
    return luma.unsqueeze(1)


def _prepare(x: Tensor, y: Tensor, channel: str) -> tuple[Tensor, Tensor]:
    """Both images in float64 on the 0..255 scale, RGB ``(B, 3, H, W)`` or Y ``(B, 1, H, W)``."""
    _check_rgb(x, "x")
    _check_rgb(y, "y")
    if x.shape != y.shape:
        raise InputError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if channel not in CHANNELS:
        raise InputError(f"channel must be one of {CHANNELS}, got {channel!r}")
    x, y = x.double(), y.double()
    if channel == "y":
        return rgb_to_y(x), rgb_to_y(y)
    return x * _PEAK, y * _PEAK


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------


def _mse(x: Tensor, y: Tensor) -> Tensor:
    return (x - y).square().flatten(1).mean(dim=1)


def psnr(x: Tensor, y: Tensor, channel: Channel = "rgb") -> Tensor:
    """Peak signal-to-noise ratio per image, ``10 log10(255^2 / MSE)`` on 0..255.

    The MSE is over all pixels and, for ``"rgb"``, all three channels. Peak
    255 on Y too, as the reference scripts compute it.

    Args:
        x: ``(B, 3, H, W)`` floats, nominally in ``[0, 1]`` (not clamped).
        y: the same shape as ``x``.
        channel: ``"rgb"`` or ``"y"`` (BT.601 luma, :func:`rgb_to_y`).

    Returns:
        ``(B,)`` float64 in dB; ``inf`` where the two images are identical.

    Raises:
        ValueError: shapes differ or are not ``(B, 3, H, W)``, unknown channel.
        TypeError: a non-tensor or non-float input.

    Example:
        >>> x = torch.zeros(2, 3, 4, 4)
        >>> y = x.clone()
        >>> y[0] += 1 / 255  # every value off by one level: MSE 1
        >>> [round(value, 4) for value in psnr(x, y).tolist()]  # 10 log10(255^2), and identical images
        [48.1308, inf]
    """
    x, y = _prepare(x, y, channel)
    return 10 * torch.log10(_PEAK**2 / _mse(x, y))


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
    x, y = _prepare(x, y, channel)
    return (x - y).abs().flatten(1).mean(dim=1)


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
    x, y = _prepare(x, y, channel)
    return _mse(x, y).sqrt()


def _gaussian_window(channels: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """pytorch-msssim's 1-D Gaussian window, built in ``dtype`` and repeated per channel.

    pytorch-msssim builds its default window in float32, which puts SSIM off
    by about 1e-6 even for float64 images; this window is the same
    ``exp(-k^2 / (2 sigma^2))``, normalised, at full precision.
    """
    offsets = torch.arange(_SSIM_WINDOW, dtype=dtype, device=device) - _SSIM_WINDOW // 2
    window = torch.exp(-offsets.square() / (2 * _SSIM_SIGMA**2))
    window = window / window.sum()
    return window.reshape(1, 1, 1, _SSIM_WINDOW).repeat(channels, 1, 1, 1)


def ssim(x: Tensor, y: Tensor, channel: Channel = "rgb") -> Tensor:
    """Structural similarity per image (Wang et al. 2004), on 0..255.

    An 11x11 Gaussian window of standard deviation 1.5, ``K = (0.01, 0.03)``,
    data range 255, population (not sample) covariances, averaged over the
    valid region (every window inside the image, no padding) and, for RGB,
    over the three channels. Computed by ``pytorch_msssim.ssim`` in float64;
    equal to scikit-image's ``structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=255)``.

    Args:
        x: ``(B, 3, H, W)`` floats, nominally in ``[0, 1]`` (not clamped),
            H and W at least 11.
        y: the same shape as ``x``.
        channel: ``"rgb"`` or ``"y"`` (BT.601 luma, :func:`rgb_to_y`).

    Returns:
        ``(B,)`` float64, 1 for identical images.

    Raises:
        ValueError: shapes differ, are not ``(B, 3, H, W)`` or are smaller
            than the window, unknown channel.
        TypeError: a non-tensor or non-float input.
        ImportError: pytorch-msssim is not installed.

    References:
        Wang, Bovik, Sheikh and Simoncelli, "Image quality assessment: from
        error visibility to structural similarity", IEEE TIP 13(4), 2004.

    Example:
        >>> x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> ssim(x, x).tolist()
        [1.0, 1.0]
    """
    x, y = _prepare(x, y, channel)
    height, width = x.shape[-2:]
    if height < _SSIM_WINDOW or width < _SSIM_WINDOW:
        # pytorch-msssim would silently skip the smoothing along a short side.
        raise InputError(f"SSIM needs images of at least {_SSIM_WINDOW}x{_SSIM_WINDOW}, got {height}x{width}")
    try:
        from pytorch_msssim import ssim as msssim_ssim
    except ModuleNotFoundError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "invhide.evaluation.metrics.ssim needs pytorch-msssim (pip install pytorch-msssim)"
        ) from error
    window = _gaussian_window(x.shape[1], x.dtype, x.device)
    return msssim_ssim(x, y, data_range=_PEAK, size_average=False, win=window, K=_SSIM_K)


_METRIC_FUNCTIONS = {"psnr": psnr, "ssim": ssim, "mae": mae, "rmse": rmse}


def _measure(reference: Tensor, result: Tensor) -> dict[tuple[str, str], Tensor]:
    """Every metric on every channel: ``{(channel, metric): (B,) float64 on the CPU}``."""
    return {
        (channel, metric): function(reference, result, channel).cpu()
        for channel in CHANNELS
        for metric, function in _METRIC_FUNCTIONS.items()
    }


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
        for name, value, allowed in (
            ("stego", stego, self.stego_settings),
            ("row", row, ROWS),
            ("channel", channel, CHANNELS),
            ("metric", metric, METRICS),
        ):
            if value not in allowed:
                raise InputError(f"{name} must be one of {allowed}, got {value!r}")
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
            title = "stego kept as floats (not rounded)" if stego == "float" else "stego rounded to 8 bits (as a PNG)"
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
    """Yield ``(cover, secret)`` one image each, ``(3, H, W)``, from single or batched pairs."""
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
        _check_rgb(cover, f"cover of pair {index}")
        _check_rgb(secret, f"secret of pair {index}")
        if cover.shape != secret.shape:
            raise InputError(
                f"cover and secret of pair {index} must have the same shape, "
                f"got {tuple(cover.shape)} and {tuple(secret.shape)}"
            )
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


def _resolve(device: torch.device | str) -> torch.device:
    """The full device name, with its index: ``cuda`` becomes ``cuda:0`` where 0 is the current one."""
    return torch.empty(0, device=device).device


def _check_quantize(quantize: object) -> tuple[bool, ...]:
    if isinstance(quantize, bool) or not isinstance(quantize, Sequence):
        raise InputTypeError(f"quantize must be a sequence of booleans such as (False, True), got {quantize!r}")
    settings = tuple(quantize)
    if not settings or any(not isinstance(q, bool) for q in settings) or len(set(settings)) != len(settings):
        raise InputError(f"quantize must hold False and/or True, each at most once, got {quantize!r}")
    return settings


def evaluate(
    model: nn.Module,
    pairs: Iterable[tuple[Tensor, Tensor]],
    *,
    batch_size: int = 4,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
    quantize: Sequence[bool] = (False, True),
) -> Evaluation:
    """Measure a hider as in the paper's Table 2: cover/stego and secret/recovery quality.

    For each batch the model hides the secret in the cover, then, for each
    ``quantize`` setting, reveals from the stego: ``False`` from the float
    stego as it is, ``True`` from :func:`quantize_8bit` of it (what an 8-bit
    PNG holds; the cover/stego row then measures that rounded stego too). The
    lost part is replaced by ``z ~ N(0, 1)``, drawn once per batch and shared
    by both settings, so that they differ only in the rounding. Runs under
    ``torch.inference_mode()`` with the model in eval mode; every module's
    mode is restored afterwards. Recovered images are measured as they come
    out, not clamped.

    Args:
        model: an :class:`~invhide.InvertibleHider` with one secret (anything
            with ``hide(cover, secret) -> (stego, lost)`` and
            ``reveal(stego, z=...) -> recovered``).
        pairs: an iterable of ``(cover, secret)``, each ``(3, H, W)`` or
            ``(B, 3, H, W)`` floats in ``[0, 1]``; sizes may differ between pairs.
        batch_size: images per forward pass; consecutive pairs of the same
            size are batched together.
        device: where to run; the model's device by default. The model is
            not moved: it must already be there.
        generator: draws ``z``; lives on ``device``. By default a generator
            seeded with 0, so that an evaluation is reproducible.
        quantize: the stego settings to evaluate, ``False`` (``"float"``)
            and/or ``True`` (``"8-bit"``), in this order.

    Returns:
        An :class:`Evaluation`.

    Raises:
        ValueError: no pairs, images outside ``[0, 1]``, mismatched shapes,
            a bad ``batch_size`` or ``quantize``, a model with several
            secrets, or a model, generator and device that disagree.
        TypeError: a pair that is not two float tensors.

    Example:
        >>> hider = invhide.InvertibleHider(num_blocks=1, subnet="conv")
        >>> images = torch.rand(2, 2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> result = evaluate(hider, [(images[0], images[1])])
        >>> result.mean("cover/stego", "psnr", stego="float") > 100  # a fresh hider is the identity (up to rounding)
        True
        >>> result.mean("secret/recovery", "psnr", channel="y", stego="8-bit") < 20  # z is not the lost part
        True
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    settings = _check_quantize(quantize)
    if getattr(model, "num_secrets", 1) != 1:
        raise InputError(f"evaluate measures hiders of one secret image, got num_secrets={model.num_secrets}")
    parameter = next(model.parameters(), None)
    model_device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.get_default_dtype()
    device = model_device if device is None else _resolve(device)
    if parameter is not None and device != model_device:
        raise InputError(f"the model is on {model_device}, not on the requested device {device}; move it first")
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(0)
    elif _resolve(generator.device) != device:
        raise InputError(f"generator must live on {device}, got a generator on {generator.device}")
    # float64 metrics; MPS has no float64, so measure on the CPU there.
    metric_device = torch.device("cpu") if device.type == "mps" else device

    collected: dict[Key, list[Tensor]] = {}
    sizes: list[tuple[int, int]] = []
    num_pairs = 0
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.inference_mode():
            for cover, secret in _batches(pairs, batch_size):
                cover = cover.to(device=device, dtype=dtype)
                secret = secret.to(device=device, dtype=dtype)
                stego, lost = model.hide(cover, secret)
                z = torch.randn(lost.shape, generator=generator, dtype=lost.dtype, device=device)
                for rounded in settings:
                    shown = quantize_8bit(stego) if rounded else stego
                    recovered = model.reveal(shown, z=z)
                    compared = {"cover/stego": (cover, shown), "secret/recovery": (secret, recovered)}
                    for row, (reference, result) in compared.items():
                        measured = _measure(reference.to(metric_device), result.to(metric_device))
                        for (channel, metric), value in measured.items():
                            collected.setdefault((_SETTING_NAMES[rounded], row, channel, metric), []).append(value)
                num_pairs += cover.shape[0]
                size = (cover.shape[-2], cover.shape[-1])
                if size not in sizes:
                    sizes.append(size)
    finally:
        for module, training in modes:
            module.training = training
    if not num_pairs:
        raise InputError("evaluate needs at least one cover/secret pair, got none")
    # Concatenated outside inference mode: plain tensors that callers may use freely.
    return Evaluation(
        values={key: torch.cat(parts) for key, parts in collected.items()},
        num_pairs=num_pairs,
        sizes=tuple(sizes),
        stego_settings=tuple(_SETTING_NAMES[rounded] for rounded in settings),
    )
