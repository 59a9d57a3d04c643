"""One network step on the CPU: the eager PyTorch network, our fast path and ONNX Runtime.

Milliseconds per frame (median and p90 over many steps after warm-up, the recurrent state carried
from step to step) at 640x480@0.5, 1280x720@0.375 and 1920x1080@0.25. The runners take turns in
rounds, in a rotating order, so that other work on a shared machine slows all of them alike; the
speed ratio ours/ORT (ORT's time over ours: above 1 we are faster) is given per round, with its
spread.

Run ``python -m bench model_step [--quick]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from app.capture.synthetic import make_clip
from app.matting.engine import torch_runner
from app.matting.factory import create_model
from app.matting.weights import fetch_onnx
from bench.common import Row, Section, load_average, median, percentile, table

SIZES = ((640, 480, 0.5), (1280, 720, 0.375), (1920, 1080, 0.25))
GOAL_SIZES = ((1280, 720), (1920, 1080))
CLIP_FRAMES = 6

Step = Callable[[torch.Tensor, list, float], tuple]


def _eager(threads: int) -> Step:
    runner = torch_runner(create_model("mobilenetv3"))

    def step(src: torch.Tensor, rec: list, ratio: float) -> tuple:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)  # our runner may have changed it
        with torch.inference_mode():
            return runner(src, rec, ratio)

    return step


def runners() -> tuple[dict[str, Step], dict[str, object]]:
    """The three CPU runners, and the objects behind them (for their names and settings)."""
    from app.matting.fast import FastRunner
    from app.matting.ort_backend import OrtRunner

    threads = torch.get_num_threads()
    # As the app's engine builds it (the allocator tuned too).
    ours = FastRunner(create_model("mobilenetv3", fast=True), threads=threads)
    ort = OrtRunner(fetch_onnx(), device="cpu")
    steps = {"eager": _eager(threads), "ours": ours, "ort": ort}
    return steps, {"ours": ours, "ort": ort, "threads": threads}


def measure(
    steps: dict[str, Step],
    width: int,
    height: int,
    ratio: float,
    rounds: int,
    per_round: int,
    warmup: int,
) -> tuple[dict[str, list[float]], list[dict[str, float]]]:
    """Times every runner at one size, interleaved.

    Returns:
        All step times in ms per runner, and per round the median time of each runner.
    """
    clip = make_clip(CLIP_FRAMES, height, width, seed=7)
    frames = [
        torch.from_numpy(f).permute(2, 0, 1).unsqueeze(0).float().div(255).contiguous()
        for f in clip
    ]
    state: dict[str, list] = {name: [None] * 4 for name in steps}
    index = dict.fromkeys(steps, 0)

    def one(name: str) -> float:
        src = frames[index[name] % len(frames)]
        index[name] += 1
        start = time.perf_counter()
        _, _, state[name] = steps[name](src, state[name], ratio)
        return (time.perf_counter() - start) * 1000

    for name in steps:
        for _ in range(warmup):
            one(name)
    times: dict[str, list[float]] = {name: [] for name in steps}
    per_round_medians: list[dict[str, float]] = []
    names = list(steps)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        this_round: dict[str, float] = {}
        for name in order:
            ts = [one(name) for _ in range(per_round)]
            times[name] += ts
            this_round[name] = median(ts)
        per_round_medians.append(this_round)
    return times, per_round_medians


def _gpu_rows() -> list[Row]:
    reason = "not measured: no GPU available"
    if torch.cuda.is_available():
        reason = "not measured: GPU speed is out of this benchmark's scope"
    return [
        Row(f"GPU fp16 step {w}x{h}@{r}", reason, "", None)
        for w, h, r in SIZES
        if (w, h) != (640, 480)
    ]


def run(quick: bool = False) -> Section:
    """Measures all sizes and returns the section for the results."""
    rounds, per_round, warmup = (3, 3, 4) if quick else (8, 5, 8)
    load_before = load_average()
    steps, meta = runners()
    section = Section("model_step", "one network step on the CPU, fp32 (ms per frame)")
    detail_rows = []
    spread_rows = []
    for width, height, ratio in SIZES:
        times, rounds_med = measure(steps, width, height, ratio, rounds, per_round, warmup)
        ours, ort = median(times["ours"]), median(times["ort"])
        per_round_ratio = sorted(m["ort"] / m["ours"] for m in rounds_med)
        speed = ort / ours
        label = f"{width}x{height}@{ratio}"
        for name in steps:
            t = times[name]
            detail_rows.append(
                [
                    label,
                    name,
                    f"{median(t):.1f}",
                    f"{percentile(t, 90):.1f}",
                    f"{min(t):.1f}",
                    len(t),
                ]
            )
        spread_rows.append(
            [
                label,
                f"{speed:.2f}x",
                f"{per_round_ratio[0]:.2f}x",
                f"{median(per_round_ratio):.2f}x",
                f"{per_round_ratio[-1]:.2f}x",
                f"{median(times['eager']) / ours:.2f}x",
            ]
        )
        goal = (width, height) in GOAL_SIZES
        section.rows.append(
            Row(
                f"ours vs ONNX Runtime, {label}",
                f"{speed:.2f}x ({ours:.1f} vs {ort:.1f} ms; rounds {per_round_ratio[0]:.2f}"
                f"-{per_round_ratio[-1]:.2f}x)",
                ">= 1.0x" if goal else "",
                speed if goal else None,
            )
        )
    section.rows += _gpu_rows()
    section.details.append(
        table(["size", "runner", "median ms", "p90 ms", "min ms", "steps"], detail_rows)
    )
    section.details.append(
        table(
            [
                "size",
                "ORT/ours (all steps)",
                "rounds min",
                "rounds median",
                "rounds max",
                "eager/ours",
            ],
            spread_rows,
        )
    )
    ort = meta["ort"]
    section.notes += [
        f"ours = `FastRunner` (the engine's CPU fp32 runner) fixed at {meta['threads']} threads "
        "(the app lets it choose between 1 and all threads as the load changes)",
        f"eager = the network as loaded, {meta['threads']} intra-op threads; "
        f"ort = `OrtRunner` on the official ONNX ({', '.join(ort.providers)}), default threads",
        f"{rounds} rounds x {per_round} steps per runner per size after {warmup} warm-up steps; "
        "runner order rotates each round",
        f"load average (1 min) before {load_before}, after {load_average()} on "
        "a machine shared with other work",
    ]
    return section
