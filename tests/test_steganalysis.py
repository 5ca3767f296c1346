"""Steganalysis: detectors against ground truth made here (LSB replacement at known rates), the protocol, the CLI.

The photographs come from ../shared/data (skipped cleanly when absent); the
rates are bits per channel sample: 0, 0.1, 0.25 and 0.5.
"""

import argparse
import importlib.util
import json
import time

import numpy as np
import pytest
import torch
from helpers import shared

from invhide import InvertibleHider, save
from invhide.cli.main import run_reporting_errors
from invhide.errors import InputError
from invhide.evaluation.steganalysis import (
    PixelDomainHider,
    SpaceToDepth,
    SRMNet,
    SRNet,
    classic,
    evaluate_detectors,
    lsb_replacement,
)
from invhide.evaluation.steganalysis.learned import LearnedDetector, TrainingSettings
from invhide.evaluation.steganalysis.protocol import fold_of_pairs
from invhide.evaluation.steganalysis.statistics import auc, best_threshold, pair_bootstrap, roc_curve
from invhide.io.datasets import center_crop, list_images
from invhide.io.images import read_image, write_image
from invhide.nn import subnets
from invhide.testing import assert_invertible, randomize_

RATES = (0.0, 0.1, 0.25, 0.5)
ESTIMATORS = {
    "spa": classic.sample_pair_analysis,
    "rs": classic.rs_analysis,
    "primary-sets": classic.primary_sets,
}
# Stated tolerance of the payload estimators on 256x256 crops of kodak24: the median error over the images
# within 0.04 of the true rate, the mean absolute error within 0.06 (natural images bias them slightly upwards).
MEDIAN_TOLERANCE = 0.04
MEAN_ABSOLUTE_TOLERANCE = 0.06


@pytest.fixture(scope="module")
def kodak():
    """12 centre crops (256x256) of kodak24 as 8-bit levels."""
    paths = list_images(shared("kodak24"))[:12]
    return [classic.levels(center_crop(read_image(path), 256)) for path in paths]


@pytest.fixture(scope="module")
def stegos(kodak):
    generator = torch.Generator().manual_seed(0)
    return {rate: [lsb_replacement(cover, rate, generator=generator) for cover in kodak] for rate in RATES}


@pytest.fixture(scope="module")
def bsd():
    """40 centre crops (192x192) of cbsd68 as 8-bit levels."""
    paths = list_images(shared("cbsd68"))[:40]
    return [classic.levels(center_crop(read_image(path), 192)) for path in paths]


# --------------------------------------------------------------------------
# LSB replacement, the ground truth
# --------------------------------------------------------------------------


