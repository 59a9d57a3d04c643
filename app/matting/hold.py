"""Holding the frame rate: the live engine's internal resolution follows what the machine keeps up
with, so the matte does not trail the camera (a trailing matte shows as a halo around a moving
person).

How many mattes a second are enough depends on the sync mode. Pasting the newest matte onto each
frame (smooth, exact) needs a matte for nearly every frame. Aligned sync carries the mattes on
either side of a frame to it along the motion; what it needs is mattes close enough in time that
the person's edge moves only a little between two of them, and the time left over buys detail.
Replayed on real footage against the network on every frame at the automatic ratio (480 px), a
seated person is matted best at that ratio even with a matte for every third or fourth frame
(13.6 and 17.9 against 34.3 at 256 px with one every second frame), while moving hands need a
matte about every second or third frame (``bench/RESULTS.md``, live quality). So aligned sync
measures how far the edge moves (:class:`EdgeMotion`) and holds the matting rate that keeps that
step small.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from app.matting.engine import MattingEngine
from app.matting.ratio import live_ratio, lowest_live_ratio

#: How far the person's edge may move between two mattes that aligned sync carries, as a share of
#: the frame's long side (4 px of a 960 px frame; the 90th percentile of recent steps).
MAX_EDGE_STEP = 4 / 960
#: A step further than this (a twentieth of the long side on average over the whole outline) is
#: a cut to another scene or camera, not motion, and is left out.
CUT_STEP = 0.05
#: The fewest mattes aligned sync holds, as a share of the camera's rate, however still the person.
#: Fewer buy detail that the viewer does not get: with a matte every 10th frame or more, the one a
#: frame is given nears the privacy guard's age limit (:mod:`app.compose.privacy`, 0.5 s), and
#: frames past it go out as the background alone.
MIN_SHARE = 0.2
MOTION_SIDE = 160  # long side of the masks the edge's motion is measured on
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


@dataclass(frozen=True)
class RateBand:
    """The matting rate to hold, as shares of the camera's rate.

    Attributes:
        low: below this share the internal resolution is lowered.
        high: above it, raised.
    """

    low: float
    high: float


EVERY_FRAME = RateBand(0.9, 1.3)  # smooth and exact sync: a matte for (nearly) every frame


class EdgeMotion:
    """How fast the person's edge moves, from one matte to the next.

    Each matte is binarised on a small grid; the area between two consecutive outlines divided by
    the outline's length is how far the edge moved (the mean over the outline), as a share of the
    frame's long side. Kept for ``window`` seconds; a step that moves the whole outline by more
    than :data:`CUT_STEP` is a cut, not motion, and left out.

    Args:
        window: seconds of history.
    """

    def __init__(self, window: float = 3.0):
        self.window = window
        self._steps: deque[tuple[float, float]] = deque()  # (time, edge speed per second)
        self._prev: tuple[float, np.ndarray] | None = None

    def reset(self) -> None:
        """Forgets the history (a new scene, another camera)."""
        self._steps.clear()
        self._prev = None

    def add(self, pha: torch.Tensor, t: float) -> None:
        """The alpha ``[1, 1, H, W]`` of a frame taken at ``t`` (any device)."""
        height, width = pha.shape[-2:]
        scale = MOTION_SIDE / max(height, width)
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        mask = (F.interpolate(pha.float(), size=size, mode="area")[0, 0] > 0.5).cpu().numpy()
        prev, self._prev = self._prev, (t, mask)
        if prev is None or prev[1].shape != mask.shape or t <= prev[0]:
            return
        inner = cv2.erode(prev[1].view(np.uint8), _CROSS).view(bool)
        outline = int((prev[1] ^ inner).sum())
        if outline == 0:
            return
        step = (prev[1] ^ mask).sum() / outline / max(size)
        if step <= CUT_STEP:
            self._steps.append((t, step / (t - prev[0])))
        while self._steps and t - self._steps[0][0] > self.window:
            self._steps.popleft()

    def speed(self) -> float | None:
        """The 90th percentile of the edge's recent speed (long sides per second); None before
        two mattes."""
        if not self._steps:
            return None
        return float(np.percentile([s for _, s in self._steps], 90))


def carried_band(speed: float | None, camera_fps: float) -> RateBand:
    """Aligned sync's band: mattes often enough that the edge moves at most
    :data:`MAX_EDGE_STEP` between two, never fewer than :data:`MIN_SHARE` of the camera's rate
    nor more than :data:`EVERY_FRAME` asks.

    Args:
        speed: the edge's speed from :meth:`EdgeMotion.speed` (None: not known yet).
        camera_fps: the camera's rate.
    """
    need = MIN_SHARE
    if speed is not None and camera_fps > 0:
        need = speed / MAX_EDGE_STEP / camera_fps
    low = min(max(need, MIN_SHARE), EVERY_FRAME.low)
    return RateBand(low, low * 1.35)


class RateHolder:
    """Lowers the internal resolution when matting falls behind the rate it should hold, raises it
    when it can.

    Steps are 15% of the ratio, at most one every ``interval`` seconds, never below a 256 px long
    side nor above the automatic ratio; the recurrent state is resampled, not reset.
    """

    def __init__(self, interval: float = 2.0):
        self.interval = interval
        self._last = time.monotonic()

    def adjust(
        self,
        engine: MattingEngine,
        camera_fps: float,
        matting_fps: float,
        band: RateBand = EVERY_FRAME,
    ) -> None:
        """Takes one step when one is due and the rates call for it."""
        now = time.monotonic()
        if now - self._last < self.interval or camera_fps <= 0 or engine.ratio is None:
            return
        self._last = now
        h, w = engine.frame_size
        floor = lowest_live_ratio(h, w)
        ceiling = live_ratio(h, w)
        ratio = engine.ratio
        if matting_fps < band.low * camera_fps and ratio > floor:
            engine.resize_state(max(floor, ratio * 0.85))
        elif matting_fps > band.high * camera_fps and ratio < ceiling:
            engine.resize_state(min(ceiling, ratio / 0.85))
