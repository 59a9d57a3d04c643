"""The Quality tab: a simple choice first (Smoothest / Balanced / Sharpest, each saying what it
costs), the expert controls behind "Advanced settings", and the detail actually in use where it
differs from the chosen one, with the reason.

It reflects the settings it is given and announces the user's changes as ``{field: value}``
dictionaries for :meth:`Settings.replace`.
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.settings import Settings
from app.ui.controls import set_combo

VARIANT_LABELS = {
    "mobilenetv3": "MobileNetV3 — fast",
    "resnet50": "ResNet-50 — finer, slow without a GPU",
}
DEVICE_LABELS = {
    "auto": "Automatic",
    "cpu": "Processor (CPU)",
    "cuda": "NVIDIA graphics card",
    "mps": "Apple graphics",
}
PRECISION_LABELS = {
    "auto": "Automatic",
    "fp32": "Full (32-bit)",
    "fp16": "Half (16-bit) — faster on a graphics card",
}
DETAIL_MODES = {
    "portrait": "Auto, upper body",
    "full_body": "Auto, whole body",
    "manual": "Fixed",
}
SYNC_LABELS = {
    "aligned": "Every camera frame, its cut-out moved to it",
    "smooth": "Every camera frame, newest cut-out",
    "exact": "Only frames with their own cut-out",
}
HOLD_TEXT = "Lower detail to keep up"
#: The automatic detail of a frame whose size is not known yet (RVM's 720p portrait ratio).
DEFAULT_RATIO = 0.375


@dataclass(frozen=True)
class PresetInfo:
    """What a simple choice sets, and what it costs, in a user's words."""

    title: str
    cost: str
    hold_fps: bool
    sync: str


class Preset(enum.Enum):
    """The simple choices of the Quality tab."""

    SMOOTHEST = PresetInfo(
        "Smoothest",
        "Every camera frame, at the camera's rate and a moment late, so the cut-out follows "
        "movement. Detail drops while the computer is busy.",
        hold_fps=True,
        sync="aligned",
    )
    BALANCED = PresetInfo(
        "Balanced",
        "Every camera frame, steady detail. A quick movement can leave a short halo.",
        hold_fps=False,
        sync="aligned",
    )
    SHARPEST = PresetInfo(
        "Sharpest",
        "Each frame waits for its own cut-out: no halo, but fewer frames on a slow computer.",
        hold_fps=False,
        sync="exact",
    )

    @classmethod
    def of(cls, settings: Settings) -> Preset | None:
        """The choice ``settings`` match, or None (the user's own mix)."""
        for preset in cls:
            if (preset.value.hold_fps, preset.value.sync) == (settings.hold_fps, settings.sync):
                return preset
        return None


def percent(ratio: float) -> str:
    """``87 %`` (kept on one line)."""
    return f"{round(ratio * 100)}\u00a0%"


def offered_devices() -> dict[str, str]:
    """The devices that can run here, with their labels."""
    from app.matting.factory import available_devices

    return {k: DEVICE_LABELS[k] for k in available_devices() if k in DEVICE_LABELS}


def offered_precisions(devices: dict[str, str]) -> dict[str, str]:
    """The precisions worth offering: half precision only where a graphics card runs."""
    gpu = any(k in devices for k in ("cuda", "mps"))
    return {k: v for k, v in PRECISION_LABELS.items() if k != "fp16" or gpu}