def test_lsb_replacement_changes_the_expected_samples():
    cover = torch.randint(0, 256, (3, 64, 64), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    stego = lsb_replacement(cover, 0.5, generator=torch.Generator().manual_seed(2))
    changed = (stego != cover).float().mean().item()
    assert abs(changed - 0.25) < 0.02  # half the chosen samples already held the right bit
    assert int((stego.int() - cover.int()).abs().max()) == 1
    assert torch.equal(stego >> 1, cover >> 1)  # only the LSB plane moves
    assert torch.equal(lsb_replacement(cover, 0.0), cover)
    with pytest.raises(InputError, match="rate"):
        lsb_replacement(cover, 1.5)


def test_levels_refuses_what_is_not_an_8_bit_image():
    assert classic.levels(torch.tensor([[[0.0, 1.0]]])).tolist() == [[[0, 255]]]
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        classic.levels(torch.full((3, 4, 4), 1.5))
    with pytest.raises(InputError, match=r"\(C, H, W\)"):
        classic.levels(torch.zeros(4, 4))


def tiny_pairs(small: int, shape=(3, 1, 1), count=4):
    """``count`` random cover/stego pairs of 24x24 levels, pair ``small`` of ``shape`` instead."""
    generator = torch.Generator().manual_seed(3)
    covers, stegos = [], []
    for index in range(count):
        size = shape if index == small else (3, 24, 24)
        covers.append(torch.randint(0, 256, size, generator=generator, dtype=torch.uint8))
        stegos.append(lsb_replacement(covers[-1], 1.0, generator=generator))
    return covers, stegos


def test_images_too_small_for_a_detector_are_refused_naming_the_image():
    tiny = torch.zeros(3, 3, 1, dtype=torch.uint8)
    with pytest.raises(InputError, match=r"^image has shape \(3, 3, 1\), too small for rs, which needs at least 4 "):
        classic.rs_analysis(tiny)
    for name in ("spa", "primary-sets", "fused"):  # adjacent pairs, or RS's groups of 4: a 1x1 image has none
        with pytest.raises(InputError, match=f"too small for {name}, which needs at least"):
            classic.classic_scores(torch.zeros(3, 1, 1, dtype=torch.uint8), [name])
    assert classic.classic_scores(tiny, ["spa", "chi2"]).keys() == {"spa", "chi2"}  # 3 samples along a column
    with pytest.raises(InputError, match=r"^pair 2 has images of shape \(3, 1, 1\), too small for rs, .*"
                       r"; leave rs out or use larger images$") as caught:  # fmt: skip
        evaluate_detectors(*tiny_pairs(2), ["chi2", "rs"], resamples=10)
    assert caught.value.argument == "pair 2"  # a caller with file names rewords it (error.renamed)
    with pytest.raises(InputError, match=r"^stegos\[1\] must hold finite values in \[0, 1\]"):
        classic.level_pairs([torch.zeros(3, 4, 4)] * 2, [torch.zeros(3, 4, 4), torch.full((3, 4, 4), 2.0)])
    covers, stegos = tiny_pairs(1, shape=(3, 24, 8))
    settings = TrainingSettings(steps=1, batch_pairs=2, crop=16, lr=1e-3)
    with pytest.raises(InputError, match=r"^pair 1 has images of shape \(3, 24, 8\), too small for srm-cnn, which "
                       r"needs at least 16x16 pixels$"):  # fmt: skip
        LearnedDetector("srm-cnn", settings=settings).fit(covers, stegos)
    detector = LearnedDetector("srm-cnn", settings=settings).fit(covers[2:], stegos[2:])
    with pytest.raises(InputError, match=r"^images\[1\] has shape \(3, 24, 8\), too small for srm-cnn"):
        detector.score(covers)


# --------------------------------------------------------------------------
# The payload estimators on real photographs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_estimated_payload_is_the_embedded_rate(name, stegos):
    estimator = ESTIMATORS[name]
    for rate in RATES:
        errors = np.array([float(estimator(stego).mean()) - rate for stego in stegos[rate]])
        assert abs(np.median(errors)) <= MEDIAN_TOLERANCE, (name, rate, errors.round(3))
        assert np.abs(errors).mean() <= MEAN_ABSOLUTE_TOLERANCE, (name, rate, errors.round(3))


def test_estimates_are_per_channel(kodak):
    """Embedding in the green channel only moves the green estimate; red and blue are the cover's exactly."""
    cover = kodak[0]
    stego = cover.clone()
    stego[1] = lsb_replacement(cover[1:2], 0.75, generator=torch.Generator().manual_seed(3))[0]
    for estimator in ESTIMATORS.values():
        before, after = estimator(cover), estimator(stego)
        assert after[0] == before[0] and after[2] == before[2], (estimator.__name__, before, after)
        assert after[1] - before[1] > 0.6, (estimator.__name__, before, after)


def test_detection_rises_with_the_rate(kodak, stegos):
    labels = np.r_[np.zeros(len(kodak)), np.ones(len(kodak))]
    covers = {name: [classic.classic_scores(cover)[name] for cover in kodak] for name in classic.CLASSIC_DETECTORS}
    for name in ("spa", "rs", "primary-sets", "fused"):
        means, aucs = [], []
        for rate in RATES[1:]:
            scores = [classic.classic_scores(stego, [name])[name] for stego in stegos[rate]]
            means.append(np.mean(scores))
            aucs.append(auc(labels, np.r_[covers[name], scores]))
        assert np.all(np.diff(means) > 0), (name, means)
        assert np.all(np.diff(aucs) >= 0) and aucs[-1] >= 0.95, (name, aucs)


def test_fused_is_stegexposes_mean_of_the_four(stegos):
    stego = stegos[0.25][0]
    parts = [float(f(stego).mean()) for f in (*ESTIMATORS.values(), classic.chi_square_attack)]
    assert classic.fused(stego) == pytest.approx(sum(min(abs(p), 1) for p in parts) / 4)


def test_chi_square_attack_finds_sequential_embedding(kodak):
    """Full embedding of the first quarter / half of each channel (Westfeld's sequential case).

    The mean p-value over the prefixes is at least the embedded fraction and
    overshoots it by at most 0.3 (the p-value stays high for a while after the
    embedded part ends); covers stay below 0.25.
    """
    generator = torch.Generator().manual_seed(4)
    for cover in kodak[:4]:
        estimates = []
        for fraction in (0.25, 0.5):
            stego = cover.clone().reshape(3, -1)
            count = int(stego.shape[1] * fraction)
            bits = torch.randint(0, 2, (3, count), generator=generator).to(torch.uint8)
            stego[:, :count] = (stego[:, :count] & 0xFE) | bits
            estimate = classic.chi_square_attack(stego.reshape(cover.shape))
            assert torch.all((estimate > fraction - 0.05) & (estimate < fraction + 0.3)), (fraction, estimate)
            estimates.append(float(estimate.mean()))
        assert estimates[0] < estimates[1]
        assert torch.all(classic.chi_square_attack(cover) < 0.25), classic.chi_square_attack(cover)


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------


def test_auc_is_the_pairwise_probability_with_ties():
    generator = np.random.default_rng(5)
    labels = generator.integers(0, 2, 60)
    labels[:2] = (0, 1)
    scores = generator.integers(0, 6, 60).astype(float)  # many ties
    positive, negative = scores[labels == 1], scores[labels == 0]
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in positive for n in negative])
    assert auc(labels, scores) == pytest.approx(brute)
    fpr, tpr, _ = roc_curve(labels, scores)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert np.trapezoid(tpr, fpr) == pytest.approx(brute)  # the trapezoid rule of the ROC is the rank AUC


