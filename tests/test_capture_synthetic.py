"""The generated source and the real-time pacing rules it shares with file sources."""

from __future__ import annotations

import numpy as np
import pytest

from app.capture import SourceError, SyntheticSource, open_source
from app.capture.pacing import Pacer


class FakeClock:
    """A clock the test moves by hand; ``sleep`` advances it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pacer_waits_when_early_and_never_skips_on_time() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock, sleep=clock.sleep)
    assert [pacer.wait() for _ in range(5)] == [0, 0, 0, 0, 0]
    assert clock.slept == pytest.approx([0.1] * 4)
    assert clock.now == pytest.approx(100.4)


def test_pacer_skips_frames_whose_time_passed() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock, sleep=clock.sleep)
    assert pacer.wait() == 0  # frame 0 at t=0
    clock.now += 0.15  # frame 1 was due at 0.1: late by half a frame, no skip
    assert pacer.wait() == 0
    clock.now += 0.40  # t=0.55: frames 2..4 are past, frame 5 is current
    assert pacer.wait() == 3
    assert pacer.wait() == 0  # frame 6 is due at 0.6: wait for it
    assert clock.now == pytest.approx(100.6)


def test_pacer_limits_one_skip_and_forgives_the_rest() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, max_skip=5, clock=clock, sleep=clock.sleep)
    pacer.wait()
    clock.now += 3.0  # 30 frames behind
    assert pacer.wait() == 5
    assert pacer.wait() == 0  # the clock moved on: the reader is on time again
    assert clock.slept == pytest.approx([0.1])


def test_pacer_without_pace_never_waits() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, pace="none", clock=clock, sleep=clock.sleep)
    clock.now += 10
    assert [pacer.wait() for _ in range(3)] == [0, 0, 0]
    assert clock.slept == []


def test_synthetic_defaults_and_spec() -> None:
    with open_source("synthetic", pace="none") as source:
        assert (source.width, source.height, source.fps) == (640, 480, 30.0)
        assert source.read().shape == (480, 640, 3)
    with open_source("synthetic:320x240@15", pace="none") as source:
        assert (source.width, source.height, source.fps) == (320, 240, 15.0)
        assert source.name == "Synthetic 320x240@15"
        assert source.is_live is False
    with open_source("synthetic:320x240@15", resolution=(160, 96), fps=20) as source:
        assert (source.width, source.height, source.fps) == (160, 96, 20.0)
        assert source.read().shape == (96, 160, 3)


@pytest.mark.parametrize("spec", ["synthetic:big", "synthetic:10x10", "synthetic:64x64@0"])
def test_bad_synthetic_spec_raises(spec: str) -> None:
    with pytest.raises(SourceError):
        open_source(spec)


def test_frames_limit_ends_the_stream() -> None:
    with SyntheticSource(resolution=(64, 48), pace="none", frames=7) as source:
        assert source.frame_count == 7
        frames = [source.read() for _ in range(7)]
        assert source.read() is None
    assert all(f is not None and f.shape == (48, 64, 3) for f in frames)
    with pytest.raises(SourceError):
        SyntheticSource(frames=0)


def test_frames_are_deterministic_from_the_seed() -> None:
    def first_frames(seed: int) -> list[np.ndarray]:
        with SyntheticSource(resolution=(96, 64), pace="none", seed=seed) as source:
            return [source.read() for _ in range(3)]

    a, b, c = first_frames(1), first_frames(1), first_frames(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_figure_moves_over_a_colourful_textured_room() -> None:
    with SyntheticSource(resolution=(320, 240), pace="none") as source:
        frames = [source.read() for _ in range(31)]
        alpha0, alpha30 = source.alpha(0), source.alpha(30)
    assert alpha0.shape == (240, 320) and alpha0.dtype == np.uint8
    coverage = (alpha0 > 127).mean()
    assert 0.05 < coverage < 0.6
    assert not np.array_equal(alpha0, alpha30)  # the figure moved
    room = frames[0][alpha0 == 0]
    assert room.std(axis=0).min() > 20  # colour and texture in every channel
    assert len(np.unique(room.reshape(-1, 3), axis=0)) > 1000
    moved = np.abs(frames[0].astype(int) - frames[30].astype(int)).sum(axis=2) > 30
    assert moved.mean() > 0.02
