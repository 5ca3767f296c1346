"""Image datasets for hiding: folders of photos, crops and flips, cover/secret pairing, sample images.

Training follows the reference HiNet code: each item is one ``(3, crop, crop)``
image (random crop and random horizontal and vertical flips when training,
centre crop otherwise), and a batch of ``2N`` images is split into ``N``
covers and ``N`` secrets by :func:`split_pairs` (invhide's
:class:`~invhide.training.trainer.Trainer` draws its own batches per step,
secrets first and covers last as the reference code orders them, never a
cover hiding itself). Evaluation follows the test protocol of the bundled
image sets (:func:`evaluation_pairs`): image ``i`` of the sorted folder hides
image ``(i + n // 2) mod n``, both centre-cropped.

Randomness comes from torch's global generator (or an explicit ``generator``
in the crop and flip functions), so ``torch.manual_seed`` in the main process
and a ``DataLoader`` ``generator`` (which seeds its workers) make runs
reproducible.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.resources import files as resource_files
from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F
from torch.utils.data import Dataset

from invhide.checks import integer, positive_int, tensor
from invhide.errors import InputError, InputTypeError, MissingPathError, NotAFolderError
from invhide.io.images import DEFAULT_MAX_PIXELS, ImageConversionWarning, inspect_image, read_compact, to_float

__all__ = [
    "IMAGE_SUFFIXES",
    "SAMPLE_NAMES",
    "SAMPLE_TEST",
    "SAMPLE_TRAIN",
    "ImageDataset",
    "ImagePair",
    "center_crop",
    "evaluation_pairs",
    "list_images",
    "random_crop",
    "random_flip",
    "sample_image_paths",
    "split_pairs",
]

PathLike = str | os.PathLike[str]
Source = PathLike | Sequence[PathLike]

IMAGE_SUFFIXES: tuple[str, ...] = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
"""Suffixes :func:`list_images` picks up (compared case-insensitively)."""

SAMPLE_NAMES: tuple[str, ...] = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "retina.jpg",
    "rocket.jpg",
)
"""The natural RGB photographs shipped inside scikit-image (``skimage.data``), 300 to 1411 pixels a side.

``motorcycle_left`` and ``motorcycle_right`` are the two views of one stereo
pair: nearly the same picture, so they belong to the same split. Licences are
listed in scikit-image's ``skimage.data`` documentation.
"""

SAMPLE_TEST: tuple[str, ...] = ("chelsea.png", "coffee.png", "rocket.jpg")
"""Held-out sample images: no scene in common with :data:`SAMPLE_TRAIN`."""

SAMPLE_TRAIN: tuple[str, ...] = (
    "astronaut.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "retina.jpg",
)
"""Sample images for a quick training run (both views of the motorcycle stereo pair are here)."""


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def list_images(folder: PathLike, *, recursive: bool = False) -> list[Path]:
    """Image files in a folder, sorted.

    A DIV2K-style folder (``0001.png``, ``0002.png``, ...) works as it is.
    Hidden files (names starting with ``.``, such as macOS ``._0001.png``
    companions or an unfinished atomic write) are skipped.

    Args:
        folder: the folder.
        recursive: also search its subfolders.

    Returns:
        Paths of the files whose suffix is in :data:`IMAGE_SUFFIXES`
        (any case), sorted.

    Raises:
        FileNotFoundError: no such folder.
        NotADirectoryError: ``folder`` is a file.
        ValueError: the folder holds no image files.

    Example:
        >>> import tempfile, pathlib
        >>> folder = tempfile.TemporaryDirectory()
        >>> for name in ("b.PNG", "a.jpg", "notes.txt"):
        ...     _ = (pathlib.Path(folder.name) / name).write_bytes(b"")
        >>> [path.name for path in list_images(folder.name)]
        ['a.jpg', 'b.PNG']
        >>> folder.cleanup()
    """
    root = Path(folder)
    if not root.exists():
        raise MissingPathError(f"{folder}: no such folder")
    if not root.is_dir():
        raise NotAFolderError(f"{folder}: is a file, not a folder of images")
    candidates = root.rglob("*") if recursive else root.iterdir()
    paths = sorted(
        path
        for path in candidates
        if path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and path.is_file()
    )
    if not paths:
        hint = ""
        if not recursive and any(path.is_dir() for path in root.iterdir()):
            hint = " (subfolders were not searched; pass recursive=True)"
        raise InputError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder{hint}")
    return paths


def _paths(source: Source, recursive: bool) -> list[Path]:
    """A folder's sorted images, or the given files in the given order."""
    if isinstance(source, str | os.PathLike):
        return list_images(source, recursive=recursive)
    if not isinstance(source, Sequence):
        raise InputTypeError(f"expected a folder or a sequence of image paths, got {type(source).__name__}")
    paths = []
    for item in source:
        if not isinstance(item, str | os.PathLike):
            raise InputTypeError(f"image paths must be str or os.PathLike, got {type(item).__name__} ({item!r})")
        paths.append(Path(item))
    if not paths:
        raise InputError("expected at least one image path, got an empty sequence")
    return paths