def test_best_threshold_and_bootstrap():
    labels = np.r_[np.zeros(5), np.ones(5)]
    scores = np.r_[0.1, 0.2, 0.3, 0.4, 0.9, 0.5, 0.6, 0.7, 0.8, 0.35]
    threshold = best_threshold(labels, scores)
    assert np.mean((scores > threshold) == labels) == 0.8
    correct = np.array([scores[:5] <= threshold, scores[5:] > threshold])
    first = pair_bootstrap(scores[:5], scores[5:], correct, resamples=300, seed=1)
    again = pair_bootstrap(scores[:5], scores[5:], correct, resamples=300, seed=1)
    assert first.auc == again.auc and first.accuracy == again.accuracy
    assert first.auc[0] <= auc(labels, scores) <= first.auc[1] and first.accuracy[0] <= 0.8 <= first.accuracy[1]
    assert np.all(first.tpr_band[0] <= first.tpr_band[1])


# --------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------


def test_folds_split_pairs_and_test_each_pair_once():
    fold = fold_of_pairs(11, 3, seed=2)
    assert sorted(np.bincount(fold).tolist()) == [3, 4, 4]
    assert np.array_equal(fold, fold_of_pairs(11, 3, seed=2)) and not np.array_equal(fold, fold_of_pairs(11, 3, 3))
    with pytest.raises(InputError, match="folds"):
        fold_of_pairs(3, 4, seed=0)


def test_two_sets_of_covers_give_chance(bsd):
    """Covers against other covers: chance accuracy; the same images against their stego images: found."""
    first, second = bsd[:20], bsd[20:]
    names = ["spa", "rs", "primary-sets", "fused"]
    chance = evaluate_detectors(first, second, names, seed=0, resamples=400)
    for name, result in chance.detectors.items():
        assert 0.3 <= result.accuracy <= 0.7 and 0.25 <= result.auc <= 0.75, (name, result.accuracy, result.auc)
        assert result.accuracy_ci[0] <= 0.5 <= result.accuracy_ci[1], (name, result.accuracy_ci)
    generator = torch.Generator().manual_seed(6)
    found = evaluate_detectors(first, [lsb_replacement(c, 0.5, generator=generator) for c in first], names)
    for name, result in found.detectors.items():
        assert result.accuracy >= 0.9 and result.auc >= 0.95, (name, result.accuracy, result.auc)


