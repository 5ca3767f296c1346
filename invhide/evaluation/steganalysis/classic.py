"""Classic structural detectors of LSB replacement, and LSB replacement itself (the ground truth they measure).

Each detector reads an 8-bit image and returns, per colour channel, an estimate of the embedding rate ``p``: the
fraction of samples whose least significant bit carries a message bit (``p`` bits per channel; about ``p / 2`` of
the samples change). They were written from the papers (each function states its equations and reference):

- :func:`sample_pair_analysis` (``"spa"``; Dumitrescu, Wu and Wang 2003): adjacent pairs in trace sets.
- :func:`primary_sets` (``"primary-sets"``; Dumitrescu, Wu and Memon 2002): the primary sets of adjacent pairs.
- :func:`rs_analysis` (``"rs"``; Fridrich, Goljan and Du 2001): regular and singular groups of four samples.
- :func:`chi_square_attack` (``"chi2"``; Westfeld and Pfitzmann 1999): are the values ``2k`` and ``2k + 1``
  equally frequent on growing prefixes? About the embedded fraction for sequential embedding from the first
  sample; near 0 for covers and for embedding spread at random below full capacity (the attack's known limit).
- :func:`fused` (``"fused"``; StegExpose's ``Fuse.se``, Boehm 2014): the mean of the four estimates, each
  averaged over the channels, made non-negative and capped at 1.

The counting is vectorised with numpy: integer arithmetic on whole channels, ``numpy.bincount`` for the
histograms. Every public function checks its image once (:func:`levels`); the per-channel math trusts it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import numpy as np
import torch
from torch import Tensor

from invhide.checks import integer, number, one_of, positive_int, tensor
from invhide.errors import InputError, InputTypeError

__all__ = [
    "CLASSIC_DETECTORS",
    "DEFAULT_SPA_TRACES",
    "MIN_LENGTH",
    "chi_square_attack",
    "classic_scores",
    "fused",
    "level_pairs",
    "levels",
    "lsb_replacement",
    "primary_sets",
    "rs_analysis",
    "sample_pair_analysis",
]

CLASSIC_DETECTORS: tuple[str, ...] = ("spa", "rs", "chi2", "primary-sets", "fused")
"""Names of the classic detectors, as ``invhide steganalysis --detector`` takes them."""

DEFAULT_SPA_TRACES = 8
"""Trace sets ``C_0 .. C_j`` whose equations :func:`sample_pair_analysis` sums (``j + 1``).

Dumitrescu et al. sum the equations of the trace sets ``0 <= m <= j`` for a
more robust estimate than ``m = 0`` alone; the Security page gives the
measurement behind 8.
"""

MIN_LENGTH: dict[str, int] = {"spa": 2, "rs": 4, "chi2": 1, "primary-sets": 2, "fused": 4}
"""The fewest samples along a row or a column each classic detector needs.

