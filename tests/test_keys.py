import hashlib
import math
import os

import pytest
import torch
from helpers import images
from hypothesis import given
from hypothesis import strategies as st

import invhide
from invhide.io.keyfiles import read_key_file, write_key_file
from invhide.models.hider import PUBLIC_KEY, PublicKeyWarning
from invhide.nn.keys import (
    KEY_BYTES,
    KeyedPermutation,
    expand,
    from_passphrase,
    generate,
    key_tensor,
    permutation,
    signs,
)
from invhide.testing import assert_invertible, assert_log_det_matches_jacobian, randomize_
from invhide.training import TrainConfig, Trainer
from invhide.training.losses import HidingLoss

keys = st.binary(min_size=KEY_BYTES, max_size=KEY_BYTES)


class TestExpansion:
    def test_is_shake256_over_a_labelled_key(self):
        key = bytes(range(32))
        header = b"invhide.keys.v1" + (3).to_bytes(2, "big") + b"abc"
        assert expand(key, "abc", 40) == hashlib.shake_256(header + key).digest(40)

    @given(key=keys, size=st.integers(1, 300))
    def test_permutations_and_signs(self, key, size):
        order = permutation(key, "x", size)
        assert sorted(order.tolist()) == list(range(size))
        assert set(signs(key, "x", size).tolist()) <= {1.0, -1.0}

    def test_every_bit_of_the_key_counts(self):
        key = bytes(range(32))
        base = permutation(key, "x", 1000)
        for bit in range(8 * KEY_BYTES):  # the 256 keys one bit away
            near = bytearray(key)
            near[bit // 8] ^= 1 << (bit % 8)
            assert not torch.equal(permutation(bytes(near), "x", 1000), base)

    def test_labels_give_independent_masks(self):
        assert not torch.equal(permutation(bytes(32), "a", 100), permutation(bytes(32), "b", 100))

    @pytest.mark.parametrize("bad", [b"short", bytes(33), "a string of thirty-two characters"])
    def test_keys_of_the_wrong_length_or_type_are_refused(self, bad):
        with pytest.raises((ValueError, TypeError), match="key must be"):
            key_tensor([bad])


class TestKeyedPermutation:
    @given(
        seed=st.integers(0, 2**32 - 1),
        key=keys,
        other=keys,
        tile=st.sampled_from([None, 1, 2, 4]),
        flip=st.booleans(),
        channels=st.integers(1, 4),
        side=st.sampled_from([4, 6, 8, 12]),
    )
    def test_round_trip_under_one_key_and_another_output_under_another(
        self, seed, key, other, tile, flip, channels, side
    ):
        block = KeyedPermutation([(channels, side, side)], [(KEY_BYTES,)], tile=tile, flip=flip)
        x = images(seed, 2, channels, side, side, dtype=torch.float64)
        result = assert_invertible(block, [x], conditions=[key_tensor([key, key])], atol=0.0)
        assert result.log_det_error == 0.0
        (y,), log_det = block([x], c=[key_tensor([key, key])])
        assert torch.equal(log_det, torch.zeros(2, dtype=torch.float64))
        if tile is None:
            counts = [channels * side * side]
        else:  # the t x t tiles; with strips left over, each strip's tiles and the corner's one tile
            counts = [(side // tile) ** 2] + ([side // tile, side // tile, 1] if side % tile else [])
        orders = sum(math.lgamma(n + 1) for n in counts) / math.log(2)
        sign_bits = (sum(counts) * (1 if tile is None else channels)) if flip else 0
        if key != other and orders + sign_bits >= 40:  # 2^40 outcomes or more
            (y_other,), _ = block([x], c=[key_tensor([other, other])])
            assert not torch.equal(y, y_other)

    def test_log_det_is_zero_by_the_jacobian(self):
        block = KeyedPermutation([(2, 4, 4)], [(KEY_BYTES,)], tile=2)
        x = images(0, 1, 2, 4, 4, dtype=torch.float64)
        assert_log_det_matches_jacobian(block, [x], conditions=[key_tensor([bytes(32)])])

    def test_tiles_move_whole(self):
        block = KeyedPermutation([(1, 4, 4)], [(KEY_BYTES,)], tile=2, flip=False)
        x = torch.arange(16.0).reshape(1, 1, 4, 4)
        (y,), _ = block([x], c=[key_tensor([bytes(range(32))])])
        tiles = {tuple(x[0, 0, i : i + 2, j : j + 2].flatten().tolist()) for i in (0, 2) for j in (0, 2)}
        assert {tuple(y[0, 0, i : i + 2, j : j + 2].flatten().tolist()) for i in (0, 2) for j in (0, 2)} == tiles

    @pytest.mark.parametrize("size", [(6, 6), (5, 7), (3, 9)])
    def test_sizes_not_divisible_by_the_tile_round_trip(self, size):
        block = KeyedPermutation([(2, *size)], [(KEY_BYTES,)], tile=4, flip=True)
        x = images(0, 2, 2, *size, dtype=torch.float64)
        assert_invertible(block, [x], conditions=[key_tensor([bytes(32), bytes([9] * 32)])], atol=0.0)
        (y,), _ = block([x], c=[key_tensor([bytes(32), bytes([9] * 32)])])
        strips = torch.ones(size, dtype=torch.bool)
        strips[: size[0] // 4 * 4, : size[1] // 4 * 4] = False
        assert not torch.equal(y[..., strips], x[..., strips])  # the strips no tile covers move too

    def test_the_strips_move_as_whole_tiles_within_their_strip(self):
        """10x10 with 4x4 tiles: the 8x8 grid's tiles, the bottom strip's 2x4 and the right strip's 4x2 tiles
        each move whole within their region; the 2x2 corner stays."""
        block = KeyedPermutation([(1, 10, 10)], [(KEY_BYTES,)], tile=4, flip=False)
        x = torch.arange(100.0).reshape(1, 1, 10, 10)

        def tiles(image, rows, cols, th, tw):
            return sorted(
                tuple(image[0, 0, i : i + th, j : j + tw].flatten().tolist())
                for i in range(rows.start, rows.stop, th)
                for j in range(cols.start, cols.stop, tw)
            )

        regions = [
            (slice(0, 8), slice(0, 8), 4, 4),
            (slice(8, 10), slice(0, 8), 2, 4),
            (slice(0, 8), slice(8, 10), 4, 2),
            (slice(8, 10), slice(8, 10), 2, 2),
        ]
        outputs = []
        for key in (bytes(range(32)), bytes(range(1, 33)), bytes([7] * 32)):
            (y,), _ = block([x], c=[key_tensor([key])])
            for region in regions:
                assert tiles(y, *region) == tiles(x, *region)
            assert torch.equal(y[..., 8:, 8:], x[..., 8:, 8:])
            outputs.append(y)
        moved = [any(not torch.equal(y[..., r, c], x[..., r, c]) for y in outputs) for r, c, _, _ in regions[:3]]
        assert moved == [True, True, True]


class TestKeyedHider:
    def hider(self):
        return randomize_(invhide.InvertibleHider(num_blocks=2, subnet="conv", keyed=True), seed=3)

    def test_right_key_round_trip_wrong_key_differs(self):
        hider = self.hider()
        cover, secret = images(0, 2, 3, 16, 16), images(1, 2, 3, 16, 16)
        key, wrong = bytes(range(32)), bytes(range(1, 33))
        stego, lost = hider.hide(cover, secret, key=key)
        assert torch.allclose(hider.reveal(stego, z=lost, key=key), secret, atol=1e-5)
        assert (hider.reveal(stego, z=lost, key=wrong) - secret).abs().max() > 0.1

    def test_per_image_keys(self):
        hider = self.hider()
        cover, secret = images(0, 2, 3, 16, 16), images(1, 2, 3, 16, 16)
        stego, lost = hider.hide(cover, secret, key=[bytes(32), bytes([7] * 32)])
        one, _ = hider.hide(cover[1:], secret[1:], key=bytes([7] * 32))
        assert torch.allclose(stego[1:], one, atol=1e-6)

    def test_no_key_uses_the_public_key_and_warns(self):
        hider = self.hider()
        cover, secret = images(0, 1, 3, 16, 16), images(1, 1, 3, 16, 16)
        with pytest.warns(PublicKeyWarning, match="anyone can reveal"):
            stego, _ = hider.hide(cover, secret)
        assert torch.equal(stego, hider.hide(cover, secret, key=PUBLIC_KEY)[0])

    def test_an_unkeyed_hider_refuses_a_key(self):
        hider = invhide.InvertibleHider(num_blocks=1, subnet="conv")
        with pytest.raises(ValueError, match="not keyed"):
            hider.hide(images(0, 1, 3, 8, 8), images(1, 1, 3, 8, 8), key=bytes(32))

    def test_lock_then_hide_is_hide_with_the_key(self):
        hider = self.hider()
        cover, secret, key = images(0, 1, 3, 16, 24), images(1, 1, 3, 16, 24), bytes(range(9, 41))
        locked = hider.lock(secret, key)
        stego, lost = hider.hide(cover, secret, key=key)
        assert torch.allclose(hider.hide(cover, locked, locked=True)[0], stego, atol=1e-6)
        opened = hider.unlock(hider.reveal(stego, z=lost, locked=True), key)
        assert torch.allclose(opened, hider.reveal(stego, z=lost, key=key), atol=1e-6)
        with pytest.raises(ValueError, match="locked=True"):
            hider.hide(cover, locked, key=key, locked=True)
        with pytest.raises(ValueError, match="not keyed"):
            invhide.InvertibleHider(num_blocks=1, subnet="conv").lock(secret, key)

    def test_windowed_hide_and_reveal_lock_the_whole_image(self):
        """A window-by-window hide and reveal (tile < image) locks once: any tiling reveals the secret."""
        from invhide.models import inference

        hider = self.hider()
        cover, secret, key = images(0, 1, 3, 48, 64), images(1, 1, 3, 48, 64), bytes(range(50, 82))
        whole = inference.hide(hider, cover, secret, key=key)
        windowed = inference.hide(hider, cover, secret, key=key, tile=24, overlap=8)
        assert (whole - windowed).abs().max() < 0.02  # windows see their context: close to the whole, as unkeyed
        z = hider.hide(cover, secret, key=key)[1]  # the true lost part: the reveal gives the secret back
        exact = inference.reveal(hider, whole, z=z, key=key)
        assert torch.allclose(exact, secret, atol=1e-4)
        for tile in (None, 24, 32):
            revealed = inference.reveal(hider, whole, z=z, key=key, tile=tile, overlap=8)
            assert (revealed - exact).abs().max() < 0.02, tile
        wrong = inference.reveal(hider, whole, z=z, key=bytes(32), tile=24, overlap=8)
        assert (wrong - secret).abs().mean() > 0.1
        with pytest.raises(ValueError, match="not keyed"):
            inference.hide(invhide.InvertibleHider(num_blocks=1, subnet="conv"), cover, secret, key=key)

    def test_the_key_is_never_in_the_model(self, tmp_path):
        hider = self.hider()
        key = bytes(range(100, 132))
        hider.hide(images(0, 1, 3, 16, 16), images(1, 1, 3, 16, 16), key=key)
        invhide.save(hider, tmp_path / "m")
        for file in (tmp_path / "m").iterdir():
            assert key not in file.read_bytes()
        assert all("key" not in name for name in hider.state_dict())
        assert type(invhide.load(tmp_path / "m")).__name__ == "InvertibleHider"
        assert invhide.load(tmp_path / "m").keyed


def test_the_trainer_draws_fresh_keys_per_pair_and_step(tmp_path, monkeypatch):
    seen = []
    hider = invhide.InvertibleHider(num_blocks=1, subnet="conv", keyed=True)
    original = hider.hide

    def recording(cover, *secrets, key=None, **options):
        seen.append(key.clone())
        return original(cover, *secrets, key=key, **options)

    monkeypatch.setattr(hider, "hide", recording)
    config = TrainConfig(steps=2, batch_size=2, crop=16, lr=1e-3, seed=0)
    Trainer(
        hider, HidingLoss.reference_code(reduction="mean"), list(images(0, 8, 3, 16, 16)), config, progress=False
    ).fit()
    assert [tuple(k.shape) for k in seen] == [(2, KEY_BYTES)] * 2 and all(k.dtype == torch.uint8 for k in seen)
    assert not torch.equal(seen[0][0], seen[0][1]) and not torch.equal(seen[0], seen[1])


class TestKeyFiles:
    def test_round_trip_mode_0600_never_replaced(self, tmp_path):
        key = generate()
        write_key_file(tmp_path / "k", key)
        assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
        assert read_key_file(tmp_path / "k") == key
        with pytest.raises(FileExistsError, match="never replaced"):
            write_key_file(tmp_path / "k", generate())
        assert read_key_file(tmp_path / "k") == key

    @pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
    def test_a_file_others_can_read_or_change_is_refused(self, tmp_path, mode):
        write_key_file(tmp_path / "k", generate())
        os.chmod(tmp_path / "k", mode)
        with pytest.raises(PermissionError, match="other users may read or change"):
            read_key_file(tmp_path / "k")

    @pytest.mark.parametrize("size", [0, 31, 33, 64])
    def test_a_file_of_the_wrong_length_is_refused(self, tmp_path, size):
        path = tmp_path / "k"
        path.write_bytes(bytes(size))
        path.chmod(0o600)
        with pytest.raises(ValueError, match="exactly 32 bytes"):
            read_key_file(path)

    def test_passphrases_stretch_to_keys(self):
        assert from_passphrase("a") == from_passphrase("a") != from_passphrase("b")
        assert len(from_passphrase("a")) == KEY_BYTES