# --------------------------------------------------------------------------
# Crops, flips and pairing
# --------------------------------------------------------------------------


def _spatial(image: object) -> Tensor:
    """``image`` if it is a tensor of shape ``(..., H, W)``, any dtype."""
    image = tensor("image", image, floating=False)
    if image.dim() < 2:
        raise InputError(argument="image", problem=f"must have shape (..., H, W), got shape {tuple(image.shape)}")
    return image


def _check_crop(image: object, size: int | tuple[int, int]) -> tuple[Tensor, int, int]:
    """``image`` (see :func:`_spatial`) and ``size`` as ``(height, width)``, positive and fitting in it."""
    image = _spatial(image)
    pair = (size, size) if isinstance(size, int) else tuple(size) if isinstance(size, Sequence) else (size,)
    if len(pair) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in pair):
        raise InputError(f"crop size must be a positive integer or a (height, width) pair of them, got {size!r}")
    height, width = pair
    if height > image.shape[-2] or width > image.shape[-1]:
        raise InputError(
            f"crop {height}x{width} (HxW) does not fit in an image of {image.shape[-2]}x{image.shape[-1]} "
            f"(shape {tuple(image.shape)})"
        )
    return image, height, width  # type: ignore[return-value]


def center_crop(image: Tensor, size: int | tuple[int, int]) -> Tensor:
    """The central ``size`` window of an image (the offsets of torchvision's ``CenterCrop``).

    Args:
        image: ``(..., H, W)``, any dtype.
        size: crop side, or ``(height, width)``.

    Returns:
        ``(..., h, w)``, a view of ``image``.

    Raises:
        ValueError: the crop is larger than the image.

    Example:
        >>> center_crop(torch.arange(16).reshape(4, 4), 2).tolist()
        [[5, 6], [9, 10]]
    """
    image, height, width = _check_crop(image, size)
    top = round((image.shape[-2] - height) / 2.0)
    left = round((image.shape[-1] - width) / 2.0)
    return image[..., top : top + height, left : left + width]


def random_crop(image: Tensor, size: int | tuple[int, int], *, generator: torch.Generator | None = None) -> Tensor:
    """A uniformly placed ``size`` window of an image.

    Args:
        image: ``(..., H, W)``, any dtype.
        size: crop side, or ``(height, width)``.
        generator: CPU random generator; torch's global one when ``None``.

    Returns:
        ``(..., h, w)``, a view of ``image``.

    Raises:
        ValueError: the crop is larger than the image.

    Example:
        >>> image = torch.rand(3, 10, 12)
        >>> a = random_crop(image, 4, generator=torch.Generator().manual_seed(0))
        >>> b = random_crop(image, 4, generator=torch.Generator().manual_seed(0))
        >>> tuple(a.shape), bool(torch.equal(a, b))
        ((3, 4, 4), True)
    """
    image, height, width = _check_crop(image, size)
    top = int(torch.randint(image.shape[-2] - height + 1, (1,), generator=generator))
    left = int(torch.randint(image.shape[-1] - width + 1, (1,), generator=generator))
    return image[..., top : top + height, left : left + width]


