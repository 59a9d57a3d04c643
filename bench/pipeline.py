"""The whole live pipeline on the CPU: a 1280x720 camera at 30 fps to a virtual camera.

The source is the synthetic camera (``synthetic:1280x720@30``, frames drawn at 30 fps like a real
camera, so a slow stage drops frames), the background a blur, the sink a virtual camera whose
driver only counts what it gets. Each configuration warms up, then is measured for a fixed time:

- capture, matting and output fps over the measured window;
- latency from the camera read to the output (p50, p95), taken for every output frame;
- the age of the matte composited with each frame (smooth mode reuses the newest matte);
- the internal resolution the network ended at (``hold frame rate`` lowers it).

Run ``python -m bench pipeline [--quick]``.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from app.output.virtualcam import register_backend, unregister_backend
from app.pipeline import FramePacket, Pipeline
from app.settings import Background, Settings
from bench.common import Row, Section, load_average, percentile, table

SOURCE = "synthetic:1280x720@30"
CAMERA_FPS = 30.0
GOALS = {"output_fps": 0.95 * CAMERA_FPS, "matting_fps": 12.0, "latency_p95_ms": 150.0}
BACKEND = "bench-null"


class NullDriver:
    """A virtual-camera driver with pyvirtualcam's backend interface that only counts frames."""

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device, **kw) -> None:
        self.count = 0

    def send(self, frame: np.ndarray) -> None:
        self.count += 1

    def close(self) -> None:
        pass

    def device(self) -> str:
        return "null"

    def native_fourcc(self) -> int | None:
        return None


class _Probe:
    """Collects per-frame latencies and matte ages once measuring has begun."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.measuring = False
        self.latency: list[float] = []
        self.frames = 0

    def on_frame(self, packet: FramePacket) -> None:
        now = time.monotonic()
        with self.lock:
            if self.measuring:
                self.latency.append((now - packet.t_capture) * 1000)
                self.frames += 1


def measure(settings: Settings, warmup: float, seconds: float) -> dict[str, float | str]:
    """Runs one configuration and returns its numbers."""
    probe = _Probe()
    pipe = Pipeline(settings, on_frame=probe.on_frame, vcam_backend=BACKEND)
    pipe.start()
    try:
        time.sleep(warmup)
        first = pipe.stats()
        with probe.lock:
            probe.measuring = True
        start = time.monotonic()
        ages = []
        while time.monotonic() - start < seconds:
            time.sleep(0.5)
            ages.append(pipe.stats().matte_age_ms)
        with probe.lock:
            probe.measuring = False
        span = time.monotonic() - start
        last = pipe.stats()
    finally:
        pipe.stop()
    captured = last.frames_out + last.dropped_frames - first.frames_out - first.dropped_frames
    return {
        "capture_fps": captured / span,
        "matting_fps": (last.frames_matted - first.frames_matted) / span,
        "output_fps": probe.frames / span,
        "latency_p50_ms": percentile(probe.latency, 50),
        "latency_p95_ms": percentile(probe.latency, 95),
        "matte_age_ms": float(np.mean(ages)) if ages else float("nan"),
        "internal": last.internal_resolution,
        "backend": last.backend,
        "resets": last.state_resets - first.state_resets,
    }


def configurations() -> dict[str, Settings]:
    """The settings measured: the app's defaults (holding the frame rate), and RVM's own ratio."""
    base = Settings(
        source=SOURCE,
        background=Background.parse("blur"),
        device="cpu",
        virtual_cam=True,
        sync="smooth",
    ).validate()
    return {
        "smooth, hold frame rate (default)": base,
        "smooth, automatic ratio (no holding)": base.replace(hold_fps=False),
    }


def run(quick: bool = False) -> Section:
    """Measures every configuration and returns the section for the results."""
    warmup, seconds = (4.0, 8.0) if quick else (6.0, 20.0)
    load_before = load_average()
    register_backend(BACKEND, NullDriver)
    try:
        results = {name: measure(s, warmup, seconds) for name, s in configurations().items()}
    finally:
        unregister_backend(BACKEND)
    section = Section("pipeline", f"live pipeline on the CPU, {SOURCE} to a virtual camera")
    for name, r in results.items():
        section.rows += [
            Row(
                f"output fps ({name})",
                f"{r['output_fps']:.1f}",
                f">= {GOALS['output_fps']:g}",
                r["output_fps"] / GOALS["output_fps"],
            ),
            Row(
                f"matting fps ({name})",
                f"{r['matting_fps']:.1f}",
                f">= {GOALS['matting_fps']:g}",
                r["matting_fps"] / GOALS["matting_fps"],
            ),
            Row(
                f"latency p95 ({name})",
                f"{r['latency_p95_ms']:.0f} ms",
                f"<= {GOALS['latency_p95_ms']:g} ms",
                GOALS["latency_p95_ms"] / max(r["latency_p95_ms"], 1e-9),
            ),
        ]
    section.rows.append(
        Row("GPU 1920x1080@60, matting every frame", "not measured: no GPU available", "", None)
    )
    header = ["configuration", "capture fps", "matting fps", "output fps", "latency p50 ms"]
    header += ["latency p95 ms", "matte age ms", "internal", "backend", "resets"]
    section.details.append(
        table(
            header,
            [
                [
                    name,
                    f"{r['capture_fps']:.1f}",
                    f"{r['matting_fps']:.1f}",
                    f"{r['output_fps']:.1f}",
                    f"{r['latency_p50_ms']:.0f}",
                    f"{r['latency_p95_ms']:.0f}",
                    f"{r['matte_age_ms']:.0f}",
                    r["internal"],
                    r["backend"],
                    r["resets"],
                ]
                for name, r in results.items()
            ],
        )
    )
    section.notes += [
        f"{warmup:g} s warm-up then {seconds:g} s measured per configuration; background blur, "
        "smooth sync (every camera frame goes out with the newest matte)",
        "latency: camera read to output, every output frame; matte age: how much older the "
        "composited matte's frame is than the camera frame (mean of the live statistic)",
        f"load average (1 min) before {load_before}, after {load_average()}",
    ]
    return section