Sample pair analysis and primary sets count adjacent pairs, RS analysis
groups of 4 adjacent samples; ``"fused"`` runs them all. Smaller images are
refused rather than given a score that measures nothing.
"""

_FUSED_PARTS = ("spa", "rs", "chi2", "primary-sets")
_CHI2_PREFIXES = 100
_CHI2_MIN_EXPECTED = 5.0


# --------------------------------------------------------------------------
# Images as 8-bit levels, and LSB replacement
# --------------------------------------------------------------------------


def levels(image: Tensor, *, name: str = "image") -> Tensor:
    """An image as 8-bit levels: ``(C, H, W)`` uint8.

    Args:
        image: ``(C, H, W)`` uint8 levels, or floats in ``[0, 1]`` (as
            :func:`invhide.io.images.read_image` returns), which are scaled by
            255 and rounded (exact for an image read from an 8-bit file).
        name: what the error messages call it (``"covers[3]"``).

    Returns:
        ``(C, H, W)`` uint8 on the CPU (the input itself when it already is).

    Raises:
        invhide.errors.InputTypeError: not a tensor, or neither uint8 nor floating point.
        invhide.errors.InputError: not 3-D, empty, or floats outside ``[0, 1]`` or not finite.

    Example:
        >>> levels(torch.tensor([[[0.0, 0.5, 1.0]]])).tolist()
        [[[0, 128, 255]]]
    """
    tensor(name, image, floating=False)
    if image.dim() != 3 or image.numel() == 0:
        problem = f"must have shape (C, H, W) with at least one pixel, got {tuple(image.shape)}"
        raise InputError(argument=name, problem=problem)
    if image.dtype == torch.uint8:
        return image.cpu()
    if not image.is_floating_point():
        problem = f"must be uint8 levels or floats in [0, 1], got dtype {image.dtype}"
        raise InputTypeError(argument=name, problem=problem)
    work = image.detach().cpu().double()
    if not bool(torch.isfinite(work).all()) or float(work.min()) < 0 or float(work.max()) > 1:
        problem = f"must hold finite values in [0, 1], got values from {float(work.min()):g} to {float(work.max()):g}"
        raise InputError(argument=name, problem=problem)
    return torch.round(work * 255).to(torch.uint8)


def level_pairs(
    covers: Sequence[Tensor], stegos: Sequence[Tensor], *, at_least: int = 1
) -> tuple[list[Tensor], list[Tensor]]:
    """Covers and their stego images as 8-bit levels (:func:`levels`), checked as pairs: two lists of uint8.

    Args:
        covers: ``(C, H, W)`` images, uint8 levels or floats in ``[0, 1]``.
        stegos: their stego images, in the same order, each the size of its cover.
        at_least: the fewest pairs allowed.

    Raises:
        invhide.errors.InputError: unequal counts, too few pairs, a pair of two sizes, or a bad image.

    Example:
        >>> covers, stegos = level_pairs([torch.zeros(3, 4, 4)], [torch.ones(3, 4, 4)])
        >>> covers[0].max().item(), stegos[0].max().item()
        (0, 255)
    """
    if len(covers) != len(stegos):
        raise InputError(f"expected as many covers as stego images, got {len(covers)} and {len(stegos)}")
    if len(covers) < at_least:
        raise InputError(f"expected at least {at_least} cover/stego pair(s), got {len(covers)}")
    pairs = [
        (levels(cover, name=f"covers[{index}]"), levels(stego, name=f"stegos[{index}]"))
        for index, (cover, stego) in enumerate(zip(covers, stegos, strict=True))
    ]
    for index, (cover, stego) in enumerate(pairs):
        if cover.shape != stego.shape:
            raise InputError(
                f"pair {index}: the cover is {tuple(cover.shape)} but its stego image is {tuple(stego.shape)}"
            )
    return [cover for cover, _ in pairs], [stego for _, stego in pairs]


def lsb_replacement(image: Tensor, rate: float, *, generator: torch.Generator | None = None) -> Tensor:
    """Embed random bits by LSB replacement at ``rate`` bits per channel sample.

    ``round(rate * C * H * W)`` samples, drawn without replacement over all
    channels, get their least significant bit replaced by a uniformly random
    bit, so about half of them change by one grey level. This is the stego
    image the classic detectors are built to find.

    Args:
        image: ``(C, H, W)`` uint8 levels or floats in ``[0, 1]`` (see :func:`levels`).
        rate: bits per channel sample, in ``[0, 1]``.
        generator: seeds the choice of samples and bits (CPU generator).

    Returns:
        ``(C, H, W)`` uint8, a new tensor.

    Raises:
        invhide.errors.InputError: ``rate`` outside ``[0, 1]`` or a bad image.

    Example:
        >>> cover = torch.full((3, 8, 8), 100, dtype=torch.uint8)
        >>> stego = lsb_replacement(cover, 1.0, generator=torch.Generator().manual_seed(0))
        >>> sorted(set(stego.flatten().tolist()))
        [100, 101]
    """
    rate = number("rate", rate, low=0, high=1)
    flat = levels(image).flatten().clone()
    count = round(rate * flat.numel())
    chosen = torch.randperm(flat.numel(), generator=generator)[:count]
    bits = torch.randint(0, 2, (count,), generator=generator, dtype=torch.uint8)
    flat[chosen] = (flat[chosen] & 0xFE) | bits
    return flat.reshape(image.shape)


# --------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------


def _channels(image: Tensor, detectors: Sequence[str] = ()) -> list[np.ndarray]:
    """The channels of an image, checked by :func:`levels` and against :data:`MIN_LENGTH`, as ``(H, W)`` int32."""
    image = levels(image)
    for detector in detectors:
        if max(image.shape[-2:]) < MIN_LENGTH[detector]:
            raise InputError(
                argument="image",
                problem=f"has shape {tuple(image.shape)}, too small for {detector}, which needs at least "
                f"{MIN_LENGTH[detector]} pixels along a row or a column",
            )
    return list(image.numpy().astype(np.int32))


def _per_channel(estimate: Callable[[np.ndarray], float], channels: Sequence[np.ndarray]) -> Tensor:
    """``(C,)`` float64: ``estimate`` of each channel."""
    return torch.tensor([estimate(channel) for channel in channels], dtype=torch.float64)


def _adjacent_pairs(channel: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The horizontally and the vertically adjacent samples, as ``(u, v)`` tensors of equal shape."""
    return [(channel[:, :-1], channel[:, 1:]), (channel[:-1, :], channel[1:, :])]