def test_report_layout_and_refusals(bsd):
    generator = torch.Generator().manual_seed(7)
    covers = bsd[:6]
    report = evaluate_detectors(covers, [lsb_replacement(c, 0.5, generator=generator) for c in covers], ["rs"])
    layout = json.loads(json.dumps(report.to_dict()))
    assert layout["pairs"] == 6 and list(layout["detectors"]) == ["rs"]
    entry = layout["detectors"]["rs"]
    for key in ("accuracy", "auc"):
        assert 0 <= entry[f"{key}_ci"][0] <= entry[key] <= entry[f"{key}_ci"][1] <= 1
    assert len(report.format().splitlines()) == 1 and "AUC" in report.format()
    with pytest.raises(InputError, match="as many covers"):
        evaluate_detectors(covers, covers[:5], ["rs"])
    with pytest.raises(InputError, match="pair 1"):
        evaluate_detectors(covers[:2], [covers[0], covers[1][:, :64]], ["rs"])
    with pytest.raises(InputError, match="unknown"):
        evaluate_detectors(covers, covers, ["stegexpose"])


# --------------------------------------------------------------------------
# Learned detectors
# --------------------------------------------------------------------------


def test_small_cnn_learns_the_direction_of_an_easy_case(bsd):
    """A few training steps on full LSB replacement: held-out stego images score above their covers."""
    generator = torch.Generator().manual_seed(8)
    covers = [center_crop(cover, 64) for cover in bsd[:16]]
    stegos = [lsb_replacement(cover, 1.0, generator=generator) for cover in covers]
    settings = TrainingSettings(steps=40, batch_pairs=8, crop=32, lr=3e-3)
    detector = LearnedDetector("srm-cnn", settings=settings, seed=0).fit(covers[:10], stegos[:10])
    held_covers, held_stegos = detector.score(covers[10:]), detector.score(stegos[10:])
    assert np.all(held_stegos > held_covers), (held_covers, held_stegos)  # all 6 held-out pairs
    again = LearnedDetector("srm-cnn", settings=settings, seed=0).fit(covers[:10], stegos[:10])
    assert np.array_equal(again.score(covers[10:]), held_covers)  # seeded: the same network


def test_networks_shapes_and_gradients():
    for network in (SRNet(generator=torch.Generator().manual_seed(0)), SRMNet(kernels="all")):
        logits = network(torch.rand(2, 3, 32, 40))
        assert logits.shape == (2,)
        logits.sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in network.parameters())
        with pytest.raises(InputError, match="height and width of at least 16, got 8x32"):
            network(torch.rand(1, 3, 8, 32))
    srnet = SRNet()
    assert len([m for m in srnet.features]) == 12  # the paper's 12 layers
    srm = SRMNet()
    assert not any(name.endswith("kernels") for name, _ in srm.named_parameters())  # the SRM filters are fixed


# --------------------------------------------------------------------------
# The pixel-domain hider of the ablation
# --------------------------------------------------------------------------


def test_space_to_depth_is_an_exact_permutation():
    module = SpaceToDepth([(3, 8, 10)])
    x = torch.rand(2, 3, 8, 10, dtype=torch.float64)
    (y,), log_det = module([x])
    assert y.shape == (2, 12, 4, 5) and torch.equal(log_det, torch.zeros(2, dtype=torch.float64))
    assert torch.equal(torch.sort(y.flatten(1)).values, torch.sort(x.flatten(1)).values)
    (back,), _ = module([y], rev=True)
    assert torch.equal(back, x)


