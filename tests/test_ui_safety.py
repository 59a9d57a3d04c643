"""The window under faults: a network that cannot run at the chosen size says so; a stop signal
finalises the recording."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from tests.fakes import make_settings

ROOT = Path(__file__).resolve().parent.parent


def test_a_ratio_too_small_for_the_frames_is_said_in_the_window(open_window, qtbot) -> None:
    window = open_window(
        make_settings(downsample_ratio=0.001),
        overrides={"source", "background", "device", "downsample_ratio"},
    )
    qtbot.waitUntil(lambda: window.banners.texts() != [], timeout=60_000)
    text = " ".join(window.banners.texts())
    assert "at least" in text and "leave it out" not in text
    assert "Waiting for the first frame" not in window.preview.message


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_finalises_the_window_recording(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "call.mp4"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MATTECAM_SETTINGS_DIR=str(tmp_path / "s"))
    proc = subprocess.Popen(
        [sys.executable, "main.py", "--source", "synthetic:160x120@15", "--device", "cpu"]
        + ["--background", "green", "--output", str(out)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not any(tmp_path.glob(".call.*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) > 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "a partial is left"
