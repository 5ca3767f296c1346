import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import images, shared
from PIL import Image

from invhide.errors import InputError, InputTypeError
from invhide.io import datasets as data
from invhide.io.datasets import (
    SAMPLE_NAMES,
    SAMPLE_TEST,
    SAMPLE_TRAIN,
    ImageDataset,
    ImagePair,
    center_crop,
    list_images,
    random_crop,
    random_flip,
    sample_image_paths,
    split_pairs,
)
from invhide.io.images import ImageConversionWarning, ImageError, read_image, write_image


def make_folder(folder: Path, sizes, names=None) -> list[Path]:
    """Write random RGB PNGs of the given (height, width) sizes; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (height, width) in enumerate(sizes):
        path = folder / (names[i] if names else f"{i:04d}.png")
        write_image(images(100 + i, 3, height, width), path)
        paths.append(path)
    return paths


def windows(image: torch.Tensor, size: int) -> list[torch.Tensor]:
    height, width = image.shape[-2:]
    return [
        image[..., top : top + size, left : left + size]
        for top in range(height - size + 1)
        for left in range(width - size + 1)
    ]


def contains(candidates: list[torch.Tensor], item: torch.Tensor) -> bool:
    return any(torch.equal(candidate, item) for candidate in candidates)


# --------------------------------------------------------------------------
# list_images
# --------------------------------------------------------------------------


class TestListImages:
    def test_sorted_case_insensitive_non_recursive(self, tmp_path):
        for name in [
            "0002.png",
            "0001.png",
            "b.JPG",
            "a.Jpeg",
            "c.bmp",
            "d.tif",
            "e.TIFF",
            "f.webp",
            "notes.txt",
            "x.gif",
        ]:
            (tmp_path / name).write_bytes(b"")
        (tmp_path / "._0001.png").write_bytes(b"")  # macOS companion file
        (tmp_path / ".0003.png.1a2b.tmp").write_bytes(b"")  # unfinished atomic write
        (tmp_path / "folder.png").mkdir()
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "0000.png").write_bytes(b"")
        names = [path.name for path in list_images(tmp_path)]
        assert names == ["0001.png", "0002.png", "a.Jpeg", "b.JPG", "c.bmp", "d.tif", "e.TIFF", "f.webp"]
        recursive = [path.relative_to(tmp_path).as_posix() for path in list_images(tmp_path, recursive=True)]
        assert recursive == [*names, "sub/0000.png"]

    def test_div2k_layout(self, tmp_path):
        make_folder(tmp_path / "DIV2K_valid_HR", [(8, 8)] * 3, names=["0803.png", "0801.png", "0802.png"])
        assert [p.name for p in list_images(tmp_path / "DIV2K_valid_HR")] == ["0801.png", "0802.png", "0803.png"]

    def test_missing_folder(self, tmp_path):
        with pytest.raises(FileNotFoundError, match=f"^{tmp_path / 'nope'}: no such folder$"):
            list_images(tmp_path / "nope")

    def test_file_instead_of_folder(self, tmp_path):
        (tmp_path / "x.png").write_bytes(b"")
        with pytest.raises(NotADirectoryError, match="x.png: is a file, not a folder"):
            list_images(tmp_path / "x.png")

    def test_no_images(self, tmp_path):
        (tmp_path / "notes.txt").write_text("")
        with pytest.raises(ValueError, match=f"^{tmp_path}: no image files"):
            list_images(tmp_path)
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "0001.png").write_bytes(b"")
        with pytest.raises(ValueError, match="subfolders were not searched; pass recursive=True"):
            list_images(tmp_path)
        assert len(list_images(tmp_path, recursive=True)) == 1


# --------------------------------------------------------------------------
# Crops, flips, pairing
# --------------------------------------------------------------------------


class TestCrops:
    def test_center_crop_offsets_match_torchvision(self):
        image = torch.arange(7 * 8).reshape(1, 7, 8)
        # torchvision: top = round((7 - 4) / 2) = 2 (half to even), left = round((8 - 5) / 2) = 2
        assert torch.equal(center_crop(image, (4, 5)), image[:, 2:6, 2:7])
        assert torch.equal(center_crop(image, 5), image[:, 1:6, 2:7])  # round(1.0) = 1, round(1.5) = 2
        assert torch.equal(center_crop(image, (7, 8)), image)

    @pytest.mark.parametrize("size", [9, (8, 9), 0, -1, (2,), 2.5, True])
    def test_bad_crop(self, size):
        with pytest.raises(ValueError, match="crop"):
            center_crop(torch.zeros(3, 8, 8), size)
        with pytest.raises(ValueError, match="crop"):
            random_crop(torch.zeros(3, 8, 8), size)

    def test_not_an_image(self):
        with pytest.raises(InputTypeError, match="^image must be a torch.Tensor, got list$"):
            random_flip([[0.0]])
        with pytest.raises(InputError, match=r"^image must have shape \(\.\.\., H, W\), got shape \(4,\)$"):
            center_crop(torch.zeros(4), 2)
        with pytest.raises(InputTypeError, match="^batch must be a torch.Tensor, got ndarray$"):
            split_pairs(np.zeros((2, 3, 4, 4)))

    def test_random_crop_reproducible_and_covers_every_offset(self):
        image = torch.arange(6 * 7).reshape(1, 6, 7)
        first = [random_crop(image, 4, generator=torch.Generator().manual_seed(s)) for s in range(10)]
        again = [random_crop(image, 4, generator=torch.Generator().manual_seed(s)) for s in range(10)]
        assert all(torch.equal(a, b) for a, b in zip(first, again))
        generator = torch.Generator().manual_seed(0)
        corners = {tuple(random_crop(image, 4, generator=generator)[0, 0, 0:1].tolist()) for _ in range(400)}
        assert corners == {(7 * top + left,) for top in range(3) for left in range(4)}

    def test_random_crop_uses_the_global_generator(self):
        image = torch.rand(3, 20, 20)
        with torch.random.fork_rng():
            torch.manual_seed(3)
            a = random_crop(image, 5)
            torch.manual_seed(3)
            b = random_crop(image, 5)
        assert torch.equal(a, b)

    def test_random_flip(self):
        image = torch.arange(6).reshape(1, 2, 3)
        before = image.clone()
        generator = torch.Generator().manual_seed(0)
        counts = {}
        for _ in range(400):
            key = tuple(random_flip(image, generator=generator).flatten().tolist())
            counts[key] = counts.get(key, 0) + 1
        expected = {tuple(t.flatten().tolist()) for t in (image, image.flip(-1), image.flip(-2), image.flip(-1, -2))}
        assert set(counts) == expected
        assert min(counts.values()) > 60  # each about 100 of 400
        assert torch.equal(image, before)

    def test_split_pairs(self):
        batch = torch.arange(6.0).reshape(6, 1, 1, 1)
        cover, secret = split_pairs(batch)
        assert cover.flatten().tolist() == [3.0, 4.0, 5.0] and secret.flatten().tolist() == [0.0, 1.0, 2.0]

    @pytest.mark.parametrize("shape", [(3, 3, 4, 4), (0, 3, 4, 4), (1, 3, 4, 4)])
    def test_split_pairs_odd_or_empty(self, shape):
        with pytest.raises(ValueError, match=f"even, non-zero size 2N, got {shape[0]}"):
            split_pairs(torch.zeros(shape))

    def test_split_pairs_shape(self):
        with pytest.raises(ValueError, match=r"\(2N, C, H, W\)"):
            split_pairs(torch.zeros(4, 4, 4))


# --------------------------------------------------------------------------
# ImageDataset
# --------------------------------------------------------------------------


class TestImageDataset:
    def test_train_items_are_flipped_windows(self, tmp_path):
        paths = make_folder(tmp_path, [(10, 12), (11, 9)])
        dataset = ImageDataset(tmp_path, crop=8)
        assert len(dataset) == 2 and dataset.paths == tuple(paths)
        for index, path in enumerate(paths):
            full = read_image(path)
            flips = [full, full.flip(-1), full.flip(-2), full.flip(-1, -2)]
            candidates = [window for flipped in flips for window in windows(flipped, 8)]
            for _ in range(5):
                item = dataset[index]
                assert item.shape == (3, 8, 8) and item.dtype == torch.float32
                assert contains(candidates, item)

    def test_without_flips(self, tmp_path):
        paths = make_folder(tmp_path, [(10, 12)])
        dataset = ImageDataset(tmp_path, crop=8, flips=False)
        candidates = windows(read_image(paths[0]), 8)
        assert all(contains(candidates, dataset[0]) for _ in range(10))

    def test_reproducible_under_torch_seed(self, tmp_path):
        make_folder(tmp_path, [(40, 50), (45, 40), (60, 60)])
        dataset = ImageDataset(tmp_path, crop=16)

        def draw(seed):
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                return torch.stack([dataset[i] for i in range(len(dataset)) for _ in range(3)])

        assert torch.equal(draw(1), draw(1))
        assert not torch.equal(draw(1), draw(2))

    def test_reproducible_dataloader_workers(self, tmp_path):
        make_folder(tmp_path, [(40, 50)] * 4)
        dataset = ImageDataset(tmp_path, crop=16, cache=True)

        def epoch(seed):
            loader = torch.utils.data.DataLoader(
                dataset, batch_size=2, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(seed)
            )
            return torch.cat(list(loader))

        assert torch.equal(epoch(5), epoch(5))
        assert not torch.equal(epoch(5), epoch(6))

    def test_test_mode_is_centre_crop(self, tmp_path):
        paths = make_folder(tmp_path, [(21, 30)])
        dataset = ImageDataset(paths, crop=16, train=False)
        expected = center_crop(read_image(paths[0]), 16)
        assert torch.equal(dataset[0], expected) and torch.equal(dataset[-1], expected)

    def test_cache_gives_the_same_items(self, tmp_path):
        make_folder(tmp_path, [(30, 40), (35, 33)])
        plain = ImageDataset(tmp_path, crop=16)
        cached = ImageDataset(tmp_path, crop=16, cache=True)
        assert all(image.dtype == torch.uint8 for image in cached._cache)
        for seed in range(3):
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                a = [plain[i] for i in range(2)]
                torch.manual_seed(seed)
                b = [cached[i] for i in range(2)]
            assert all(torch.equal(x, y) for x, y in zip(a, b))

    def test_cache_keeps_16_bit_precision(self, tmp_path):
        gray = (images(7, 12, 12) * 65535).round().numpy().astype(np.uint16)
        Image.fromarray(gray).save(tmp_path / "gray16.png")  # 16-bit grayscale: read at full precision
        with pytest.warns(ImageConversionWarning, match="16-bit precision kept"):
            dataset = ImageDataset(tmp_path, crop=12, train=False, cache=True)
        assert torch.equal(dataset[0], torch.from_numpy(gray).float().div(65535).expand(3, 12, 12))

    def test_items_never_share_memory_with_the_cache(self, tmp_path):
        gray = (images(8, 12, 12) * 65535).round().numpy().astype(np.uint16)
        Image.fromarray(gray).save(tmp_path / "gray16.png")  # cached as float32
        with pytest.warns(ImageConversionWarning):
            dataset = ImageDataset(tmp_path, crop=12, train=False, cache=True)
        assert dataset._cache[0].dtype == torch.float32
        first = dataset[0]
        first.zero_()
        assert dataset[0].max() > 0

    def test_small_images_are_upscaled_with_one_warning(self, tmp_path):
        make_folder(tmp_path, [(20, 30), (40, 40)])
        with pytest.warns(UserWarning, match=r"0000.png: 30x20 is smaller than the crop 32; upscaled") as caught:
            dataset = ImageDataset(tmp_path, crop=32)
        assert len([w for w in caught if "smaller than the crop" in str(w.message)]) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            items = [dataset[0] for _ in range(4)]
        assert all(item.shape == (3, 32, 32) and item.min() >= 0 and item.max() <= 1 for item in items)
        upscaled = dataset._decode(0)
        assert upscaled.shape == (3, 32, 48) and upscaled.dtype == torch.float32

    def test_conversion_warned_once_at_build(self, tmp_path):
        make_folder(tmp_path, [(20, 20)])
        Image.new("L", (20, 20), 77).save(tmp_path / "gray.png")
        with pytest.warns(UserWarning, match="gray.png: grayscale image"):
            dataset = ImageDataset(tmp_path, crop=16)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            item = dataset[1]
        assert torch.equal(item, torch.full((3, 16, 16), 77 / 255))

    @pytest.mark.parametrize("cache", [False, True])
    def test_bad_file_fails_fast_with_its_path(self, tmp_path, cache):
        make_folder(tmp_path, [(20, 20)] * 2)
        (tmp_path / "0001b.png").write_text("not an image")
        with pytest.raises(ImageError, match="0001b.png: not an image file"):
            ImageDataset(tmp_path, crop=16, cache=cache)

    def test_oversized_file_fails_fast(self, tmp_path):
        make_folder(tmp_path, [(10, 10), (20, 20)])
        with pytest.raises(ImageError, match="0001.png: image declares 20x20 = 400 pixels, more than the limit of 399"):
            ImageDataset(tmp_path, crop=8, max_pixels=399)

    def test_missing_file_in_a_list(self, tmp_path):
        paths = make_folder(tmp_path, [(20, 20)])
        with pytest.raises(FileNotFoundError, match="missing.png: no such file"):
            ImageDataset([*paths, tmp_path / "missing.png"], crop=16)

    def test_truncated_file(self, tmp_path):
        make_folder(tmp_path, [(40, 40)] * 2)
        data = (tmp_path / "0001.png").read_bytes()
        (tmp_path / "0001.png").write_bytes(data[: len(data) // 2])
        with pytest.raises(ImageError, match="0001.png: truncated"):
            ImageDataset(tmp_path, crop=16, cache=True)
        dataset = ImageDataset(tmp_path, crop=16)  # headers are fine
        dataset[0]
        with pytest.raises(ImageError, match="0001.png: truncated"):
            dataset[1]

    @pytest.mark.parametrize("crop", [0, -4, 2.0, True])
    def test_bad_crop(self, tmp_path, crop):
        make_folder(tmp_path, [(20, 20)])
        with pytest.raises(ValueError, match="crop must be a positive integer"):
            ImageDataset(tmp_path, crop=crop)

    def test_index_out_of_range(self, tmp_path):
        make_folder(tmp_path, [(20, 20)])
        dataset = ImageDataset(tmp_path, crop=16)
        with pytest.raises(IndexError):
            dataset[1]
        assert "1 images" in repr(dataset)

    def test_empty_list(self):
        with pytest.raises(ValueError, match="at least one image path"):
            ImageDataset([], crop=16)


# --------------------------------------------------------------------------
# evaluation_pairs
# --------------------------------------------------------------------------


class TestTestPairs:
    @pytest.mark.parametrize("count", [2, 5, 6])
    def test_pairing_rule(self, tmp_path, count):
        paths = make_folder(tmp_path, [(20, 24)] * count)
        pairs = data.evaluation_pairs(tmp_path, size=16)
        assert len(pairs) == count
        for i, pair in enumerate(pairs):
            j = (i + count // 2) % count
            assert (pair.cover_path, pair.secret_path) == (paths[i], paths[j])
            assert pair.names == (paths[i].name, paths[j].name)
            cover, secret = pair
            assert torch.equal(cover, center_crop(read_image(paths[i]), 16))
            assert torch.equal(secret, center_crop(read_image(paths[j]), 16))
        assert sorted(p.cover_path for p in pairs) == sorted(p.secret_path for p in pairs) == paths

    def test_pairs_share_no_memory(self, tmp_path):
        make_folder(tmp_path, [(16, 16)] * 2)
        pairs = data.evaluation_pairs(tmp_path, size=16)
        pairs[0].cover.zero_()
        assert pairs[1].secret.max() > 0

    def test_explicit_order_is_kept(self, tmp_path):
        paths = make_folder(tmp_path, [(16, 16)] * 3)
        pairs = data.evaluation_pairs([paths[2], paths[0], paths[1]], size=16)
        assert [p.names for p in pairs] == [
            ("0002.png", "0000.png"),
            ("0000.png", "0001.png"),
            ("0001.png", "0002.png"),
        ]

    def test_largest_even_square(self, tmp_path):
        make_folder(tmp_path, [(21, 31), (40, 25), (30, 30), (50, 50)])
        pairs = data.evaluation_pairs(tmp_path, size=None)
        # pairs (0, 2), (1, 3), (2, 0), (3, 1): min sides 21, 25, 21, 25 -> 20, 24, 20, 24
        assert [pair.cover.shape[-1] for pair in pairs] == [20, 24, 20, 24]
        assert all(pair.cover.shape == pair.secret.shape for pair in pairs)

    def test_too_small_is_an_error(self, tmp_path):
        make_folder(tmp_path, [(30, 30), (30, 20)])
        with pytest.raises(ValueError, match=r"0001.png: 20x30 is smaller than the evaluation crop 24x24"):
            data.evaluation_pairs(tmp_path, size=24)

    def test_needs_two_images(self, tmp_path):
        make_folder(tmp_path, [(30, 30)])
        with pytest.raises(ValueError, match="at least two images, got 1"):
            data.evaluation_pairs(tmp_path)

    @pytest.mark.parametrize("size", [0, -2, 3.5, True])
    def test_bad_size(self, tmp_path, size):
        make_folder(tmp_path, [(30, 30)] * 2)
        with pytest.raises(ValueError, match="size must be a positive integer or None"):
            data.evaluation_pairs(tmp_path, size=size)

    def test_pair_unpacks(self):
        pair = ImagePair(torch.zeros(1), torch.ones(1), Path("x/a.png"), Path("x/b.png"))
        cover, secret = pair
        assert cover.item() == 0 and secret.item() == 1 and pair.names == ("a.png", "b.png")


# --------------------------------------------------------------------------
# Sample images
# --------------------------------------------------------------------------


class TestSamples:
    def test_splits_are_disjoint_and_complete(self):
        assert not set(SAMPLE_TRAIN) & set(SAMPLE_TEST)
        assert sorted(SAMPLE_TRAIN + SAMPLE_TEST) == sorted(SAMPLE_NAMES)
        assert {"motorcycle_left.png", "motorcycle_right.png"} <= set(SAMPLE_TRAIN)  # one stereo scene, one split

    def test_paths_are_rgb_photos(self):
        pytest.importorskip("skimage", reason="scikit-image (the samples extra) is not installed")
        paths = sample_image_paths()
        assert [path.name for path in paths] == list(SAMPLE_NAMES)
        for path in paths:
            with Image.open(path) as image:
                assert image.mode == "RGB" and min(image.size) >= 256, path
        assert [p.name for p in sample_image_paths(["chelsea", "rocket.jpg"])] == ["chelsea.png", "rocket.jpg"]

    def test_sample_dataset_and_pairs(self):
        pytest.importorskip("skimage", reason="scikit-image (the samples extra) is not installed")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            dataset = ImageDataset(sample_image_paths(SAMPLE_TRAIN), crop=64)
            pairs = data.evaluation_pairs(sample_image_paths(SAMPLE_TEST), size=64)
        assert dataset[0].shape == (3, 64, 64)
        assert [p.names for p in pairs] == [
            ("chelsea.png", "coffee.png"),
            ("coffee.png", "rocket.jpg"),
            ("rocket.jpg", "chelsea.png"),
        ]

    def test_unknown_name(self):
        with pytest.raises(ValueError, match="unknown sample image 'camera'; expected one of astronaut.png"):
            sample_image_paths(["camera"])
        with pytest.raises(TypeError, match="not one string"):
            sample_image_paths("astronaut.png")

    def test_missing_scikit_image(self, monkeypatch):
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "skimage" else real(name, *a))
        with pytest.raises(ImportError, match=r'pip install "invhide\[samples\]"'):
            sample_image_paths()


# --------------------------------------------------------------------------
# Real photographs
# --------------------------------------------------------------------------


class TestSharedData:
    def test_kodak_pairs(self):
        folder = shared("kodak24")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pairs = data.evaluation_pairs(folder, size=256)
        assert len(pairs) == 24
        assert pairs[0].names == ("kodim01.png", "kodim13.png") and pairs[12].names == ("kodim13.png", "kodim01.png")
        assert all(p.cover.shape == p.secret.shape == (3, 256, 256) for p in pairs)
        assert torch.equal(pairs[0].cover, center_crop(read_image(folder / "kodim01.png"), 256))

    def test_set14_mixed_modes_and_sizes(self):
        folder = shared("set14")
        with pytest.warns(UserWarning) as caught:
            dataset = ImageDataset(folder, crop=256, train=False)
        messages = [str(w.message) for w in caught]
        assert any("bridge.png: grayscale image (mode L)" in m for m in messages)
        assert any("comic.png: 250x361 is smaller than the crop 256" in m for m in messages)
        assert len(messages) == 2
        bridge = dataset[[p.name for p in dataset.paths].index("bridge.png")]
        assert bridge.shape == (3, 256, 256) and torch.equal(bridge[0], bridge[2])
        with pytest.raises(ValueError, match="comic.png: 250x361 is smaller than the evaluation crop"):
            data.evaluation_pairs(folder, size=256)
        with pytest.warns(UserWarning, match="bridge.png"):
            pairs = data.evaluation_pairs(folder, size=None)
        assert all(p.cover.shape[-1] % 2 == 0 and p.cover.shape == p.secret.shape for p in pairs)

    def test_photos49_training_crops(self):
        folder = shared("photos49")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            dataset = ImageDataset(folder, crop=224)
        assert len(dataset) == 49
        with torch.random.fork_rng():
            torch.manual_seed(0)
            batch = torch.stack([dataset[i] for i in range(4)])
        cover, secret = split_pairs(batch)
        assert cover.shape == secret.shape == (2, 3, 224, 224)
        assert torch.isfinite(batch).all() and batch.std() > 0.05
