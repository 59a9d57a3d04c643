"""The preview: the newest frame, fitted into the widget with its aspect ratio kept, with what the
user must not miss drawn over it (the recording indicator, a short note, the halves' names)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import QPushButton, QSizePolicy, QWidget

from app.ui import theme

#: The names of the side-by-side halves, left to right as the frame is composed.
SPLIT_LABELS = ("Camera", "Result")
NOTE_MS = 3000


def fit_rect(image: QSize, area: QRect) -> QRect:
    """The largest rectangle with ``image``'s aspect ratio centred in ``area``."""
    if image.isEmpty() or area.isEmpty():
        return QRect()
    scaled = image.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
    x = area.x() + (area.width() - scaled.width()) // 2
    y = area.y() + (area.height() - scaled.height()) // 2
    return QRect(x, y, scaled.width(), scaled.height())


def _checkerboard() -> QPixmap:
    tile = QPixmap(16, 16)
    tile.fill(QColor("#3a3f47"))
    with QPainter(tile) as p:
        p.fillRect(0, 0, 8, 8, QColor("#2c3037"))
        p.fillRect(8, 8, 8, 8, QColor("#2c3037"))
    return tile


class PreviewWidget(QWidget):
    """Draws frames aspect-fit on a dark backdrop; shows a message while there is no frame.

    Mirroring only flips what is drawn here, never the frames that go to the outputs.
    """

    double_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("preview")
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: QImage | None = None
        self._mirror = False
        self._message = "Starting…"
        self._frames_shown = 0
        self._split = False
        self._recording: str | None = None
        self._note: str | None = None
        self._note_timer = QTimer(self)
        self._note_timer.setSingleShot(True)
        self._note_timer.timeout.connect(self._clear_note)
        self._checker: QPixmap | None = None
        self.action_button = QPushButton(self)
        self.action_button.hide()
        self._action: Callable[[], None] | None = None
        self.action_button.clicked.connect(self._on_action)

    @property
    def frames_shown(self) -> int:
        """How many frames were handed to the preview."""
        return self._frames_shown

    @property
    def mirrored(self) -> bool:
        """Whether the picture is drawn mirrored."""
        return self._mirror

    @property
    def message(self) -> str:
        """The text shown while there is no frame."""
        return self._message

    def image(self) -> QImage | None:
        """The frame on screen, unmirrored, or None."""
        return self._image

    @property
    def split(self) -> bool:
        """Whether the frame on screen is the camera and the result side by side."""
        return self._split

    @property
    def recording_text(self) -> str | None:
        """The recording indicator drawn over the picture, or None."""
        return self._recording

    @property
    def note(self) -> str | None:
        """The short note drawn over the picture, or None."""
        return self._note

    def set_recording(self, text: str | None) -> None:
        """Draws a red recording indicator (``text``, e.g. ``REC 0:09``) in the top-right corner;
        None removes it. It shows in every view and in full screen."""
        if text != self._recording:
            self._recording = text
            self.update()

    def show_note(self, text: str, timeout_ms: int = NOTE_MS) -> None:
        """Draws ``text`` over the middle of the picture for ``timeout_ms``."""
        self._note = text
        self._note_timer.start(timeout_ms)
        self.update()

    def _clear_note(self) -> None:
        self._note = None
        self.update()

    def set_image(self, image: QImage, split: bool = False) -> None:
        """Shows a new frame (UI thread).

        Args:
            image: the picture.
            split: it is the camera (left half) and the result (right half) side by side.
        """
        self._image = image
        self._split = split
        self._frames_shown += 1
        if self._action is not None:
            self.set_action(None)
        self.update()

    def clear(self, message: str) -> None:
        """Removes the frame and shows ``message`` instead."""
        self._image = None
        self._message = message
        self.update()

    def set_action(self, text: str | None, callback: Callable[[], None] | None = None) -> None:
        """Offers a button under the message while there is no frame; None removes it."""
        self._action = callback if text else None
        if text and callback is not None:
            self.action_button.setText(text)
            self.action_button.adjustSize()
            self._place_action()
            self.action_button.show()
        else:
            self.action_button.hide()

    def _on_action(self) -> None:
        if self._action is not None:
            self._action()

    def _place_action(self) -> None:
        size = self.action_button.sizeHint()
        x = (self.width() - size.width()) // 2
        y = self.height() // 2 + 40
        self.action_button.setGeometry(x, y, size.width(), size.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._place_action()
        super().resizeEvent(event)

    def set_message(self, message: str) -> None:
        """Sets the text shown while there is no frame."""
        self._message = message
        if self._image is None:
            self.update()

    def set_mirrored(self, mirror: bool) -> None:
        """Draws the picture mirrored (like looking into a mirror) or not."""
        self._mirror = bool(mirror)
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(960, 540)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.double_clicked.emit()
        event.accept()

    def paintEvent(self, event: QPaintEvent) -> None:
        with QPainter(self) as p:
            p.fillRect(self.rect(), QColor("#0f1114"))
            image = self._image
            if image is None or image.isNull():
                p.setPen(QColor(theme.MUTED))
                font = p.font()
                font.setPointSizeF(font.pointSizeF() * 1.3)
                p.setFont(font)
                box = self.rect().adjusted(24, 24, -24, -24)
                flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
                p.drawText(box, int(flags), self._message)
            else:
                self._paint_image(p, image)
            self._paint_overlays(p)

    def _paint_image(self, p: QPainter, image: QImage) -> None:
        target = fit_rect(image.size(), self.rect())
        if image.hasAlphaChannel():
            if self._checker is None:
                self._checker = _checkerboard()
            p.fillRect(target, QBrush(self._checker))
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        halves = 2 if self._split else 1
        width = image.width() // halves
        for half in range(halves):
            # Mirroring flips each half in place: the camera stays on the left.
            source = QRectF(half * width, 0, width, image.height())
            x0 = target.x() + half * target.width() / halves
            box = QRectF(x0, target.y(), target.width() / halves, target.height())
            p.save()
            if self._mirror:
                p.translate(QPointF(box.x() * 2 + box.width(), 0))
                p.scale(-1.0, 1.0)
            p.drawImage(box, image, source)
            p.restore()
            if self._split:
                self._pill(p, SPLIT_LABELS[half], box.topLeft() + QPointF(10, 10), "#c0000000")

    def _paint_overlays(self, p: QPainter) -> None:
        if self._recording:
            size = self._pill_size(p, "● " + self._recording)
            corner = QPointF(self.width() - size.width() - 12, 12)
            self._pill(p, "● " + self._recording, corner, theme.ERROR, bold=True)
        if self._note:
            size = self._pill_size(p, self._note)
            at = QPointF((self.width() - size.width()) / 2, (self.height() - size.height()) / 2)
            self._pill(p, self._note, at, "#d0000000")

    @staticmethod
    def _pill_size(p: QPainter, text: str) -> QSize:
        metrics = p.fontMetrics()
        return QSize(metrics.horizontalAdvance(text) + 20, metrics.height() + 10)

    def _pill(self, p: QPainter, text: str, at: QPointF, color: str, bold: bool = False) -> None:
        p.save()
        font = p.font()
        font.setBold(bold)
        p.setFont(font)
        size = self._pill_size(p, text)
        rect = QRectF(at, QSize(size.width(), size.height()).toSizeF())
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        fill = QColor(color)
        p.setBrush(fill)
        p.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        p.setPen(QColor("#ffffff"))
        p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
        p.restore()
