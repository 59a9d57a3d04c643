"""Aligned sync: which frames go out when, and with which mattes."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from app.capture.base import Frame
from app.compose.align import FrameAligner
from app.compose.host import HostMatte
from app.compose.live import ALIGNED_DEPTH, ComposeHooks, ComposeWorker
from app.matting.engine import Matte
from app.matting.worker import Matted, Progress
from app.settings import Settings
from app.slot import LatestSlot


class Prepared:
    """A matte of one frame: an alpha of the frame's index / 10 everywhere."""

    def __init__(self, frame: Frame):
        self.frame = frame
        pha = np.full(frame.image.shape[:2], frame.index / 10, np.float32)
        self._host = HostMatte.from_planes(pha, np.zeros((*pha.shape, 3), np.int16))

    def host(self) -> HostMatte:
        return self._host


def _frames(n: int, size: tuple[int, int] = (24, 32)) -> list[Frame]:
    return [Frame(np.full((*size, 3), 10 * i, np.uint8), i, i / 30) for i in range(n)]


def test_a_frame_waits_for_a_matte_after_it_then_gets_both_sides():
    frames = _frames(4)
    aligner: FrameAligner[Prepared] = FrameAligner(max_delay=0.1)
    first, third = Prepared(frames[0]), Prepared(frames[3])
    for f in frames:
        aligner.add_frame(f)
    aligner.add_matte(first)
    out = aligner.ready(now=frames[3].t_capture)
    assert [f.index for f, _, _ in out] == [0], "frames 1-3 wait for a later matte"
    aligner.add_matte(third)
    aligner.add_matte(third)  # the same matte twice counts once
    out = aligner.ready(now=frames[3].t_capture + 0.01)
    assert [(f.index, b.frame.index, a.frame.index) for f, b, a in out] == [
        (1, 0, 3),
        (2, 0, 3),
        (3, 3, 3),
    ]
    assert not aligner.waiting
    middle = aligner.matte_for(frames[2], first, third, follow_motion=False)
    assert np.allclose(middle.pha, (1 / 3) * 0.0 + (2 / 3) * 0.3)
    assert aligner.matte_for(frames[3], first, third) is third.host()


def test_a_frame_that_waited_too_long_goes_out_with_the_matte_before_it():
    frames = _frames(3)
    aligner: FrameAligner[Prepared] = FrameAligner(max_delay=0.1)
    aligner.add_matte(Prepared(frames[0]))
    aligner.add_frame(frames[1])
    assert aligner.ready(now=frames[1].t_capture + 0.05) == []
    out = aligner.ready(now=frames[1].t_capture + 0.11)
    assert [(f.index, b.frame.index, a) for f, b, a in out] == [(1, 0, None)]


def test_the_time_to_go_out_counts_against_the_delay():
    """With each frame taking ``cost`` to go out, the wait ends that much earlier, and a frame
    released behind another waits one cost less again."""
    frames = _frames(3)
    aligner: FrameAligner[Prepared] = FrameAligner(max_delay=0.1)
    aligner.add_matte(Prepared(frames[0]))
    aligner.add_frame(frames[1])
    aligner.add_frame(frames[2])
    t1 = frames[1].t_capture  # frame 2 is 1/30 s later
    assert aligner.ready(now=t1 + 0.07) == []  # with nothing to do after release it waits on
    # 0.07 + 0.02 of compositing is under 0.1: frame 1 still waits.
    assert aligner.ready(now=t1 + 0.07, cost=0.02) == []
    # Frame 1 would reach the output at 0.075 + 0.03 > 0.1; frame 2, composited after it, at
    # 0.075 + 0.06 - 1/30 = 0.102 > 0.1: both go out.
    out = aligner.ready(now=t1 + 0.075, cost=0.03)
    assert [(f.index, b.frame.index, a) for f, b, a in out] == [(1, 0, None), (2, 0, None)]


def test_late_frames_are_dropped_for_newer_ones_and_the_rest_go_out_cheaply():
    frames = _frames(12)
    aligner: FrameAligner[Prepared] = FrameAligner(max_delay=0.1, late=0.05)
    for f in frames:
        aligner.add_frame(f)
    aligner.add_matte(Prepared(frames[0]))
    aligner.add_matte(Prepared(frames[11]))
    now = frames[11].t_capture + 0.01  # frame 0 is 0.38 s old
    out = aligner.ready(now)
    kept = [f.index for f, _, _ in out]
    assert kept == [i for i in range(12) if now - frames[i].t_capture <= 0.15]
    assert aligner.dropped == 12 - len(kept)
    assert aligner.is_late(frames[7], now) and not aligner.is_late(frames[10], now)


