"""The outputs of the live pipeline: the virtual camera and the recording, opened, switched and
rolled over while running.

A recording carries on across a source switch when the new source has its frame size; one of
another size starts a second file beside it (``name-2.mp4``) rather than overwriting the first.
"""

from __future__ import annotations

import numpy as np

from app.capture.base import FrameSource
from app.events import Emit, Event, EventKind, Field, VcamState
from app.output.base import OutputError, Sink
from app.output.recorder import Recorder, unused_path
from app.output.virtualcam import (
    VcamBackend,
    VirtualCameraSink,
    VirtualCameraUnavailable,
    backend_label,
)
from app.settings import Settings

VCAM_FIELDS = ("virtual_cam", "vcam_device", "vcam_backend")


class Outputs:
    """The virtual camera and the recorder of one run.

    Args:
        emit: where news and problems go.
        vcam_backend: the backend used while the settings' ``vcam_backend`` is ``auto`` (tests
            register a fake one); None picks the best one this machine has.
    """

    def __init__(self, emit: Emit, vcam_backend: str | None = None) -> None:
        self.vcam: VirtualCameraSink | None = None
        self.vcam_state = VcamState.OFF
        self.recorder: Recorder | None = None
        self._emit = emit
        self._vcam_backend = vcam_backend

    @property
    def vcam_device(self) -> str:
        """The virtual camera's device and backend, empty while it is off."""
        if self.vcam is None:
            return ""
        return f"{self.vcam.device} ({backend_label(self.vcam.backend)})"

    @property
    def vcam_problem(self) -> str:
        """What keeps the virtual camera's frames from apps while it retries, else empty."""
        return (self.vcam.problem or "") if self.vcam is not None else ""

    def open_recorder(self, s: Settings, source: FrameSource, path: str | None = None) -> None:
        """Starts recording at ``path`` (default: the settings' output) in the source's format.

        Raises:
            OutputError: the recording cannot be written there.
            ValueError: the source's format cannot be recorded.
        """
        self.recorder = Recorder(
            path or s.output,
            source.width,
            source.height,
            source.fps or 30.0,
            mbps=s.output_mbps,
            rgba=s.background.has_alpha,
        )
        for note in self.recorder.notes:  # earlier unfinished files, a size the encoder changed
            event = Event(EventKind.WARNING, note, field=Field.OUTPUT, path=str(self.recorder.path))
            self._emit(event)

    def open_vcam(self, s: Settings, source: FrameSource) -> None:
        """Turns the virtual camera on; without a driver it stays off and says what to install."""
        route = VcamBackend(s.vcam_backend)
        try:
            self.vcam = VirtualCameraSink(
                source.width,
                source.height,
                source.fps or 30.0,
                device=s.vcam_device,
                backend=route.registry_name or self._vcam_backend,
            )
        except (VirtualCameraUnavailable, OutputError) as exc:
            self.vcam, self.vcam_state = None, VcamState.UNAVAILABLE
            reason = exc.reason if isinstance(exc, VirtualCameraUnavailable) else str(exc)
            event = Event(EventKind.WARNING, str(exc), field=Field.VIRTUAL_CAM, detail=reason or "")
            self._emit(event)
            return
        self.vcam_state = VcamState.ON
        message = f"Virtual camera on: {self.vcam_device}."
        self._emit(Event(EventKind.INFO, message, field=Field.VIRTUAL_CAM))

    def apply(self, new: Settings, cur: Settings, source: FrameSource, switched: bool) -> None:
        """Brings the outputs in line with ``new`` (the settings were ``cur``).

        Args:
            new: the settings to apply.
            cur: the settings in force so far.
            source: the source in use now.
            switched: the source changed.
        """
        if any(getattr(new, f) != getattr(cur, f) for f in VCAM_FIELDS):
            if self.vcam is not None:
                self.vcam.close()
                self.vcam, self.vcam_state = None, VcamState.OFF
            if new.virtual_cam:
                self.open_vcam(new, source)
        if new.output == cur.output and not switched:
            return
        recorder = self.recorder
        same_take = recorder is not None and new.output == cur.output
        if same_take and recorder.frame_size == (source.width, source.height):
            return
        if recorder is not None:
            self.finish_recording()
        if new.output:
            path = str(unused_path(new.output)) if same_take else new.output
            try:
                self.open_recorder(new, source, path)
            except (OutputError, ValueError) as exc:
                self._recording_error(str(exc), path)
                return
            self._emit(
                Event(EventKind.INFO, f"Recording to {path}.", field=Field.OUTPUT, path=path)
            )

    def finish_recording(self) -> None:
        """Closes the recording, which puts the file in place."""
        recorder, self.recorder = self.recorder, None
        try:
            recorder.close()
        except OutputError as exc:
            self._recording_error(str(exc), str(recorder.path))
            return
        message = f"Recording saved: {recorder.path}."
        self._emit(Event(EventKind.INFO, message, field=Field.OUTPUT, path=str(recorder.path)))

    def send(self, composite: np.ndarray, stamp: float | None) -> None:
        """Passes a composite to every open output; an output that fails is reported and dropped."""
        for sink in (self.vcam, self.recorder):
            if sink is None:
                continue
            try:
                sink.send(composite, stamp)
            except (OutputError, ValueError) as exc:
                self._drop(sink, str(exc))

    def close(self) -> None:
        """Closes the virtual camera and finishes the recording; safe twice."""
        for sink in (self.vcam, self.recorder):
            if sink is None:
                continue
            try:
                sink.close()
            except OutputError as exc:
                if sink is self.recorder:
                    self._recording_error(str(exc), str(sink.path))
                else:
                    self._emit(Event(EventKind.ERROR, str(exc), field=Field.VIRTUAL_CAM))
        self.vcam = self.recorder = None
        if self.vcam_state is VcamState.ON:
            self.vcam_state = VcamState.OFF

    def _recording_error(self, message: str, path: str) -> None:
        event = Event(EventKind.ERROR, message, field=Field.OUTPUT, path=path)
        self._emit(event)

    def _drop(self, sink: Sink, message: str) -> None:
        if sink is self.vcam:
            self.vcam, self.vcam_state = None, VcamState.UNAVAILABLE
            self._emit(Event(EventKind.ERROR, message, field=Field.VIRTUAL_CAM))
        elif sink is self.recorder:
            self.recorder = None
            try:  # what was recorded is kept (a full disk), or the partial file goes
                sink.close()
            except OutputError as exc:
                message = str(exc)  # says what became of the file
            self._recording_error(message, str(sink.path))
