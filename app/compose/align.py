"""Aligned sync: every camera frame waits for a matte made after it, then gets a matte made for it.

When matting is slower than the camera, pasting the newest matte onto a newer frame shows the
matte where the person was a matting interval ago. Here each frame is held until a frame at or
after it has been matted (at most ``max_delay``), and is then composited with the mattes of the
matted frames on either side of it, carried to it along the motion
(:class:`~app.compose.motion.MotionCarrier`) and blended by how near it lies to each. ``max_delay``
bounds the camera-to-output delay, not only the wait: a frame waits ``max_delay`` less the time it
will still take to go out (compositing it and the frames released before it). A frame that waited
that long, or whose later matte cannot come within it (the matting thread's progress tells), goes
out with the newest matte before it, carried forward. When compositing
falls behind the camera (a busy machine), a frame later than ``max_delay + late`` is dropped when a
newer one is ready too, so the delay stays bounded, and late frames get the mattes blended instead
of carried (a fraction of the work).
"""

from __future__ import annotations

from collections import deque
from typing import Generic, Protocol, TypeVar

import numpy as np

from app.capture.base import Frame
from app.compose.host import HostMatte
from app.compose.motion import MotionCarrier, thumbnail
from app.matting.worker import Progress

__all__ = ["MAX_DELAY", "FrameAligner"]

MAX_DELAY = 0.085  # seconds from capture to output a frame may spend waiting for its mattes
LATE = 0.05  # seconds past MAX_DELAY after which a frame is dropped for a newer one


class PreparedMatte(Protocol):
    """A matte of one camera frame, prepared for compositing on the host."""

    frame: Frame

    def host(self) -> HostMatte:
        """The matte as host planes."""
        ...


M = TypeVar("M", bound=PreparedMatte)


class FrameAligner(Generic[M]):
    """Holds camera frames and the newest mattes, and pairs each frame with mattes on either side.

    Args:
        max_delay: the longest a frame waits for a matte made after it, in seconds, counting the
            time it still takes to go out once released.
        late: how much later than ``max_delay`` a frame may go out while newer ones are ready.
        keep: mattes remembered (the newest ones).
    """

    def __init__(self, max_delay: float = MAX_DELAY, late: float = LATE, keep: int = 4):
        self.max_delay = max_delay
        self.late = late
        self.dropped = 0
        self.carrier = MotionCarrier()
        self._frames: deque[Frame] = deque()
        self._mattes: deque[tuple[M, np.ndarray | None]] = deque(maxlen=keep)

    @property
    def waiting(self) -> bool:
        """Whether frames wait for a matte."""
        return bool(self._frames)

    def clear(self) -> None:
        """Forgets the waiting frames and the mattes."""
        self._frames.clear()
        self._mattes.clear()

    def add_frame(self, frame: Frame) -> None:
        """A new camera frame, to go out once its mattes are known."""
        self._frames.append(frame)

    def add_matte(self, matte: M) -> None:
        """A new matte, newer than those added before; one already known is ignored."""
        if all(m is not matte for m, _ in self._mattes):
            self._mattes.append((matte, None))

    def ready(
        self, now: float, progress: Progress | None = None, cost: float = 0.0
    ) -> list[tuple[Frame, M | None, M | None]]:
        """The frames that can go out now, oldest first, with the mattes before and after them.

        A frame is ready once a frame at or after it is matted, or once it would reach the output
        ``max_delay`` after its capture, each frame taking ``cost`` seconds to go out after the
        ones released before it (then only the matte before it is given). Knowing what the
        matting thread is doing (``progress``), a frame goes out with the matte before it at once
        when the matte after it cannot come within ``max_delay`` and no nearer matte before it is
        on its way: waiting would only add delay. Frames with no matte of their size on either side
        are dropped, and so are frames later than ``max_delay + late`` that have a newer ready
        frame behind them.
        """
        out: list[tuple[Frame, M | None, M | None]] = []
        while self._frames:
            frame = self._frames[0]
            size = frame.image.shape[:2]
            usable = [m for m, _ in self._mattes if m.frame.image.shape[:2] == size]
            t = frame.t_capture
            before = next((m for m in reversed(usable) if m.frame.t_capture <= t), None)
            after = next((m for m in usable if m.frame.t_capture >= t), None)
            out_at = now + cost * (len(out) + 1)  # when it would reach the output
            if (
                after is None
                and out_at - t < self.max_delay
                and not self._hopeless(t, before, progress, now, out_at - now)
            ):
                break
            self._frames.popleft()
            if before is not None or after is not None:
                out.append((frame, before, after))
        deadline = now - self.max_delay - self.late
        keep = [item for item in out[:-1] if item[0].t_capture >= deadline] + out[-1:]
        self.dropped += len(out) - len(keep)
        return keep

    def _hopeless(
        self, t: float, before: M | None, progress: Progress | None, now: float, lead: float
    ) -> bool:
        """Whether a frame taken at ``t`` waits in vain: the matte after it comes too late (it
        would reach the output ``lead`` after that) and ``before`` is the nearest matte before it
        there will be."""
        if progress is None or before is None:
            return False
        if progress.matting_between(before.frame.t_capture, t):
            return False
        return progress.ready_after(t, now) + lead > t + self.max_delay

    def is_late(self, frame: Frame, now: float) -> bool:
        """Whether ``frame`` is half ``late`` past ``max_delay`` (it should go out cheaply)."""
        return now - frame.t_capture > self.max_delay + self.late / 2

    def _thumb(self, matte: M) -> np.ndarray:
        for i, (m, thumb) in enumerate(self._mattes):
            if m is matte:
                if thumb is None:
                    thumb = thumbnail(m.frame.image)
                    self._mattes[i] = (m, thumb)
                return thumb
        return thumbnail(matte.frame.image)

    def matte_for(
        self, frame: Frame, before: M | None, after: M | None, follow_motion: bool = True
    ) -> HostMatte:
        """The host matte for ``frame`` from the mattes on either side (see :meth:`ready`).

        Args:
            frame: the frame to composite.
            before: the matte of the nearest matted frame at or before it, or None.
            after: the matte of the nearest matted frame at or after it, or None.
            follow_motion: carry the mattes along the motion; False blends them as they are.
        """
        for m in (after, before):
            if m is not None and m.frame is frame:
                return m.host()
        if before is not None and after is not None:
            span = after.frame.t_capture - before.frame.t_capture
            weight = (frame.t_capture - before.frame.t_capture) / span if span > 0 else 0.0
        else:
            weight = 0.0 if before is not None else 1.0
        target = thumbnail(frame.image) if follow_motion else None
        return self.carrier.between(
            target,
            (before.host(), self._thumb(before)) if before is not None else None,
            (after.host(), self._thumb(after)) if after is not None else None,
            weight,
            frame.image,
        )
