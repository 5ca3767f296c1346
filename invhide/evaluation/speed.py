"""Speed and memory benchmarks: the library side of ``invhide bench`` and ``benchmarks/speed.py``.

:func:`run` measures, for the machine it runs on (CPU or GPU, torch version,
threads, dtype), and prints as tables:

1. **Inference**: images/s of ``hide`` and ``reveal`` at each of ``sizes``
   for a HiNet of ``blocks`` blocks, the convolution FLOPs per image
   (counted by ``torch.utils.flop_counter``) and the achieved GFLOP/s, with
   the weights and inputs in the default (NCHW) layout and channels-last
   (the layout a hider runs in), in the same process.
2. **Training step**: hide, reveal and backward on ``train_batch`` pairs
   of ``train_crop`` crops: steps/s and pairs/s, NCHW and channels-last,
   ordinary and ``memory_saving=True``.
3. **Memory**: the activation memory of a training step (peak memory minus
   weights, gradients and inputs) at each depth of ``depths`` and crop of
   ``crops``, ordinary and memory-saving (:func:`training_step_memory`). On
   CUDA this is ``max_memory_allocated``; on the CPU each measurement runs in
   a fresh process, which resets its peak resident set size before the step
   (``/proc/self/clear_refs``) and reads it after (``VmHWM``).
4. **Autocast**: the round-trip error ``reveal(hide(x), z=lost) - x`` and the
   stego's difference from float32 under bfloat16/float16 autocast.

Every argument is checked before anything is measured. A benchmark measures
and prints; it never asserts a time.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from invhide import checks
from invhide.errors import InputError, InputTypeError, IsAFolderError, MissingPathError
from invhide.io.files import atomic_write
from invhide.models.hider import public_key
from invhide.models.hinet import HiNet
from invhide.models.zoo import cpu_model
from invhide.nn.subnets import Subnet

__all__ = [
    "AUTOCAST_DTYPES",
    "DTYPES",
    "PARTS",
    "flops_per_call",
    "machine",
    "run",
    "time_call",
    "training_step_memory",
]

PARTS: tuple[str, ...] = ("inference", "training", "memory", "autocast")
"""The parts of :func:`run`, in the order they run; ``skip`` names any of them."""

DTYPES: tuple[str, ...] = ("float32", "float64", "bfloat16", "float16")
"""The dtypes :func:`run` can measure in."""

AUTOCAST_DTYPES: tuple[str, ...] = ("bfloat16", "float16")
"""The autocast dtypes whose invertibility error :func:`run` can report."""


def machine(device: torch.device) -> str:
    """One line describing where the numbers come from.

    Example:
        >>> machine(torch.device("cpu")).endswith("device cpu")
        True
    """
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return (
        f"{name}; {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {device}"
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(function: Callable[[], Any], device: torch.device, repeat: int, warmup: int = 1) -> float:
    """Median seconds per call of ``function`` after ``warmup`` calls.

    Example:
        >>> time_call(lambda: sum(range(100)), torch.device("cpu"), repeat=3) >= 0
        True
    """
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
    """FLOPs of one call (2 per multiply-add) as counted by ``torch.utils.flop_counter``.

    Example:
        >>> flops_per_call(lambda: torch.ones(2, 3) @ torch.ones(3, 4))  # 2 x 4 outputs, 3 multiply-adds each
        48.0
    """
    counter = FlopCounterMode(display=False)
    with counter:
        function()
    return float(counter.get_total_flops())


_LAYOUTS = {"NCHW": torch.contiguous_format, "channels-last": torch.channels_last}


def _model(
    blocks: int, device: torch.device, dtype: torch.dtype, memory_saving: bool = False, layout: str = "channels-last"
) -> HiNet:
    model = HiNet(num_blocks=blocks, generator=torch.Generator().manual_seed(0), memory_saving=memory_saving)
    # Move the weights off the identity so every operation does real work.
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.01)
    return model.to(device=device, dtype=dtype).to(memory_format=_LAYOUTS[layout])


# --------------------------------------------------------------------------
# The settings of a run, checked before anything is measured
# --------------------------------------------------------------------------


def _sequence(name: str, values: object) -> tuple[Any, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise InputTypeError(f"{name} must be a sequence (list or tuple), got {type(values).__name__} {values!r}")
    return tuple(values)


def _side(name: str, value: object) -> int:
    """An image side: an even integer >= 2 (a HiNet halves each side once)."""
    side = checks.integer(name, value, low=2, what="an even integer >= 2")
    if side % 2:
        raise InputError(argument=name, problem=f"must be an even integer >= 2, got {value!r}")
    return side


def _sides(name: str, values: object) -> tuple[int, ...]:
    """A non-empty sequence of image sides."""
    sides = _sequence(name, values)
    if not sides:
        raise InputError(f"{name} must hold at least one size, got {values!r}")
    return tuple(_side(f"{name}[{index}]", side) for index, side in enumerate(sides))


def _names(name: str, values: object, choices: Sequence[str]) -> tuple[str, ...]:
    return tuple(checks.one_of(f"{name}[{i}]", value, choices) for i, value in enumerate(_sequence(name, values)))


def _json_target(json_path: object) -> Path | None:
    """The JSON output's path, checked before any measurement (its folder must exist)."""
    if json_path is None:
        return None
    if not isinstance(json_path, str | os.PathLike):
        raise InputTypeError(f"json_path must be a str or os.PathLike, got {type(json_path).__name__}")
    path = Path(json_path)
    if path.is_dir():
        raise IsAFolderError(f"{path}: is a folder, not a file name (json_path)")
    if not path.parent.is_dir():
        raise MissingPathError(f"{path}: the output folder {path.parent} does not exist (json_path)")
    return path


