"""The live source: the source in use, its capture thread, and switching to another while running.

Frames keep arriving in the same slot across a switch, so the stages after capture never notice
which source they come from.
"""

from __future__ import annotations

from app.capture.base import Frame, FrameSource, SourceError
from app.capture.kinds import make_source
from app.capture.thread import CaptureThread
from app.events import Emit, Event, EventKind, Field, SourceState, explain
from app.settings import Settings
from app.slot import LatestSlot

SOURCE_FIELDS = ("source", "resolution", "fps", "pace", "loop")


def source_for(s: Settings) -> FrameSource:
    """Makes and opens the source the settings ask for.

    Raises:
        SourceError: there is no such source, or it cannot be opened.
    """
    source = make_source(s.source, resolution=s.resolution, fps=s.fps, loop=s.loop, pace=s.pace)
    return source.open()


class LiveSource:
    """Reads the source the settings name into :attr:`slot` on a capture thread.

    Args:
        emit: where the capture thread's news and switching problems go.
    """

    def __init__(self, emit: Emit) -> None:
        self.slot: LatestSlot[Frame] = LatestSlot()
        self.source: FrameSource | None = None
        self.capture: CaptureThread | None = None
        self._emit = emit

    def start(self, source: FrameSource) -> None:
        """Starts reading an open source."""
        self.source = source
        self.capture = CaptureThread(
            source, self.slot, on_state=self._on_state, retry_forever=source.is_live
        )
        self.capture.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops the capture thread (which closes the source) and discards an untaken frame."""
        if self.capture is not None:
            self.capture.stop(timeout)
        self.slot.get(timeout=0)

    def changed(self, new: Settings, cur: Settings) -> bool:
        """Whether ``new`` asks for another source than ``cur``."""
        return any(getattr(new, f) != getattr(cur, f) for f in SOURCE_FIELDS)

    def switch(self, new: Settings, cur: Settings) -> bool:
        """Switches to the source of ``new``; a source that cannot be opened is reported.

        A camera cannot be opened twice: another mode of the same one is asked for once it is
        closed, and it goes back to the old mode if the new one fails.

        Returns:
            Whether the source changed.
        """
        old = self.source
        same_camera = old is not None and old.is_live and new.source == cur.source
        if same_camera:
            self.stop()
        try:
            source = source_for(new)
        except SourceError as exc:
            self._emit(Event.error(exc, Field.SOURCE))
            if same_camera:
                self.start(old)
            return False
        if not same_camera:
            self.stop()
        self.start(source)
        self._emit(Event(EventKind.INFO, f"Source: {source.name}.", field=Field.SOURCE))
        return True

    @property
    def fps(self) -> float:
        """The measured capture rate."""
        return self.capture.fps if self.capture is not None else 0.0

    @property
    def mean_fps(self) -> float:
        """The capture rate over the whole run."""
        return self.capture.mean_fps if self.capture is not None else 0.0

    @property
    def state(self) -> SourceState | None:
        """The capture thread's state, None before :meth:`start`."""
        return SourceState(self.capture.state) if self.capture is not None else None

    @property
    def dropped(self) -> int:
        """Frames dropped between capture and compositing plus those the source skipped."""
        return self.slot.dropped + (self.source.skipped if self.source is not None else 0)

    def _on_state(self, state: str, message: str) -> None:
        source_state = SourceState(state)
        kind = {
            SourceState.RECONNECTING: EventKind.WARNING,
            SourceState.ERROR: EventKind.ERROR,
        }.get(source_state, EventKind.STATE)
        if source_state is SourceState.ENDED and self.source is not None and self.source.damage:
            kind = EventKind.WARNING  # the file was cut off
        advice = None
        error = self.capture.last_error if self.capture is not None else None
        if kind is EventKind.ERROR and error is not None and str(error) == message:
            message, advice = explain(error)  # the advice apart, for the window to word
        message = message or f"Source {state}."
        self._emit(
            Event(kind, message, source_state=source_state, field=Field.SOURCE, advice=advice)
        )