def _smaller_root(a: float, b: float, c: float) -> float:
    """The root of ``a x^2 + b x + c`` with the smaller absolute value (the real part when there is none)."""
    if abs(a) <= 1e-12 * max(abs(b), abs(c), 1.0):
        return -c / b if b != 0 else 0.0
    discriminant = b * b - 4 * a * c
    if discriminant < 0:
        return -b / (2 * a)
    root = discriminant**0.5
    # The numerically stable pair of roots: q / a and c / q.
    q = -0.5 * (b + (root if b >= 0 else -root))
    roots = [q / a] + ([c / q] if q != 0 else [])
    return min(roots, key=abs)


# --------------------------------------------------------------------------
# Sample pair analysis and primary sets
# --------------------------------------------------------------------------


def _spa_counts(channel: np.ndarray) -> np.ndarray:
    """``counts[2n + upper]``: adjacent pairs of absolute difference ``n``, split by trace set.

    ``upper`` is 1 when the pair lies in trace set ``(n + 1) / 2`` (its 7 high
    bits differ by more than half the difference: the larger sample is even),
    0 when it lies in ``n // 2``; pairs of even difference always have
    ``upper = 0``.
    """
    counts = np.zeros(512, dtype=np.float64)
    for u, v in _adjacent_pairs(channel):
        difference = np.abs(u - v)
        trace = np.abs((u >> 1) - (v >> 1))
        code = 2 * difference + (2 * trace > difference)
        counts += np.bincount(code.ravel(), minlength=512)
    return counts


def _spa_channel(channel: np.ndarray, traces: int) -> float:
    counts = _spa_counts(channel)
    lower, upper = counts[0::2], counts[1::2]  # indexed by the absolute difference n = 0..255
    d_counts = np.concatenate((lower + upper, np.zeros(2)))  # |D_n|, zero beyond 255
    y_counts, x_counts = lower[1::2], upper[1::2]  # |Y_2m+1| (trace set m), |X_2m+1| (trace set m + 1)
    j = traces - 1
    # |C_m| = |D_2m| + |Y_2m+1| + |X_2m-1|; only C_0 and C_j+1 are needed.
    c_0 = float(d_counts[0] + y_counts[0])
    c_next = float(d_counts[2 * j + 2] + (y_counts[j + 1] if j + 1 < 128 else 0) + x_counts[j])
    # Summing the equations of the trace sets 0..j (the m = 0 one counts C_0 and D_0 twice) telescopes to
    # (2|C_0| - |C_j+1|) q^2 - (2|D_0| - |D_2j+2| + 2 S) q + S = 0, with q = p / 2 the flipping
    # probability and S the sum of |Y_2m+1| - |X_2m+1|.
    total = float((y_counts[: j + 1] - x_counts[: j + 1]).sum())
    k = 2 * c_0 - c_next
    e = float(2 * d_counts[0] - d_counts[2 * j + 2])
    return 2 * _smaller_root(k, -(e + 2 * total), total)


