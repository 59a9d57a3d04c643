"""The live statistics (:class:`Stats`) and the rates and latency percentiles behind them;
thread-safe, no torch, no Qt."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from app.events import SourceState, VcamState


class RateMeter:
    """Events per second: over a sliding window while events come, over the whole run at its end.

    A run of a few frames, or one slower than a frame per window, still has a rate: with fewer
    than two events in the window, the rate is that of the last interval, falling as the wait for
    the next event grows longer than it (a stalled stage goes towards 0, not straight to 0).

    Args:
        window: seconds of history the live rate is measured over.
    """

    def __init__(self, window: float = 2.0):
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()
        self._first: float | None = None
        self._last: float | None = None
        self._previous: float | None = None
        self.count = 0

    def tick(self, now: float | None = None) -> None:
        """Records one event."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self.count += 1
            if self._first is None:
                self._first = now
            self._previous, self._last = self._last, now
            self._times.append(now)
            while self._times and now - self._times[0] > self.window:
                self._times.popleft()

    def rate(self, now: float | None = None) -> float:
        """Events per second now (0 before the second event)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and now - self._times[0] > self.window:
                self._times.popleft()
            if len(self._times) >= 2:
                span = max(now - self._times[0], self._times[-1] - self._times[0])
                if span > 0:
                    return (len(self._times) - 1) / span
            if self._previous is None or self._last is None:
                return 0.0
            interval = max(self._last - self._previous, now - self._last)
            return 1.0 / interval if interval > 0 else 0.0

    def mean_rate(self) -> float:
        """Events per second from the first event to the last (0 before the second event)."""
        with self._lock:
            if self._first is None or self._last is None or self._last <= self._first:
                return 0.0
            return (self.count - 1) / (self._last - self._first)


class Samples:
    """The last ``size`` values of a measurement, for percentiles and means.

    Args:
        size: how many recent values are kept.
    """

    def __init__(self, size: int = 300):
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        """Records one value."""
        with self._lock:
            self._values.append(value)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of the kept values, 0 when empty."""
        with self._lock:
            if not self._values:
                return 0.0
            return float(np.percentile(np.fromiter(self._values, float), q))

    def mean(self) -> float:
        """Mean of the kept values, 0 when empty."""
        with self._lock:
            return float(np.mean(self._values)) if self._values else 0.0

    def clear(self) -> None:
        """Forgets every value."""
        with self._lock:
            self._values.clear()


@dataclass
class Stats:
    """Live statistics; :meth:`to_dict` is what ``--stats-json`` writes."""

    capture_fps: float = 0.0
    matting_fps: float = 0.0
    output_fps: float = 0.0
    latency_ms_p50: float = 0.0
    latency_ms_p95: float = 0.0
    dropped_frames: int = 0
    frames_out: int = 0
    device: str = ""
    precision: str = ""
    internal_resolution: str = ""
    backend: str = ""
    matte_age_ms: float = 0.0
    source: str = ""
    source_state: SourceState | None = None
    vcam: VcamState = VcamState.OFF
    vcam_device: str = ""
    vcam_problem: str = ""
    frames_matted: int = 0
    state_resets: int = 0
    frames_covered: int = 0  # frames that went out as the background alone (room hidden)

    def to_dict(self) -> dict:
        """Plain JSON-ready dictionary (enums as their values)."""
        out = dataclasses.asdict(self)
        out["source_state"] = self.source_state.value if self.source_state else ""
        out["vcam"] = self.vcam.value
        return out
