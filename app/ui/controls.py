"""The Source tab. It reflects the settings it is given and announces the user's changes as
``{field: value}`` dictionaries for :meth:`Settings.replace`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from app.settings import Settings, parse_resolution
from app.ui.dialogs import Folder, start_folder

RESOLUTIONS: tuple[tuple[int, int], ...] = ((640, 360), (640, 480), (1280, 720), (1920, 1080))
FRAME_RATES: tuple[float, ...] = (15.0, 24.0, 30.0, 60.0)
VIDEO_FILTER = "Videos ({});;Images ({})".format(
    " ".join(f"*{s}" for s in VIDEO_SUFFIXES), " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
)


def is_camera_spec(source: str) -> bool:
    """Whether a ``--source`` value names a camera (an index or a device node)."""
    text = source.strip()
    return text.isdigit() or text.startswith("/dev/video")


def describe_source(source: str) -> str:
    """A short name for a non-camera source, for the source list."""
    if source.startswith("synthetic"):
        return "Test picture (synthetic)"
    path = Path(source)
    kind = (
        "Folder" if path.is_dir() else "Image" if path.suffix.lower() in IMAGE_SUFFIXES else "Video"
    )
    return f"{kind}: {path.name}"


def set_combo(combo: QComboBox, data: object, label: str | None = None) -> None:
    """Selects the entry holding ``data``; adds one (named ``label``) when there is none."""
    index = combo.findData(data)
    if index < 0:
        combo.addItem(label or str(data), data)
        index = combo.count() - 1
    combo.blockSignals(True)
    combo.setCurrentIndex(index)
    combo.blockSignals(False)


class SourcePanel(QWidget):
    """Camera list (with refresh), a video file as source, resolution and frame rate.

    Signals:
        changed(dict): new values for ``source``, ``loop``, ``resolution`` or ``fps``.
        refresh_requested(): list the cameras again.
    """

    changed = Signal(dict)
    refresh_requested = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        #: Asks the user for a video file; None when cancelled (replaceable for tests).
        self.ask_video_file: Callable[[], str | None] = self._ask_video_file
        self._cameras: list = []
        self._source = settings.source

        self.camera_combo = QComboBox()
        self.camera_combo.setToolTip("The camera (or file) the picture comes from")
        # A long file name is shortened in the list instead of widening the whole tab.
        self.camera_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.camera_combo.setMinimumContentsLength(12)
        self.camera_combo.activated.connect(self._on_source_picked)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Look for cameras again")
        self.refresh_button.clicked.connect(self.refresh_requested)
        self.open_button = QPushButton("Open video file…")
        self.open_button.setToolTip("Use a video file as the camera (it plays in a loop)")
        self.open_button.clicked.connect(self.open_file)
        self.no_camera = QLabel(
            "No camera found. Connect one and press Refresh, or open a video file to use instead."
        )
        self.no_camera.setObjectName("notice")
        self.no_camera.setWordWrap(True)
        self.no_camera.hide()

        # Combo data are strings ("" for the source's own value): Qt compares them reliably.
        self.resolution_combo = QComboBox()
        self.resolution_combo.addItem("Source default", "")
        for w, h in RESOLUTIONS:
            self.resolution_combo.addItem(f"{w} × {h}", f"{w}x{h}")
        self.resolution_combo.setToolTip("The picture size asked of the camera")
        self.resolution_combo.activated.connect(self._on_resolution)
        self.fps_combo = QComboBox()
        self.fps_combo.addItem("Source default", "")
        for fps in FRAME_RATES:
            self.fps_combo.addItem(f"{fps:g} fps", f"{fps:g}")
        self.fps_combo.setToolTip("The frame rate asked of the camera")
        self.fps_combo.activated.connect(self._on_fps)

        camera_row = QHBoxLayout()
        camera_row.addWidget(self.camera_combo, 1)
        camera_row.addWidget(self.refresh_button)
        box = QGroupBox("Camera")
        form = QVBoxLayout(box)
        form.addLayout(camera_row)
        form.addWidget(self.no_camera)
        form.addWidget(self.open_button)
        fmt = QGroupBox("Format")
        fmt_form = QFormLayout(fmt)
        fmt_form.addRow("Resolution", self.resolution_combo)
        fmt_form.addRow("Frame rate", self.fps_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(box)
        layout.addWidget(fmt)
        layout.addStretch(1)
        self.set_settings(settings)

    def set_cameras(self, cameras: Sequence[object]) -> None:
        """Fills the list with cameras (objects with ``name`` and ``spec``)."""
        self._cameras = list(cameras)
        self.no_camera.setVisible(not self._cameras)
        self._fill_sources()

    def camera_failure(self) -> str:
        """What the preview says when the camera in use could not be opened."""
        if self._cameras:
            return f"Camera {self._source} could not be opened. Pick another camera in Source."
        return (
            "No camera found. Open a video file to use instead, or connect a camera and press "
            "Refresh in Source."
        )

    @property
    def cameras(self) -> list:
        """The cameras last listed."""
        return list(self._cameras)

    def set_settings(self, settings: Settings) -> None:
        """Shows ``settings`` without announcing a change."""
        self._source = settings.source
        self._fill_sources()
        res = settings.resolution
        res_key = "{}x{}".format(*res) if res else ""
        set_combo(self.resolution_combo, res_key, "{} × {}".format(*res) if res else None)
        fps_key = f"{settings.fps:g}" if settings.fps else ""
        set_combo(self.fps_combo, fps_key, f"{fps_key} fps")

    def _on_resolution(self, _index: int) -> None:
        key = self.resolution_combo.currentData()
        self.changed.emit({"resolution": parse_resolution(key) if key else None})

    def _on_fps(self, _index: int) -> None:
        key = self.fps_combo.currentData()
        self.changed.emit({"fps": float(key) if key else None})

    def _fill_sources(self) -> None:
        combo = self.camera_combo
        combo.blockSignals(True)
        combo.clear()
        for cam in self._cameras:
            combo.addItem(f"{cam.name}", cam.spec)
        specs = [cam.spec for cam in self._cameras]
        numbered = {str(getattr(cam, "index", "")) for cam in self._cameras}
        current = self._source
        if current not in specs and current not in numbered:
            label = f"Camera {current}" if is_camera_spec(current) else describe_source(current)
            combo.addItem(label, current)
        for i in range(combo.count()):  # The full name where the list shortens it.
            combo.setItemData(i, str(combo.itemData(i)), Qt.ItemDataRole.ToolTipRole)
        index = combo.findData(current)
        if index < 0 and current in numbered:
            index = next(i for i, cam in enumerate(self._cameras) if str(cam.index) == current)
        combo.setCurrentIndex(max(index, 0))
        combo.blockSignals(False)

    def _on_source_picked(self, index: int) -> None:
        spec = self.camera_combo.itemData(index)
        if spec and spec != self._source:
            self._source = spec
            self.changed.emit({"source": spec, "loop": not is_camera_spec(spec)})

    def open_file(self) -> None:
        """Asks for a video file and makes it the source."""
        path = self.ask_video_file()
        if path:
            self._source = path
            self._fill_sources()
            self.changed.emit({"source": path, "loop": True})

    def _ask_video_file(self) -> str | None:
        folder = str(start_folder(Folder.VIDEOS))
        path, _ = QFileDialog.getOpenFileName(self, "Open a video file", folder, VIDEO_FILTER)
        return path or None
