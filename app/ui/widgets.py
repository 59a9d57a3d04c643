"""Small reusable widgets: an on/off switch, dismissable message banners that float over the
preview, a progress row."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractButton,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.ui import theme


class ToggleSwitch(QAbstractButton):
    """A checkable pill-shaped switch."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setCheckable(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def sizeHint(self) -> QSize:
        return QSize(46, 24)

    def paintEvent(self, event: QPaintEvent) -> None:
        with QPainter(self) as p:
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            r = QRectF(self.rect()).adjusted(1, 1, -1, -1)
            on = self.isChecked()
            track = QColor(theme.ACCENT if on else "#4a515c")
            if not self.isEnabled():
                track = track.darker(160)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(track)
            p.drawRoundedRect(r, r.height() / 2, r.height() / 2)
            d = r.height() - 6
            x = r.right() - d - 3 if on else r.left() + 3
            p.setBrush(QColor("#ffffff"))
            p.drawEllipse(QRectF(x, r.top() + 3, d, d))
            if self.hasFocus():
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.setPen(QColor(theme.TEXT))
                p.drawRoundedRect(r, r.height() / 2, r.height() / 2)


class Banner(QFrame):
    """One message the user can read and dismiss."""

    dismissed = Signal()

    def __init__(
        self,
        level: str,
        text: str,
        parent: QWidget | None = None,
        key: str | None = None,
        detail: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setProperty("level", level)
        self.level = level
        #: Messages with the same key replace each other (None: none).
        self.key = key
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        close = QPushButton("Dismiss")
        close.setToolTip("Hide this message")
        close.clicked.connect(self.dismiss)
        #: Controls under the message (a command to copy, a button that fixes the cause), or None.
        self.detail = detail
        row = QHBoxLayout(self)
        row.setContentsMargins(10, 6, 6, 6)
        if detail is None:
            row.addWidget(self.label, 1)
        else:
            column = QVBoxLayout()
            column.setContentsMargins(0, 0, 0, 0)
            column.addWidget(self.label)
            column.addWidget(detail)
            row.addLayout(column, 1)
        row.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)

    @property
    def text(self) -> str:
        """The message."""
        return self.label.text()

    def set_text(self, level: str, text: str) -> None:
        """Replaces the message (and its level) in place."""
        if level != self.level:
            self.level = level
            self.setProperty("level", level)
            self.style().unpolish(self)
            self.style().polish(self)
        self.label.setText(text)

    def dismiss(self) -> None:
        """Removes the banner."""
        self.hide()
        self.dismissed.emit()
        self.deleteLater()


class BannerArea(QWidget):
    """A column of banners; the same message is never shown twice at once.

    Args:
        limit: at most this many banners stay; the oldest goes first.
    """

    def __init__(self, limit: int = 3, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._limit = limit
        self._banners: list[Banner] = []
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        self.hide()

    def banners(self) -> list[Banner]:
        """The banners on show, oldest first."""
        return list(self._banners)

    def texts(self) -> list[str]:
        """The messages on show, oldest first."""
        return [b.text for b in self._banners]

    def show_message(
        self,
        level: str,
        text: str,
        timeout_ms: int | None = None,
        key: str | None = None,
        detail: QWidget | None = None,
    ) -> Banner:
        """Shows a message.

        Args:
            level: ``error``, ``warning`` or ``info``.
            text: one or two sentences.
            timeout_ms: dismiss it by itself after this long; None keeps it until dismissed.
            key: a message with the same key that is on show is replaced by this one (news about
                one thing, such as a lost camera, stays one banner).
            detail: controls shown under the text (the banner owns them).
        """
        for banner in self._banners:
            if banner.text == text or (key is not None and banner.key == key):
                if detail is not None and banner.detail is None:
                    banner.dismiss()  # Rebuilt below with its controls.
                    break
                banner.set_text(level, text)
                if detail is not None:
                    detail.deleteLater()
                return banner
        banner = Banner(level, text, self, key=key, detail=detail)
        banner.dismissed.connect(lambda b=banner: self._forget(b))
        self._banners.append(banner)
        self._layout.addWidget(banner)
        while len(self._banners) > self._limit:
            self._banners[0].dismiss()
        if timeout_ms is not None:
            QTimer.singleShot(timeout_ms, banner, banner.dismiss)
        self.show()
        return banner

    def find(self, key: str) -> Banner | None:
        """The banner shown with ``key``, or None."""
        return next((b for b in self._banners if b.key == key), None)

    def dismiss_key(self, key: str) -> bool:
        """Dismisses the banner shown with ``key``; True when there was one."""
        found = [b for b in self._banners if b.key == key]
        for banner in found:
            banner.dismiss()
        return bool(found)

    def clear(self) -> None:
        """Dismisses every banner."""
        for banner in list(self._banners):
            banner.dismiss()

    def _forget(self, banner: Banner) -> None:
        if banner in self._banners:
            self._banners.remove(banner)
        if not self._banners:
            self.hide()


class OverlayStack(QWidget):
    """Shows ``top`` floating over the lower edge of ``base``, as tall as its content: messages
    that come and go never move the picture under them, and leave its upper corners (where the
    preview marks a recording) and the face in the middle in view.

    Args:
        base: fills the widget.
        top: laid over ``base``; hidden while it has nothing to show.
        margin: gap between the two edges, in pixels.
    """

    def __init__(self, base: QWidget, top: QWidget, margin: int = 8) -> None:
        super().__init__()
        self._base, self._top, self._margin = base, top, margin
        base.setParent(self)
        top.setParent(self)
        top.installEventFilter(self)
        self.setMinimumSize(base.minimumSize())
        self.setSizePolicy(base.sizePolicy())

    def sizeHint(self) -> QSize:
        return self._base.sizeHint()

    def minimumSizeHint(self) -> QSize:
        return self._base.minimumSizeHint()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._top and event.type() in (
            QEvent.Type.LayoutRequest,
            QEvent.Type.Show,
        ):
            self._place()  # Now, and once more when the new content has its final size.
            QTimer.singleShot(0, self, self._place)
        return False

    def resizeEvent(self, event: object) -> None:
        self._base.setGeometry(self.rect())
        self._place()

    def _place(self) -> None:
        width = max(0, self.width() - 2 * self._margin)
        layout = self._top.layout()
        if layout is not None:
            layout.activate()
        hint = self._top.heightForWidth(width) if self._top.hasHeightForWidth() else -1
        height = hint if hint > 0 else self._top.sizeHint().height()
        height = min(height, max(0, self.height() - 2 * self._margin))
        y = self.height() - self._margin - height
        self._top.setGeometry(self._margin, y, width, height)
        self._top.raise_()


def scrolled(content: QWidget) -> QScrollArea:
    """``content`` in a frameless area that scrolls up and down when the window is too short for
    it (instead of squeezing its text), and never sideways."""
    area = QScrollArea()
    area.setWidget(content)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area


class ProgressRow(QFrame):
    """A label and a progress bar for long first-start work (weights, model start)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setObjectName("muted")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setMaximumWidth(320)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        row.addWidget(self.label, 1)
        row.addWidget(self.bar)
        self.hide()

    def set_progress(self, message: str, fraction: float | None) -> None:
        """Shows a step; ``fraction`` None (or negative) means the length is unknown."""
        self.label.setText(message + "…" if not message.endswith("…") else message)
        if fraction is None or fraction < 0:
            self.bar.setRange(0, 0)  # Busy indicator.
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(round(min(max(fraction, 0.0), 1.0) * 1000))
        self.show()

    def done(self) -> None:
        """Hides the row."""
        self.hide()
