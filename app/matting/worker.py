"""The matting stage: a thread that mattes the newest camera frame and publishes the newest matte.

The engine (network, recurrent state, downsample ratio) belongs to this thread: engine reloads,
ratio changes and state resets asked for from elsewhere are applied here, between two frames.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.capture.base import Frame
from app.compose.privacy import PrivacyGuard, usable
from app.events import Emit, Event, EventKind, Field
from app.matting.engine import EngineError, Matte, MattingEngine
from app.matting.hold import EVERY_FRAME, EdgeMotion, RateHolder, carried_band
from app.matting.ratio import RatioError
from app.matting.weights import WeightsError
from app.settings import Settings
from app.slot import LatestSlot
from app.stats import RateMeter

ENGINE_FIELDS = ("variant", "checkpoint", "device", "precision", "backend")
EngineFactory = Callable[[Settings], MattingEngine]


@dataclass(frozen=True)
class Matted:
    """A frame and its matte."""

    frame: Frame
    matte: Matte


@dataclass(frozen=True)
class Progress:
    """What the matting thread is doing, for those who wait for its next matte.

    Attributes:
        t_capture: capture time of the frame being matted; None while the thread is idle.
        done_at: when the matte in progress is expected (``time.monotonic()``).
        step: seconds a step has taken lately (0 before the first).
    """

    t_capture: float | None
    done_at: float
    step: float

    def ready_after(self, t: float, now: float) -> float:
        """The earliest time a matte of a frame taken at or after ``t`` can be ready: the one in
        progress if its frame is that new, else one more step after it."""
        if self.t_capture is not None and self.t_capture >= t:
            return self.done_at
        return max(now, self.done_at) + self.step

    def matting_between(self, start: float | None, t: float) -> bool:
        """Whether the frame in progress was taken after ``start`` (None: any time) and at or
        before ``t``: a matte nearer to ``t`` than the one of ``start`` is on its way."""
        c = self.t_capture
        return c is not None and c <= t and (start is None or c > start)


class MattingWorker:
    """Mattes frames offered to :attr:`slot` on its own thread.

    Args:
        engine: the engine to start with (built by the caller, so start-up errors are raised).
        settings: the settings the engine was built for.
        factory: builds a new engine when engine settings change.
        emit: where events go.
        camera_fps: the camera's measured rate, for holding the frame rate.
    """

    def __init__(
        self,
        engine: MattingEngine,
        settings: Settings,
        factory: EngineFactory,
        emit: Emit,
        camera_fps: Callable[[], float],
    ) -> None:
        self.slot: LatestSlot[Frame] = LatestSlot()
        self.meter = RateMeter()
        self.frames_matted = 0
        self.guard = PrivacyGuard()  # told of every failure and success, asked by compositing
        self._engine = engine
        self._settings = settings
        self._factory = factory
        self._emit = emit
        self._camera_fps = camera_fps
        self._lock = threading.Lock()
        self._pending: Settings | None = None
        self._reset = False
        self._stop = threading.Event()
        self._cv = threading.Condition()
        self._newest: Matted | None = None
        self._failed: Frame | None = None  # the newest frame the network could not matte
        self._busy: tuple[float, float] | None = None  # (frame's capture time, step started)
        self._step = 0.0
        self._motion = EdgeMotion()  # how fast the person's edge moves (aligned sync)
        self._thread = threading.Thread(target=self._run, name="mattecam-matting", daemon=True)

    @property
    def engine(self) -> MattingEngine:
        """The engine in use (replaced by a reload)."""
        return self._engine

    def start(self) -> None:
        """Starts the thread."""
        self._thread.start()

    def update(self, settings: Settings) -> None:
        """Asks for new settings; applied by the matting thread before its next frame."""
        with self._lock:
            self._pending = settings

    def reset_state(self) -> None:
        """Forgets the recurrent state before the next frame."""
        with self._lock:
            self._reset = True

    def stop(self, timeout: float = 5.0) -> None:
        """Stops the thread and wakes whoever waits for a matte; safe twice."""
        self._stop.set()
        self.slot.close()
        with self._cv:
            self._cv.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def newest(self) -> Matted | None:
        """The newest matte, of whichever frame it was."""
        with self._cv:
            return self._newest

    def progress(self) -> Progress:
        """The frame being matted and when its matte is expected."""
        with self._cv:
            busy, step = self._busy, self._step
        if busy is None:
            return Progress(None, time.monotonic(), step)
        return Progress(busy[0], busy[1] + step, step)

    def matte_of(self, frame: Frame, timeout: float = 30.0) -> Matted | None:
        """Waits for the matte of ``frame`` (offered with :meth:`offer` ``exact``).

        Returns:
            Its matte; None when the network failed on it, the worker stopped or time ran out.
        """
        with self._cv:
            self._cv.wait_for(
                lambda: (
                    self._stop.is_set()
                    or self._failed is frame
                    or (self._newest is not None and self._newest.frame is frame)
                ),
                timeout=timeout,
            )
            newest = self._newest
            if self._stop.is_set() or newest is None or newest.frame is not frame:
                return None  # never another frame's matte; a failed frame is skipped
            return newest

    def offer(self, frame: Frame, exact: bool) -> Matted | None:
        """Hands a frame over and returns the matte to composite it with.

        Args:
            frame: the camera frame.
            exact: wait for this frame's own matte (every frame matted, in order); otherwise the
                frame replaces an unmatted one and the newest matte is returned at once.

        Returns:
            The matte, or None when there is none for this frame yet.
        """
        if not exact:
            self.slot.put(frame)
            return self.newest()
        try:
            self.slot.put(frame, block=True, timeout=5.0)
        except TimeoutError:
            return None
        return self.matte_of(frame)

    def _apply_changes(self) -> None:
        with self._lock:
            new, self._pending = self._pending, None
            reset, self._reset = self._reset, False
        engine = self._engine
        if new is not None:
            if any(getattr(new, f) != getattr(self._settings, f) for f in ENGINE_FIELDS):
                self._emit(Event(EventKind.PROGRESS, "Loading the matting network…"))
                try:
                    engine = self._engine = self._factory(new)
                    self._emit(
                        Event(
                            EventKind.INFO,
                            f"Network ready on {engine.device} ({engine.precision}).",
                        )
                    )
                except (EngineError, WeightsError) as exc:
                    self._emit(Event.error(exc, Field.ENGINE))
            engine.set_ratio(new.downsample_ratio, new.full_body)
            self._settings = new
        if reset:
            engine.reset("asked")
            self._motion.reset()

    def _run(self) -> None:
        hold = RateHolder()
        said = ""  # the failure last reported: the same one again on every frame is no news
        while not self._stop.is_set():
            self._apply_changes()
            frame = self.slot.get(timeout=0.05)
            if frame is None:
                if self.slot.closed:
                    break
                continue
            started = time.monotonic()
            with self._cv:
                self._busy = (frame.t_capture, started)
            try:
                matte = self._engine.step(frame.image, t=frame.t_capture)
                if not usable(matte):
                    raise ValueError("the network returned a matte that is not a number (NaN)")
            except (RuntimeError, ValueError) as exc:
                self.guard.matting_failed()
                known = isinstance(exc, (EngineError, RatioError))
                event = Event.error(exc, Field.MATTING)
                if not known:
                    event = Event(
                        EventKind.ERROR, f"Matting failed on a frame: {exc}", field=Field.MATTING
                    )
                if event.text() != said:
                    self._emit(event)
                    said = event.text()
                with self._cv:
                    self._failed, self._busy = frame, None
                    self._cv.notify_all()
                continue
            said = ""
            self.guard.matting_worked()
            self.meter.tick()
            self.frames_matted += 1
            took = time.monotonic() - started
            with self._cv:
                self._newest, self._busy = Matted(frame, matte), None
                self._step = took if self._step == 0 else 0.7 * self._step + 0.3 * took
                self._cv.notify_all()
            s = self._settings
            if s.hold_fps and s.pace != "none":
                camera_fps = self._camera_fps()
                band = EVERY_FRAME
                if s.sync == "aligned":
                    self._motion.add(matte.pha, frame.t_capture)
                    band = carried_band(self._motion.speed(), camera_fps)
                hold.adjust(self._engine, camera_fps, self.meter.rate(), band)
