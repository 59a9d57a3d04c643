"""Run-time tuning of the CPU fast path: the intra-op thread count and the process allocator."""

from __future__ import annotations

import ctypes
import statistics
import sys
from collections import deque
from collections.abc import Sequence


class ThreadTuner:
    """Picks how many intra-op threads the network uses, from the times of the steps it runs.

    More threads are faster on an idle machine; on a busy one (other programs, the app's own
    compositing thread, the video call) every parallel region waits for a descheduled thread and
    one thread can be several times faster. The tuner keeps the recent step times of each choice,
    uses the fastest, and every ``explore_every`` steps runs ``probe`` steps with each other choice
    so that a change of load is noticed.

    Args:
        choices: thread counts to choose from.
        explore_every: steps between two probes of the other choices.
        probe: steps each other choice runs per probe.
        history: recent times kept per choice.
    """

    def __init__(
        self,
        choices: Sequence[int],
        explore_every: int = 60,
        probe: int = 3,
        history: int = 6,
    ):
        self.choices = tuple(dict.fromkeys(max(1, int(c)) for c in choices))
        self.explore_every = explore_every
        self.probe = probe
        self.history = history
        self.reset()

    def reset(self) -> None:
        """Forgets every time (the work changed, e.g. a new frame size)."""
        self._times: dict[int, deque[float]] = {c: deque(maxlen=self.history) for c in self.choices}
        self._queue: deque[int] = deque()
        self._since_probe = 0

    @property
    def best(self) -> int:
        """The choice with the lowest median recent time (the first choice before any data)."""
        timed = {c: statistics.median(t) for c, t in self._times.items() if t}
        if not timed:
            return self.choices[0]
        return min(timed, key=timed.__getitem__)

    def next(self) -> int:
        """The thread count to run the next step with."""
        if len(self.choices) == 1:
            return self.choices[0]
        if not self._queue:
            unseen = [c for c in self.choices if len(self._times[c]) < self.probe]
            if unseen:
                self._queue.extend(c for c in unseen for _ in range(self.probe))
            elif self._since_probe >= self.explore_every:
                best = self.best
                self._queue.extend(c for c in self.choices if c != best for _ in range(self.probe))
                self._since_probe = 0
        return self._queue.popleft() if self._queue else self.best

    def record(self, threads: int, seconds: float) -> None:
        """Records how long a step with ``threads`` threads took."""
        if threads in self._times:
            self._times[threads].append(seconds)
        self._since_probe += 1


_ALLOCATOR_TUNED = False
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def tune_allocator(threshold: int = 1 << 30) -> bool:
    """Keeps large freed blocks in the process heap for reuse (glibc only; once per process).

    glibc hands blocks above a few megabytes straight back to the system and maps them afresh on
    the next request, so every frame pays page faults to zero tens of megabytes of full-size maps.
    Raising the mmap and trim thresholds lets the next frame reuse the memory. The heap keeps its
    peak size instead of shrinking between frames. All threads share one heap: with a heap per
    thread (glibc's default) each keeps its own peak, and the resident memory of a long live run
    kept climbing (``bench/memory.py``).

    Returns:
        True when the thresholds are set (now or before).
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = all(
        mallopt(option, value) == 1
        for option, value in (
            (M_ARENA_MAX, 1),
            (M_MMAP_THRESHOLD, threshold),
            (M_TRIM_THRESHOLD, threshold),
        )
    )
    _ALLOCATOR_TUNED = ok
    return ok