def test_pixel_domain_hider_is_invertible():
    hider = randomize_(PixelDomainHider(num_blocks=2, subnet=subnets.conv(hidden=8, depth=2)), 0).double()
    cover, secret = torch.rand(2, 2, 3, 16, 16, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    assert_invertible(hider, [cover, secret])
    stego, lost = hider.hide(cover, secret)
    assert (stego - cover).abs().max() > 1e-3  # randomised: not the identity
    assert torch.allclose(hider.reveal(stego, z=lost), secret, atol=1e-9)
    assert PixelDomainHider.from_config(hider.config()).config() == hider.config()


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------


def _parser():
    """The ``invhide`` parser with the steganalysis options (wired in by invhide.cli.main)."""
    from invhide.cli.main import build_parser

    return build_parser()


def _run(capsys, *argv):
    args = _parser().parse_args([str(a) for a in argv])
    status = run_reporting_errors(args.run, args, memory_advice=args.memory_advice)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def folders(tmp_path_factory, bsd):
    root = tmp_path_factory.mktemp("steganalysis")
    generator = torch.Generator().manual_seed(10)
    for folder in ("covers", "stegos", "short", "sizes"):
        (root / folder).mkdir()
    for index, cover in enumerate(bsd[:8]):
        write_image(cover.float() / 255, root / "covers" / f"{index:02d}.png")
        stego = lsb_replacement(cover, 0.5, generator=generator)
        write_image(stego.float() / 255, root / "stegos" / f"{index:02d}.png")
        if index < 7:
            write_image(stego.float() / 255, root / "short" / f"{index:02d}.png")
        write_image(stego[:, : 100 if index == 3 else None].float() / 255, root / "sizes" / f"{index:02d}.png")
    return root


def test_steganalysis_command_json_and_roc(folders, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    status, out, err = _run(
        capsys, "steganalysis", folders / "covers", folders / "stegos", "--detector", "spa", "fused",
        "--json", tmp_path / "r.json", "--roc", tmp_path / "roc.png", "--bootstrap", 200,
    )  # fmt: skip
    assert status == 0, err
    lines = [line for line in out.splitlines() if line.startswith(("spa ", "fused "))]
    assert len(lines) == 2 and all("accuracy" in line and "AUC" in line for line in lines)
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["pairs"] == 8 and sorted(result["detectors"]) == ["fused", "spa"]
    for entry in result["detectors"].values():
        assert set(entry) >= {"accuracy", "auc", "accuracy_ci", "auc_ci"}
        assert entry["auc"] >= 0.9 and all(0 <= v <= 1 for v in (*entry["accuracy_ci"], *entry["auc_ci"]))
    assert (tmp_path / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("folder", "extra", "expected"),
    [
        ("short", [], "holds 8 images but .* holds 7"),
        ("sizes", [], "03.png is 192x192 but .*03.png, its pair by sorted name, is 192x100"),
        ("stegos", ["--folds", "9"], "more folds than the 8 pairs"),
        ("stegos", ["--json", "missing/r.json"], "does not exist"),
        ("stegos", ["--roc", "roc.jpg"], r"name it \*.png"),
    ],
)
def test_steganalysis_command_refuses_in_one_line(folders, capsys, tmp_path, monkeypatch, folder, extra, expected):
    monkeypatch.chdir(tmp_path)
    status, out, err = _run(capsys, "steganalysis", folders / "covers", folders / folder, "--detector", "spa", *extra)
    assert status == 2 and out == "" and len(err.splitlines()) == 1, err
    assert pytest.importorskip("re").search(expected, err), err


def test_stego_images_equal_to_their_covers_are_refused_not_scored():
    covers, stegos = tiny_pairs(-1)
    with pytest.raises(InputError, match=r"^stegos are their covers, level for level, in every pair") as caught:
        evaluate_detectors(covers, [cover.clone() for cover in covers], ["spa"], resamples=10)  # not "AUC 0.500"
    assert caught.value.argument == "stegos"
    stegos[1:] = [cover.clone() for cover in covers[1:]]  # one pair differs: a measurement, however weak
    assert evaluate_detectors(covers, stegos, ["spa"], resamples=10).pairs == 4


def test_a_copy_of_the_covers_as_stego_folder_is_refused(capsys, tmp_path):
    covers, _ = tiny_pairs(-1, count=3)
    for folder in ("c", "copy"):
        (tmp_path / folder).mkdir()
        for index, image in enumerate(covers):
            write_image(image.float() / 255, tmp_path / folder / f"{index}.png")
    status, out, err = _run(capsys, "steganalysis", tmp_path / "c", tmp_path / "copy", "--detector", "spa")
    assert status == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("invhide: error: the images of ") and "copy are their covers, level for level" in err, err


def test_images_too_small_for_a_detector_are_refused_naming_the_file_or_option(capsys, tmp_path):
    covers, stegos = tiny_pairs(0, shape=(3, 2, 3), count=3)
    for folder, images in (("c", covers), ("s", stegos)):
        (tmp_path / folder).mkdir()
        for index, image in enumerate(images):
            write_image(image.float() / 255, tmp_path / folder / f"{index}.png")
    status, out, err = _run(capsys, "steganalysis", tmp_path / "c", tmp_path / "s", "--detector", "spa", "rs")
    assert status == 2 and out == "" and len(err.splitlines()) == 1, err
    assert err.endswith("c/0.png is 3x2, too small for rs, which needs at least 4 pixels along a row or a column; "
                        "use larger images or run --detector without rs\n"), err  # fmt: skip
    status, out, err = _run(capsys, "steganalysis", tmp_path / "c", tmp_path / "s")  # the defaults include srm-cnn
    assert status == 2 and "c/0.png is 3x2, too small for rs" in err, err
    status, out, err = _run(capsys, "steganalysis", tmp_path / "c", tmp_path / "s", "--detector", "srm-cnn")
    assert status == 2 and "c/0.png is 3x2, too small for srm-cnn, which needs at least 16x16 pixels" in err, err


def test_learned_detectors_write_plain_progress_lines_into_a_log(capsys):
    """With stderr not a terminal (a log), training writes a line every few seconds, not a bar redraw per step."""
    covers, stegos = tiny_pairs(-1)
    settings = TrainingSettings(steps=8, batch_pairs=2, crop=16, lr=1e-3)
    start = time.monotonic()
    LearnedDetector("srm-cnn", settings=settings, progress=True).fit(covers, stegos)
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err, repr(err[:300])
    lines = err.splitlines()
    assert 1 <= len(lines) <= 1 + elapsed / 10, lines  # one line per 10 s and one at the end
    assert all(line.startswith("training srm-cnn: ") for line in lines), lines
    assert lines[-1].startswith("training srm-cnn: 8/8 steps (100%), "), lines


def test_missing_matplotlib_is_refused_before_any_work(folders, capsys, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    status, out, err = _run(capsys, "steganalysis", folders / "covers", folders / "stegos", "--roc", tmp_path / "r.png")
    assert status == 2 and out == "" and "needs matplotlib" in err and len(err.splitlines()) == 1


def test_eval_security_makes_png_pairs_and_runs_the_detectors(folders, capsys, tmp_path):
    model = randomize_(InvertibleHider(num_blocks=1, subnet=subnets.conv(hidden=8, depth=2)), 0, gain=0.02)
    save(model, tmp_path / "model.safetensors")
    status, out, err = _run(
        capsys, "eval", folders / "covers", "--security", "--model", tmp_path / "model.safetensors", "--size", 64,
        "--detector", "spa", "rs", "--json", tmp_path / "s.json", "--pairs-dir", tmp_path / "pairs", "--device", "cpu",
    )  # fmt: skip
    assert status == 0, err
    assert "cover/stego PSNR" in out and len([line for line in out.splitlines() if "AUC" in line]) == 2
    result = json.loads((tmp_path / "s.json").read_text())
    assert result["pairs"] == 8 and sorted(result["detectors"]) == ["rs", "spa"]
    saved = sorted((tmp_path / "pairs" / "stegos").iterdir())
    assert len(saved) == 8 and read_image(saved[0]).shape == (3, 64, 64)
    # What was analysed is what the model makes from the cover crops, rounded to 8 bits.
    assert result["stego_psnr_db"] > 20


def test_the_cli_module_exposes_the_hooks():
    from invhide.cli import steganalysis

    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers()
    steganalysis.add_parser(commands)
    evaluate = commands.add_parser("eval")
    steganalysis.add_security_options(evaluate)
    args = parser.parse_args(["eval", "--security", "--detector", "spa", "--detector", "rs"])
    assert args.security and args.detectors == ["spa", "rs"]
    args = parser.parse_args(["steganalysis", "a", "b"])
    assert args.run is steganalysis.run_steganalysis and args.folds == 2