@dataclass
class _Bench:
    """The arguments of :func:`run`, checked and normalised when built."""

    sizes: Sequence[int]
    blocks: int
    batch: int
    train_crop: int
    train_batch: int
    depths: Sequence[int]
    crops: Sequence[int]
    repeat: int
    dtype: str
    threads: int | None
    compile_subnets: bool
    autocast: Sequence[str]
    skip: Sequence[str]
    device: str | torch.device | None
    json_path: str | os.PathLike[str] | None
    log: Callable[[str], None]

    def __post_init__(self) -> None:
        self.sizes = _sides("sizes", self.sizes)
        self.blocks = checks.positive_int("blocks", self.blocks)
        self.batch = checks.positive_int("batch", self.batch)
        self.train_crop = _side("train_crop", self.train_crop)
        self.train_batch = checks.positive_int("train_batch", self.train_batch)
        depths = _sequence("depths", self.depths)
        self.depths = tuple(checks.positive_int(f"depths[{i}]", depth) for i, depth in enumerate(depths))
        if not self.depths:
            raise InputError("depths must hold at least one number of blocks, got ()")
        self.crops = _sides("crops", self.crops)
        self.repeat = checks.positive_int("repeat", self.repeat)
        self.torch_dtype: torch.dtype = getattr(torch, checks.one_of("dtype", self.dtype, DTYPES))
        if self.threads is not None:
            self.threads = checks.positive_int("threads", self.threads)
        if not isinstance(self.compile_subnets, bool):
            raise InputTypeError(f"compile_subnets must be a bool, got {self.compile_subnets!r}")
        self.autocast = _names("autocast", self.autocast, AUTOCAST_DTYPES)
        self.skip = _names("skip", self.skip, PARTS)
        if self.device is None:
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = checks.device("device", self.device)
        self.json_path = _json_target(self.json_path)
        if not callable(self.log):
            raise InputTypeError(f"log must be a callable taking one string, got {type(self.log).__name__}")


# --------------------------------------------------------------------------
# The four parts, each measured, printed and returned as rows
# --------------------------------------------------------------------------


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """A right-aligned plain-text table of ``(key, title, format)`` columns."""
    widths = [max(len(title), 10) for _, title, _ in columns]
    lines = ["  ".join(f"{title:>{width}}" for (_, title, _), width in zip(columns, widths, strict=True))]
    for row in rows:
        cells = (str(row[key]) if isinstance(row[key], bool) else format(row[key], fmt) for key, _, fmt in columns)
        lines.append("  ".join(f"{cell:>{width}}" for cell, width in zip(cells, widths, strict=True)))
    return "\n".join(lines)


def _compile_subnets(model: HiNet) -> None:
    """``torch.compile`` every subnet (the graph's Python control flow stays eager)."""
    for module in model.modules():
        if isinstance(module, Subnet):
            module.compile(dynamic=False)


