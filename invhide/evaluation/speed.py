"""Speed and memory benchmarks (``invhide bench``, ``benchmarks/speed.py``).

Prints, for the machine it runs on (CPU or GPU, torch version, threads,
dtype):

1. **Inference**: images/s of ``hide`` and ``reveal`` at each ``--sizes``
   for a HiNet of ``--blocks`` blocks, the convolution FLOPs per image
   (counted by ``torch.utils.flop_counter``) and the achieved GFLOP/s, with
   the weights and inputs in the default (NCHW) layout, as invhide ran before
   its speed work, and channels-last, as it runs now, in the same process.
2. **Training step**: hide, reveal and backward on ``--train-batch`` pairs
   of ``--train-crop`` crops: steps/s and pairs/s, NCHW and channels-last,
   ordinary and ``memory_saving=True``.
3. **Memory**: the activation memory of a training step (peak memory minus
   weights, gradients and inputs) at each depth of ``--depths`` and crop of
   ``--crops``, ordinary and memory-saving. On CUDA this is
   ``max_memory_allocated``; on the CPU each measurement runs in a fresh
   process, which resets its peak resident set size before the step
   (``/proc/self/clear_refs``) and reads it after (``VmHWM``).
4. **Autocast**: the round-trip error ``reveal(hide(x), z=lost) - x`` and the
   stego's difference from float32 under bfloat16/float16 autocast.

A benchmark measures and prints; it never asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["add_arguments", "flops_per_call", "machine", "main", "time_call"]


def machine(device: torch.device) -> str:
    """One line describing where the numbers come from."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as file:
                name = next(line.split(":", 1)[1].strip() for line in file if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
    return (
        f"{name}; {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {device}"
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(function: Callable[[], Any], device: torch.device, repeat: int, warmup: int = 1) -> float:
    """Median seconds per call of ``function`` after ``warmup`` calls."""
    for _ in range(warmup):
        function()
    _sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        _sync(device)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def flops_per_call(function: Callable[[], Any]) -> float:
    """FLOPs of one call (2 per multiply-add) as counted by ``torch.utils.flop_counter``."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        function()
    return float(counter.get_total_flops())


_LAYOUTS = {"NCHW": torch.contiguous_format, "channels-last": torch.channels_last}


def _model(
    blocks: int, device: torch.device, dtype: torch.dtype, memory_saving: bool = False, layout: str = "channels-last"
) -> Any:
    from invhide import HiNet

    model = HiNet(num_blocks=blocks, generator=torch.Generator().manual_seed(0), memory_saving=memory_saving)
    # Move the weights off the identity so every operation does real work.
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.01)
    return model.to(device=device, dtype=dtype).to(memory_format=_LAYOUTS[layout])


def _inference_rows(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> list[dict[str, Any]]:
    """Hide and reveal speed, default layout (invhide before its speed work) and channels-last (after)."""
    rows = []
    for size in args.sizes:
        generator = torch.Generator().manual_seed(0)
        cover, secret = torch.rand(2, args.batch, 3, size, size, generator=generator).to(device, dtype)
        outputs = {}
        for layout in _LAYOUTS:
            model = _model(args.blocks, device, dtype, layout=layout).eval()
            if args.compile:
                _compile_subnets(model)
            with torch.inference_mode():
                stego, _ = model.hide(cover, secret)
                flops = flops_per_call(lambda model=model, c=cover, s=secret: model.hide(c, s)) / args.batch
                hide_s = time_call(lambda model=model, c=cover, s=secret: model.hide(c, s), device, args.repeat)
                reveal_s = time_call(lambda model=model, stego=stego: model.reveal(stego), device, args.repeat)
            outputs[layout] = stego
            rows.append(
                {
                    "size": size,
                    "layout": layout,
                    "batch": args.batch,
                    "hide_images_per_s": args.batch / hide_s,
                    "reveal_images_per_s": args.batch / reveal_s,
                    "gflop_per_image": flops / 1e9,
                    "hide_gflops": flops * args.batch / hide_s / 1e9,
                    "reveal_gflops": flops * args.batch / reveal_s / 1e9,
                }
            )
        before, after = rows[-2], rows[-1]
        after["speedup"] = after["hide_images_per_s"] / before["hide_images_per_s"]
        before["speedup"] = 1.0
        after["max_abs_diff"] = (outputs["channels-last"] - outputs["NCHW"]).abs().max().item()
        before["max_abs_diff"] = 0.0
    return rows


def _compile_subnets(model: Any) -> None:
    """``torch.compile`` every subnet (the graph's Python control flow stays eager)."""
    from invhide.nn.subnets import Subnet

    for module in model.modules():
        if isinstance(module, Subnet):
            module.compile(dynamic=False)


def _autocast_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """Round-trip error and stego difference under autocast, against float32."""
    rows = []
    model = _model(args.blocks, device, torch.float32).eval()
    generator = torch.Generator().manual_seed(0)
    cover, secret = torch.rand(2, 1, 3, 128, 128, generator=generator).to(device)
    with torch.inference_mode():
        reference, _ = model.hide(cover, secret)
        for name in args.autocast:
            with torch.autocast(device.type, dtype=getattr(torch, name)):
                stego, lost = model.hide(cover, secret)
                recovered = model.reveal(stego, z=lost)
            rows.append(
                {
                    "dtype": name,
                    "round_trip_max_abs_error": (recovered.float() - secret).abs().max().item(),
                    "stego_vs_float32_max_abs": (stego.float() - reference).abs().max().item(),
                }
            )
    return rows


def _train_step(model: Any, cover: torch.Tensor, secret: torch.Tensor, z: torch.Tensor) -> None:
    stego, _ = model.hide(cover, secret)
    recovered = model.reveal(stego, z=z)
    ((stego - cover).square().sum() + (recovered - secret).square().sum()).backward()


def _training_rows(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> list[dict[str, Any]]:
    rows = []
    generator = torch.Generator().manual_seed(0)
    shape = (args.train_batch, 3, args.train_crop, args.train_crop)
    cover, secret, z = (torch.rand(shape, generator=generator).to(device, dtype) for _ in range(3))
    flops = 0.0
    for layout, saving in (("NCHW", False), ("channels-last", False), ("channels-last", True)):
        model = _model(args.blocks, device, dtype, memory_saving=saving, layout=layout).train()
        if not flops:
            # The useful work of a step; memory saving does more (an inverse and a forward per node again),
            # and FlopCounterMode cannot follow its nested autograd.grad anyway.
            flops = flops_per_call(lambda model=model: _train_step(model, cover, secret, z))
        seconds = time_call(lambda model=model: _train_step(model, cover, secret, z), device, max(1, args.repeat // 2))
        rows.append(
            {
                "layout": layout,
                "memory_saving": saving,
                "crop": args.train_crop,
                "pairs": args.train_batch,
                "steps_per_s": 1 / seconds,
                "pairs_per_s": args.train_batch / seconds,
                "gflop_per_step": flops / 1e9,
                "gflops": flops / seconds / 1e9,
            }
        )
    return rows


def _measure_memory(
    blocks: int, crop: int, batch: int, saving: bool, device: torch.device, dtype: torch.dtype
) -> float:
    """Activation memory in MiB of one training step, in this process."""
    generator = torch.Generator().manual_seed(0)
    shape = (batch, 3, crop, crop)
    model = _model(blocks, device, dtype, memory_saving=saving).train()
    cover, secret, z = (torch.rand(shape, generator=generator).to(device, dtype) for _ in range(3))
    for param in model.parameters():  # gradients allocated before the baseline
        param.grad = torch.zeros_like(param)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
        _train_step(model, cover, secret, z)
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - baseline) / 2**20
    baseline = _reset_peak_rss()
    _train_step(model, cover, secret, z)
    return (_peak_rss() - baseline) / 2**20


def _status(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` in bytes (Linux), or ``None``."""
    try:
        with open("/proc/self/status") as file:
            for line in file:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> int:
    """Reset the peak resident set size to the current one where Linux allows it; return the baseline in bytes.

    Writing 5 to ``/proc/self/clear_refs`` resets ``VmHWM``, so the peak of the
    step is measured from here, whatever the process did before. Elsewhere
    the baseline is the lifetime peak (``ru_maxrss``), which a fresh process
    keeps close to its current size.
    """
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        current = _status("VmRSS")
        if current is not None:
            return current
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _peak_rss() -> int:
    peak = _status("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _memory_rows(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> list[dict[str, Any]]:
    rows = []
    for crop in args.crops:
        for blocks in args.depths:
            row: dict[str, Any] = {"crop": crop, "pairs": args.train_batch, "blocks": blocks}
            for saving in (False, True):
                if device.type == "cuda":
                    mib = _measure_memory(blocks, crop, args.train_batch, saving, device, dtype)
                else:  # a fresh process per measurement: ru_maxrss only ever grows
                    spec = json.dumps([blocks, crop, args.train_batch, saving, str(device), str(dtype)])
                    code = "import sys, json; from invhide.evaluation.speed import _child; _child(sys.argv[1])"
                    out = subprocess.run(
                        [sys.executable, "-c", code, spec], capture_output=True, text=True, check=True, env=os.environ
                    )
                    mib = float(out.stdout.strip().splitlines()[-1])
                row["memory_saving_mib" if saving else "ordinary_mib"] = mib
            rows.append(row)
    return rows


def _child(spec: str) -> None:
    blocks, crop, batch, saving, device, dtype = json.loads(spec)
    mib = _measure_memory(blocks, crop, batch, saving, torch.device(device), getattr(torch, dtype.split(".")[-1]))
    print(mib)


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """A right-aligned plain-text table."""
    header = "  ".join(f"{title:>{len(title) if len(title) > 10 else 10}}" for _, title, _ in columns)
    lines = [header]
    for row in rows:
        cells = []
        for key, title, fmt in columns:
            width = len(title) if len(title) > 10 else 10
            value = row[key]
            cells.append(f"{format(value, fmt) if not isinstance(value, bool) else str(value):>{width}}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``invhide bench``."""
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], help="inference sizes (default: 256 1024)")
    parser.add_argument("--blocks", type=int, default=16, help="coupling blocks for speed (default: 16)")
    parser.add_argument("--batch", type=int, default=1, help="images per inference call (default: 1)")
    parser.add_argument("--train-crop", type=int, default=128, help="training crop side (default: 128)")
    parser.add_argument("--train-batch", type=int, default=4, help="pairs per training step (default: 4)")
    parser.add_argument("--depths", type=int, nargs="+", default=[4, 8, 16], help="depths for memory (default: 4 8 16)")
    parser.add_argument("--crops", type=int, nargs="+", default=[64, 128], help="crops for memory (default: 64 128)")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per figure (median; default: 3)")
    parser.add_argument("--dtype", choices=("float32", "float64", "bfloat16", "float16"), default="float32")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the subnets for the inference figures")
    parser.add_argument(
        "--autocast",
        nargs="*",
        default=["bfloat16"],
        choices=("bfloat16", "float16"),
        help="autocast dtypes whose invertibility error to report (default: bfloat16)",
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=("inference", "training", "memory", "autocast"), help="parts to skip"
    )
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmarks described by ``args`` and print their tables."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = getattr(torch, args.dtype)
    results: dict[str, Any] = {"machine": machine(device), "dtype": args.dtype, "blocks": args.blocks}
    print(f"machine: {results['machine']}; dtype {args.dtype}")
    if "inference" not in args.skip:
        results["inference"] = rows = _inference_rows(args, device, dtype)
        print(f"\nHiNet, {args.blocks} blocks, inference (batch {args.batch}, median of {args.repeat}):")
        print(
            _table(
                rows,
                [
                    ("size", "size", "d"),
                    ("layout", "layout", ""),
                    ("hide_images_per_s", "hide img/s", ".3f"),
                    ("reveal_images_per_s", "reveal img/s", ".3f"),
                    ("gflop_per_image", "GFLOP/img", ".1f"),
                    ("hide_gflops", "hide GFLOP/s", ".1f"),
                    ("reveal_gflops", "reveal GFLOP/s", ".1f"),
                    ("speedup", "hide speedup", ".2f"),
                    ("max_abs_diff", "max |diff| vs NCHW", ".1e"),
                ],
            )
        )
    if "training" not in args.skip:
        results["training"] = rows = _training_rows(args, device, dtype)
        print(f"\nHiNet, {args.blocks} blocks, training step (hide + reveal + backward):")
        print(
            _table(
                rows,
                [
                    ("layout", "layout", ""),
                    ("memory_saving", "memory_saving", ""),
                    ("crop", "crop", "d"),
                    ("pairs", "pairs", "d"),
                    ("steps_per_s", "steps/s", ".3f"),
                    ("pairs_per_s", "pairs/s", ".2f"),
                    ("gflop_per_step", "GFLOP/step", ".1f"),
                    ("gflops", "GFLOP/s", ".1f"),
                ],
            )
        )
    if "memory" not in args.skip:
        results["memory"] = rows = _memory_rows(args, device, dtype)
        where = "CUDA max_memory_allocated" if device.type == "cuda" else "peak RSS of a fresh process, VmHWM"
        print(f"\nactivation memory of a training step, MiB ({where}, minus weights, gradients and inputs):")
        for row in rows:
            row["ratio"] = row["memory_saving_mib"] / max(row["ordinary_mib"], 1e-9)
        print(
            _table(
                rows,
                [
                    ("crop", "crop", "d"),
                    ("pairs", "pairs", "d"),
                    ("blocks", "blocks", "d"),
                    ("ordinary_mib", "ordinary MiB", ".1f"),
                    ("memory_saving_mib", "memory_saving MiB", ".1f"),
                    ("ratio", "ratio", ".3f"),
                ],
            )
        )
    if "autocast" not in args.skip and args.autocast:
        results["autocast"] = rows = _autocast_rows(args, device)
        print(f"\nautocast on {device.type}, {args.blocks} blocks, 128x128: reveal(hide(x), z=lost) against x")
        print(
            _table(
                rows,
                [
                    ("dtype", "dtype", ""),
                    ("round_trip_max_abs_error", "round-trip max |err|", ".2e"),
                    ("stego_vs_float32_max_abs", "stego vs float32 max |diff|", ".2e"),
                ],
            )
        )
    if args.json:
        from invhide.io.files import atomic_write

        with atomic_write(args.json, "w") as file:
            json.dump(results, file, indent=2)
    return results
