"""Nothing lost: a recording never destroys its input or an earlier file, two runs never write one
file, a full disk keeps what was recorded, and unfinished files of earlier runs are reported."""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from app.media.destination import partial_name
from app.media.video import VideoWriter
from app.output.base import OutputError
from app.output.recorder import Recorder

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "tests" / "data" / "signing_320x240.mkv"


def mattecam(*args: str, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--headless", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )


def record(
    source: str, out: Path, *args: str, frames: int = 2, **kw
) -> subprocess.CompletedProcess:
    """Records ``frames`` frames of ``source`` into ``out`` in order (no pacing)."""
    return mattecam(
        "--source",
        source,
        "--pace",
        "none",
        "--max-frames",
        str(frames),
        *args,
        "--output",
        str(out),
        **kw,
    )


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return lines[0]


def frames_in(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hardlink"])
def test_the_output_is_never_the_input(tmp_path: Path, spelling: str) -> None:
    source = tmp_path / "a.mkv"
    source.write_bytes(CLIP.read_bytes())
    out = {
        "same": "a.mkv",
        "relative": "./sub/../a.mkv",
        "symlink": "link.mkv",
        "hardlink": "hard.mkv",
    }[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "symlink":
        (tmp_path / out).symlink_to(source)
    if spelling == "hardlink":
        os.link(source, tmp_path / out)
    done = mattecam("--source", "a.mkv", "--output", out, "--overwrite", cwd=tmp_path)
    assert done.returncode == 2
    assert "is the input" in one_line(done.stderr)
    assert source.read_bytes() == CLIP.read_bytes()


def test_an_existing_file_is_kept_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "take.mp4"
    out.write_bytes(b"an earlier take")
    done = record("synthetic:64x48@30", out, frames=3)
    assert done.returncode == 2 and "--overwrite" in one_line(done.stderr)
    assert out.read_bytes() == b"an earlier take"
    done = record("synthetic:64x48@30", out, "--overwrite", frames=3)
    assert done.returncode == 0, done.stderr
    assert frames_in(out) == 3


def test_two_runs_cannot_record_to_one_file(tmp_path: Path) -> None:
    out = tmp_path / "call.mp4"
    first = subprocess.Popen(
        [sys.executable, "main.py", "--headless", "--source", "synthetic:96x64@15"]
        + ["--background", "green", "--output", str(out)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not hidden(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.2)
        second = mattecam("--source", "synthetic:96x64@15", "--output", str(out))
        assert second.returncode == 2
        assert "being written by another run" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert frames_in(out) > 0
    assert hidden(tmp_path) == []


def test_a_stale_partial_of_an_earlier_run_is_reported(tmp_path: Path) -> None:
    out = tmp_path / "take.mkv"
    stale = partial_name(out, "0badc0de", folder=False)
    stale.write_bytes(b"\0" * 2_000_000)
    done = record("synthetic:64x48@30", out)
    assert done.returncode == 0, done.stderr
    assert f"Unfinished output of an earlier run beside 'take.mkv': {stale.name} (2.0 MB)" in (
        done.stderr
    )
    assert stale.exists(), "reported, not deleted"


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_file_size_limit_keeps_what_was_recorded_playable(tmp_path: Path, suffix: str) -> None:
    # The file system refuses to let the recording grow (as a full disk does): it stops, what was
    # written before stays playable under its final name, and nothing hidden is left.
    out = tmp_path / f"long{suffix}"
    done = record(
        "synthetic:320x240@30", out, "--output-mbps", "20", frames=400, preexec_fn=_limit_file_size
    )
    assert done.returncode == 1, done.stderr
    assert "recording stopped after" in done.stderr and "Traceback" not in done.stderr
    assert 0 < frames_in(out) < 400
    assert hidden(tmp_path) == []


class _FullDisk(VideoWriter):
    """The real writer, until the disk is full after a few frames."""

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        if self.frames_written >= 40:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().write(rgb, pts)


def test_a_full_disk_says_so_and_keeps_the_frames(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("app.output.recorder.VideoWriter", _FullDisk)
    out = tmp_path / "call.mp4"
    rng = np.random.default_rng(0)
    recorder = Recorder(out, 96, 64, 30)
    with pytest.raises(OutputError, match="The disk is full"):
        for _ in range(200):
            recorder.send(rng.integers(0, 255, (64, 96, 3), np.uint8))
            time.sleep(0.002)
    with pytest.raises(OutputError, match=r"The disk is full: .* saved in"):
        recorder.close()
    # Whole fragments only: a second of video (and what the encoder held back) at most is lost.
    assert 20 <= frames_in(out) <= 40
    assert hidden(tmp_path) == []


def test_an_odd_size_is_said(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    done = record("synthetic:641x479@30", out)
    assert done.returncode == 0, done.stderr
    assert "The recording is 640x478" in done.stderr
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (640, 478)


def test_a_folder_of_mixed_sizes_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, size in enumerate([(64, 48), (64, 48), (80, 48)]):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((size[1], size[0], 3), 90, np.uint8))
    out = tmp_path / "out.mp4"
    done = mattecam("--source", str(folder), "--pace", "none", "--output", str(out))
    assert done.returncode == 2
    assert "is 80x48 but the first image is 64x48" in done.stderr
    done = mattecam(
        "--source",
        str(folder),
        "--pace",
        "none",
        "--resolution",
        "64x48",
        "--output",
        str(tmp_path / "ok.mp4"),
    )
    assert done.returncode == 0, done.stderr
    assert frames_in(tmp_path / "ok.mp4") == 3


def convert(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.matting.convert", *args, "--disable-progress"],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_conversion_command_shares_the_checks(tmp_path: Path) -> None:
    source = tmp_path / "in.mkv"
    source.write_bytes(CLIP.read_bytes())
    (tmp_path / "link.mkv").symlink_to(source)
    done = convert("--input-source", "in.mkv", "--output-composition", "link.mkv", cwd=tmp_path)
    assert done.returncode == 2 and "is the input" in done.stderr
    (tmp_path / "old.mp4").write_bytes(b"kept")
    done = convert("--input-source", "in.mkv", "--output-alpha", "old.mp4", cwd=tmp_path)
    assert done.returncode == 2 and "--overwrite" in done.stderr
    assert (tmp_path / "old.mp4").read_bytes() == b"kept"
    assert source.read_bytes() == CLIP.read_bytes()
