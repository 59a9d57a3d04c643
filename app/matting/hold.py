"""Holding the frame rate: the live engine's internal resolution follows what the machine keeps up
with, so the matte does not trail the camera (a trailing matte shows as a halo around a moving
person).

How many mattes a second are enough depends on the sync mode. Pasting the newest matte onto each
frame (smooth, exact) needs a matte for nearly every frame. Aligned sync carries the mattes on
either side of a frame to it along the motion, and then detail pays more than mattes: replayed on
real footage against the network on every frame at the automatic ratio, a matte for every fourth
frame at that ratio (480 px) is closer than one for every second frame at 256 px, on hand motion
(10.1 against 11.2) and more so on a seated person (``bench/RESULTS.md``, live quality levers).
So aligned sync keeps the automatic ratio down to a quarter of the camera's rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.matting.engine import MattingEngine
from app.matting.ratio import live_ratio, lowest_live_ratio


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
CARRIED = RateBand(0.25, 0.34)  # aligned sync: mattes on either side carried to each frame


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
