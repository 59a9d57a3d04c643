"""Failing closed, by fault injection on real footage: an engine that stalls, raises or returns NaN
never lets the room show where the matte of the frame itself says background.

The footage is a real person signing in a real office (``tests/data/signing_320x240.mkv``). Each
frame's own matte comes from the real network run over the clip in order; the live runs then play
the clip like a camera (smooth sync: every frame goes out with the newest matte) with a magenta
background, and the network is made to fail after a few frames.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from app.capture.base import Frame
from app.compose.privacy import Cover, PrivacyGuard
from app.matting.engine import MattingEngine, build_engine
from app.pipeline import Pipeline
from app.settings import Background, Settings

CLIP = Path(__file__).parent / "data" / "signing_320x240.mkv"
MAGENTA = np.array([255, 0, 255])
HEALTHY_FRAMES = 6  # mattes before the fault (after the warm-up steps of the first frame)
LEAK_LIMIT = 0.03  # the share of the room that may show in any frame (a matte up to 0.5 s old)


def fingerprint(image: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(image[::7, ::5]).tobytes())


@pytest.fixture(scope="module")
def own_mattes() -> dict[int, np.ndarray]:
    """Each frame's own matte (uint8), keyed by the frame's fingerprint."""
    engine = build_engine(device="cpu")
    mattes = {}
    with av.open(str(CLIP)) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="rgb24")
            pha = engine.step(image).pha[0, 0]
            mattes[fingerprint(image)] = (pha * 255).round().to(torch.uint8).numpy()
    return mattes


def leak(packet: object, mattes: dict[int, np.ndarray]) -> float | None:
    """The share of the room (where the frame's own matte says background, 4 px away from the
    person) that shows the camera's pixels instead of the magenta background."""
    own = mattes.get(fingerprint(packet.source))
    if own is None:
        return None
    room = cv2.dilate((own > 25).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    src = packet.source.astype(np.int16)
    distinct = room & (np.abs(src - MAGENTA).max(-1) > 40)
    shown = distinct & (np.abs(packet.composite[..., :3].astype(np.int16) - src).max(-1) <= 10)
    return float(shown.sum()) / max(int(distinct.sum()), 1)


def faulty(kind: str) -> Callable[[Settings], MattingEngine]:
    """An engine factory: the real network, which stalls, raises or returns NaN after a while."""

    def factory(settings: Settings) -> MattingEngine:
        engine = build_engine(device="cpu")
        runner, calls = engine.runner, []

        def run(src, rec, ratio):
            calls.append(1)
            if len(calls) > engine.warmup + HEALTHY_FRAMES:
                if kind == "stall":
                    time.sleep(1.2)
                elif kind == "raise":
                    raise RuntimeError("CUDA error: an illegal memory access was encountered")
                elif kind == "nan":
                    fgr, pha, rec = runner(src, rec, ratio)
                    return fgr, torch.full_like(pha, float("nan")), rec
            return runner(src, rec, ratio)

        engine.runner = run
        return engine

    return factory


def live_run(kind: str, sync: str = "smooth") -> tuple[list, list]:
    settings = Settings(
        source=str(CLIP),
        pace="realtime",
        fps=15,
        sync=sync,
        hold_fps=False,
        background=Background.parse("color:#ff00ff"),
        device="cpu",
    )
    packets, events = [], []
    pipeline = Pipeline(
        settings, on_frame=packets.append, on_event=events.append, engine_factory=faulty(kind)
    )
    pipeline.start()
    try:
        assert pipeline.wait(120), "the clip did not end"
    finally:
        pipeline.stop()
    return packets, events


@pytest.mark.parametrize(
    ("kind", "sync"),
    [("stall", "smooth"), ("raise", "smooth"), ("nan", "smooth"), ("raise", "aligned")],
)
def test_a_failing_engine_never_shows_the_room(own_mattes, kind: str, sync: str) -> None:
    packets, events = live_run(kind, sync)
    assert len(packets) > 20
    leaks = [v for p in packets if (v := leak(p, own_mattes)) is not None]
    assert len(leaks) > 0.8 * len(packets)
    assert max(leaks) <= LEAK_LIMIT, f"worst frame shows {100 * max(leaks):.1f} % of the room"
    covered = [p for p in packets if not p.alpha.any()]
    assert covered, "frames went out as the background alone"
    # The background alone is the background: magenta where the room was.
    last = covered[-1].composite.reshape(-1, 3).astype(int)
    assert (np.abs(last - MAGENTA).max(-1) <= 2).mean() > 0.99
    warnings = [e.message for e in events if e.kind == "warning"]
    assert any("only the background goes out" in m for m in warnings), warnings


def test_without_faults_only_late_mattes_are_held_back(own_mattes, monkeypatch) -> None:
    # However slow this machine is, a run whose mattes are never too old covers no frame: nothing
    # but a matte's age, a failure or a new picture hides the person.
    monkeypatch.setattr("app.compose.privacy.MATTE_AGE_LIMIT_S", 60.0)
    packets, events = live_run("none")
    assert all(p.alpha.any() for p in packets)
    assert not [e.message for e in events if e.kind in ("error", "warning")]


def frame(t: float, shape: tuple[int, int] = (4, 4)) -> Frame:
    return Frame(np.zeros((*shape, 3), np.uint8), 0, t)


def test_the_guard_covers_stale_failed_new_and_resized() -> None:
    guard = PrivacyGuard(limit_s=0.5)
    assert guard.check(frame(1.2), frame(1.0)).cover is None
    stale = guard.check(frame(1.6), frame(1.0))
    assert stale.cover is Cover.STALE and "0.6 s behind" in stale.news
    assert guard.check(frame(1.7), frame(1.0)).news == ""  # said once
    assert guard.check(frame(1.8), frame(1.7)).cover is None
    assert guard.check(frame(2.4), frame(1.8)).news == ""  # not again within 15 s
    guard.matting_failed()
    failed = guard.check(frame(1.9), frame(1.8))
    assert failed.cover is Cover.FAILED and "failing" in failed.news
    guard.matting_worked()
    assert "works again" in guard.check(frame(1.95), frame(1.9)).news
    guard.new_source(2.0)
    assert guard.check(frame(2.1), frame(1.95)).cover is Cover.NEW_SOURCE
    assert guard.check(frame(2.2), frame(2.1)).cover is None
    assert guard.check(frame(2.3, (4, 6)), frame(2.2)).cover is Cover.RESIZED
    assert guard.covered == 6