def test_frames_without_a_matte_of_their_size_are_dropped():
    aligner: FrameAligner[Prepared] = FrameAligner(max_delay=0.1)
    small, large = _frames(1)[0], _frames(2, (48, 64))[1]
    aligner.add_matte(Prepared(small))
    aligner.add_frame(large)
    assert aligner.ready(now=large.t_capture + 0.2) == []
    assert not aligner.waiting


def test_a_frame_goes_out_at_once_when_the_matte_after_it_cannot_come_in_time():
    frames = _frames(4)
    aligner: FrameAligner[Prepared] = FrameAligner(max_delay=0.1)
    aligner.add_matte(Prepared(frames[0]))
    aligner.add_frame(frames[1])
    now = frames[1].t_capture + 0.005
    # Idle, but a step takes 0.12 s: a later matte comes after the frame has waited 0.1 s.
    out = aligner.ready(now, Progress(None, now, 0.12))
    assert [(f.index, b.frame.index, a) for f, b, a in out] == [(1, 0, None)]


def test_a_frame_waits_when_the_matte_after_it_or_a_nearer_one_before_it_is_on_its_way():
    frames = _frames(4)
    now = frames[2].t_capture + 0.005
    cases = {
        "its own frame being matted, done soon": Progress(frames[2].t_capture, now + 0.05, 0.12),
        "a nearer frame being matted, done late": Progress(frames[1].t_capture, now + 0.2, 0.2),
        "an older frame being matted, quick steps": Progress(frames[0].t_capture, now, 0.03),
    }
    for why, progress in cases.items():
        aligner: FrameAligner[Prepared] = FrameAligner(max_delay=0.1)
        aligner.add_matte(Prepared(frames[0]))
        aligner.add_frame(frames[2])
        assert aligner.ready(now, progress) == [], why
        out = aligner.ready(frames[2].t_capture + 0.11, progress)
        assert [f.index for f, _, _ in out] == [2], why


def test_the_matting_thread_reports_its_progress():
    p = Progress(t_capture=1.0, done_at=1.05, step=0.05)
    assert p.ready_after(0.9, now=1.01) == 1.05  # the frame in progress is new enough
    assert p.ready_after(1.2, now=1.01) == pytest.approx(1.10)  # one more step after it
    assert p.matting_between(0.9, 1.2) and not p.matting_between(1.0, 1.2)
    assert not p.matting_between(None, 0.5) and p.matting_between(None, 1.0)
    idle = Progress(None, 2.0, 0.05)
    assert idle.ready_after(1.9, now=2.0) == pytest.approx(2.05)
    assert not idle.matting_between(None, 3.0)


class _Matting:
    """The matting worker as the compose thread sees it: takes frames, has one matte ready."""

    engine = SimpleNamespace(device=torch.device("cpu"))

    def __init__(self, matted: Matted):
        self.offered: list[int] = []
        self._matted = matted

    def offer(self, frame: Frame, exact: bool) -> None:
        self.offered.append(frame.index)

    def newest(self) -> Matted:
        return self._matted

    def progress(self) -> None:
        return None


def test_camera_frames_arriving_while_released_frames_go_out_are_queued_not_dropped():
    start = time.monotonic() - 0.1  # frame 3 was taken just now, 1 and 2 are not late yet
    frames = [Frame(f.image, f.index, start + f.t_capture) for f in _frames(7)]
    height, width = frames[3].image.shape[:2]
    colour = torch.zeros(1, 3, height, width)
    matte = Matte(colour, colour, torch.ones(1, 1, height, width), 1.0)
    matting = _Matting(Matted(frames[3], matte))
    slot: LatestSlot[Frame] = LatestSlot(depth=ALIGNED_DEPTH)
    hooks = ComposeHooks(send=lambda *a: None, on_frame=None, apply_changes=Settings, live=bool)
    worker = ComposeWorker(slot, matting, None, hooks, threading.Event())  # type: ignore[arg-type]
    for f in frames[1:3]:
        worker._queue(f)
    went = []
    for f, _ in worker._aligned(frames[3]):  # the matte of frame 3 releases frames 1 to 3
        went.append(f.index)
        if f.index == 1:  # the camera delivers twice while frame 1 goes out (a slow frame) ...
            assert not slot.put(frames[4]) and not slot.put(frames[5])
        elif f.index == 2:
            assert not slot.pending, "frames 4 and 5 were still in the capture hand-off"
            slot.put(frames[6])
    assert went == [1, 2, 3]
    assert matting.offered == [1, 2, 3, 4, 5, 6]
    assert slot.dropped == 0 and worker._aligner.waiting  # 4 to 6 wait for the next matte