def random_flip(image: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Flip an image left-right with probability 1/2, then top-bottom with probability 1/2.

    Args:
        image: ``(..., H, W)``, any dtype; never modified.
        generator: CPU random generator; torch's global one when ``None``.

    Returns:
        ``(..., H, W)``: a flipped copy, or ``image`` itself when neither flip was drawn.

    Example:
        >>> image = torch.arange(4).reshape(2, 2)
        >>> generator = torch.Generator().manual_seed(0)
        >>> sorted({tuple(random_flip(image, generator=generator).flatten().tolist()) for _ in range(32)})
        [(0, 1, 2, 3), (1, 0, 3, 2), (2, 3, 0, 1), (3, 2, 1, 0)]
    """
    image = _spatial(image)
    horizontal, vertical = (torch.rand(2, generator=generator) < 0.5).tolist()
    dims = [d for d, draw in ((-1, horizontal), (-2, vertical)) if draw]
    return image.flip(dims) if dims else image


def split_pairs(batch: Tensor) -> tuple[Tensor, Tensor]:
    """Split a batch of ``2N`` images into ``N`` covers and ``N`` secrets, as the reference HiNet code does.

    ``cover = batch[N:]`` and ``secret = batch[:N]``.

    Args:
        batch: ``(2N, C, H, W)``.

    Returns:
        ``(cover, secret)``, each ``(N, C, H, W)`` (views of ``batch``).

    Raises:
        ValueError: an odd or empty batch, or not 4-D.

    Example:
        >>> cover, secret = split_pairs(torch.arange(4.0).reshape(4, 1, 1, 1))
        >>> cover.flatten().tolist(), secret.flatten().tolist()
        ([2.0, 3.0], [0.0, 1.0])
    """
    batch = tensor("batch", batch, floating=False)
    if batch.dim() != 4:
        raise InputError(argument="batch", problem=f"must have shape (2N, C, H, W), got {tuple(batch.shape)}")
    if batch.shape[0] == 0 or batch.shape[0] % 2:
        raise InputError(
            f"a batch splits into covers and secrets only with an even, non-zero size 2N, got {batch.shape[0]}; "
            f"use an even batch_size (and drop_last=True in the DataLoader)"
        )
    half = batch.shape[0] // 2
    return batch[half:], batch[:half]


# --------------------------------------------------------------------------
# Training dataset
# --------------------------------------------------------------------------


def _upscaled(image: Tensor, short_side: int) -> Tensor:
    """Bicubic upscale of a compact ``(3, H, W)`` image so its short side is ``short_side`` (float32 result)."""
    height, width = image.shape[-2:]
    scale = short_side / min(height, width)
    size = (max(short_side, round(height * scale)), max(short_side, round(width * scale)))
    resized = F.interpolate(to_float(image)[None], size=size, mode="bicubic", align_corners=False)
    return resized[0].clamp_(0, 1)


class ImageDataset(Dataset[Tensor]):
    """Single images for training a hider, or for evaluating it on fixed crops.

    Item ``i`` is image ``i`` as a ``(3, crop, crop)`` float32 tensor in
    ``[0, 1]``: when ``train``, a uniformly placed crop, then flipped
    left-right and top-bottom each with probability 1/2 (the reference HiNet
    augmentation); otherwise the centre crop. Pair items with
    :func:`split_pairs` after batching.

    All files are checked when the dataset is built (header only: existence,
    format, size and ``max_pixels``), so a bad file fails at once, with its
    path; a truncated file is found when it is first decoded (at once with
    ``cache=True``). No file is ever skipped silently. Images whose short side
    is below ``crop`` are upscaled (bicubic) so that the short side equals
    ``crop``, and conversions (grayscale, palette, alpha ...) are announced,
    each with one warning per file when the dataset is built.

    Randomness comes from torch's global generator, which a ``DataLoader``
    seeds in every worker from its own ``generator``: with
    ``DataLoader(..., generator=torch.Generator().manual_seed(s))`` (and
    ``torch.manual_seed`` for ``num_workers=0``) runs repeat exactly.

    Memory: with ``cache=True`` every image is decoded once, when the dataset
    is built, and kept compact: ``3 * H * W`` bytes for an 8-bit image (6.5 GB
    for the 800 DIV2K training images), four times that for 16-bit, float or
    upscaled ones. Workers started by ``fork`` share the cache; with ``spawn``
    each holds a copy. Without it every item decodes its whole file again.

    Args:
        source: a folder (its images, sorted, see :func:`list_images`) or a
            sequence of image paths.
        crop: side of the square crops.
        train: random crops and flips (``True``) or centre crops (``False``).
        flips: random flips when training.
        max_pixels: refuse images with more pixels than this (``None``: no limit).
        cache: decode every image once, now, and keep it in memory.
        recursive: search subfolders of a folder ``source``.

    Raises:
        FileNotFoundError: a file or the folder is missing.
        invhide.io.images.ImageError: a file is not a readable image, or is larger
            than ``max_pixels`` (an ``ImageTooLargeError``); the message starts with its path.
        ValueError: a bad ``crop``, or a folder without images.

    Example:
        >>> import tempfile, pathlib
        >>> from invhide.io.images import write_image
        >>> folder = tempfile.TemporaryDirectory()
        >>> for i in range(4):
        ...     write_image(torch.rand(3, 40, 48), pathlib.Path(folder.name) / f"{i:04d}.png")
        >>> dataset = ImageDataset(folder.name, crop=32)
        >>> len(dataset), tuple(dataset[0].shape)
        (4, (3, 32, 32))
        >>> loader = torch.utils.data.DataLoader(dataset, batch_size=4, generator=torch.Generator().manual_seed(0))
        >>> cover, secret = split_pairs(next(iter(loader)))
        >>> tuple(cover.shape), tuple(secret.shape)
        ((2, 3, 32, 32), (2, 3, 32, 32))
        >>> folder.cleanup()
    """

    def __init__(
        self,
        source: Source,
        crop: int = 256,
        *,
        train: bool = True,
        flips: bool = True,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        cache: bool = False,
        recursive: bool = False,
    ) -> None:
        self.crop = positive_int("crop", crop)
        self.paths: tuple[Path, ...] = tuple(_paths(source, recursive))
        self.train, self.flips, self.max_pixels = train, flips, max_pixels
        for path in self.paths:
            info = inspect_image(path, max_pixels=max_pixels)
            if info.conversion is not None:
                warnings.warn(f"{path}: {info.conversion}", ImageConversionWarning, stacklevel=2)
            if min(info.width, info.height) < crop:
                warnings.warn(
                    f"{path}: {info.width}x{info.height} is smaller than the crop {crop}; "
                    f"upscaled (bicubic) to a short side of {crop}",
                    UserWarning,
                    stacklevel=2,
                )
        self._cache: list[Tensor] | None = [self._decode(i) for i in range(len(self.paths))] if cache else None

    def _decode(self, index: int) -> Tensor:
        """Image ``index`` in compact form: ``(3, H, W)`` uint8, or float32 when finer or upscaled."""
        # The conversions were announced in __init__.
        image = read_compact(self.paths[index], max_pixels=self.max_pixels, warn=False)
        if min(image.shape[-2:]) < self.crop:
            image = _upscaled(image, self.crop)
        return image

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor:
        """Image ``index``, cropped (and flipped when training): ``(3, crop, crop)`` float32 in ``[0, 1]``."""
        return self.item(index)

    def item(self, index: int, generator: torch.Generator | None = None) -> Tensor:
        """Image ``index`` with its random crop and flips drawn from ``generator``.

        ``dataset[i]`` is ``dataset.item(i)`` (torch's global generator). The
        trainer passes a generator seeded per step and item, so that a batch
        depends only on the seed and the step, not on what ran before.

        Example:
            >>> import tempfile, pathlib
            >>> from invhide.io.images import write_image
            >>> folder = tempfile.TemporaryDirectory()
            >>> write_image(torch.rand(3, 40, 48), pathlib.Path(folder.name) / "a.png")
            >>> dataset = ImageDataset(folder.name, crop=16)
            >>> a = dataset.item(0, torch.Generator().manual_seed(3))
            >>> bool(torch.equal(a, dataset.item(0, torch.Generator().manual_seed(3))))
            True
            >>> folder.cleanup()
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} images")
        image = self._cache[index] if self._cache is not None else self._decode(index)
        if self.train:
            image = random_crop(image, self.crop, generator=generator)
            if self.flips:
                image = random_flip(image, generator=generator)
        else:
            image = center_crop(image, self.crop)
        return to_float(image, copy=True)  # never hand out a view of the cache

    def __repr__(self) -> str:
        folder = os.path.commonpath([str(p) for p in self.paths]) if self.paths else ""
        return (
            f"{type(self).__name__}({len(self)} images in {folder!r}, crop={self.crop}, train={self.train}, "
            f"cached={self._cache is not None})"
        )


# --------------------------------------------------------------------------
# Evaluation pairs
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ImagePair:
    """A cover and a secret image, with the files they came from; unpacks as ``cover, secret = pair``.

    Attributes:
        cover: ``(3, S, S)`` float32 in ``[0, 1]``.
        secret: ``(3, S, S)`` float32 in ``[0, 1]``.
        cover_path: the cover's file.
        secret_path: the secret's file.
    """

    cover: Tensor
    secret: Tensor
    cover_path: Path
    secret_path: Path

    @property
    def names(self) -> tuple[str, str]:
        """``(cover file name, secret file name)``."""
        return self.cover_path.name, self.secret_path.name

    def __iter__(self) -> Iterator[Tensor]:
        yield self.cover
        yield self.secret


def evaluation_pairs(
    source: Source,
    size: int | None = 256,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    recursive: bool = False,
) -> list[ImagePair]:
    """Cover/secret pairs for evaluation, by the test protocol of the bundled image sets.

    With ``n`` images (a folder's, sorted; or the given paths, in the given
    order), image ``i`` is the cover of image ``(i + n // 2) mod n``, so every
    image is a cover once and a secret once; both are centre-cropped to
    ``size x size``. Each file is read once.

    Args:
        source: a folder or a sequence of image paths (at least two).
        size: side of the square crops; ``None`` for the largest even square
            that fits both images of each pair (sizes then vary by pair).
        max_pixels: refuse images with more pixels than this (``None``: no limit).
        recursive: search subfolders of a folder ``source``.

    Returns:
        ``n`` :class:`ImagePair` s; ``cover, secret = pair`` and ``pair.names``.

    Raises:
        ValueError: fewer than two images, a bad ``size``, or an image
            smaller than ``size`` (never upscaled for evaluation; the message
            names the file).
        FileNotFoundError: a missing file or folder.
        invhide.io.images.ImageError: a file that is not a readable image.

    Example:
        >>> import tempfile, pathlib
        >>> from invhide.io.images import write_image
        >>> folder = tempfile.TemporaryDirectory()
        >>> for i in range(4):
        ...     write_image(torch.rand(3, 20, 30), pathlib.Path(folder.name) / f"{i}.png")
        >>> pairs = evaluation_pairs(folder.name, size=16)
        >>> [pair.names for pair in pairs]
        [('0.png', '2.png'), ('1.png', '3.png'), ('2.png', '0.png'), ('3.png', '1.png')]
        >>> cover, secret = pairs[0]
        >>> tuple(cover.shape), tuple(evaluation_pairs(folder.name, size=None)[0].cover.shape)
        ((3, 16, 16), (3, 20, 20))
        >>> folder.cleanup()
    """
    if size is not None:
        integer("size", size, low=1, what="a positive integer or None (largest even square)")
    paths = _paths(source, recursive)
    if len(paths) < 2:
        raise InputError(f"pairing needs at least two images, got {len(paths)} ({', '.join(map(str, paths))})")
    if size is not None:
        _check_sizes(paths, size, max_pixels)
    images = [read_compact(path, max_pixels=max_pixels) for path in paths]
    count = len(paths)
    return [_pair(images, paths, i, (i + count // 2) % count, size) for i in range(count)]


def _check_sizes(paths: list[Path], size: int, max_pixels: int | None) -> None:
    """Refuse an image smaller than the ``size`` crop from the headers, before decoding anything."""
    for path in paths:
        info = inspect_image(path, max_pixels=max_pixels)
        if min(info.width, info.height) < size:
            raise InputError(
                f"{path}: {info.width}x{info.height} is smaller than the evaluation crop {size}x{size}; pass a "
                f"smaller size, or size=None for the largest square each pair allows"
            )


def _pair(images: list[Tensor], paths: list[Path], i: int, j: int, size: int | None) -> ImagePair:
    """Image ``i`` hiding image ``j``, both centre-cropped to ``size`` (``None``: the largest even square)."""
    side = size
    if side is None:
        side = min(*images[i].shape[-2:], *images[j].shape[-2:]) // 2 * 2
        if side < 2:
            raise InputError(f"{paths[i]} and {paths[j]}: too small for an even square crop of at least 2x2")
    cover = to_float(center_crop(images[i], side), copy=True)  # pairs share no memory
    secret = to_float(center_crop(images[j], side), copy=True)
    return ImagePair(cover, secret, paths[i], paths[j])


# --------------------------------------------------------------------------
# Sample images
# --------------------------------------------------------------------------


def sample_image_paths(names: Sequence[str] | None = None) -> list[Path]:
    """Paths of natural RGB photos that ship inside scikit-image, for examples and quick runs.

    Args:
        names: file names from :data:`SAMPLE_NAMES` (the ``.png``/``.jpg``
            suffix may be left out), e.g. :data:`SAMPLE_TRAIN` or
            :data:`SAMPLE_TEST`; ``None`` for all of them.

    Returns:
        Paths in the order asked for.

    Raises:
        ImportError: scikit-image is not installed (``pip install "invhide[samples]"``).
        ValueError: an unknown name.
        FileNotFoundError: this scikit-image version lacks a file.

    Example:
        >>> [path.name for path in sample_image_paths(SAMPLE_TEST)]  # doctest: +SKIP
        ['chelsea.png', 'coffee.png', 'rocket.jpg']
    """
    if isinstance(names, str):
        raise InputTypeError(f"names must be a sequence of names, not one string; got {names!r} (use [{names!r}])")
    wanted = list(SAMPLE_NAMES if names is None else names)
    by_stem = {Path(name).stem: name for name in SAMPLE_NAMES}
    files = []
    for name in wanted:
        file = name if name in SAMPLE_NAMES else by_stem.get(name) if isinstance(name, str) else None
        if file is None:
            raise InputError(f"unknown sample image {name!r}; expected one of {', '.join(SAMPLE_NAMES)}")
        files.append(file)
    if importlib.util.find_spec("skimage") is None:
        raise ImportError(
            'the sample images ship with scikit-image, which is not installed: pip install "invhide[samples]"'
        )
    folder = resource_files("skimage.data")
    paths = []
    for file in files:
        resource = folder / file
        path = Path(os.fspath(resource)) if isinstance(resource, os.PathLike) else None
        if path is None or not path.is_file():
            raise MissingPathError(f"{resource}: sample image not found in this scikit-image installation")
        paths.append(path)
    return paths
