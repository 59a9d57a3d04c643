"""Rates in the statistics are right for any run length: a few frames, or frames seconds apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from app.stats import RateMeter


def test_a_slow_stream_has_its_rate_not_zero() -> None:
    meter = RateMeter(window=2.0)
    for t in (0.0, 3.0, 6.0, 9.0):  # one frame every 3 s: never two in the window
        meter.tick(t)
    assert meter.rate(now=9.0) == pytest.approx(1 / 3)
    assert meter.mean_rate() == pytest.approx(1 / 3)


def test_a_stall_lowers_the_live_rate_but_not_the_run_rate() -> None:
    meter = RateMeter(window=2.0)
    for i in range(10):
        meter.tick(i / 30)
    assert meter.rate(now=9 / 30) == pytest.approx(30, rel=0.01)
    assert meter.rate(now=10.0) < 0.11  # nothing for 10 s
    assert meter.mean_rate() == pytest.approx(30)


def test_before_two_events_there_is_no_rate() -> None:
    meter = RateMeter()
    assert meter.rate(now=1.0) == 0.0 and meter.mean_rate() == 0.0
    meter.tick(0.0)
    assert meter.rate(now=1.0) == 0.0 and meter.mean_rate() == 0.0


@pytest.mark.parametrize(
    ("spec", "pace", "frames", "low", "high"),
    [("synthetic:64x48@30", "none", 6, 0.1, 1000), ("synthetic:64x48@1", "realtime", 3, 0.5, 1.5)],
)
def test_short_and_slow_runs_write_their_rates(
    tmp_path: Path, spec: str, pace: str, frames: int, low: float, high: float
) -> None:
    stats = tmp_path / "s.json"
    argv = ["--headless", "--source", spec, "--pace", pace, "--max-frames", str(frames)]
    assert main([*argv, "--stats-json", str(stats)]) == 0
    data = json.loads(stats.read_text())
    assert data["frames_out"] == frames
    for key in ("capture_fps", "matting_fps", "output_fps"):
        assert low <= data[key] <= high, (key, data[key])
