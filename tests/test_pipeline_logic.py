"""The pipeline's logic (live changes, outputs, a lost source) around a stand-in network, so it
runs in a fraction of the time; tests/test_pipeline.py runs the real network end to end."""

from __future__ import annotations

import time

import numpy as np

from app.capture import FrameSource, Requested, SourceLost, register_source
from app.pipeline import Pipeline
from app.settings import Background, Settings
from tests.fakes import FakeDriver, fake_engine, run_collect


def test_live_update_switches_background(no_leftover_threads) -> None:
    s = Settings(
        source="synthetic:192x108@30",
        pace="none",
        max_frames=30,
        background=Background.parse("color:#00ff00"),
    )
    packets: list = []
    pipeline = Pipeline(s, on_frame=packets.append, engine_factory=fake_engine)
    pipeline.start()
    while len(packets) < 5:
        time.sleep(0.02)
    pipeline.update(s.replace(background=Background.parse("color:#0000ff"), mirror=True))
    assert pipeline.wait(60)
    pipeline.stop()
    last = packets[-1]
    clear = last.alpha == 0  # mirrored along with the composite
    assert np.abs(last.composite[clear].astype(int) - [0, 0, 255]).max() <= 1


def test_virtual_camera_gets_the_composite(fake_driver) -> None:
    s = Settings(
        source="synthetic:160x120@30",
        max_frames=12,  # in real time, so the camera's own sending thread gets them
        virtual_cam=True,
        background=Background.parse("color:#ff0000"),
    )
    _, _, events = run_collect(s, vcam_backend="fake", engine_factory=fake_engine)
    driver = FakeDriver.instances[-1]
    assert driver.closed and (driver.width, driver.height) == (160, 120)
    assert any(e.kind == "info" and "/dev/fake0" in e.message for e in events)
    red = [f for f in driver.frames if (np.abs(f.astype(int) - [255, 0, 0]).max(-1) <= 1).any()]
    assert red and red[-1].shape == (120, 160, 3) and red[-1].dtype == np.uint8


def test_missing_driver_warns_and_keeps_running(no_leftover_threads) -> None:
    s = Settings(
        source="synthetic:160x120@30",
        pace="none",
        max_frames=4,
        virtual_cam=True,
        background=Background.parse("blur"),
    )
    pipeline, packets, events = run_collect(s, engine_factory=fake_engine)
    assert len(packets) == 4
    assert pipeline.stats().vcam == "unavailable"
    assert any(e.kind == "warning" and "v4l2loopback" in e.message for e in events)


class FlakyCamera(FrameSource):
    """Camera hardware stand-in: delivers, stops delivering for a while (unplugged), comes back."""

    is_live = True
    outage = (10, 13)  # reads that fail while unplugged

    def __init__(self) -> None:
        super().__init__()
        self._reads = 0

    @classmethod
    def from_spec(cls, target: str, request: Requested) -> FlakyCamera:
        return cls()

    @property
    def name(self) -> str:
        return "flaky camera"

    def _open(self) -> None:
        self._set_format((96, 64), 60.0)

    def _read(self) -> np.ndarray:
        self._reads += 1
        time.sleep(1 / 60)
        if self.outage[0] <= self._reads < self.outage[1]:
            raise SourceLost("camera unplugged")
        return np.full((64, 96, 3), self._reads % 255, np.uint8)

    def _close(self) -> None:
        pass


def test_source_that_dies_and_returns(no_leftover_threads) -> None:
    register_source("flaky")(FlakyCamera)
    s = Settings(source="flaky:x", max_frames=30, background=Background.parse("green"))
    _, packets, events = run_collect(s, engine_factory=fake_engine)
    assert len(packets) == 30
    assert any(e.kind == "warning" for e in events), "the outage is reported"