class QualityPanel(QWidget):
    """The simple choice, the effective detail and the advanced settings.

    Signals:
        changed(dict): new values for ``variant``, ``device``, ``precision``,
            ``downsample_ratio``, ``full_body``, ``hold_fps`` or ``sync``.
        reset_requested(): forget the network's memory of earlier frames.
    """

    changed = Signal(dict)
    reset_requested = Signal()

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._ratio_in_use: float | None = None
        self._frame: tuple[int, int] | None = None
        self._internal = (0, 0)

        simple = QGroupBox("Picture")
        simple_layout = QVBoxLayout(simple)
        self.presets = QButtonGroup(self)
        self.preset_buttons: dict[Preset, QRadioButton] = {}
        for i, preset in enumerate(Preset):
            button = QRadioButton(preset.value.title)
            cost = QLabel(preset.value.cost)
            cost.setObjectName("muted")
            cost.setWordWrap(True)
            cost.setContentsMargins(22, 0, 0, 4)
            self.presets.addButton(button, i)
            self.preset_buttons[preset] = button
            simple_layout.addWidget(button)
            simple_layout.addWidget(cost)
        self.custom_note = QLabel("Your own mix: see Advanced settings.")
        self.custom_note.setObjectName("muted")
        self.custom_note.setWordWrap(True)
        simple_layout.addWidget(self.custom_note)
        self.presets.idClicked.connect(self._on_preset)
        self.in_use = QLabel()
        self.in_use.setObjectName("notice")
        self.in_use.setWordWrap(True)
        self.in_use.hide()

        self.advanced_button = QPushButton("Advanced settings")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolTip("The network, where it runs, the detail and more")
        self.advanced = self._build_advanced()
        self.advanced_button.toggled.connect(self.advanced.setVisible)
        self.advanced.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(simple)
        layout.addWidget(self.in_use)
        layout.addWidget(self.advanced_button)
        layout.addWidget(self.advanced)
        layout.addStretch(1)
        self.set_settings(settings)

    def _build_advanced(self) -> QWidget:
        devices = offered_devices()
        self.variant_combo = self._combo(VARIANT_LABELS, "variant", "Which network cuts you out")
        self.device_combo = self._combo(devices, "device", "Where the network runs")
        self.precision_combo = self._combo(
            offered_precisions(devices),
            "precision",
            "Half the numbers' size: faster on a graphics card, no gain on the processor",
        )
        self.ratio_mode = QComboBox()
        for key, label in DETAIL_MODES.items():
            self.ratio_mode.addItem(label, key)
        self.ratio_mode.setToolTip(
            "How much detail the network looks at: automatic picks it from the picture size, "
            "for a person seen down to the chest (upper body) or from head to toe (whole body, "
            "more detail)"
        )
        self.ratio_mode.activated.connect(self._on_ratio_mode)
        self._fit(self.ratio_mode)
        self.ratio_slider = QSlider(Qt.Orientation.Horizontal)
        self.ratio_slider.setRange(5, 100)
        self.ratio_slider.setSingleStep(5)
        self.ratio_slider.setPageStep(10)
        self.ratio_slider.setToolTip("Lower is faster, higher keeps finer edges (hair)")
        self.ratio_slider.valueChanged.connect(self._on_ratio_value)
        self.ratio_label = QLabel()
        self.ratio_label.setMinimumWidth(self.ratio_label.fontMetrics().horizontalAdvance("100 %"))
        self.ratio_row = QWidget()
        ratio_row = QHBoxLayout(self.ratio_row)
        ratio_row.setContentsMargins(0, 0, 0, 0)
        ratio_row.addWidget(self.ratio_slider, 1)
        ratio_row.addWidget(self.ratio_label)
        self.hold_fps = QCheckBox(HOLD_TEXT)
        self.hold_fps.setToolTip(
            "While the computer cannot keep up with the camera, work with less detail; go back "
            "up when it can"
        )
        self.hold_fps.toggled.connect(lambda on: self._emit({"hold_fps": on}))
        self.sync_combo = self._combo(
            SYNC_LABELS,
            "sync",
            "Every camera frame: smooth, with the newest cut-out (it can trail a quick movement). "
            "Only frames with their own cut-out: exact edges, fewer frames on a slow computer.",
        )
        self.reset_button = QPushButton("Start the cut-out afresh")
        self.reset_button.setToolTip(
            "If the outline looks wrong after a big change in the scene: forget what the network "
            "learned from earlier frames"
        )
        self.reset_button.clicked.connect(self.reset_requested)

        box = QGroupBox()
        form = QFormLayout(box)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Network", self.variant_combo)
        form.addRow("Runs on", self.device_combo)
        form.addRow("Arithmetic", self.precision_combo)
        form.addRow("Detail", self.ratio_mode)
        form.addRow("", self.ratio_row)
        form.addRow(self.hold_fps)
        form.addRow("Frames sent", self.sync_combo)
        form.addRow(self.reset_button)
        return box

    @staticmethod
    def _fit(combo: QComboBox) -> None:
        """Lets a list be narrower than its longest entry (shown whole when it opens)."""
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(12)

    def _combo(self, labels: dict[str, str], field: str, tip: str) -> QComboBox:
        combo = QComboBox()
        for key, label in labels.items():
            combo.addItem(label, key)
        combo.setToolTip(tip)
        self._fit(combo)
        combo.activated.connect(lambda _: self._emit({field: combo.currentData()}))
        return combo

    # --- showing ---------------------------------------------------------------------------------

    def set_settings(self, settings: Settings) -> None:
        """Shows ``settings`` without announcing a change."""
        self._settings = settings
        set_combo(self.variant_combo, settings.variant, VARIANT_LABELS.get(settings.variant))
        set_combo(self.device_combo, settings.device, DEVICE_LABELS.get(settings.device))
        set_combo(
            self.precision_combo, settings.precision, PRECISION_LABELS.get(settings.precision)
        )
        set_combo(self.sync_combo, settings.sync)
        self.hold_fps.blockSignals(True)
        self.hold_fps.setChecked(settings.hold_fps)
        self.hold_fps.blockSignals(False)
        preset = Preset.of(settings)
        self.presets.setExclusive(preset is not None)
        for p, button in self.preset_buttons.items():
            button.setChecked(p is preset)
        self.presets.setExclusive(True)
        self.custom_note.setVisible(preset is None)
        if settings.downsample_ratio is not None:
            mode = "manual"
        else:
            mode = "full_body" if settings.full_body else "portrait"
        set_combo(self.ratio_mode, mode)
        ratio = settings.downsample_ratio or DEFAULT_RATIO
        self.ratio_slider.blockSignals(True)
        self.ratio_slider.setValue(round(ratio * 100))
        self.ratio_slider.blockSignals(False)
        self.ratio_label.setText(percent(ratio))
        self.ratio_row.setVisible(mode == "manual")  # Hidden, not greyed out, when automatic.
        self._show_in_use()

    def set_advanced_visible(self, visible: bool) -> None:
        """Opens or closes the advanced settings."""
        self.advanced_button.setChecked(visible)

    def show_in_use(self, internal: str, frame: tuple[int, int] | None) -> None:
        """Tells the panel the detail the network works at now.

        Args:
            internal: the network's input size, ``WxH`` (the statistics' internal resolution).
            frame: the camera frame's (width, height), None when unknown.
        """
        ratio = None
        try:
            width, height = (int(v) for v in internal.lower().split("x"))
        except ValueError:
            width = height = 0
        if frame is not None and frame[1] > 0 and height > 0:
            ratio = height / frame[1]
        self._ratio_in_use = ratio
        self._frame = frame
        self._internal = (width, height)
        self._show_in_use()

    def chosen_ratio(self, frame: tuple[int, int] | None) -> float | None:
        """The detail the settings ask for, for a frame of ``frame`` (width, height)."""
        from app.matting.ratio import live_ratio

        s = self._settings
        if s.downsample_ratio is not None:
            return s.downsample_ratio
        if frame is None:
            return None
        return live_ratio(frame[1], frame[0], s.full_body)

    def _show_in_use(self) -> None:
        ratio = self._ratio_in_use
        chosen = self.chosen_ratio(self._frame)
        if ratio is None or chosen is None or ratio >= chosen - 0.02:
            self.in_use.hide()
            return
        width, height = self._internal
        why = "to keep up with the camera" if self._settings.hold_fps else "for now"
        self.in_use.setText(
            f"Detail in use: {percent(ratio)} ({width}\u00a0×\u00a0{height}) instead of "
            f"{percent(chosen)}, lowered {why}. Balanced or Sharpest keep the detail."
        )
        self.in_use.show()

    # --- the user's changes ----------------------------------------------------------------------

    def _on_preset(self, index: int) -> None:
        info = list(Preset)[index].value
        self._emit({"hold_fps": info.hold_fps, "sync": info.sync})

    def _on_ratio_mode(self, _index: int) -> None:
        mode = self.ratio_mode.currentData()
        manual = mode == "manual"
        self.ratio_row.setVisible(manual)
        ratio = self.ratio_slider.value() / 100 if manual else None
        self._emit({"downsample_ratio": ratio, "full_body": mode == "full_body"})

    def _on_ratio_value(self, value: int) -> None:
        self.ratio_label.setText(percent(value / 100))
        if self.ratio_mode.currentData() == "manual":
            self._emit({"downsample_ratio": value / 100})

    def _emit(self, changes: dict) -> None:
        """Announces ``changes`` and shows them (the simple choice follows the expert ones)."""
        with contextlib.suppress(ValueError):  # The window says why and shows what stays.
            self.set_settings(self._settings.replace(**changes))
        self.changed.emit(changes)
