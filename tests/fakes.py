"""Stand-ins for the system edges the tests replace, and small helpers shared by the tests.

The virtual-camera driver is the one edge the tests fake (behind pyvirtualcam's backend
interface); everything else is real. Fixtures that register these live in ``conftest.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from app.capture.synthetic import SyntheticSource
from app.matting.engine import MattingEngine
from app.media.video import write_video
from app.pipeline import Pipeline
from app.settings import Background, Settings

UI_SOURCE = "synthetic:320x240@15"


class FakeDriver:
    """Stands in for a virtual-camera driver (pyvirtualcam's backend interface); keeps frames."""

    instances: ClassVar[list[FakeDriver]] = []

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device, **kw) -> None:
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self.name = device or "/dev/fake0"
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.closed = False
        self.lock = threading.Lock()
        FakeDriver.instances.append(self)

    def send(self, frame: np.ndarray) -> None:
        assert frame.ndim == 1 and frame.dtype == np.uint8 and frame.flags.c_contiguous
        with self.lock:
            self.frames.append(frame.reshape(self.height, self.width, 3).copy())
            self.times.append(time.perf_counter())

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return self.name

    def native_fourcc(self) -> int | None:
        return None

    def snapshot(self) -> list[np.ndarray]:
        """The frames received so far."""
        with self.lock:
            return list(self.frames)

    def wait_until(self, condition, timeout: float = 10.0) -> list[np.ndarray]:
        """Waits until ``condition(frames so far)`` holds; returns those frames."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frames = self.snapshot()
            if condition(frames):
                return frames
            time.sleep(0.005)
        raise AssertionError(f"the driver never got what was expected ({len(frames)} frames)")

    def wait_for(self, count: int) -> list[np.ndarray]:
        """Waits until ``count`` frames have arrived; returns them."""
        return self.wait_until(lambda frames: len(frames) >= count)


class NoDriver:
    """A virtual camera backend whose driver is not installed: opening it fails."""

    def __init__(self, **kw: object) -> None:
        raise RuntimeError("v4l2loopback module is not loaded")


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Polls ``condition`` until it holds or ``timeout`` seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def make_settings(**changes: object) -> Settings:
    """Small, quick settings for window tests: a synthetic 320x240 camera at 15 fps on the CPU."""
    base = Settings(source=UI_SOURCE, background=Background(kind="blur"), device="cpu")
    return base.replace(**changes)


def to_tensor_batch(frame: np.ndarray) -> np.ndarray:
    """``HxWx3`` uint8 -> ``[1, 3, H, W]`` float32 in 0..1."""
    return np.ascontiguousarray(frame.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0


def flush_qt(rounds: int = 5) -> None:
    """Runs pending Qt events, including deferred deletions."""
    from PySide6.QtCore import QCoreApplication, QEvent

    for _ in range(rounds):
        QCoreApplication.processEvents()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def wait_frames(qtbot: object, window: object, count: int, timeout_ms: int = 60_000) -> None:
    """Waits until the window's preview has shown ``count`` more frames."""
    target = window.preview.frames_shown + count
    qtbot.waitUntil(lambda: window.preview.frames_shown >= target, timeout=timeout_ms)


def write_clip(path: Path, frames: np.ndarray | list[np.ndarray], fps: int = 24) -> Path:
    """Writes RGB frames as a near-lossless H.264 file (4:4:4, crf 4) and returns ``path``."""
    return write_video(path, frames, fps, crf=4, preset="ultrafast", pix_fmt="yuv444p")


def u8_tensor(array: np.ndarray) -> torch.Tensor:
    """``H x W x C`` uint8 -> ``[1, C, H, W]`` float in 0..1, exact multiples of 1/255."""
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def synthetic_video(path: Path, size: tuple[int, int], fps: int, frames: int) -> Path:
    """Writes ``frames`` frames of the synthetic scene at (width, height) as H.264."""
    source = SyntheticSource(resolution=size, fps=fps, pace="none")
    with source.open():
        return write_video(path, [source.read() for _ in range(frames)], fps)


def fake_engine(settings: Settings | None = None) -> MattingEngine:
    """The real engine around a stand-in network: alpha 1 where a pixel is brighter than mid-grey.

    For the pipeline's logic tests (switching, outputs, recording), which need a matte but not a
    good one; pass it as ``Pipeline(..., engine_factory=fake_engine)``.
    """
    del settings

    def run(src: torch.Tensor, rec: list, ratio: float) -> tuple[torch.Tensor, torch.Tensor, list]:
        return src, (src.mean(1, keepdim=True) > 0.5).to(src.dtype), rec

    return MattingEngine(run, torch.device("cpu"), torch.float32, name="fake")


def run_collect(settings: Settings, **kwargs: object) -> tuple[Pipeline, list, list]:
    """Runs a pipeline to its end; returns it, the frames it put out and its events."""
    packets, events = [], []
    pipeline = Pipeline(settings, on_frame=packets.append, on_event=events.append, **kwargs)
    pipeline.start()
    try:
        assert pipeline.wait(120), "the run did not finish"
    finally:
        pipeline.stop()
    return pipeline, packets, events
