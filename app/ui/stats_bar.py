"""The statistics strip along the bottom of the window."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QLayout, QWidget

from app.stats import Stats

FIELDS = (
    ("capture", "Camera"),
    ("matting", "Cut-out"),
    ("output", "Sent"),
    ("latency", "Delay"),
    ("age", "Matte age"),
    ("device", "Runs on"),
    ("internal", "Detail"),
    ("state", "Source"),
)
EMPTY = "–"
TOOLTIPS = {
    "capture": "Frames per second the camera delivers",
    "matting": "Frames per second the network cuts out",
    "output": "Frames per second that go to the preview, the virtual camera and the recording",
    "latency": "From camera to screen: usual delay / slowest one frame in twenty",
    "age": "How far in time the nearest matted frame is from the camera frame it is composited\n"
    "with; in the aligned mode its matte is moved to the frame, in the smooth mode it is not\n"
    "and the larger it is, the more a quick movement leaves a halo.",
    "device": "Where the network runs, and the size of its numbers",
    "internal": "The picture size the network works at (more is finer, and slower)",
}
COLUMN_GAP = 18  # pixels between two fields
CELL_SPACING = 6  # pixels between a field's name and its value
#: Text as wide as a field usually gets, so the bar does not jump as numbers change.
WIDEST = {
    "capture": "30.0 fps",
    "matting": "30.0 fps",
    "output": "30.0 fps",
    "latency": "100 / 100 ms",
    "age": "100 ms",
}


def format_stats(stats: Stats) -> dict[str, str]:
    """The text of each field for a :class:`~app.pipeline.Stats`."""
    state = stats.source_state.value if stats.source_state else ""
    return {
        "capture": f"{stats.capture_fps:.1f} fps",
        "matting": f"{stats.matting_fps:.1f} fps",
        "output": f"{stats.output_fps:.1f} fps",
        "latency": f"{stats.latency_ms_p50:.0f} / {stats.latency_ms_p95:.0f} ms",
        "age": f"{stats.matte_age_ms:.0f} ms",
        "device": " · ".join(str(v) for v in (stats.device, stats.precision) if v) or EMPTY,
        "internal": str(stats.internal_resolution) or EMPTY,
        "state": state or EMPTY,
    }


class StatsBar(QFrame):
    """Capture / matting / output fps, latency, matte age, device, precision, internal resolution.

    The fields sit in one row; when the window is too narrow for that, they wrap into more rows
    instead of being cut off.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statsBar")
        self.values: dict[str, QLabel] = {}
        self._names: dict[str, QLabel] = {}
        self._cells: list[QWidget] = []
        for key, title in FIELDS:
            name = QLabel(title)
            name.setObjectName("statName")
            name.setToolTip(TOOLTIPS.get(key, ""))
            value = QLabel(EMPTY)
            value.setObjectName("statValue")
            value.ensurePolished()  # Measured in the style sheet's font (size and weight).
            widest = value.fontMetrics().horizontalAdvance(WIDEST.get(key, ""))
            value.setMinimumWidth(widest + 2 * value.margin() + 4)
            cell = QWidget()
            row = QHBoxLayout(cell)
            row.setContentsMargins(0, 0, 0, 0)
            row.setSpacing(CELL_SPACING)
            row.addWidget(name)
            row.addWidget(value)
            self.values[key] = value
            self._names[key] = name
            self._cells.append(cell)
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(10, 4, 10, 4)
        self._grid.setHorizontalSpacing(COLUMN_GAP)
        self._grid.setVerticalSpacing(2)
        self._grid.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self._columns = 0
        self._arrange(len(self._cells))

    @property
    def columns(self) -> int:
        """How many fields share a row now."""
        return self._columns

    def _arrange(self, columns: int) -> None:
        if columns == self._columns:
            return
        for cell in self._cells:
            self._grid.removeWidget(cell)
        for column in range(self._grid.columnCount()):
            self._grid.setColumnStretch(column, 0)
        for i, cell in enumerate(self._cells):
            self._grid.addWidget(cell, i // columns, i % columns, Qt.AlignmentFlag.AlignLeft)
        self._grid.setColumnStretch(columns, 1)
        self._columns = columns
        self.updateGeometry()

    def _columns_for(self, width: int) -> int:
        """The most fields per row that fit in ``width`` pixels."""
        margins = self._grid.contentsMargins()
        room = width - margins.left() - margins.right()
        widths = self._cell_widths()
        for columns in range(len(widths), 1, -1):
            needed = sum(max(widths[c::columns]) for c in range(columns))
            if needed + COLUMN_GAP * (columns - 1) <= room:
                return columns
        return 1

    def _cell_widths(self) -> list[int]:
        """The width each field needs for its current text (the labels know it at once; the
        cells' layouts only after the next event loop pass)."""
        widths = []
        for key, _title in FIELDS:
            value = self.values[key]
            value_width = max(value.sizeHint().width(), value.minimumWidth())
            widths.append(self._names[key].sizeHint().width() + CELL_SPACING + value_width)
        return widths

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._arrange(self._columns_for(event.size().width()))
        super().resizeEvent(event)

    def minimumSizeHint(self) -> QSize:
        margins = self._grid.contentsMargins()
        width = max(self._cell_widths())
        return QSize(width + margins.left() + margins.right(), super().minimumSizeHint().height())

    def show_stats(self, stats: Stats) -> None:
        """Shows the newest statistics."""
        for key, text in format_stats(stats).items():
            value = self.values[key]
            value.setText(text)
            if value.minimumWidth() < value.minimumSizeHint().width():  # Wider than usual.
                value.setMinimumWidth(value.minimumSizeHint().width())
        self._arrange(self._columns_for(self.width()))

    def set_source_detail(self, message: str) -> None:
        """Tells what the source last reported (its format, its end), on the Source field."""
        for label in (self._names["state"], self.values["state"]):
            label.setToolTip(message)

    def clear(self) -> None:
        """Shows dashes (no pipeline running)."""
        for label in self.values.values():
            label.setText(EMPTY)

    def text(self) -> str:
        """Everything on the bar as one line (for logs and tests)."""
        return "  ".join(f"{title}: {self.values[key].text()}" for key, title in FIELDS)
