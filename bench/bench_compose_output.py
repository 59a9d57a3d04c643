"""Speed of compositing and of the outputs on this machine.

Run from the project root: ``python -m bench.bench_compose_output [--device cpu|cuda]``.
Prints one JSON object: milliseconds per composite for every background kind at 720p and 1080p,
the blur layer alone, recorder throughput (frames per second) and the virtual camera's ``send``
cost with a stand-in driver.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch

from app.compose import Compositor, make_background
from app.media.video import write_video
from app.output.recorder import Recorder
from app.output.virtualcam import VirtualCameraSink, register_backend, unregister_backend
from app.settings import Background

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}


def _median_ms(fn, repeats: int, sync) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def _write_assets(folder: Path) -> tuple[str, str]:
    image = folder / "bg.png"
    gradient = np.linspace(0, 255, 1600, dtype=np.uint8)
    cv2.imwrite(str(image), np.dstack([np.tile(gradient, (900, 1))] * 3))
    video = folder / "bg.mp4"
    write_video(video, [np.full((720, 1280, 3), i * 8, np.uint8) for i in range(30)], 30)
    return str(image), str(video)


def bench_compose(device: str, repeats: int, folder: Path) -> dict[str, dict[str, float]]:
    dtype = torch.float16 if device == "cuda" else torch.float32
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    compositor = Compositor(device, dtype)
    image, video = _write_assets(folder)
    specs = {
        "none": Background("none"),
        "blur": Background("blur"),
        "color": Background("color", color=(30, 144, 255)),
        "image": Background("image", path=image),
        "video": Background("video", path=video),
        "transparent": Background("transparent"),
    }
    results: dict[str, dict[str, float]] = {}
    for label, (height, width) in SIZES.items():
        gen = torch.Generator().manual_seed(0)
        src = torch.rand(1, 3, height, width, generator=gen).to(device, dtype)
        fgr = torch.rand(1, 3, height, width, generator=gen).to(device, dtype)
        pha = torch.rand(1, 1, height, width, generator=gen).to(device, dtype)
        row: dict[str, float] = {}
        for kind, bg in specs.items():
            with make_background(bg, device, dtype) as layer:
                row[kind] = _median_ms(
                    partial(compositor.compose, src, fgr, pha, layer), repeats, sync
                )
        blur = make_background(Background("blur"), device, dtype)
        row["blur_render_only"] = _median_ms(
            partial(blur.render, src, height, width, pha=pha), repeats, sync
        )
        host = np.zeros((height, width, 3), np.uint8)
        row["to_tensor"] = _median_ms(lambda host=host: compositor.to_tensor(host), repeats, sync)
        results[label] = row
    return results


def bench_recorder(folder: Path, frames: int) -> dict[str, float]:
    height, width = SIZES["720p"]
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    frame = cv2.resize(noise, (width, height), interpolation=cv2.INTER_LINEAR)
    out = {}
    for name, path in (("mp4_720p_fps", folder / "rec.mp4"), ("png_720p_fps", folder / "png")):
        start = time.perf_counter()
        with Recorder(path, width, height, 30.0) as recorder:
            for _ in range(frames):
                recorder.send(frame)
        out[name] = round(frames / (time.perf_counter() - start), 1)
    return out


class _NullDriver:
    def __init__(self, *, width, height, fps, fourcc, device, **kw) -> None:
        self.name = device or "null"

    def send(self, frame) -> None:
        pass

    def close(self) -> None:
        pass

    def device(self) -> str:
        return self.name

    def native_fourcc(self):
        return None


def bench_virtualcam(repeats: int) -> dict[str, float]:
    register_backend("bench-null", _NullDriver)
    frame = np.zeros((720, 1280, 3), np.uint8)
    try:
        with VirtualCameraSink(1280, 720, 30, backend="bench-null") as sink:
            start = time.perf_counter()
            for _ in range(repeats):
                sink.send(frame)
            per_send_us = (time.perf_counter() - start) / repeats * 1e6
    finally:
        unregister_backend("bench-null")
    return {"send_us": round(per_send_us, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--frames", type=int, default=60, help="frames per recording")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        report = {
            "device": args.device,
            "torch_threads": torch.get_num_threads(),
            "compose_ms": bench_compose(args.device, args.repeats, folder),
            "recorder": bench_recorder(folder, args.frames),
            "virtualcam": bench_virtualcam(10000),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
