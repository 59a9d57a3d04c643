"""Real-time pacing for sources that could deliver faster than their frame rate (files, generators).

A paced source behaves like a camera: frame ``n`` is due ``n / fps`` seconds after the first one.
A reader that is early sleeps; a reader that is late by a frame or more skips the frames whose time
has passed, so the stream keeps to the wall clock instead of drifting behind it.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable

import numpy as np

from app.capture.base import FrameSource


class Pacer:
    """Decides when the next frame of a paced stream is due and how many frames to skip.

    Args:
        fps: frames per second of the stream.
        pace: ``realtime`` or ``none`` (never waits, never skips).
        max_skip: the most frames one call may skip (skipping may cost decoding work); when the
            reader is further behind, the clock is moved forward by the rest. None: no limit.
        clock: monotonic seconds.
        sleep: waits the given seconds.
    """

    def __init__(
        self,
        fps: float,
        pace: str = "realtime",
        max_skip: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self._period = 1.0 / fps
        self._realtime = pace == "realtime"
        self._max_skip = max_skip
        self._clock = clock
        self._sleep = sleep
        self._t0: float | None = None
        self._next = 0

    def reset(self) -> None:
        """Starts a new timeline: the next frame is due at once."""
        self._t0 = None
        self._next = 0

    def wait(self) -> int:
        """Waits until the next frame is due.

        Returns:
            How many frames to skip before the one to deliver now (0 when on time).
        """
        if not self._realtime:
            return 0
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
            self._next = 1
            return 0
        due = self._t0 + self._next * self._period
        if now < due:
            self._sleep(due - now)
            self._next += 1
            return 0
        current = int((now - self._t0) / self._period)
        skip = max(0, current - self._next)
        if self._max_skip is not None and skip > self._max_skip:
            self._t0 += (skip - self._max_skip) * self._period
            skip = self._max_skip
        self._next += skip + 1
        return skip


class IndexedSource(FrameSource):
    """A paced source whose frame ``i`` can be produced directly, so skipping costs nothing.

    Subclasses implement ``_open`` (ending with :meth:`_start`), :meth:`_frame`, ``_close``,
    ``name`` and, for a finite stream, ``frame_count``.
    """

    _index = 0
    _pacer: Pacer | None = None

    def _start(self, native: tuple[int, int], fps: float) -> None:
        """Records the format and rewinds to the first frame."""
        self._set_format(native, fps)
        self._index = 0
        self._pacer = Pacer(fps, self._pace)

    def _read(self) -> np.ndarray | None:
        skip = self._pacer.wait()
        self._index += skip
        count = self.frame_count
        if count is not None and self._index >= count:
            if not self._loop:
                return None
            self._index %= count
        self._skipped += skip
        image = self._frame(self._index)
        self._index += 1
        return image

    @abstractmethod
    def _frame(self, index: int) -> np.ndarray:
        """Frame ``index`` of the stream (``0 <= index < frame_count`` when that is known)."""
