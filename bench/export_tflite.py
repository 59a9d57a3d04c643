"""The TFLite export on the CPU: the LiteRT interpreter (XNNPACK) against the eager network.

The network is exported at 1280x720@0.375 (fp32; fp16 and int8 weights by the quantizer step of
the export) and each file runs in the LiteRT interpreter with as many threads as PyTorch uses.
Milliseconds per frame (median over rounds that take turns, so other work on a shared machine
slows all runners alike), file size, and the largest difference of ``pha`` from the network over
the frames.

Needs the export environment: ``.venv-export/bin/python -m bench export_tflite [--quick]``.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.capture.synthetic import make_frames
from app.matting.export_fixed import FixedShape
from bench.common import Row, Section, load_average, median, table

SHAPE = FixedShape(1280, 720, 0.375)
FRAMES = 6


def run(quick: bool = False) -> Section:
    """Exports, times every runner and returns the section for the results."""
    title = "the TFLite export in the LiteRT interpreter, 1280x720@0.375"
    section = Section("export_tflite", title)
    if importlib.util.find_spec("litert_torch") is None:
        section.rows.append(
            Row("TFLite step", "not measured: run it with .venv-export/bin/python (make test)")
        )
        return section
    from app.matting.export_tflite import _quantize, export_tflite
    from app.matting.factory import create_model

    load_before = load_average()
    model = create_model("mobilenetv3")
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        path = export_tflite(model, Path(tmp) / "rvm.tflite", "fp32", SHAPE)
        convert_s = time.monotonic() - start
        files = {"fp32": path.read_bytes()}
    for precision in ("fp16", "int8"):
        files[precision] = _quantize(files["fp32"], precision)
    frames = [
        torch.from_numpy(f).permute(2, 0, 1)[None].float().div(255).contiguous()
        for f in make_frames(FRAMES, SHAPE.height, SHAPE.width, seed=7)
    ]

    def runners() -> dict[str, Callable[[int], np.ndarray]]:
        return {
            "eager PyTorch": _eager_step(model, frames, SHAPE.ratio),
            **{f"TFLite {p}": _lite_step(b, frames, threads) for p, b in files.items()},
        }

    # Accuracy: one pass over the frames from a fresh state, against the eager network.
    phas = {name: [step(i) for i in range(FRAMES)] for name, step in runners().items()}
    steps = runners()
    rounds, per_round = (2, 3) if quick else (6, 5)
    times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            ts = []
            for k in range(per_round):
                start = time.perf_counter()
                steps[name]((r * per_round + k) % FRAMES)
                ts.append((time.perf_counter() - start) * 1000)
            times[name].append(median(ts))
    base = median(times["eager PyTorch"])
    rows = []
    for name in names:
        ms = median(times[name])
        precision = name.split()[-1]
        size = f"{len(files[precision]) / 1e6:.1f} MB" if name.startswith("TFLite") else ""
        pairs = zip(phas[name], phas["eager PyTorch"], strict=True)
        diff = max(float(np.abs(a - b).max()) for a, b in pairs)
        rows.append([name, f"{ms:.1f}", f"{base / ms:.2f}x", size, f"{diff:.1e}"])
        section.rows.append(Row(f"{name} step", f"{ms:.1f} ms", "", None))
    section.details.append(
        table(["runner", "ms/frame", "speed vs eager", "file", "max pha difference"], rows)
    )
    section.notes += [
        f"{threads} threads; conversion took {convert_s:.0f} s",
        f"load average {load_before} before, {load_average()} after",
    ]
    return section


def _eager_step(
    model: Any, frames: list[torch.Tensor], ratio: float
) -> Callable[[int], np.ndarray]:
    """One step of the eager network on frame ``i``, state carried; returns pha, channels last."""
    state: list[Any] = [None] * 4

    def step(i: int) -> np.ndarray:
        nonlocal state
        with torch.inference_mode():
            out = model(frames[i], *state, ratio)
        state = out[2:]
        return out[1].permute(0, 2, 3, 1).numpy()

    return step


def _lite_step(
    flatbuffer: bytes, frames: list[torch.Tensor], threads: int
) -> Callable[[int], np.ndarray]:
    """One step of the TFLite model on frame ``i`` in the LiteRT interpreter; returns pha."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
    runner = interpreter.get_signature_runner()
    inputs = runner.get_input_details()
    state = {k: np.zeros(v["shape"], np.float32) for k, v in inputs.items() if k != "src"}
    nhwc = [f.permute(0, 2, 3, 1).numpy() for f in frames]

    def step(i: int) -> np.ndarray:
        nonlocal state
        out = runner(src=nhwc[i], **state)
        state = {f"r{k}i": out[f"r{k}o"] for k in range(1, 5)}
        return out["pha"]

    step.interpreter = interpreter  # type: ignore[attr-defined]  # kept alive with the runner
    return step
