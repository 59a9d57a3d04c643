"""What the pipeline's worker reports, shown in the window: progress, start-up failures, the
pipeline's events (typed, :mod:`app.events`), frames and statistics.

:class:`PipelineFeedback` is a part of :class:`~app.ui.main_window.MainWindow` (a mixin): it uses
the widgets the window builds (``preview``, ``banners``, ``progress``, ``output_bar``,
``stats_bar``, ``quality_panel``, ``source_panel``, ``side_panel``, ``remedies``) and its state.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.events import Advice, Event, EventKind, Field, SourceState
from app.settings import SettingsError
from app.ui.controls import is_camera_spec
from app.ui.remedies import variant_name
from app.ui.store import PERSISTED_FIELDS
from app.ui.wording import for_window

if TYPE_CHECKING:
    from app.pipeline import Pipeline

log = logging.getLogger(__name__)

#: Key of the banner about a lost camera (one banner, replaced while it reconnects).
SOURCE_BANNER = "source"
#: Key of the banner saying why the pipeline could not start; it goes once one runs.
START_BANNER = "start"
TITLE = "mattecam"


class PipelineFeedback:
    """The window's handlers for the pipeline worker's signals and the statistics timer."""

    _pipeline: Pipeline | None

    def _on_weights_missing(self, variant: str, message: str) -> None:
        self.progress.done()
        log.info("Weights missing: %s", message)
        self.remedies.weights_missing(variant)
        if self._pipeline is None:
            self.preview.clear(f"The {variant_name(variant)} weights are missing.")

    def _on_progress(self, message: str, fraction: float) -> None:
        if self._pipeline is None:
            self.preview.set_message(message + "…")
        self.progress.set_progress(message, None if fraction < 0 else fraction)

    def _on_started(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self.progress.done()
        self.banners.dismiss_key(START_BANNER)  # Whatever kept it from starting is over.
        self.preview.set_message("Waiting for the first frame…")
        self._poll_stats()

    def _on_failed(self, reason: str, advice: Advice | None) -> None:
        self.progress.done()
        message = for_window(reason, advice)
        if self._pipeline is not None:
            self.banners.show_message("error", message)
            return
        self.banners.show_message("error", message, key=START_BANNER)
        self.stats_bar.clear()
        if is_camera_spec(self._settings.source):
            self.side_panel.show_tab("Source")
            message = self.source_panel.camera_failure()
            self.preview.set_action("Open video file…", self.source_panel.open_file)
        self.preview.clear(message)

    def _on_reverted(self, fields: dict) -> None:
        """The worker refused a change: show and remember the values that stay in force."""
        try:
            self._settings = self._settings.replace(**fields)
        except SettingsError:
            log.exception("The worker put back settings that are not valid")
            return
        self._store.save_settings(self._settings, [f for f in fields if f in PERSISTED_FIELDS])
        self._sync_panels()

    def _on_event(self, event: Event) -> None:
        kind, message = event.kind, for_window(event.message, event.advice)
        if kind is EventKind.PROGRESS:
            self.progress.set_progress(message, event.fraction)
            if event.fraction is not None and event.fraction >= 1.0:
                self.progress.done()
            return
        if kind in (EventKind.INFO, EventKind.ERROR) and self._pipeline is not None:
            self.progress.done()  # The step a progress event announced is over (or failed).
        if kind is EventKind.WARNING and event.field is Field.VIRTUAL_CAM:
            # One message with its remedy instead of the pipeline's; its reason is kept.
            self.remedies.vcam_unavailable(event.detail or None)
        elif event.source_state is SourceState.RECONNECTING:
            self.banners.show_message("warning", message, key=SOURCE_BANNER)
        elif kind in (EventKind.ERROR, EventKind.WARNING):
            self.banners.show_message(kind.value, message)
            recording = self.output_bar.recording
            if kind is EventKind.ERROR and event.field is Field.OUTPUT and recording:
                self.output_bar.set_recording(None)  # The recording could not go on.
                self._change(output=None)
        elif kind is EventKind.INFO:
            self.banners.show_message("info", message, timeout_ms=6000)
        else:
            self.stats_bar.set_source_detail(message)
            running = event.source_state is SourceState.RUNNING
            if running and self.banners.dismiss_key(SOURCE_BANNER):
                self.banners.show_message("info", "The camera is back.", timeout_ms=4000)

    def _on_frame(self) -> None:
        frame = self.mailbox.take()
        if frame is None or self._closed:
            return
        split = frame.view == "side-by-side"
        self.preview.set_image(frame.image, split=split)
        width = frame.image.width() // (2 if split else 1)
        self._frame_size = (width, frame.image.height())
        if self._snapshot is not None:
            self._snapshot.frame_shown(self.preview.frames_shown)

    def _on_cameras(self, cameras: list) -> None:
        self.source_panel.set_cameras(cameras)

    def _poll_stats(self) -> None:
        pipeline = self._pipeline
        self._show_recording()
        if pipeline is None:
            return
        try:
            stats = pipeline.stats()
        except Exception:
            log.exception("Reading the statistics failed")
            return
        self.stats_bar.show_stats(stats)
        self.quality_panel.show_in_use(str(stats.internal_resolution), self._frame_size)
        self.remedies.vcam_state(stats.vcam, stats.vcam_device, stats.vcam_problem)
        if not pipeline.running:
            self._pipeline = None
            self.stats_bar.clear()
            self.preview.set_message("The source ended. Pick a source to start again.")

    def _show_recording(self) -> None:
        """Recording shows in red over the preview (in every view, in full screen) and in the
        title."""
        elapsed = self.output_bar.tick()
        self.preview.set_recording(f"REC {elapsed}" if elapsed else None)
        title = f"● Recording {elapsed} — {TITLE}" if elapsed else TITLE
        if self.windowTitle() != title:
            self.setWindowTitle(title)