def _inference_rows(bench: _Bench, size: int) -> list[dict[str, Any]]:
    """Hide and reveal speed at one size, NCHW then channels-last, and how far their stegos differ."""
    cover, secret = torch.rand(2, bench.batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    cover, secret = cover.to(bench.device, bench.torch_dtype), secret.to(bench.device, bench.torch_dtype)
    rows, stegos = [], []
    for layout in _LAYOUTS:
        model = _model(bench.blocks, bench.device, bench.torch_dtype, layout=layout).eval()
        if bench.compile_subnets:
            _compile_subnets(model)
        with torch.inference_mode():
            key = public_key(model)
            stego, _ = model.hide(cover, secret, **key)
            flops = flops_per_call(lambda model=model, key=key: model.hide(cover, secret, **key)) / bench.batch
            hide_s = time_call(
                lambda model=model, key=key: model.hide(cover, secret, **key), bench.device, bench.repeat
            )
            reveal_s = time_call(
                lambda model=model, stego=stego, key=key: model.reveal(stego, **key), bench.device, bench.repeat
            )
        stegos.append(stego)
        rows.append(
            {
                "size": size,
                "layout": layout,
                "batch": bench.batch,
                "hide_images_per_s": bench.batch / hide_s,
                "reveal_images_per_s": bench.batch / reveal_s,
                "gflop_per_image": flops / 1e9,
                "hide_gflops": flops * bench.batch / hide_s / 1e9,
                "reveal_gflops": flops * bench.batch / reveal_s / 1e9,
            }
        )
    before, after = rows
    before["speedup"], after["speedup"] = 1.0, after["hide_images_per_s"] / before["hide_images_per_s"]
    before["max_abs_diff"], after["max_abs_diff"] = 0.0, (stegos[1] - stegos[0]).abs().max().item()
    return rows


def _inference(bench: _Bench) -> list[dict[str, Any]]:
    rows = [row for size in bench.sizes for row in _inference_rows(bench, size)]
    bench.log(f"\nHiNet, {bench.blocks} blocks, inference (batch {bench.batch}, median of {bench.repeat}):")
    bench.log(_table(rows, [("size", "size", "d"), ("layout", "layout", ""), ("hide_images_per_s", "hide img/s", ".3f"),
                            ("reveal_images_per_s", "reveal img/s", ".3f"), ("gflop_per_image", "GFLOP/img", ".1f"),
                            ("hide_gflops", "hide GFLOP/s", ".1f"), ("reveal_gflops", "reveal GFLOP/s", ".1f"),
                            ("speedup", "hide speedup", ".2f"),
                            ("max_abs_diff", "max |diff| vs NCHW", ".1e")]))  # fmt: skip
    return rows


def _train_step(model: HiNet, cover: torch.Tensor, secret: torch.Tensor, z: torch.Tensor) -> None:
    stego, _ = model.hide(cover, secret, **public_key(model))
    recovered = model.reveal(stego, z=z, **public_key(model))
    ((stego - cover).square().sum() + (recovered - secret).square().sum()).backward()


def _training(bench: _Bench) -> list[dict[str, Any]]:
    """Training-step speed: NCHW, channels-last, and channels-last with memory saving."""
    generator = torch.Generator().manual_seed(0)
    shape = (bench.train_batch, 3, bench.train_crop, bench.train_crop)
    cover, secret, z = (torch.rand(shape, generator=generator).to(bench.device, bench.torch_dtype) for _ in range(3))
    rows: list[dict[str, Any]] = []
    flops = 0.0
    for layout, saving in (("NCHW", False), ("channels-last", False), ("channels-last", True)):
        model = _model(bench.blocks, bench.device, bench.torch_dtype, memory_saving=saving, layout=layout).train()
        if not flops:
            # The useful work of a step; memory saving does more (an inverse and a forward per node again),
            # and FlopCounterMode cannot follow its nested autograd.grad anyway.
            flops = flops_per_call(lambda model=model: _train_step(model, cover, secret, z))
        seconds = time_call(
            lambda model=model: _train_step(model, cover, secret, z), bench.device, max(1, bench.repeat // 2)
        )
        rows.append({"layout": layout, "memory_saving": saving, "crop": bench.train_crop, "pairs": bench.train_batch,
                     "steps_per_s": 1 / seconds, "pairs_per_s": bench.train_batch / seconds,
                     "gflop_per_step": flops / 1e9, "gflops": flops / seconds / 1e9})  # fmt: skip
    bench.log(f"\nHiNet, {bench.blocks} blocks, training step (hide + reveal + backward):")
    bench.log(_table(rows, [("layout", "layout", ""), ("memory_saving", "memory_saving", ""), ("crop", "crop", "d"),
                            ("pairs", "pairs", "d"), ("steps_per_s", "steps/s", ".3f"),
                            ("pairs_per_s", "pairs/s", ".2f"), ("gflop_per_step", "GFLOP/step", ".1f"),
                            ("gflops", "GFLOP/s", ".1f")]))  # fmt: skip
    return rows


def training_step_memory(
    blocks: int,
    crop: int,
    batch: int,
    memory_saving: bool,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
) -> float:
    """Activation memory in MiB of one HiNet training step, measured in this process.

    Peak memory during hide, reveal and backward on ``batch`` pairs of
    ``crop x crop`` crops, minus the weights, gradients and inputs allocated
    before it. On CUDA this is ``max_memory_allocated``. On the CPU it is the
    peak resident set size, which Linux lets a process reset
    (``/proc/self/clear_refs``); elsewhere only the lifetime peak is known, so
    :func:`run` calls this in a fresh process per measurement.

    Args:
        blocks: coupling blocks of the HiNet.
        crop: side of the square crops.
        batch: cover/secret pairs.
        memory_saving: recompute activations through the inverse.
        device: where to run.
        dtype: a name from :data:`DTYPES` or a ``torch.dtype``.

    Returns:
        Mebibytes (may be slightly negative on the CPU when the allocator
        returns memory it held before the step).

    Example:
        >>> isinstance(training_step_memory(1, 8, 1, memory_saving=False), float)
        True
    """
    device = torch.device(device)
    dtype = getattr(torch, dtype.removeprefix("torch.")) if isinstance(dtype, str) else dtype
    generator = torch.Generator().manual_seed(0)
    shape = (batch, 3, crop, crop)
    model = _model(blocks, device, dtype, memory_saving=memory_saving).train()
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


_CHILD = (
    "import json, sys\n"
    "from invhide.evaluation.speed import training_step_memory\n"
    "print(training_step_memory(*json.loads(sys.argv[1])))\n"
)


def _memory_in_fresh_process(
    blocks: int, crop: int, batch: int, saving: bool, device: torch.device, dtype: torch.dtype
) -> float:
    """:func:`training_step_memory` in a new Python process (``ru_maxrss`` only ever grows)."""
    spec = json.dumps([blocks, crop, batch, saving, str(device), str(dtype)])
    done = subprocess.run([sys.executable, "-c", _CHILD, spec], capture_output=True, text=True, env=os.environ)
    if done.returncode != 0:
        raise RuntimeError(f"the memory measurement process failed (exit {done.returncode}):\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


def _memory(bench: _Bench) -> list[dict[str, Any]]:
    """Activation memory at each crop and depth, ordinary and memory-saving."""
    measure = training_step_memory if bench.device.type == "cuda" else _memory_in_fresh_process
    rows = []
    for crop in bench.crops:
        for blocks in bench.depths:
            row: dict[str, Any] = {"crop": crop, "pairs": bench.train_batch, "blocks": blocks}
            for saving in (False, True):
                mib = measure(blocks, crop, bench.train_batch, saving, bench.device, bench.torch_dtype)
                row["memory_saving_mib" if saving else "ordinary_mib"] = mib
            row["ratio"] = row["memory_saving_mib"] / max(row["ordinary_mib"], 1e-9)
            rows.append(row)
    where = "CUDA max_memory_allocated" if bench.device.type == "cuda" else "peak RSS of a fresh process, VmHWM"
    bench.log(f"\nactivation memory of a training step, MiB ({where}, minus weights, gradients and inputs):")
    bench.log(_table(rows, [("crop", "crop", "d"), ("pairs", "pairs", "d"), ("blocks", "blocks", "d"),
                            ("ordinary_mib", "ordinary MiB", ".1f"), ("memory_saving_mib", "memory_saving MiB", ".1f"),
                            ("ratio", "ratio", ".3f")]))  # fmt: skip
    return rows


def _autocast(bench: _Bench) -> list[dict[str, Any]]:
    """Round-trip error and stego difference under autocast, against float32."""
    model = _model(bench.blocks, bench.device, torch.float32).eval()
    cover, secret = torch.rand(2, 1, 3, 128, 128, generator=torch.Generator().manual_seed(0)).to(bench.device)
    rows = []
    with torch.inference_mode():
        reference, _ = model.hide(cover, secret, **public_key(model))
        for name in bench.autocast:
            with torch.autocast(bench.device.type, dtype=getattr(torch, name)):
                stego, lost = model.hide(cover, secret, **public_key(model))
                recovered = model.reveal(stego, z=lost, **public_key(model))
            rows.append({"dtype": name, "round_trip_max_abs_error": (recovered.float() - secret).abs().max().item(),
                         "stego_vs_float32_max_abs": (stego.float() - reference).abs().max().item()})  # fmt: skip
    bench.log(f"\nautocast on {bench.device.type}, {bench.blocks} blocks, 128x128: reveal(hide(x), z=lost) against x")
    bench.log(_table(rows, [("dtype", "dtype", ""), ("round_trip_max_abs_error", "round-trip max |err|", ".2e"),
                            ("stego_vs_float32_max_abs", "stego vs float32 max |diff|", ".2e")]))  # fmt: skip
    return rows


_PART_FUNCTIONS: dict[str, Callable[[_Bench], list[dict[str, Any]]]] = {
    "inference": _inference,
    "training": _training,
    "memory": _memory,
    "autocast": _autocast,
}


def _measure(bench: _Bench) -> dict[str, Any]:
    """Every part not skipped, in the order of :data:`PARTS`, after the line naming the machine."""
    if bench.threads is not None:
        torch.set_num_threads(bench.threads)
    results: dict[str, Any] = {"machine": machine(bench.device), "dtype": bench.dtype, "blocks": bench.blocks}
    bench.log(f"machine: {results['machine']}; dtype {bench.dtype}")
    for part in PARTS:
        if part not in bench.skip and (part != "autocast" or bench.autocast):
            results[part] = _PART_FUNCTIONS[part](bench)
    if bench.json_path is not None:
        with atomic_write(bench.json_path, "w") as file:
            json.dump(results, file, indent=2)
    return results


def run(
    *,
    sizes: Sequence[int] = (256, 1024),
    blocks: int = 16,
    batch: int = 1,
    train_crop: int = 128,
    train_batch: int = 4,
    depths: Sequence[int] = (4, 8, 16),
    crops: Sequence[int] = (64, 128),
    repeat: int = 3,
    dtype: str = "float32",
    threads: int | None = None,
    compile_subnets: bool = False,
    autocast: Sequence[str] = ("bfloat16",),
    skip: Sequence[str] = (),
    device: str | torch.device | None = None,
    json_path: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmarks, print their tables through ``log`` and return the figures.

    Args:
        sizes: inference image sides (even).
        blocks: coupling blocks of the HiNet timed for speed.
        batch: images per inference call.
        train_crop: training crop side (even).
        train_batch: pairs per training step (speed and memory).
        depths: numbers of blocks for the memory figures.
        crops: crop sides for the memory figures (even).
        repeat: timed calls per figure (the median; training steps are timed ``max(1, repeat // 2)`` times).
        dtype: one of :data:`DTYPES`.
        threads: ``torch.set_num_threads`` for this process (``None``: torch's choice).
        compile_subnets: ``torch.compile`` the subnets for the inference figures.
        autocast: autocast dtypes (of :data:`AUTOCAST_DTYPES`) whose round-trip error to report; empty for none.
        skip: parts of :data:`PARTS` not to run.
        device: where to run (default: CUDA when available, else the CPU).
        json_path: also write the figures to this JSON file (its folder must exist).
        log: receives each printed line.

    Returns:
        ``{"machine", "dtype", "blocks"}`` and one list of rows (dicts) per part that ran.

    Raises:
        invhide.errors.InputError: a bad value (named), e.g. ``repeat=0``, an odd size, an unknown
            part or a device this machine lacks; checked before anything runs.
        invhide.errors.InputTypeError: an argument of the wrong type.
        invhide.errors.MissingPathError: the folder of ``json_path`` does not exist.

    Example:
        >>> results = run(sizes=(16,), blocks=1, repeat=1, skip=("training", "memory", "autocast"), log=lambda _: None)
        >>> sorted(results), [row["layout"] for row in results["inference"]]
        (['blocks', 'dtype', 'inference', 'machine'], ['NCHW', 'channels-last'])
    """
    return _measure(_Bench(**locals()))  # every argument by name: nothing else is defined yet
