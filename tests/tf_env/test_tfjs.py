"""TensorFlow.js export: the converted model run by TF.js in Node (WASM and CPU backends).

The Node packages come from ``web/package-lock.json`` (``make web-deps``); the runner is
``web/test/run_model.mjs``. The reference is our PyTorch network on the same frames.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.tf_env.conftest import RATIOS, SIZES

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
FP32_MAX = 5e-4
FP16_PHA_MAX = 1e-2
# 8-bit 1x1 kernels: measured max 0.14, mean 2.0e-3 on pha (256x144, ratio 0.25).
INT8_PHA_MAX, INT8_PHA_MEAN = 0.2, 3e-3


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` binary, with web/'s packages installed."""
    missing = []
    if shutil.which("node") is None:
        missing.append("Node.js (apt-get install nodejs npm)")
    if not (WEB / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        missing.append("web/'s packages (make web-deps)")
    if missing:
        message = f"The TF.js tests need {' and '.join(missing)}."
        if os.environ.get("MATTECAM_TF_ENV") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return shutil.which("node") or "node"


def run_tfjs(node: str, model: Path, backend: str, runs: list[dict], folder: Path) -> list:
    """Runs the model over each run's frames; returns per run (phas, fgrs, ms, state shapes)."""
    job_runs = []
    for i, run in enumerate(runs):
        frames = run["frames"]
        frames.astype(np.float32).tofile(folder / f"in{i}.f32")
        n, h, w, _ = frames.shape
        job_runs.append(
            {
                "frames": n,
                "height": h,
                "width": w,
                "ratio": run["ratio"],
                "input": str(folder / f"in{i}.f32"),
                "output": str(folder / f"out{i}.f32"),
            }
        )
    job = folder / "job.json"
    job.write_text(json.dumps({"model": str(model), "backend": backend, "runs": job_runs}))
    proc = subprocess.run(
        [node, str(WEB / "test" / "run_model.mjs"), str(job)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["backend"] == backend
    results = []
    for spec, got in zip(job_runs, report["runs"], strict=True):
        n, h, w = spec["frames"], spec["height"], spec["width"]
        out = np.fromfile(spec["output"], np.float32).reshape(n, -1)
        phas = out[:, : h * w].reshape(n, h, w, 1)
        fgrs = out[:, h * w :].reshape(n, h, w, 3)
        results.append((phas, fgrs, got["ms"], got["state"]))
    return results


def _check(name: str, got: tuple, want: tuple) -> tuple[float, float, float]:
    phas, fgrs, ms, _ = got
    _, want_fgrs, want_phas = want
    d_pha = np.abs(phas - np.stack(want_phas))
    d_fgr = float(np.abs(fgrs - np.stack(want_fgrs)).max())
    print(
        f"{name}: pha max {d_pha.max():.1e} mean {d_pha.mean():.1e}, fgr max {d_fgr:.1e}, "
        f"{np.median(ms):.0f} ms/frame"
    )
    assert float(np.mean(want_phas[-1])) > 0.1, "the clip must give the network a person"
    return float(d_pha.max()), float(d_pha.mean()), d_fgr


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_wasm_matches_network(tf_exports, reference, node, precision: str, tmp_path) -> None:
    """6 recurrent frames from scalar zero states, two sizes, runtime ratios 0.25 and 0.375."""
    cases = [(size, ratio) for size in SIZES for ratio in RATIOS]
    runs = [{"frames": reference(s, r)[0], "ratio": r} for s, r in cases]
    model = tf_exports("tfjs", precision)
    results = run_tfjs(node, model, "wasm", runs, tmp_path)
    for (size, ratio), got in zip(cases, results, strict=True):
        name = f"tfjs {precision} wasm {size[1]}x{size[0]}@{ratio}"
        d_pha, _, d_fgr = _check(name, got, reference(size, ratio))
        if precision == "fp32":
            assert max(d_pha, d_fgr) <= FP32_MAX
        else:
            assert d_pha <= FP16_PHA_MAX
        sm = (int(size[0] * ratio), int(size[1] * ratio))
        assert got[3] == [
            [1, -(-sm[0] // 2**i), -(-sm[1] // 2**i), c]
            for i, c in zip(range(1, 5), (16, 20, 40, 64), strict=True)
        ]


def test_cpu_backend_and_int8(tf_exports, reference, node, tmp_path) -> None:
    """The pure-JavaScript CPU backend (fp32), and the 8-bit weights on WASM, 5 frames."""
    size, ratio = SIZES[0], 0.25
    want = reference(size, ratio)
    frames = want[0][:5]
    trimmed = (frames, want[1][:5], want[2][:5])
    (got,) = run_tfjs(
        node, tf_exports("tfjs", "fp32"), "cpu", [{"frames": frames, "ratio": ratio}], tmp_path
    )
    d_pha, _, d_fgr = _check("tfjs fp32 cpu 256x144@0.25", got, trimmed)
    assert max(d_pha, d_fgr) <= FP32_MAX
    (got,) = run_tfjs(
        node, tf_exports("tfjs", "int8"), "wasm", [{"frames": frames, "ratio": ratio}], tmp_path
    )
    d_pha, mean_pha, _ = _check("tfjs int8 wasm 256x144@0.25", got, trimmed)
    assert d_pha <= INT8_PHA_MAX and mean_pha <= INT8_PHA_MEAN


def test_folders_sizes_and_ops(tf_exports) -> None:
    """model.json and shards; fp16 and int8 shrink the weights; no op TF.js lacks."""
    sizes = {}
    for precision in ("fp32", "fp16", "int8"):
        folder = tf_exports("tfjs", precision)
        model = json.loads((folder / "model.json").read_text())
        shards = [p for g in model["weightsManifest"] for p in g["paths"]]
        assert sorted(p.name for p in folder.iterdir()) == sorted(["model.json", *shards])
        sizes[precision] = sum(p.stat().st_size for p in folder.iterdir())
        assert sorted(model["signature"]["outputs"]) == sorted(
            ["fgr", "pha", "r1o", "r2o", "r3o", "r4o"]
        )
        ops = {n["op"] for n in model["modelTopology"]["node"]}
        assert not ops & {"Assert", "EnsureShape", "SpaceToBatchND"}
        dtypes = {
            w.get("quantization", {}).get("dtype")
            for g in model["weightsManifest"]
            for w in g["weights"]
        }
        assert (
            dtypes
            == {"fp32": {None}, "fp16": {None, "float16"}, "int8": {None, "float16", "uint8"}}[
                precision
            ]
        )
    print(f"tfjs sizes: {sizes}")
    assert 14e6 < sizes["fp32"] < 16e6
    assert sizes["fp16"] < 0.55 * sizes["fp32"] and sizes["int8"] < 0.35 * sizes["fp32"]
