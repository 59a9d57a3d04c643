"""The capture thread: dropping, batch hand-over, reconnecting, stopping."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from app.capture import (
    CaptureThread,
    Frame,
    FrameSource,
    SourceError,
    SourceLost,
    SyntheticSource,
    VideoFileSource,
)
from app.media.video import write_video
from app.slot import LatestSlot
from tests.fakes import wait_until

FAST_BACKOFF = (0.01, 0.04)


class FlakyCamera(FrameSource):
    """Stands in for camera hardware: works, gets unplugged, comes back.

    After ``good_frames`` frames every read fails (``SourceLost``, or no frame with
    ``lost_as_none``) and the next ``failed_opens`` opens fail; then frames flow again.
    """

    is_live = True

    def __init__(self, good_frames: int = 5, failed_opens: int = 2, lost_as_none: bool = False):
        super().__init__()
        self.good_frames = good_frames
        self.failed_opens = failed_opens
        self.lost_as_none = lost_as_none
        self.opens = 0
        self.sent = 0
        self.unplugged = False

    @property
    def name(self) -> str:
        return "Flaky camera"

    def _open(self) -> None:
        self.opens += 1
        if self.unplugged:
            if self.failed_opens > 0:
                self.failed_opens -= 1
                raise SourceError("No camera at index 0.")
            self.unplugged = False
            self.good_frames = None  # works from now on
        self._set_format((32, 24), 100.0)

    def _read(self) -> np.ndarray | None:
        time.sleep(0.002)
        if self.good_frames is not None and self.sent >= self.good_frames:
            self.unplugged = True
        if self.unplugged:
            if self.lost_as_none:
                return None
            raise SourceLost("Flaky camera stopped delivering frames.")
        self.sent += 1
        return np.full((24, 32, 3), self.sent % 256, np.uint8)

    def _close(self) -> None:
        pass


class BrokenFile(FrameSource):
    """A file-like source whose data turns bad after a few frames."""

    def __init__(self) -> None:
        super().__init__(pace="none")
        self.reads = 0

    @property
    def name(self) -> str:
        return "broken.mp4"

    def _open(self) -> None:
        self._set_format((16, 16), 30.0)

    def _read(self) -> np.ndarray:
        self.reads += 1
        if self.reads > 3:
            raise SourceError("Video 'broken.mp4' cannot be decoded further.")
        return np.zeros((16, 16, 3), np.uint8)

    def _close(self) -> None:
        pass


def test_slow_consumer_makes_frames_drop_and_they_are_counted() -> None:
    source = SyntheticSource(resolution=(64, 48), fps=120)
    capture = CaptureThread(source).start()
    taken: list[Frame] = []
    try:
        while len(taken) < 8:
            frame = capture.slot.get(timeout=5)
            assert frame is not None
            taken.append(frame)
            time.sleep(0.04)  # about five frame periods
    finally:
        assert capture.stop()
    pending = 1 if capture.slot.pending else 0
    assert capture.dropped > 0
    assert capture.frames_read == len(taken) + capture.dropped + pending
    indices = [f.index for f in taken]
    assert indices == sorted(indices) and indices[-1] - indices[0] > len(taken)
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in taken)


def test_pace_none_hands_over_every_frame_then_ends() -> None:
    states: list[tuple[str, str]] = []
    source = SyntheticSource(resolution=(64, 48), pace="none", frames=40, seed=5)
    capture = CaptureThread(source, on_state=lambda s, m: states.append((s, m))).start()
    frames = []
    while (frame := capture.slot.get(timeout=5)) is not None:
        frames.append(frame)
        time.sleep(0.001)
    assert capture.join(5)
    assert [f.index for f in frames] == list(range(40))
    assert capture.dropped == 0 and capture.frames_read == 40
    assert capture.state == "ended" and capture.slot.closed
    assert states[0][0] == "running" and states[-1] == (
        "ended",
        "Synthetic 64x48@30 ended after 40 frames.",
    )
    assert not source.is_open
    times = [f.t_capture for f in frames]
    assert times == sorted(times)
    with SyntheticSource(resolution=(64, 48), pace="none", seed=5) as again:
        expected = [again.read() for _ in range(40)]
    assert all(np.array_equal(f.image, e) for f, e in zip(frames, expected, strict=True))


def test_video_file_end_of_stream_ends_without_retrying(tmp_path: Path) -> None:
    path = tmp_path / "short.mp4"
    write_video(path, [np.full((48, 64, 3), i * 20, np.uint8) for i in range(10)], 30)
    capture = CaptureThread(VideoFileSource(path, pace="none")).start()
    count = 0
    while capture.slot.get(timeout=5) is not None:
        count += 1
    assert capture.join(5)
    assert count == 10 and capture.state == "ended"


def test_lost_camera_reconnects_and_frames_resume() -> None:
    states: list[str] = []
    camera = FlakyCamera(good_frames=5, failed_opens=2)
    capture = CaptureThread(
        camera, on_state=lambda s, m: states.append(s), backoff=FAST_BACKOFF
    ).start()
    try:
        assert wait_until(lambda: capture.frames_read >= 15)
        assert capture.state == "running"
    finally:
        assert capture.stop()
    assert states[0] == "running"
    first_reconnect = states.index("reconnecting")
    assert "running" in states[first_reconnect:]
    assert camera.opens == 1 + 2 + 1  # first open, two failed while unplugged, one that worked
    assert isinstance(capture.last_error, SourceError)
    assert capture.state == "stopped"


def test_repeated_missing_frames_from_a_live_source_count_as_lost() -> None:
    states: list[str] = []
    camera = FlakyCamera(good_frames=3, failed_opens=0, lost_as_none=True)
    capture = CaptureThread(
        camera, on_state=lambda s, m: states.append(s), backoff=FAST_BACKOFF
    ).start()
    try:
        assert wait_until(lambda: capture.frames_read >= 10)
    finally:
        capture.stop()
    assert states[:3] == ["running", "reconnecting", "running"]
    assert camera.opens == 2


def test_without_retry_forever_a_lost_camera_gives_up() -> None:
    camera = FlakyCamera(good_frames=2, failed_opens=100)
    capture = CaptureThread(camera, retry_forever=False, max_retries=3, backoff=FAST_BACKOFF)
    capture.start()
    assert capture.join(10)
    assert capture.state == "error"
    assert "did not come back after 3 tries" in str(capture.last_error)
    assert camera.opens == 1 + 3
    assert capture.slot.closed


def test_a_broken_file_stops_with_an_error() -> None:
    messages: list[tuple[str, str]] = []
    capture = CaptureThread(BrokenFile(), on_state=lambda s, m: messages.append((s, m))).start()
    got = 0
    while capture.slot.get(timeout=5) is not None:
        got += 1
    assert capture.join(5)
    assert got == 3
    assert capture.state == "error"
    assert messages[-1] == ("error", "Video 'broken.mp4' cannot be decoded further.")


def test_a_source_that_cannot_open_is_an_error(tmp_path: Path) -> None:
    capture = CaptureThread(VideoFileSource(tmp_path / "gone.mp4")).start()
    assert capture.join(5)
    assert capture.state == "error"
    assert "does not exist" in str(capture.last_error)
    assert capture.slot.get(timeout=1) is None


def test_stop_joins_and_leaves_no_thread_alive() -> None:
    slot: LatestSlot[Frame] = LatestSlot()
    source = SyntheticSource(resolution=(64, 48), fps=60)
    capture = CaptureThread(source, slot, name="capture-under-test").start()
    assert wait_until(lambda: capture.frames_read > 3)
    assert capture.state == "running"
    assert capture.fps > 0
    assert capture.stop(timeout=2.0)
    assert capture.stop()  # again: fine
    assert not capture.is_alive
    assert "capture-under-test" not in [t.name for t in threading.enumerate()]
    assert capture.state == "stopped"
    assert not source.is_open
    assert not slot.closed  # the slot may serve another source


def test_stop_releases_a_producer_blocked_on_a_full_slot() -> None:
    source = SyntheticSource(resolution=(32, 24), pace="none")
    capture = CaptureThread(source).start()
    assert wait_until(lambda: capture.slot.pending)  # nobody takes: the thread waits
    assert capture.stop(timeout=2.0)
    assert not capture.is_alive
    assert capture.dropped == 0


def test_stop_before_start_and_context_manager() -> None:
    capture = CaptureThread(SyntheticSource(resolution=(32, 24)))
    assert capture.stop()
    assert capture.state == "stopped"
    with CaptureThread(SyntheticSource(resolution=(32, 24), fps=60)) as running:
        assert running.slot.get(timeout=5) is not None
    assert not running.is_alive


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32)])
def test_frames_that_break_the_contract_are_an_error(bad: np.ndarray) -> None:
    class Odd(BrokenFile):
        def _read(self) -> np.ndarray:
            return bad

    capture = CaptureThread(Odd()).start()
    assert capture.join(5)
    assert capture.state == "error"


class PickyCamera(FrameSource):
    """Camera hardware stand-in that answers any request with its one mode, 640x480 at 15 fps."""

    is_live = True

    @property
    def name(self) -> str:
        return "Picky camera"

    def _open(self) -> None:
        self._width, self._height, self._fps = 640, 480, 15.0

    def _read(self) -> np.ndarray:
        time.sleep(0.002)
        return np.zeros((480, 640, 3), np.uint8)

    def _close(self) -> None:
        pass


def test_running_state_says_what_the_camera_delivers_against_what_was_asked() -> None:
    messages: list[str] = []
    camera = PickyCamera(resolution=(1280, 720), fps=30)
    with CaptureThread(camera, on_state=lambda state, message: messages.append(message)):
        assert wait_until(lambda: bool(messages))
    assert messages[0] == "Picky camera: 640x480 at 15 fps (asked for 1280x720 at 30 fps)."
    messages.clear()
    with CaptureThread(PickyCamera(), on_state=lambda state, message: messages.append(message)):
        assert wait_until(lambda: bool(messages))
    assert messages[0] == "Picky camera: 640x480 at 15 fps."
