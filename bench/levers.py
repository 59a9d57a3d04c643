"""The CPU levers of the fast path, each measured against the others in one run.

Every configuration runs the same frames at 1280x720@0.375 (fp32 unless named), interleaved in
rounds with a rotating order so that other work on the machine slows all of them alike. The table
gives the median step time, the speed-up over the network as loaded, and the largest difference
of ``pha`` from the eager fp32 network over the same recurrent frames. ``bench/RESULTS.md`` keeps
the prediction made before each lever and whether it was kept.

Run ``python -m bench levers [--quick]``.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import time
from collections.abc import Callable, Iterator

import torch
from torch.nn import functional as F

from app.capture.synthetic import SyntheticSource
from app.matting import fast, tuning
from app.matting.engine import torch_runner
from app.matting.factory import create_model
from app.matting.fast import FastRunner
from app.matting.tuning import tune_allocator
from bench.common import Section, load_average, median, table

WIDTH, HEIGHT, RATIO = 1280, 720, 0.375
Step = Callable[[torch.Tensor, list, float], tuple]


def _torch_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


@contextlib.contextmanager
def _patched(module: object, name: str, value: object) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def _glibc_defaults() -> contextlib.AbstractContextManager:
    """glibc's own mmap and trim thresholds for the duration of one step."""

    @contextlib.contextmanager
    def scope() -> Iterator[None]:
        libc = ctypes.CDLL(None)
        libc.mallopt(tuning.M_MMAP_THRESHOLD, 128 * 1024)
        libc.mallopt(tuning.M_TRIM_THRESHOLD, 128 * 1024)
        try:
            yield
        finally:
            libc.mallopt(tuning.M_MMAP_THRESHOLD, 1 << 30)
            libc.mallopt(tuning.M_TRIM_THRESHOLD, 1 << 30)

    return scope()


def _wrap(step: Step, scope: Callable[[], contextlib.AbstractContextManager], threads: int) -> Step:
    def run(src: torch.Tensor, rec: list, ratio: float) -> tuple:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        with scope(), torch.inference_mode():
            return step(src, rec, ratio)

    return run


def person_frames(count: int) -> list[torch.Tensor]:
    """Frames of the synthetic camera: a person in a room, so the matte has edges to compare."""
    with SyntheticSource(resolution=(WIDTH, HEIGHT), pace="none") as source:
        images = [source.read() for _ in range(count)]
    return [torch.from_numpy(i).permute(2, 0, 1).unsqueeze(0).float().div(255) for i in images]


def configurations(threads: int) -> dict[str, Step]:
    """Each lever on top of the previous ones, plus the alternatives that were tried."""
    net = create_model("mobilenetv3")
    plain = contextlib.nullcontext
    eager_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)

    def eager_channels_last(src: torch.Tensor, rec: list, ratio: float) -> tuple:
        fgr, pha, *rec = eager_cl(src.contiguous(memory_format=torch.channels_last), *rec, ratio)
        return fgr, pha, rec

    scripted = torch.jit.freeze(torch.jit.script(copy.deepcopy(net)))
    bf16 = copy.deepcopy(net).to(torch.bfloat16)
    bf16_step = torch_runner(bf16)

    def eager_bf16(src: torch.Tensor, rec: list, ratio: float) -> tuple:
        fgr, pha, rec = bf16_step(src.to(torch.bfloat16), rec, ratio)
        return fgr.float(), pha.float(), rec

    def torch_resize() -> contextlib.AbstractContextManager:
        return _patched(fast, "upsample_bilinear", _torch_resize)

    fold_only = FastRunner(net, threads=threads, channels_last=False, fuse=False)
    with_cl = FastRunner(net, threads=threads, channels_last=True, fuse=False)
    ours = FastRunner(net, threads=threads)
    ours_1 = FastRunner(net, threads=1)
    return {
        "eager, as loaded": _wrap(torch_runner(net), plain, threads),
        "eager, channels-last": _wrap(eager_channels_last, plain, threads),
        "eager, TorchScript frozen": _wrap(torch_runner(scripted), plain, threads),
        "eager, bf16 weights and input": _wrap(eager_bf16, plain, threads),
        "folded BN + fused guided filter (PyTorch resize)": _wrap(fold_only, torch_resize, threads),
        "folded BN + fused guided filter": _wrap(fold_only, plain, threads),
        "+ channels-last": _wrap(with_cl, plain, threads),
        "+ fused activations (ours)": _wrap(ours, plain, threads),
        "ours, glibc allocator defaults": _wrap(ours, _glibc_defaults, threads),
        "ours, 1 thread": _wrap(ours_1, plain, 1),
    }


def run(quick: bool = False) -> Section:
    """Measures every lever interleaved and returns the section for the results."""
    rounds, per_round, warmup = (3, 2, 3) if quick else (6, 4, 5)
    load_before = load_average()
    threads = torch.get_num_threads()
    tune_allocator()
    steps = configurations(threads)
    frames = person_frames(6)
    # The reference: the eager fp32 network over the same recurrent frames.
    ref_step = steps["eager, as loaded"]
    state: list = [None] * 4
    reference = []
    for src in frames:
        _, pha, state = ref_step(src, state, RATIO)
        reference.append(pha)
    errors = {}
    for name, step in steps.items():
        state = [None] * 4
        worst = 0.0
        for src, ref in zip(frames, reference, strict=True):
            _, pha, state = step(src, state, RATIO)
            worst = max(worst, float((pha.float() - ref).abs().max()))
        errors[name] = worst
    times: dict[str, list[float]] = {name: [] for name in steps}
    states = {name: [None] * 4 for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            for i in range(warmup if r == 0 else 0):
                _, _, states[name] = steps[name](frames[i % len(frames)], states[name], RATIO)
            for i in range(per_round):
                start = time.perf_counter()
                _, _, states[name] = steps[name](frames[i % len(frames)], states[name], RATIO)
                times[name].append((time.perf_counter() - start) * 1000)
    base = median(times["eager, as loaded"])
    section = Section("levers", f"CPU levers at {WIDTH}x{HEIGHT}@{RATIO}, one step (ms)")
    section.details.append(
        table(
            ["configuration", "median ms", "min ms", "speed-up", "max |pha - eager fp32|"],
            [
                [
                    name,
                    f"{median(t):.1f}",
                    f"{min(t):.1f}",
                    f"{base / median(t):.2f}x",
                    f"{errors[name]:.1e}",
                ]
                for name, t in times.items()
            ],
        )
    )
    section.notes += [
        f"{threads} threads unless named; {rounds} rounds x {per_round} steps after {warmup} "
        "warm-up steps, order rotating each round",
        f"bf16 kernels on this CPU: {torch.backends.cpu.get_cpu_capability()}, "
        f"oneDNN bf16 support {torch.ops.mkldnn._is_mkldnn_bf16_supported()}",
        f"load average (1 min) before {load_before}, after {load_average()}",
    ]
    return section
