"""The statistics strip along the bottom of the window."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget

FIELDS = (
    ("capture", "Capture"),
    ("matting", "Matting"),
    ("output", "Output"),
    ("latency", "Latency p50/p95"),
    ("device", "Device"),
    ("internal", "Internal"),
    ("state", "Source"),
)
EMPTY = "–"
#: Text as wide as a field usually gets, so the bar does not jump as numbers change.
WIDEST = {
    "capture": "30.0 fps",
    "matting": "30.0 fps",
    "output": "30.0 fps",
    "latency": "100 / 100 ms",
}


def format_stats(stats: object) -> dict[str, str]:
    """The text of each field for a :class:`~app.pipeline.Stats`."""
    state = getattr(stats, "source_state", "") or ""
    return {
        "capture": f"{stats.capture_fps:.1f} fps",
        "matting": f"{stats.matting_fps:.1f} fps",
        "output": f"{stats.output_fps:.1f} fps",
        "latency": f"{stats.latency_ms_p50:.0f} / {stats.latency_ms_p95:.0f} ms",
        "device": " · ".join(str(v) for v in (stats.device, stats.precision) if v) or EMPTY,
        "internal": str(stats.internal_resolution) or EMPTY,
        "state": state or EMPTY,
    }


class StatsBar(QFrame):
    """Capture / matting / output fps, latency, device, precision and internal resolution."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statsBar")
        self.values: dict[str, QLabel] = {}
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 4, 10, 4)
        row.setSpacing(6)
        for key, title in FIELDS:
            name = QLabel(title)
            name.setObjectName("statName")
            value = QLabel(EMPTY)
            value.setObjectName("statValue")
            value.setMinimumWidth(value.fontMetrics().horizontalAdvance(WIDEST.get(key, "")))
            self.values[key] = value
            row.addWidget(name)
            row.addWidget(value)
            row.addSpacing(12)
        row.addStretch(1)

    def show_stats(self, stats: object) -> None:
        """Shows the newest statistics."""
        for key, text in format_stats(stats).items():
            self.values[key].setText(text)

    def clear(self) -> None:
        """Shows dashes (no pipeline running)."""
        for label in self.values.values():
            label.setText(EMPTY)

    def text(self) -> str:
        """Everything on the bar as one line (for logs and tests)."""
        return "  ".join(f"{title}: {self.values[key].text()}" for key, title in FIELDS)
