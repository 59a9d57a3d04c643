"""The main window: the preview dominates; backgrounds, source and quality sit in a side panel;
the virtual camera and recording under the preview; statistics along the bottom.

The window owns one :class:`~app.ui.workers.PipelineWorker` (on its own thread) and talks to it
only through queued signals; frames arrive through a :class:`~app.ui.workers.FrameMailbox`. What
the worker reports is shown by :class:`~app.ui.pipeline_feedback.PipelineFeedback`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.settings import Background, Settings, SettingsError
from app.ui.frames import FrameMailbox
from app.ui.fullscreen import FullScreen
from app.ui.output_panel import OutputBar
from app.ui.pipeline_feedback import TITLE, PipelineFeedback
from app.ui.preview import PreviewWidget
from app.ui.remedies import Remedies, checkpoint_for
from app.ui.shortcuts import HelpDialog, install_shortcuts
from app.ui.side_panel import SidePanel
from app.ui.snapshot import ScreenshotPlan, Snapshot
from app.ui.stats_bar import StatsBar
from app.ui.store import Store
from app.ui.thumbnails import Io
from app.ui.view_bar import VIEW_KEYS, ViewBar
from app.ui.widgets import BannerArea, OverlayStack, ProgressRow
from app.ui.workers import PipelineWorker, start_thread, stop_thread

if TYPE_CHECKING:
    from app.pipeline import Pipeline

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[2] / "assets"
STATS_INTERVAL_MS = 500
SHUTDOWN_TIMEOUT_MS = 15_000


class MainWindow(PipelineFeedback, QMainWindow):
    """mattecam's window.

    Args:
        settings: what to start with (already merged with the remembered values).
        store: where changes are remembered.
        vcam_backend: virtual camera backend name for the pipeline (None: any installed driver).
        assets: folder with ``backgrounds/`` and ``icon.png``.
        fetch: returns the weights of a variant with progress (``app.matting.weights.fetch``).
        screenshot: pictures to take of the window once it shows frames; it closes after.
    """

    _apply = Signal(object)
    _reset = Signal()
    _shutdown = Signal()

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        vcam_backend: str | None = None,
        assets: Path = ASSETS,
        fetch: Callable[..., Path] | None = None,
        screenshot: ScreenshotPlan | None = None,
    ) -> None:
        super().__init__()
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle(TITLE)
        icon = assets / "icon.png"
        if icon.is_file():
            self.setWindowIcon(QIcon(str(icon)))
        self.setMinimumSize(900, 560)
        self._store = store
        if settings.checkpoint is None:  # Weights the user chose by hand earlier.
            settings = settings.replace(checkpoint=checkpoint_for(store, settings.variant))
        self._settings = settings
        self._frame_size: tuple[int, int] | None = None  # The camera frame's, once one is shown.
        self._pipeline = None
        self._closed = False
        self._last_background = (
            settings.background if settings.background.kind != "none" else Background()
        )
        self._snapshot: Snapshot | None = None
        #: 1 when a requested screenshot could not be taken (set on close), else 0.
        self.exit_code = 0
        self._help: HelpDialog | None = None

        self.io = Io(self)
        self.mailbox = FrameMailbox(self)
        view = store.text("view", "result")
        self.mailbox.view = view if view in VIEW_KEYS else "result"
        self._build(settings, assets)
        self._build_actions()

        self.worker = PipelineWorker(self.mailbox, vcam_backend=vcam_backend, fetch=fetch)
        self._worker_thread = start_thread(self.worker, "mattecam-pipeline")
        queued = Qt.ConnectionType.QueuedConnection
        self._apply.connect(self.worker.apply, queued)
        self._reset.connect(self.worker.reset_state, queued)
        self._shutdown.connect(self.worker.shutdown, queued)
        self.worker.progress.connect(self._on_progress, queued)
        self.worker.started.connect(self._on_started, queued)
        self.worker.failed.connect(self._on_failed, queued)
        self.worker.event.connect(self._on_event, queued)
        self.worker.reverted.connect(self._on_reverted, queued)
        self.worker.weights_missing.connect(self._on_weights_missing, queued)
        self.mailbox.frame_ready.connect(self._on_frame, queued)
        self.io.worker.cameras_listed.connect(self._on_cameras, queued)

        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(STATS_INTERVAL_MS)
        self._stats_timer.timeout.connect(self._poll_stats)
        self._stats_timer.start()
        if screenshot:
            plan, tabs = screenshot, self.tabs
            self._snapshot = Snapshot(
                self, plan.path, plan.frames, self._poll_stats, sizes=list(plan.sizes), tabs=tabs
            )

        self.io.request_cameras()
        self.progress.set_progress("Preparing the matting model", None)
        self._apply.emit(settings)

    # --- building --------------------------------------------------------------------------------

    def _build(self, settings: Settings, assets: Path) -> None:
        self.preview = PreviewWidget()
        self.preview.set_mirrored(self._store.flag("preview_mirror"))
        self.preview.double_clicked.connect(self.toggle_fullscreen)
        self.banners = BannerArea()
        self.progress = ProgressRow()
        self.output_bar = OutputBar()
        self.output_bar.set_vcam_requested(settings.virtual_cam)
        self.output_bar.vcam_toggled.connect(lambda on: self._change(virtual_cam=on))
        self.output_bar.set_vcam_backend(settings.vcam_backend)
        self.output_bar.vcam_backend_changed.connect(lambda b: self._change(vcam_backend=b))
        self.output_bar.record_toggled.connect(lambda path: self._change(output=path))
        if settings.output:  # Started with --output: the recording runs from the first frame.
            self.output_bar.set_recording(settings.output)

        self.view_bar = ViewBar(self.mailbox.view, self.preview.mirrored)
        self.view_bar.view_chosen.connect(self.set_view)
        self.view_bar.mirror_toggled.connect(self.set_preview_mirrored)
        self.view_bar.fullscreen_clicked.connect(self.toggle_fullscreen)
        self.view_bar.help_clicked.connect(self.show_help)

        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(8, 8, 4, 8)
        column.setSpacing(6)
        column.addWidget(self.view_bar)
        column.addWidget(self.progress)
        column.addWidget(OverlayStack(self.preview, self.banners), 1)
        column.addWidget(self.output_bar)

        self.side_panel = SidePanel(self.io, settings, self._store, assets / "backgrounds")
        self.tabs = self.side_panel.tabs
        self.backgrounds = self.side_panel.backgrounds
        self.backgrounds.background_chosen.connect(self._on_background_chosen)
        self.backgrounds.problem.connect(lambda text: self.banners.show_message("error", text))
        self.source_panel = self.side_panel.source_panel
        self.source_panel.changed.connect(lambda changes: self._change(**changes))
        self.source_panel.refresh_requested.connect(self.io.request_cameras)
        self.quality_panel = self.side_panel.quality_panel
        self.quality_panel.changed.connect(lambda changes: self._change(**changes))
        self.quality_panel.reset_requested.connect(self._on_reset)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.side_panel)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(0, False)
        self.splitter.setSizes([1040, 380])
        splitter = self._store.blob("splitter")  # Where the user left the divider.
        if splitter is not None:
            self.splitter.restoreState(splitter)
        self.setCentralWidget(self.splitter)
        self.stats_bar = StatsBar()
        self.statusBar().addPermanentWidget(self.stats_bar, 1)
        self.statusBar().setSizeGripEnabled(True)
        self.remedies = Remedies(self.banners, self.output_bar, self._store, self._change)
        chrome = (self.side_panel, self.view_bar, self.output_bar, self.statusBar())
        self._fullscreen = FullScreen(self, self.preview, chrome)

    def _build_actions(self) -> None:
        handlers: dict[str, Callable[[], None]] = {
            "toggle_background": self.toggle_background,
            "next_background": lambda: self.backgrounds.step(1),
            "previous_background": lambda: self.backgrounds.step(-1),
            "toggle_vcam": self.output_bar.vcam_switch.toggle,
            "toggle_record": self.output_bar.toggle_recording,
            "fullscreen": self.toggle_fullscreen,
            "mirror": lambda: self.set_preview_mirrored(not self.preview.mirrored),
            "view_result": lambda: self.set_view("result"),
            "view_alpha": lambda: self.set_view("alpha"),
            "view_side": lambda: self.set_view("side-by-side"),
            "help": self.show_help,
            "quit": self.close,
        }
        handlers["leave_fullscreen"] = self.leave_fullscreen
        self.actions_by_name: dict[str, QAction] = install_shortcuts(self, handlers)

    # --- state -----------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The settings the window asked for last."""
        return self._settings

    @property
    def store(self) -> Store:
        """Where the window remembers settings."""
        return self._store

    @property
    def pipeline(self) -> Pipeline | None:
        """The running :class:`~app.pipeline.Pipeline`, or None."""
        return self._pipeline

    def _change(self, persist: bool = True, **changes: object) -> None:
        """Applies changed settings: checked, remembered, handed to the pipeline."""
        if "variant" in changes and "checkpoint" not in changes:
            changes["checkpoint"] = checkpoint_for(self._store, str(changes["variant"]))
        try:
            new = self._settings.replace(**changes)
        except SettingsError as e:
            self.banners.show_message("error", str(e))
            self._sync_panels()
            return
        if new == self._settings:
            return
        self._settings = new
        if persist:
            self._store.save_settings(new, changes.keys())
        if "source" in changes and self._pipeline is None:
            self.progress.set_progress("Opening the source", None)
        self._apply.emit(new)

    def _sync_panels(self) -> None:
        s = self._settings
        self.source_panel.set_settings(s)
        self.quality_panel.set_settings(s)
        self.backgrounds.select(s.background)
        self.output_bar.set_vcam_requested(s.virtual_cam)
        self.output_bar.set_vcam_backend(s.vcam_backend)

    def set_view(self, view: str) -> None:
        """Switches the preview between ``result``, ``alpha`` and ``side-by-side``."""
        if view not in VIEW_KEYS:
            return
        self.mailbox.view = view
        self.view_bar.set_view(view)
        self._store.set_text("view", view)

    def set_preview_mirrored(self, mirror: bool) -> None:
        """Mirrors the preview only (outputs stay as they are)."""
        self.preview.set_mirrored(mirror)
        self.view_bar.set_mirrored(mirror)
        self._store.set_flag("preview_mirror", mirror)

    def toggle_background(self) -> None:
        """Switches between no background replacement and the last background used."""
        current = self._settings.background
        target = self._last_background if current.kind == "none" else Background(kind="none")
        self.backgrounds.select(target)
        self._on_background_chosen(target)

    def _on_background_chosen(self, background: Background) -> None:
        if background.kind != "none":
            self._last_background = background
        self.side_panel.remember(background)
        self._change(background=background)

    def _on_reset(self) -> None:
        self._reset.emit()
        self.banners.show_message("info", "The cut-out starts afresh.", timeout_ms=4000)

    # --- full screen and help --------------------------------------------------------------------

    def toggle_fullscreen(self) -> None:
        """Shows only the preview on the whole screen, or returns to the normal window."""
        self._fullscreen.toggle()

    def leave_fullscreen(self) -> None:
        """Returns from the full-screen preview."""
        self._fullscreen.leave()

    @property
    def preview_fullscreen(self) -> bool:
        """Whether the full-screen preview is on."""
        return self._fullscreen.active

    def show_help(self) -> None:
        """Opens the list of keyboard shortcuts."""
        if self._help is None:
            self._help = HelpDialog(self)
        self._help.show()
        self._help.raise_()

    @property
    def help_dialog(self) -> HelpDialog | None:
        """The shortcuts dialog, once opened."""
        return self._help

    # --- closing ---------------------------------------------------------------------------------

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.WindowStateChange:
            self._fullscreen.window_state_changed()
        super().changeEvent(event)

    def shut_down(self) -> None:
        """Stops the pipeline and every worker thread; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stats_timer.stop()
        if not self._fullscreen.active:
            self._store.set_geometry(self.saveGeometry())
            self._store.set_blob("splitter", self.splitter.saveState())
        self._store.sync()
        self.worker.cancel()
        self._shutdown.emit()
        if not self._worker_thread.wait(SHUTDOWN_TIMEOUT_MS):
            log.error("The pipeline did not stop within %d s.", SHUTDOWN_TIMEOUT_MS // 1000)
            stop_thread(self._worker_thread, 1000)
        self._pipeline = None
        self.mailbox.close()
        self.io.close()
        if self._help is not None:
            self._help.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shut_down()
        event.accept()
        app = QApplication.instance()
        if self._snapshot is not None:
            self.exit_code = 0 if self._snapshot.ok else 1
            if app is not None:
                QTimer.singleShot(0, app.quit)