def sample_pair_analysis(image: Tensor, *, traces: int = DEFAULT_SPA_TRACES) -> Tensor:
    """Sample pair analysis (Dumitrescu, Wu and Wang 2003): the estimated LSB-replacement rate of each channel.

    The pairs are all horizontally and all vertically adjacent samples of a
    channel. With ``C_m`` the pairs whose 7 high bits differ by ``m``,
    ``D_n`` those whose values differ by ``n``, and ``X_2m+1`` / ``Y_2m+1``
    the pairs of difference ``2m + 1`` whose larger sample is even / odd, the
    cover assumption ``|X_2m+1| = |Y_2m+1|`` for ``m = 0 .. j`` gives, in the
    flipping probability ``q = p / 2`` of the stego image, the summed equation

    ``(2|C_0| - |C_j+1|) q^2 - (2|D_0| - |D_2j+2| + 2 S) q + S = 0``,
    ``S = sum_m (|Y_2m+1| - |X_2m+1|)``,

    whose root of smaller magnitude is the estimate.

    Args:
        image: ``(C, H, W)`` uint8 levels or floats in ``[0, 1]`` (see :func:`levels`).
        traces: how many trace sets ``j + 1`` to sum (1 to 128; see :data:`DEFAULT_SPA_TRACES`).

    Returns:
        ``(C,)`` float64 estimates of ``p`` (near 0 for a cover; they can be
        slightly negative).

    References:
        S. Dumitrescu, X. Wu, Z. Wang, "Detection of LSB steganography via
        sample pair analysis", IEEE Trans. Signal Processing 51(7), 2003.

    Example:
        >>> cover = torch.randint(0, 256, (3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
        >>> sample_pair_analysis(cover).shape
        torch.Size([3])
    """
    traces = integer("traces", traces, low=1, high=128)
    return _per_channel(partial(_spa_channel, traces=traces), _channels(image, ["spa"]))


def _primary_sets_channel(channel: np.ndarray) -> float:
    x = y = z = w = pairs = 0
    for u, v in _adjacent_pairs(channel):
        # X: v even and u < v, or v odd and u > v; Y: the other way round; the sign of this product says which.
        side = (v - u) * (1 - 2 * (v & 1))
        x += int(np.count_nonzero(side > 0))
        y += int(np.count_nonzero(side < 0))
        z += int(np.count_nonzero(u == v))
        w += int(np.count_nonzero((u ^ v) == 1))  # equal but for the LSB
        pairs += u.size
    return _smaller_root(0.5 * (w + z), 2 * x - pairs, y - x)


def primary_sets(image: Tensor) -> Tensor:
    """The primary-sets detector (Dumitrescu, Wu and Memon 2002): the estimated LSB-replacement rate per channel.

    Of the adjacent pairs ``(u, v)`` (all horizontal and vertical ones, ``P``
    in all), ``X`` holds those with ``v`` even and ``u < v`` or ``v`` odd and
    ``u > v``, ``Y`` those with ``v`` even and ``u > v`` or ``v`` odd and
    ``u < v``, ``Z`` those with ``u = v`` and ``W`` those that differ in the
    LSB only. Assuming ``|X| = |Y|`` in the cover, the stego counts satisfy
    ``(|W| + |Z|)/2 p^2 + (2|X| - P) p + |Y| - |X| = 0``; the root of smaller
    magnitude is the estimate.

    Args:
        image: ``(C, H, W)`` uint8 levels or floats in ``[0, 1]`` (see :func:`levels`).

    Returns:
        ``(C,)`` float64 estimates of ``p``.

    References:
        S. Dumitrescu, X. Wu, N. Memon, "On steganalysis of random LSB
        embedding in continuous-tone images", ICIP 2002.

    Example:
        >>> cover = torch.randint(0, 256, (3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
        >>> primary_sets(cover).shape
        torch.Size([3])
    """
    return _per_channel(_primary_sets_channel, _channels(image, ["primary-sets"]))


