"""Holding the frame rate: the live engine's internal resolution follows what the machine keeps up
with, so the matte does not trail the camera (a trailing matte shows as a halo around a moving
person).
"""

from __future__ import annotations

import time

from app.matting.engine import MattingEngine
from app.matting.ratio import live_ratio, lowest_live_ratio


class RateHolder:
    """Lowers the internal resolution when matting falls behind the camera, raises it when it can.

    Steps are 15% of the ratio, at most one every ``interval`` seconds, never below a 256 px long
    side nor above the automatic ratio; the recurrent state is resampled, not reset.
    """

    def __init__(self, interval: float = 2.0):
        self.interval = interval
        self._last = time.monotonic()

    def adjust(self, engine: MattingEngine, camera_fps: float, matting_fps: float) -> None:
        """Takes one step when one is due and the rates call for it."""
        now = time.monotonic()
        if now - self._last < self.interval or camera_fps <= 0 or engine.ratio is None:
            return
        self._last = now
        h, w = engine.frame_size
        floor = lowest_live_ratio(h, w)
        ceiling = live_ratio(h, w)
        ratio = engine.ratio
        if matting_fps < 0.9 * camera_fps and ratio > floor:
            engine.resize_state(max(floor, ratio * 0.85))
        elif matting_fps > 1.3 * camera_fps and ratio < ceiling:
            engine.resize_state(min(ceiling, ratio / 0.85))
