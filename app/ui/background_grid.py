"""The background grid: thumbnails in rows that wrap with the panel's width, files dropped on it
handed on, and the tiles drawn for the built-in backgrounds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QLinearGradient,
    QPainter,
    QPixmap,
    QRadialGradient,
)
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QWidget

from app.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from app.ui.thumbnails import THUMB_SIZE

ICON = QSize(128, 72)


def is_background_file(path: str) -> bool:
    """Whether a file name looks like an image or a video."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES


def tile_icon(pixmap: QPixmap) -> QIcon:
    """An icon drawn the same when selected (Qt would tint it with the highlight colour, and a
    green screen would look teal)."""
    icon = QIcon()
    for mode in (QIcon.Mode.Normal, QIcon.Mode.Selected, QIcon.Mode.Active):
        icon.addPixmap(pixmap, mode)
    return icon


def _tile(paint: Callable[[QPainter, QRect], None]) -> QPixmap:
    pix = QPixmap(THUMB_SIZE)
    pix.fill(QColor("#20242b"))
    with QPainter(pix) as p:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        paint(p, pix.rect())
    return pix


def _paint_person(p: QPainter, r: QRect, color: QColor) -> None:
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(color)
    cx, h = r.center().x(), r.height()
    p.drawEllipse(QPointF(cx, r.top() + h * 0.38), h * 0.16, h * 0.16)
    p.drawRoundedRect(int(cx - h * 0.3), int(r.top() + h * 0.6), int(h * 0.6), int(h * 0.5), 14, 14)


def builtin_icon(key: str, color: tuple[int, int, int]) -> QIcon:
    def paint(p: QPainter, r: QRect) -> None:
        if key == "none":
            grad = QLinearGradient(0, 0, r.width(), r.height())
            grad.setColorAt(0, QColor("#5d6b79"))
            grad.setColorAt(1, QColor("#39424d"))
            p.fillRect(r, grad)
        elif key == "blur":
            p.fillRect(r, QColor("#4a5a6a"))
            for x, y, c in [(0.2, 0.3, "#d9b38c"), (0.75, 0.35, "#8cb3d9"), (0.5, 0.9, "#9ad98c")]:
                g = QRadialGradient(QPointF(r.width() * x, r.height() * y), r.width() * 0.45)
                g.setColorAt(0, QColor(c))
                g.setColorAt(1, QColor(0, 0, 0, 0))
                p.fillRect(r, g)
        else:
            p.fillRect(r, QColor(*color))
        _paint_person(p, r, QColor(255, 255, 255, 215))

    return tile_icon(_tile(paint))


def placeholder_icon(text: str) -> QIcon:
    def paint(p: QPainter, r: QRect) -> None:
        p.setPen(QColor("#9aa3ad"))
        p.drawText(r, int(Qt.AlignmentFlag.AlignCenter), text)

    return tile_icon(_tile(paint))


class BackgroundGrid(QListWidget):
    """The thumbnail grid; files dropped on it are handed to the panel."""

    files_dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("backgroundGrid")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setWrapping(True)
        self.setUniformItemSizes(True)
        self.setIconSize(ICON)
        self.setGridSize(QSize(ICON.width() + 16, ICON.height() + 34))
        self.setSpacing(2)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setMinimumSize(2 * (ICON.width() + 16) + 24, ICON.height() + 60)

    @staticmethod
    def _paths(event: QDragEnterEvent | QDropEvent) -> list[str]:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        return [u.toLocalFile() for u in urls if u.isLocalFile()]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(is_background_file(p) for p in self._paths(event)):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragEnterEvent) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self._paths(event)
        event.acceptProposedAction()
        if paths:
            self.files_dropped.emit(paths)