# --------------------------------------------------------------------------
# RS analysis
# --------------------------------------------------------------------------


def _groups(channel: np.ndarray) -> list[np.ndarray]:
    """Disjoint groups of 4 horizontally and of 4 vertically adjacent samples, each ``(4, N)`` int32."""
    height, width = channel.shape
    rows = channel[:, : width // 4 * 4].reshape(-1, 4).T
    columns = channel[: height // 4 * 4, :].T.reshape(-1, 4).T
    return [np.ascontiguousarray(groups) for groups in (rows, columns) if groups.shape[1]]


def _smoothness(x0: np.ndarray, x1: np.ndarray, x2: np.ndarray, x3: np.ndarray) -> np.ndarray:
    """The discrimination function ``f``: the sum of absolute differences of neighbours in a group."""
    return np.abs(x1 - x0) + np.abs(x2 - x1) + np.abs(x3 - x2)


def _rs_counts(groups: np.ndarray) -> tuple[float, float, float, float, int]:
    """``(R_M, S_M, R_-M, S_-M, N)``: regular and singular groups under the masks ``M = [0 1 1 0]`` and ``-M``."""
    x0, x1, x2, x3 = groups
    before = _smoothness(x0, x1, x2, x3)
    counts = []
    # F_1 swaps 2k and 2k + 1; F_-1 swaps 2k - 1 and 2k (F_-1(x) = F_1(x + 1) - 1); the mask flips x1 and x2.
    for flip in (lambda x: x ^ 1, lambda x: ((x + 1) ^ 1) - 1):
        after = _smoothness(x0, flip(x1), flip(x2), x3)
        counts += [float(np.count_nonzero(after > before)), float(np.count_nonzero(after < before))]
    return counts[0], counts[1], counts[2], counts[3], x0.size


def _rs_channel(channel: np.ndarray) -> float:
    groups = _groups(channel)  # not empty: checked by _check_rs_size
    differences = []
    for image in (groups, [group ^ 1 for group in groups]):  # as given (p / 2), and every LSB flipped (1 - p / 2)
        r_m = s_m = r_nm = s_nm = total = 0.0
        for part in image:
            counts = _rs_counts(part)
            r_m, s_m, r_nm, s_nm = r_m + counts[0], s_m + counts[1], r_nm + counts[2], s_nm + counts[3]
            total += counts[4]
        differences.append(((r_m - s_m) / total, (r_nm - s_nm) / total))
    (d0, dn0), (d1, dn1) = differences
    x = _smaller_root(2 * (d1 + d0), dn0 - dn1 - d1 - 3 * d0, d0 - dn0)
    return x / (x - 0.5) if x != 0.5 else 1.0


def rs_analysis(image: Tensor) -> Tensor:
    """RS analysis (Fridrich, Goljan and Du 2001): the estimated LSB-replacement rate per channel.

    Groups are 4 adjacent samples (disjoint groups along the rows and along
    the columns), ``f`` the sum of absolute differences of neighbours, the
    mask ``M = [0 1 1 0]``. ``R_M``/``S_M`` are the fractions of groups that
    flipping the LSBs under ``M`` (``F_1``: 2k <-> 2k + 1) makes rougher/smoother,
    ``R_-M``/``S_-M`` the same with the shifted flipping ``F_-1``. Measured
    on the image (``d_0 = R_M - S_M``, ``d_-0``) and on the image with every
    LSB flipped (``d_1``, ``d_-1``), they give
    ``2(d_1 + d_0) x^2 + (d_-0 - d_-1 - d_1 - 3 d_0) x + d_0 - d_-0 = 0`` and
    ``p = x / (x - 1/2)`` for the root ``x`` of smaller magnitude.

    Args:
        image: ``(C, H, W)`` uint8 levels or floats in ``[0, 1]``, at least
            4 samples along one side (:data:`MIN_LENGTH`; see :func:`levels`).

    Returns:
        ``(C,)`` float64 estimates of ``p``.

    Raises:
        invhide.errors.InputError: a bad image (see :func:`levels`), or one
            with fewer than 4 samples along both sides.

    References:
        J. Fridrich, M. Goljan, R. Du, "Reliable detection of LSB
        steganography in color and grayscale images", Proc. ACM Workshop on
        Multimedia and Security, 2001.

    Example:
        >>> cover = torch.randint(0, 256, (3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
        >>> rs_analysis(cover).shape
        torch.Size([3])
    """
    return _per_channel(_rs_channel, _channels(image, ["rs"]))


# --------------------------------------------------------------------------
# Chi-square attack
# --------------------------------------------------------------------------


def _chi_square_channel(channel: np.ndarray, prefixes: int, min_expected: float) -> float:
    samples = channel.ravel()
    count = samples.size
    steps = min(prefixes, count)
    # Block b holds the samples that enter the b-th prefix; cumulative sums give the prefix histograms.
    block = np.arange(count, dtype=np.int64) * steps // count
    counts = np.bincount(block * 256 + samples, minlength=steps * 256).reshape(steps, 256).cumsum(axis=0)
    histograms = torch.from_numpy(counts.astype(np.float64))
    even, odd = histograms[:, 0::2], histograms[:, 1::2]
    expected = (even + odd) / 2
    used = expected >= min_expected
    terms = torch.where(used, (even - expected).square() / expected.clamp_min(1e-12), 0.0)
    statistic = terms.sum(dim=1)
    freedom = used.sum(dim=1).double() - 1
    valid = freedom >= 1
    p_values = torch.zeros(steps, dtype=torch.float64)
    p_values[valid] = torch.special.gammaincc(freedom[valid] / 2, statistic[valid] / 2)
    return float(p_values.mean())


def chi_square_attack(
    image: Tensor, *, prefixes: int = _CHI2_PREFIXES, min_expected: float = _CHI2_MIN_EXPECTED
) -> Tensor:
    """The chi-square attack (Westfeld and Pfitzmann): mean p-value of the pairs-of-values test over prefixes.

    For each channel, the samples in row-major order are cut into ``prefixes``
    growing prefixes (the first 1%, 2%, ... of the channel by default). On
    each, with ``n_i`` the count of value ``i``, the statistic is
    ``chi^2 = sum_k (n_2k - e_k)^2 / e_k`` with ``e_k = (n_2k + n_2k+1) / 2``
    over the pairs of values with ``e_k >= min_expected`` (the usual
    validity rule), and the p-value is the chi-square survival function with
    one degree of freedom fewer than pairs used (0 when fewer than two pairs
    qualify). LSB replacement equalises the two values of each pair, driving
    the p-value towards 1 where it embedded.

    Args:
        image: ``(C, H, W)`` uint8 levels or floats in ``[0, 1]`` (see :func:`levels`).
        prefixes: how many growing prefixes to test.
        min_expected: smallest expected count ``e_k`` of a pair of values that is used.

    Returns:
        ``(C,)`` float64 mean p-values in ``[0, 1]``: the embedded fraction of
        the channel for sequential embedding; near 0 for covers.

    References:
        A. Westfeld, A. Pfitzmann, "Attacks on steganographic systems",
        Information Hiding 1999, LNCS 1768, Springer 2000.

    Example:
        >>> cover = torch.randint(0, 256, (3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
        >>> chi_square_attack(cover).shape
        torch.Size([3])
    """
    prefixes = positive_int("prefixes", prefixes)
    min_expected = number("min_expected", min_expected, low=0, low_open=True)
    return _per_channel(partial(_chi_square_channel, prefixes=prefixes, min_expected=min_expected), _channels(image))


# --------------------------------------------------------------------------
# Fusion and scores
# --------------------------------------------------------------------------

_CHANNEL_ESTIMATORS: dict[str, Callable[[np.ndarray], float]] = {
    "spa": partial(_spa_channel, traces=DEFAULT_SPA_TRACES),
    "rs": _rs_channel,
    "chi2": partial(_chi_square_channel, prefixes=_CHI2_PREFIXES, min_expected=_CHI2_MIN_EXPECTED),
    "primary-sets": _primary_sets_channel,
}


def _fuse(per_detector: Mapping[str, float]) -> float:
    """StegExpose's ``Fuse.se``: the mean of the detectors' estimates, each made non-negative and capped at 1."""
    return sum(min(abs(per_detector[name]), 1.0) for name in _FUSED_PARTS) / len(_FUSED_PARTS)


def fused(image: Tensor) -> float:
    """StegExpose's fused score: the mean of the SPA, RS, chi-square and primary-sets estimates.

    Each detector's estimate is averaged over the channels, then made
    non-negative and capped at 1, as StegExpose does before taking the mean;
    StegExpose calls an image suspicious above 0.2 by default.

    Args:
        image: ``(C, H, W)`` uint8 levels or floats in ``[0, 1]`` (see :func:`levels`).

    Returns:
        The score in ``[0, 1]``; near the embedding rate times 3/4 for LSB
        replacement spread at random (the chi-square attack adds nothing there).

    References:
        B. Boehm, "StegExpose - a tool for detecting LSB steganography",
        arXiv:1410.6656, 2014.

    Example:
        >>> cover = torch.full((3, 16, 16), 0.5)
        >>> 0 <= fused(cover) <= 1
        True
    """
    return classic_scores(image, ["fused"])["fused"]


def classic_scores(
    image: Tensor, names: Sequence[str] = CLASSIC_DETECTORS, *, seconds: dict[str, float] | None = None
) -> dict[str, float]:
    """The image's score under each named classic detector: the channel mean of its estimate (or :func:`fused`).

    Each underlying detector runs once, however many names need it.

    Args:
        image: ``(C, H, W)`` uint8 levels or floats in ``[0, 1]`` (see :func:`levels`).
        names: detector names from :data:`CLASSIC_DETECTORS`.
        seconds: if given, each named detector's time on this image is added
            to ``seconds[name]`` (for ``"fused"``, the time of its four parts).

    Returns:
        ``{name: score}``; a higher score means more likely stego.

    Raises:
        invhide.errors.InputError: an unknown name, a bad image, or one too
            small for a named detector (:data:`MIN_LENGTH`).

    Example:
        >>> scores = classic_scores(torch.full((3, 16, 16), 0.5), ["spa", "fused"])
        >>> sorted(scores)
        ['fused', 'spa']
    """
    for name in names:
        one_of("detector", name, CLASSIC_DETECTORS)
    channels = _channels(image, names)
    estimates: dict[str, float] = {}
    for part in _FUSED_PARTS:
        if part in names or "fused" in names:
            start = time.perf_counter()
            estimates[part] = float(_per_channel(_CHANNEL_ESTIMATORS[part], channels).mean())
            elapsed = time.perf_counter() - start
            for name in {part, "fused"}.intersection(names) if seconds is not None else ():
                seconds[name] = seconds.get(name, 0.0) + elapsed
    if "fused" in names:
        estimates["fused"] = _fuse(estimates)
    return {name: estimates[name] for name in names}
