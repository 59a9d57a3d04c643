"""The PipeWire camera at 1280x720@30: frames per second and latency as a reader sees them.

A private PipeWire session (as in the tests) carries the camera; a ``pipewiresrc`` reader, as any
PipeWire camera app, reads it back. Every frame carries its index as a row of black and white
squares, so each frame read is matched to the moment it was handed over. Two paths are timed:
the backend alone (``PipeWireCamera.send`` -> reader: conversion, pipe, GStreamer, PipeWire) and
the app's sink (``VirtualCameraSink.send`` -> reader, which adds the wait for the sink's next
tick at the camera's rate).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from pyvirtualcam.util import encode_fourcc

from app.output.pipewire import PipeWireCamera
from app.output.virtualcam import VirtualCameraSink
from bench.common import Row, Section, load_average, median, percentile, table
from tests.pipewire_stack import PROGRAMS, FrameReader, PipeWireStack

WIDTH, HEIGHT, FPS = 1280, 720, 30
BITS = 16  # index squares along the top row
SQUARE = WIDTH // BITS


def marked(index: int) -> np.ndarray:
    """A grey frame whose top row of squares spells ``index`` in binary."""
    frame = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    for bit in range(BITS):
        frame[:SQUARE, bit * SQUARE : (bit + 1) * SQUARE] = 255 if index >> bit & 1 else 0
    return frame


def read_index(i420: np.ndarray) -> int:
    """The index spelled by :func:`marked`, read from the squares' centres in the luma plane."""
    centres = i420[SQUARE // 2, SQUARE // 2 :: SQUARE][:BITS]
    return int(sum(1 << bit for bit, value in enumerate(centres) if value > 128))


def _measure(
    send: Callable[[np.ndarray], None], reader: FrameReader, seconds: float
) -> tuple[float, float, list[float]]:
    """Sends marked frames at :data:`FPS` for ``seconds``.

    Returns:
        Frames per second that reached the reader (repeats included), distinct frames per second
        among them, and the latency of each distinct frame (ms).
    """
    sent_at: dict[int, float] = {}
    start = time.perf_counter()
    index = 0
    while (now := time.perf_counter()) - start < seconds:
        index += 1
        sent_at[index] = time.perf_counter()
        send(marked(index))
        time.sleep(max(0.0, start + index / FPS - time.perf_counter()))
    time.sleep(0.5)
    got = [(t, i) for t, i in reader.frames if i in sent_at and sent_at[i] - start > 1.0]
    first: dict[int, float] = {}
    for t, i in got:
        first.setdefault(i, t)
    latencies = [(t - sent_at[i]) * 1000 for i, t in first.items()]
    span = now - start - 1.0
    arrivals = [t for t, _ in reader.frames if start + 1.0 < t <= now]
    return len(arrivals) / span, len(first) / span, latencies


@contextlib.contextmanager
def _session() -> Iterator[PipeWireStack]:
    """A private PipeWire session that this process publishes on while the block runs."""
    folder = Path(tempfile.mkdtemp(prefix="pw-", dir="/tmp"))
    stack = PipeWireStack(folder)
    keys = ("XDG_RUNTIME_DIR", "PIPEWIRE_RUNTIME_DIR")
    saved = {key: os.environ.get(key) for key in keys}
    try:
        stack.start()
        os.environ.update({key: stack.env[key] for key in keys})
        yield stack
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stack.close()
        shutil.rmtree(folder, ignore_errors=True)


def _backend_path(stack: PipeWireStack, seconds: float) -> tuple[float, float, list[float]]:
    camera = PipeWireCamera(
        width=WIDTH, height=HEIGHT, fps=FPS, fourcc=encode_fourcc("raw "), device=None
    )
    try:
        camera.send(marked(0).reshape(-1))
        stack.wait_for_node("mattecam")
        reader = stack.reader("mattecam", WIDTH, HEIGHT, keep=read_index)
        try:
            return _measure(lambda frame: camera.send(frame.reshape(-1)), reader, seconds)
        finally:
            reader.close()
    finally:
        camera.close()


def _sink_path(stack: PipeWireStack, seconds: float) -> tuple[float, float, list[float]]:
    with VirtualCameraSink(WIDTH, HEIGHT, FPS, backend="pipewire") as sink:
        stack.wait_for_node("mattecam")
        reader = stack.reader("mattecam", WIDTH, HEIGHT, keep=read_index)
        try:
            return _measure(sink.send, reader, seconds)
        finally:
            reader.close()


def run(quick: bool = False) -> Section:
    """Measures both paths on a private PipeWire session."""
    seconds = 6.0 if quick else 20.0
    load_before = load_average()
    title = f"the PipeWire camera read back at {WIDTH}x{HEIGHT}@{FPS}"
    missing = [program for program in PROGRAMS if shutil.which(program) is None]
    if missing:
        section = Section("pipewire_camera", title)
        section.rows.append(
            Row("frames/s and latency", f"not measured: {', '.join(missing)} missing")
        )
        return section
    with _session() as stack:
        results = {
            "PipeWireCamera.send": _backend_path(stack, seconds),
            "VirtualCameraSink.send": _sink_path(stack, seconds),
        }
    section = Section("pipewire_camera", title)
    rows = []
    for label, (fps, distinct, lat) in results.items():
        med, p95 = median(lat), percentile(lat, 95)
        rows.append(
            [f"{label} -> reader", f"{fps:.1f}", f"{distinct:.1f}", f"{med:.1f}", f"{p95:.1f}"]
        )
        goal_fps = 0.97 * FPS
        section.rows.append(
            Row(f"frames/s read, {label}", f"{fps:.1f}", f">= {goal_fps:.1f}", fps / goal_fps)
        )
        # The sink sends on its own tick at the camera's rate: up to one frame interval more.
        goal_ms = 1000 / FPS * (1 if label.startswith("PipeWire") else 1.5)
        section.rows.append(
            Row(
                f"median latency, {label}",
                f"{med:.1f} ms (p95 {p95:.1f})",
                f"<= {goal_ms:.0f} ms",
                goal_ms / max(med, 1e-3),
            )
        )
    header = ["path", "frames/s", "distinct frames/s", "median ms", "p95 ms"]
    section.details.append(table(header, rows))
    section.notes += [
        f"{seconds:g} s per path at {FPS} frames/s, the first second left out; the sink repeats "
        "its last frame on its own tick, so a frame sent just after another can be replaced before "
        "it goes out (distinct frames/s below 30); latency: a distinct frame's first arrival at "
        "a `pipewiresrc always-copy=true ! video/x-raw,format=I420 ! fdsink` reader minus its "
        "send() call",
        f"private dbus/pipewire/wireplumber session, PipeWire {_pipewire_version()}",
        f"load average (1 min) before {load_before}, after {load_average()} on a machine shared "
        "with other work",
    ]
    return section


def _pipewire_version() -> str:
    out = subprocess.run(["pipewire", "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip().splitlines()[-1].split()[-1] if out.stdout.strip() else "?"
