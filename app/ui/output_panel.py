"""The bar under the preview: the virtual-camera switch with its state, and recording."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from app.events import VcamState
from app.ui.dialogs import Folder, start_folder
from app.ui.shortcuts import hint
from app.ui.widgets import ToggleSwitch


def vcam_guidance() -> str:
    """What to do when no virtual camera driver is installed."""
    from app.output.virtualcam import guidance

    return guidance()


def vcam_routes() -> list[tuple[str, str]]:
    """The virtual camera routes offered here: ``(settings value, label)``, automatic first."""
    from app.output.virtualcam import VcamBackend, available_backends

    here = set(available_backends())
    return [
        (route.value, route.label)
        for route in VcamBackend
        if route.registry_name is None or route.registry_name in here
    ]


#: The switch's state when no driver could be opened.
UNAVAILABLE = "No driver found"


def default_recording_path() -> str:
    """A fresh file name in the user's videos folder (made when missing)."""
    name = time.strftime("mattecam-%Y%m%d-%H%M%S.mp4")
    return str(start_folder(Folder.VIDEOS, create=True) / name)


class OutputBar(QFrame):
    """Virtual camera on/off with its state, and start/stop recording.

    Signals:
        vcam_toggled(bool): the user switched the virtual camera.
        vcam_backend_changed(str): the user picked a virtual camera route (``auto``,
            ``pipewire``, ``v4l2``, ``obs``).
        record_toggled(object): a file to record to, or None to stop.
    """

    vcam_toggled = Signal(bool)
    vcam_backend_changed = Signal(str)
    record_toggled = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("previewBar")
        #: Asks where to record; None when cancelled (replaceable for tests).
        self.ask_record_path: Callable[[], str | None] = self._ask_record_path
        self._recording: str | None = None
        self._unavailable = False
        self._record_started = 0.0

        self.vcam_switch = ToggleSwitch()
        self.vcam_switch.toggled.connect(self._on_switch)
        self.vcam_switch.setToolTip(
            "Send the picture to a virtual webcam that meeting apps can pick" + hint("toggle_vcam")
        )
        title = QLabel("Virtual camera")
        title.setBuddy(self.vcam_switch)
        self.vcam_route = QComboBox()
        self.vcam_route.setAccessibleName("Virtual camera route")
        self.vcam_route.setToolTip(
            "How the picture reaches apps: PipeWire (no driver needed on GNOME or KDE with "
            "Wayland), the v4l2loopback driver, or the OBS Virtual Camera; Automatic picks the "
            "best one this computer has"
        )
        for value, label in vcam_routes():
            self.vcam_route.addItem(label, value)
        self.vcam_route.activated.connect(self._on_route)
        self.vcam_status = QLabel("Off")
        self.vcam_status.setObjectName("muted")
        self.vcam_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.record_button = QPushButton("Record…")
        self.record_button.setObjectName("recordButton")
        self.record_button.setCheckable(True)
        self.record_button.clicked.connect(self._on_record)
        self.record_button.setToolTip("Record the result to a video file" + hint("toggle_record"))
        self.record_status = QLabel("")
        self.record_status.setObjectName("recording")

        row = QHBoxLayout(self)
        row.setContentsMargins(8, 6, 8, 6)
        row.addWidget(self.vcam_switch, 0, Qt.AlignmentFlag.AlignVCenter)
        row.addWidget(title)
        row.addWidget(self.vcam_route)
        row.addWidget(self.vcam_status, 1)
        row.addSpacing(12)
        row.addWidget(self.record_status)
        row.addWidget(self.record_button)

    # --- virtual camera --------------------------------------------------------------------------

    def set_vcam_requested(self, on: bool) -> None:
        """Sets the switch without announcing it."""
        self.vcam_switch.blockSignals(True)
        self.vcam_switch.setChecked(on)
        self.vcam_switch.blockSignals(False)
        if on and self.vcam_status.text() == "Off":
            self.vcam_status.setText("Starting…")
        elif not on and not self._unavailable:
            self.vcam_status.setText("Off")

    def set_vcam_backend(self, value: str) -> None:
        """Shows the chosen route (a settings value) without announcing it."""
        index = self.vcam_route.findData(value)
        if index >= 0:
            self.vcam_route.setCurrentIndex(index)

    def _on_route(self, index: int) -> None:
        self.vcam_backend_changed.emit(str(self.vcam_route.itemData(index)))

    def set_vcam_state(self, state: VcamState, device: str = "", problem: str = "") -> None:
        """Shows the pipeline's virtual-camera state.

        Args:
            state: on, off or unavailable.
            device: the device it sends to, while on.
            problem: what keeps its frames from apps while it retries, empty when nothing.
        """
        if state is VcamState.ON:
            self.vcam_status.setText(" — ".join(["On", *(t for t in (device, problem) if t)]))
        elif state is VcamState.UNAVAILABLE:
            self.show_unavailable()
        elif not self.vcam_switch.isChecked() and not self._unavailable:
            self.vcam_status.setText("Off")

    def show_unavailable(self) -> None:
        """Turns the switch off and says, in a few words, that there is no driver (the window's
        message above the preview says what to do)."""
        self.set_vcam_requested(False)
        self._unavailable = True
        self.vcam_status.setText(UNAVAILABLE)

    def _on_switch(self, on: bool) -> None:
        self._unavailable = False
        self.vcam_status.setText("Starting…" if on else "Off")
        self.vcam_toggled.emit(on)

    # --- recording -------------------------------------------------------------------------------

    @property
    def recording(self) -> str | None:
        """The file being recorded, or None."""
        return self._recording

    def set_recording(self, path: str | None) -> None:
        """Shows whether a recording runs, without announcing it."""
        self._recording = path
        self.record_button.setChecked(path is not None)
        self.record_button.setText("Stop recording" if path else "Record…")
        if path:
            self._record_started = time.monotonic()
            self.record_status.setText(f"Recording to {Path(path).name}")
        else:
            self.record_status.setText("")

    def tick(self) -> str | None:
        """Updates the recording time.

        Returns:
            How long the recording runs (``0:09``), or None when none runs.
        """
        if not self._recording:
            return None
        seconds = int(time.monotonic() - self._record_started)
        elapsed = f"{seconds // 60}:{seconds % 60:02d}"
        self.record_status.setText(f"● {elapsed}  {Path(self._recording).name}")
        return elapsed

    def toggle_recording(self) -> None:
        """Starts recording (asking for a file) or stops it."""
        if self._recording:
            self.set_recording(None)
            self.record_toggled.emit(None)
            return
        path = self.ask_record_path()
        if not path:
            self.set_recording(None)
            return
        if not Path(path).suffix:
            path += ".mp4"
        self.set_recording(path)
        self.record_toggled.emit(path)

    def _on_record(self, _checked: bool) -> None:
        self.toggle_recording()

    def _ask_record_path(self) -> str | None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Record to a file", default_recording_path(), "MP4 video (*.mp4)"
        )
        return path or None
