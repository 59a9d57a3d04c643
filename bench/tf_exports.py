"""The TensorFlow exports' speed on the CPU beside our PyTorch network (ms per frame, fp32).

Run in the TensorFlow environment: ``.venv-tf/bin/python -m bench tf_exports`` (elsewhere the
rows say what is missing). At each size, one recurrent run per runner over the same generated
frames: the PyTorch network (eager), the SavedModel through ``tf.saved_model.load``, and the TF.js
export in Node on the WebAssembly backend (``web/test/run_model.mjs``). The first frames of each
run are left out (warm-up); the median of the rest is reported. The exports are made once, into a
temporary folder. Every runner gets one thread (TF.js's WebAssembly backend has one in Node), so
the comparison holds on a machine shared with other work, where multi-threaded runs degrade
unevenly (PyTorch's OpenMP threads suffer most).
"""

from __future__ import annotations

import importlib.util
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from app.capture.synthetic import make_clip
from bench.common import Row, Section, load_average, table

SIZES = ((640, 360, 0.75), (1280, 720, 0.375), (1920, 1080, 0.25))
ROOT = Path(__file__).resolve().parent.parent


def _torch_times(frames: np.ndarray, ratio: float, warmup: int) -> list[float]:
    from app.matting.factory import create_model

    model = create_model("mobilenetv3")
    rec: list = [None] * 4
    times = []
    with torch.inference_mode():
        for frame in frames:
            src = torch.from_numpy(frame).permute(2, 0, 1)[None]
            start = time.perf_counter()
            _, _, *rec = model(src, *rec, ratio)
            times.append((time.perf_counter() - start) * 1000)
    return times[warmup:]


def _savedmodel_times(folder: Path, frames: np.ndarray, ratio: float, warmup: int) -> list[float]:
    import tensorflow as tf

    model = tf.saved_model.load(str(folder))
    rec = [tf.constant(0.0)] * 4
    times = []
    for frame in frames:
        src = tf.constant(frame[None])
        start = time.perf_counter()
        out = model([src, *rec, tf.constant(ratio)])
        rec = [out[f"r{i}o"] for i in range(1, 5)]
        out["pha"].numpy()
        times.append((time.perf_counter() - start) * 1000)
    return times[warmup:]


def _tfjs_times(folder: Path, frames: np.ndarray, ratio: float, warmup: int, tmp: Path) -> list:
    from tests.tf_env.test_tfjs import run_tfjs

    ((_, _, ms, _),) = run_tfjs(
        shutil.which("node") or "node", folder, "wasm", [{"frames": frames, "ratio": ratio}], tmp
    )
    return ms[warmup:]


def run(quick: bool = False) -> Section:
    """Measures each size and returns the section for the results."""
    section = Section("tf_exports", "TensorFlow exports on the CPU against PyTorch (ms per frame)")
    missing = [m for m in ("tensorflow", "tensorflowjs") if importlib.util.find_spec(m) is None]
    if missing:
        section.rows.append(
            Row("all sizes", f"not measured: {', '.join(missing)} missing (run in .venv-tf)")
        )
        return section
    import tensorflow as tf

    from app.matting import export_tf
    from app.matting.factory import create_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    frames_per_run, warmup = (5, 2) if quick else (12, 4)
    load_before = load_average()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = create_model("mobilenetv3")
        export_tf.export_savedmodel(model, folder / "saved")
        export_tf.export_tfjs(model, folder / "tfjs")
        node_ok = (ROOT / "web" / "node_modules" / "@tensorflow" / "tfjs").is_dir()
        for width, height, ratio in SIZES:
            frames = make_clip(frames_per_run, height, width, seed=7).astype(np.float32) / 255
            eager = statistics.median(_torch_times(frames, ratio, warmup))
            saved = statistics.median(_savedmodel_times(folder / "saved", frames, ratio, warmup))
            label = f"{width}x{height}@{ratio}"
            if node_ok:
                tfjs = statistics.median(
                    _tfjs_times(folder / "tfjs", frames, ratio, warmup, folder)
                )
                tfjs_cell = f"{tfjs:.0f} ({tfjs / eager:.2f}x)"
            else:
                tfjs_cell = "not measured: make web-deps"
            rows.append([label, f"{eager:.0f}", f"{saved:.0f} ({saved / eager:.2f}x)", tfjs_cell])
            section.rows.append(Row(f"SavedModel {label}", f"{saved:.0f} ms"))
    torch.set_num_threads(threads)
    section.details.append(
        table(["size@ratio", "PyTorch eager", "SavedModel (x eager)", "TF.js WASM, Node"], rows)
    )
    section.notes.append(
        f"one thread each; {frames_per_run} frames a run, the first {warmup} left out; "
        f"load {load_before} before, {load_average()} after"
    )
    return section
