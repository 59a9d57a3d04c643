"""Virtual camera sink (against a stand-in driver) and the recorder (real encoders)."""

from __future__ import annotations

import glob
import os
import platform
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from app.output.base import OutputError
from app.output.pipewire import daemon_answers
from app.output.recorder import Recorder
from app.output.virtualcam import (
    LINUX_COMMAND,
    VirtualCameraSink,
    VirtualCameraUnavailable,
    guidance,
)
from tests.fakes import FakeDriver

WIDTH, HEIGHT = 64, 48


def first_index(frames: list[np.ndarray], value: int) -> int | None:
    return next((i for i, f in enumerate(frames) if (f == value).all()), None)


def open_sink(fps: float = 100.0) -> tuple[VirtualCameraSink, FakeDriver]:
    sink = VirtualCameraSink(WIDTH, HEIGHT, fps, backend="fake")
    return sink, FakeDriver.instances[-1]


def solid(value: int | tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    frame = np.empty(shape, np.uint8)
    frame[...] = value
    return frame


def test_driver_receives_rgb_frames_of_the_camera_size(fake_driver) -> None:
    with open_sink()[0] as sink:
        driver = fake_driver.instances[-1]
        assert sink.device == "/dev/fake0" and sink.backend == "fake"
        assert (driver.width, driver.height) == (WIDTH, HEIGHT)
        frame = np.random.default_rng(1).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        sink.send(frame)
        driver.wait_until(lambda frames: any(np.array_equal(f, frame) for f in frames))
    assert driver.closed
    assert all(f.shape == (HEIGHT, WIDTH, 3) for f in driver.frames)


def test_last_frame_repeats_until_a_new_one_arrives(fake_driver) -> None:
    sink, driver = open_sink()
    try:
        sink.send(solid(77, (HEIGHT, WIDTH, 3)))

        def repeated(frames: list[np.ndarray]) -> bool:
            first = first_index(frames, 77)
            return first is not None and len(frames) >= first + 6

        frames = driver.wait_until(repeated)
        first = first_index(frames, 77)
        assert all((f == 0).all() for f in frames[:first])  # black until the first frame
        assert all((f == 77).all() for f in frames[first:])  # then the same frame, repeated
        assert sink.frames_new == 1
        sink.send(solid(5, (HEIGHT, WIDTH, 3)))
        frames = driver.wait_until(lambda frames: (frames[-1] == 5).all())
        assert all((f == 77).all() for f in frames[first : first_index(frames, 5)])
        assert sink.frames_new == 2
    finally:
        sink.close()
        sink.close()  # twice is fine


def test_frames_are_paced_at_roughly_the_declared_rate(fake_driver) -> None:
    fps = 50.0
    sink, driver = open_sink(fps)
    with sink:
        driver.wait_for(16)
    intervals = np.diff(driver.times)
    median = float(np.median(intervals))
    assert 0.5 / fps < median < 2.0 / fps
    assert sink.fps > 0


def test_rgba_and_other_sizes_are_converted(fake_driver) -> None:
    sink, driver = open_sink()
    with sink:
        sink.send(solid((10, 20, 30, 0), (HEIGHT * 2, WIDTH * 2, 4)))
        last = driver.wait_until(lambda frames: bool(frames) and frames[-1].any())[-1]
    assert last.shape == (HEIGHT, WIDTH, 3)
    assert (last == np.array([10, 20, 30], np.uint8)).all()


def test_bad_frames_are_refused_at_the_edge(fake_driver) -> None:
    with open_sink()[0] as sink:
        with pytest.raises(TypeError):
            sink.send(np.zeros((HEIGHT, WIDTH, 3), np.float32))
        with pytest.raises(TypeError):
            sink.send([[0, 0, 0]])
        with pytest.raises(ValueError):
            sink.send(np.zeros((HEIGHT, WIDTH), np.uint8))
        with pytest.raises(ValueError):
            sink.send(np.zeros((HEIGHT, WIDTH, 2), np.uint8))
    assert sink.frames_new == 0


def test_unknown_backend_is_a_user_error() -> None:
    with pytest.raises(VirtualCameraUnavailable, match="does not exist"):
        VirtualCameraSink(WIDTH, HEIGHT, 30, backend="no-such-backend")


@pytest.mark.skipif(
    platform.system() != "Linux" or bool(glob.glob("/dev/video*")) or daemon_answers(),
    reason="needs a Linux machine without any video device nor a PipeWire session",
)
def test_without_a_driver_the_user_is_told_how_to_install_one() -> None:
    with pytest.raises(VirtualCameraUnavailable) as caught:
        VirtualCameraSink(WIDTH, HEIGHT, 30)
    message = str(caught.value)
    assert LINUX_COMMAND in message and "v4l2loopback-dkms" in message
    assert "exclusive_caps=1" in message
    assert "v4l2" in caught.value.detail


def test_guidance_names_the_driver_for_each_system() -> None:
    assert "sudo modprobe v4l2loopback" in guidance("Linux")
    assert "PipeWire" in guidance("Linux") and "gstreamer1.0-pipewire" in guidance("Linux")
    for system in ("Windows", "Darwin"):
        text = guidance(system)
        assert "OBS Studio" in text and "28" in text and "Virtual Camera" in text
    assert guidance() == guidance(platform.system())


def write_frames(recorder: Recorder, frames: list[np.ndarray]) -> None:
    for frame in frames:
        recorder.send(frame)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_video_recording_round_trips(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"take{suffix}"
    colours = [(200, 40, 90), (30, 160, 220)]
    frames = [solid(colours[i // 6], (HEIGHT, WIDTH, 3)) for i in range(12)]
    with Recorder(path, WIDTH, HEIGHT, 25.0, mbps=2.0) as recorder:
        write_frames(recorder, frames)
    assert recorder.frames_written == 12
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 12
    assert all(f.shape == (HEIGHT, WIDTH, 3) for f in decoded)
    for frame, colour in ((decoded[2], colours[0]), (decoded[9], colours[1])):
        assert np.abs(frame.reshape(-1, 3).mean(0) - colour).max() < 4


@pytest.mark.parametrize("cpus", [1, 8])  # one writer thread, or several
def test_png_sequence_keeps_alpha_and_order(tmp_path: Path, monkeypatch, cpus: int) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    folder = tmp_path / "frames"
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (HEIGHT, WIDTH, 4), dtype=np.uint8) for _ in range(12)]
    with Recorder(folder, WIDTH, HEIGHT, 30.0, rgba=True) as recorder:
        write_frames(recorder, frames)
        with pytest.raises(ValueError):
            recorder.send(frames[0][..., :3])
    assert sorted(os.listdir(folder)) == [f"{i:05d}.png" for i in range(12)]
    for i, frame in enumerate(frames):
        back = cv2.imread(str(folder / f"{i:05d}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(cv2.cvtColor(back, cv2.COLOR_BGRA2RGBA), frame)


def test_nothing_appears_under_the_final_name_before_close(tmp_path: Path) -> None:
    video = tmp_path / "out.mp4"
    folder = tmp_path / "seq"
    recorders = [Recorder(video, WIDTH, HEIGHT, 30.0), Recorder(folder, WIDTH, HEIGHT, 30.0)]
    for recorder in recorders:
        write_frames(recorder, [solid(i, (HEIGHT, WIDTH, 3)) for i in range(20)])
    assert not video.exists() and not folder.exists()
    assert all(r.temp_path.exists() and r.temp_path.parent == tmp_path for r in recorders)
    for recorder in recorders:
        recorder.close()
        recorder.close()
    assert video.is_file() and len(os.listdir(folder)) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "seq"]


def test_unusable_destinations_raise_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        Recorder(blocker / "out.mp4", WIDTH, HEIGHT, 30.0)
    with pytest.raises(OutputError):
        Recorder(blocker / "frames", WIDTH, HEIGHT, 30.0)
    with pytest.raises(OutputError, match="folder"):
        Recorder(tmp_path / "clear.mp4", WIDTH, HEIGHT, 30.0, rgba=True)
    with pytest.raises(OutputError, match=r"\.mp4"):
        Recorder(tmp_path / "clip.avi", WIDTH, HEIGHT, 30.0)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(OutputError, match="already holds files"):
        Recorder(busy, WIDTH, HEIGHT, 30.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "busy"]


def test_recorder_refuses_bad_frames(tmp_path: Path) -> None:
    with Recorder(tmp_path / "x.mp4", WIDTH, HEIGHT, 30.0) as recorder:
        with pytest.raises(TypeError):
            recorder.send(np.zeros((HEIGHT, WIDTH, 3), np.float64))
        with pytest.raises(ValueError):
            recorder.send(np.zeros((HEIGHT + 2, WIDTH, 3), np.uint8))
        recorder.send(np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    assert recorder.frames_written == 1
    with pytest.raises(RuntimeError):
        recorder.send(np.zeros((HEIGHT, WIDTH, 3), np.uint8))


def test_a_recording_without_frames_leaves_nothing(tmp_path: Path) -> None:
    for path in (tmp_path / "none.mp4", tmp_path / "none"):
        Recorder(path, WIDTH, HEIGHT, 30.0).close()
    assert list(tmp_path.iterdir()) == []


def test_odd_sizes_are_trimmed_for_video(tmp_path: Path) -> None:
    path = tmp_path / "odd.mkv"
    with Recorder(path, 33, 25, 30.0) as recorder:
        recorder.send(solid(128, (25, 33, 3)))
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (32, 24)


def test_timestamps_keep_a_live_recording_as_long_as_the_session(tmp_path: Path) -> None:
    path = tmp_path / "live.mp4"
    # Captured at 30 fps with frames 3..7 lost on the way, then two frames 1 ms apart (jitter).
    stamps = [100.0 + i / 30 for i in (0, 1, 2, 8, 9, 10)] + [100.0 + 10 / 30 + 0.001]
    with Recorder(path, WIDTH, HEIGHT, 30.0) as recorder:
        for i, t in enumerate(stamps):
            recorder.send(solid(20 * i, (HEIGHT, WIDTH, 3)), timestamp=t)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        seconds = [float(f.pts * f.time_base) for f in container.decode(stream)]
    assert len(seconds) == len(stamps)  # nothing dropped, nothing invented
    frames = [round(s * 30) for s in sorted(seconds)]
    assert frames == [0, 1, 2, 8, 9, 10, 11]  # the gap kept; a late pair moved one slot on
