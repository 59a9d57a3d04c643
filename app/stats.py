"""Rates and latency percentiles for the live statistics; thread-safe, no torch, no Qt."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


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
