"""The capture thread: reads a source continuously and offers each frame to the next stage.

With a real-time source the newest frames win (the slot holds as many as its consumer asked for;
a slow consumer makes the older ones drop, counted by the slot). With ``pace="none"`` every frame
is handed over in order. A live source that stops delivering is closed and re-opened with growing
pauses until frames flow again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType

import numpy as np

from app.capture.base import Frame, FrameSource, SourceError, SourceLost
from app.slot import LatestSlot
from app.stats import RateMeter

log = logging.getLogger(__name__)

STATES = ("starting", "running", "reconnecting", "ended", "stopped", "error")

StateCallback = Callable[[str, str], None]


class CaptureThread:
    """Owns a source from :meth:`start` on: opens it if needed, reads it, closes it at the end.

    When the stream ends or fails for good the slot is closed, so the consumer's ``get`` returns
    None; after :meth:`stop` the slot stays open (it may be handed to a new capture thread).

    Args:
        source: where frames come from.
        slot: where frames go; None creates one (see :attr:`slot`).
        on_state: called as ``on_state(state, message)`` from the capture thread whenever the state
            or its message changes.
        retry_forever: keep reconnecting a lost live source however long it takes; False gives up
            (state ``error``) after ``max_retries`` failed re-opens.
        max_retries: re-opens tried before giving up, without ``retry_forever``.
        max_read_failures: failed reads in a row (errors or no frame) that count as a lost source.
        backoff: first and longest pause, in seconds, between re-opens; the pause doubles.
        fps_window: seconds of frame timestamps the measured :attr:`fps` is averaged over.
        name: the thread's name.
    """

    def __init__(
        self,
        source: FrameSource,
        slot: LatestSlot[Frame] | None = None,
        *,
        on_state: StateCallback | None = None,
        retry_forever: bool = True,
        max_retries: int = 5,
        max_read_failures: int = 3,
        backoff: tuple[float, float] = (0.25, 2.0),
        fps_window: float = 1.0,
        name: str = "capture",
    ) -> None:
        self._source = source
        self._slot: LatestSlot[Frame] = slot if slot is not None else LatestSlot()
        self._on_state = on_state
        self._retry_forever = retry_forever
        self._max_retries = max(0, max_retries)
        self._max_read_failures = max(1, max_read_failures)
        self._backoff_first, self._backoff_max = backoff
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._state = "starting"
        self._message = ""
        self._last_error: Exception | None = None
        self._frames_read = 0
        self._meter = RateMeter(fps_window)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    # Control --------------------------------------------------------------------------------

    def start(self) -> CaptureThread:
        """Starts reading; returns self. Starting twice does nothing."""
        with self._lock:
            if self._started:
                return self
            self._started = True
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> bool:
        """Asks the thread to finish and waits for it; safe to call repeatedly.

        Args:
            timeout: the most seconds to wait for the thread.

        Returns:
            True when the thread is no longer running.
        """
        self._stop.set()
        with self._lock:
            started = self._started
            self._started = True  # a thread stopped before start never starts
        if not started:
            self._set_state("stopped", "Capture stopped.")
            self._close_source()
            return True
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        alive = self._thread.is_alive()
        if alive:
            log.warning("Capture thread did not finish within %.1f s", timeout)
        return not alive

    def join(self, timeout: float | None = None) -> bool:
        """Waits for the thread to finish by itself (end of stream, error).

        Returns:
            True when the thread is no longer running.
        """
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> CaptureThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Observation ----------------------------------------------------------------------------

    @property
    def source(self) -> FrameSource:
        """The source being read."""
        return self._source

    @property
    def slot(self) -> LatestSlot[Frame]:
        """The slot frames are offered to."""
        return self._slot

    @property
    def state(self) -> str:
        """One of ``starting``, ``running``, ``reconnecting``, ``ended``, ``stopped``, ``error``."""
        with self._lock:
            return self._state

    @property
    def message(self) -> str:
        """A sentence describing the current state."""
        with self._lock:
            return self._message

    @property
    def last_error(self) -> Exception | None:
        """The most recent error met while opening or reading, or None."""
        with self._lock:
            return self._last_error

    @property
    def frames_read(self) -> int:
        """Frames read from the source so far."""
        with self._lock:
            return self._frames_read

    @property
    def dropped(self) -> int:
        """Frames overwritten in the slot before the consumer took them."""
        return self._slot.dropped

    @property
    def fps(self) -> float:
        """Frames per second read over the last ``fps_window`` seconds (see :class:`RateMeter`)."""
        return self._meter.rate()

    @property
    def mean_fps(self) -> float:
        """Frames per second from the first frame read to the last."""
        return self._meter.mean_rate()

    @property
    def is_alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread.is_alive()

    # The thread -----------------------------------------------------------------------------

    def _set_state(self, state: str, message: str = "") -> None:
        with self._lock:
            if state == self._state and message == self._message:
                return
            self._state, self._message = state, message
        if message:
            log.info("%s: %s", state, message)
        if self._on_state is not None:
            try:
                self._on_state(state, message)
            except Exception:
                log.exception("State callback failed")

    def _fail(self, exc: Exception) -> None:
        with self._lock:
            self._last_error = exc
        self._set_state("error", str(exc))

    def _close_source(self) -> None:
        try:
            self._source.close()
        except Exception:
            log.warning("Closing %s failed", self._source.name, exc_info=True)

    def _run(self) -> None:
        try:
            final = self._loop()
        except Exception as exc:  # a bug must not pass silently, nor take the process down
            log.exception("Capture failed")
            self._fail(exc)
            final = "error"
        finally:
            self._close_source()
        if final in ("ended", "error"):
            self._slot.close()
        elif final == "stopped":
            self._set_state("stopped", "Capture stopped.")

    def _loop(self) -> str:
        """Reads until the stream ends, fails or the thread is stopped; returns the final state."""
        source = self._source
        try:
            source.open()
        except SourceError as exc:
            self._fail(exc)
            return "error"
        backoff = self._backoff_first
        failed_opens = 0
        read_failures = 0
        index = 0
        while not self._stop.is_set():
            try:
                image = source.read()
                problem: Exception | None = None
            except SourceError as exc:
                if not source.is_live:
                    self._fail(exc)
                    return "error"
                image, problem = None, exc
                if isinstance(exc, SourceLost):
                    read_failures = self._max_read_failures
            except Exception as exc:
                if not source.is_live:
                    log.exception("Reading %s failed", source.name)
                    self._fail(exc)
                    return "error"
                image, problem = None, exc
            t_capture = time.monotonic()
            if image is None:
                if not source.is_live:
                    damage = f" {source.damage}" if source.damage else ""
                    self._set_state("ended", f"{source.name} ended after {index} frames.{damage}")
                    return "ended"
                read_failures += 1
                problem = problem or SourceLost(f"{source.name} delivered no frame.")
                with self._lock:
                    self._last_error = problem
                if read_failures < self._max_read_failures:
                    continue
                # Lost: close, wait, re-open, with growing pauses.
                self._close_source()
                while not self._stop.is_set():
                    self._set_state(
                        "reconnecting",
                        f"{source.name} stopped delivering frames ({problem}); "
                        f"trying again in {backoff:g} s.",
                    )
                    if self._stop.wait(backoff):
                        return "stopped"
                    backoff = min(backoff * 2, self._backoff_max)
                    try:
                        source.open()
                        break
                    except SourceError as exc:
                        problem = exc
                        with self._lock:
                            self._last_error = exc
                        failed_opens += 1
                        if not self._retry_forever and failed_opens >= self._max_retries:
                            self._fail(
                                SourceLost(
                                    f"{source.name} is gone and did not come back after "
                                    f"{failed_opens} tries: {exc}"
                                )
                            )
                            return "error"
                read_failures = 0
                continue
            read_failures = 0
            backoff = self._backoff_first
            failed_opens = 0
            if not self._deliver(Frame(image=_checked(image), index=index, t_capture=t_capture)):
                return "stopped"
            index += 1
            if self.state != "running":
                self._set_state("running", _delivering(source))
        return "stopped"

    def _deliver(self, frame: Frame) -> bool:
        """Offers a frame to the slot; False when the slot was closed or the thread stopped."""
        with self._lock:
            self._frames_read += 1
        self._meter.tick(frame.t_capture)
        if self._source.pace != "none":
            self._slot.put(frame)
            return not self._slot.closed
        while not self._stop.is_set():
            try:
                self._slot.put(frame, block=True, timeout=0.1)
            except TimeoutError:
                continue
            return not self._slot.closed
        return False


def _delivering(source: FrameSource) -> str:
    """``name: WxH at F fps.``, and what was asked where a camera picked another mode."""
    text = f"{source.name}: {source.width}x{source.height} at {source.fps:g} fps"
    asked = source.requested
    other_size = asked.resolution is not None and asked.resolution != (source.width, source.height)
    other_rate = asked.fps is not None and abs(asked.fps - source.fps) > 0.5
    return f"{text} (asked for {asked})." if other_size or other_rate else f"{text}."


def _checked(image: np.ndarray) -> np.ndarray:
    """Guards the frame contract (uint8, ``H x W x 3``) at the edge of the capture package."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise SourceError(f"A source delivered {image.dtype} {image.shape}, not H x W x 3 uint8.")
    return image
