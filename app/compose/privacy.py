"""Failing closed: a camera frame goes out with the person cut from the room only when a matte that
fits it is at hand; otherwise the background alone goes out.

A matte is a picture of where the person was when its frame was captured. Composited over a later
frame it leaves the room visible wherever the person has moved away since; over a frame of another
source, or while the network fails or stalls, it can show the whole room. The room is what the
user chose to hide, so :class:`PrivacyGuard` decides for every frame whether the newest matte may
be used, and when not, the frame is composited with a matte that says "background" everywhere: a
colour, picture or video background then shows alone, a blurred background shows the whole frame
blurred, a transparent one shows nothing. (With no background replacement the camera picture goes
out as chosen.)

Frames before the very first matte are not sent at all.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass

import numpy as np
import torch

from app.capture.base import Frame
from app.matting.engine import Matte

#: A matte older than this (between its frame's capture and the frame it would cut out) is not
#: used: a person moving at an everyday pace crosses a good part of the picture in half a second.
MATTE_AGE_LIMIT_S = 0.5
#: Falling behind is said again after this many seconds at the soonest.
REPEAT_S = 15.0


class Cover(enum.Enum):
    """Why a frame goes out as the background alone."""

    STALE = "stale"
    FAILED = "failed"
    NEW_SOURCE = "new source"
    RESIZED = "resized"

    def message(self, age_s: float) -> str:
        """What the window shows while frames are covered for this reason."""
        if self is Cover.STALE:
            return (
                f"Matting is {age_s:.1f} s behind the camera: only the background goes out until "
                "it catches up."
            )
        if self is Cover.FAILED:
            return "Matting is failing: only the background goes out until it works again."
        return "Only the background goes out until the first matte of the new picture is ready."


@dataclass(frozen=True)
class Verdict:
    """The guard's decision for one frame.

    Attributes:
        cover: why the frame goes out as the background alone; None when the matte may be used.
        age_s: how far apart the matte's frame and this frame were captured.
        previous: the previous frame's cover.
        said: the guard has chosen to say that matting fell behind (see :attr:`news`).
    """

    cover: Cover | None
    age_s: float
    previous: Cover | None

    said: bool = False

    @property
    def news(self) -> str:
        """What to tell the user now (matting fell behind, failed, or works again), else empty.

        A new source or size is covered for a moment without a word (the switch is news already);
        falling behind is said at most every :data:`REPEAT_S` seconds, not at every flicker.
        """
        if self.cover is Cover.FAILED and self.previous is not Cover.FAILED:
            return self.cover.message(self.age_s)
        if self.cover is Cover.STALE and self.said:
            return self.cover.message(self.age_s)
        if self.cover is None and self.previous is Cover.FAILED:
            return "Matting works again: the person is cut out again."
        return ""


class PrivacyGuard:
    """Decides, frame by frame, whether the newest matte may cut the person out of a camera frame.

    Thread-safe: the matting thread reports failures and successes, the source switch reports new
    sources, the compose thread asks :meth:`check`.

    Args:
        limit_s: the oldest matte that may be used, in seconds; None: :data:`MATTE_AGE_LIMIT_S`.
    """

    def __init__(self, limit_s: float | None = None) -> None:
        self.limit_s = MATTE_AGE_LIMIT_S if limit_s is None else limit_s
        self.covered = 0  # frames that went out as the background alone
        self._lock = threading.Lock()
        self._failing = False
        self._source_since = float("-inf")
        self._last: Cover | None = None
        self._said_stale = float("-inf")

    def matting_failed(self) -> None:
        """The network failed on a frame (an error, or a matte that is not a number)."""
        with self._lock:
            self._failing = True

    def matting_worked(self) -> None:
        """The network produced a matte."""
        with self._lock:
            self._failing = False

    def new_source(self, since: float) -> None:
        """Frames captured from ``since`` on (``time.monotonic()``) come from another source."""
        with self._lock:
            self._source_since = since

    def check(self, frame: Frame, matte_frame: Frame) -> Verdict:
        """The decision for ``frame`` given the frame the newest matte was made from."""
        age = abs(frame.t_capture - matte_frame.t_capture)  # aligned sync may use a later one
        with self._lock:
            if self._failing:
                cover: Cover | None = Cover.FAILED
            elif matte_frame.t_capture < self._source_since <= frame.t_capture:
                cover = Cover.NEW_SOURCE
            elif frame.image.shape[:2] != matte_frame.image.shape[:2]:
                cover = Cover.RESIZED
            elif age > self.limit_s:
                cover = Cover.STALE
            else:
                cover = None
            previous, self._last = self._last, cover
            say = cover is Cover.STALE and previous is not Cover.STALE
            say = say and frame.t_capture - self._said_stale >= REPEAT_S
            if say:
                self._said_stale = frame.t_capture
            if cover is not None:
                self.covered += 1
        return Verdict(cover, age, previous, say)


def usable(matte: Matte) -> bool:
    """Whether a matte holds numbers everywhere (a failing device can return NaN or infinity)."""
    return bool(torch.isfinite(matte.pha).all())


def background_only(frame: Frame, device: torch.device, dtype: torch.dtype) -> Matte:
    """A matte of ``frame`` that says background everywhere (the foreground is the frame itself).

    Args:
        frame: the camera frame.
        device: where the compositor's tensors live.
        dtype: their precision.
    """
    image = np.ascontiguousarray(frame.image)
    src = torch.from_numpy(image).to(device).permute(2, 0, 1).unsqueeze(0).to(dtype).div_(255)
    pha = torch.zeros((1, 1, *image.shape[:2]), device=device, dtype=dtype)
    return Matte(src=src, fgr=src, pha=pha, ratio=1.0)
