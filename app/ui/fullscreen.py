"""Full screen: only the preview on the whole screen, with a short note on how to leave it."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QMainWindow, QWidget

from app.ui.preview import PreviewWidget
from app.ui.shortcuts import BY_ACTION


def leave_hint() -> str:
    """The note shown on entering full screen."""
    return f"Press Esc or {BY_ACTION['fullscreen'].label} to leave full screen"


class FullScreen:
    """Switches a window between its normal look and the full-screen preview.

    Args:
        window: the window.
        preview: shows the note on how to leave.
        chrome: the widgets hidden in full screen.
    """

    def __init__(
        self, window: QMainWindow, preview: PreviewWidget, chrome: Sequence[QWidget]
    ) -> None:
        self._window = window
        self._preview = preview
        self._chrome = tuple(chrome)
        self._restore_maximized: bool | None = None  # None: not in full screen.

    @property
    def active(self) -> bool:
        """Whether the full-screen preview is on."""
        return self._restore_maximized is not None

    def toggle(self) -> None:
        """Enters full screen, or leaves it."""
        if self.active:
            self.leave()
            return
        self._restore_maximized = self._window.isMaximized()
        for widget in self._chrome:
            widget.hide()
        self._window.showFullScreen()
        self._preview.show_note(leave_hint())

    def leave(self) -> None:
        """Returns to the normal window."""
        if self._restore_maximized is None:
            return
        maximized, self._restore_maximized = self._restore_maximized, None
        for widget in self._chrome:
            widget.show()
        if maximized:
            self._window.showMaximized()
        else:
            self._window.showNormal()

    def window_state_changed(self) -> None:
        """Follows the window manager: a window taken out of full screen shows its bars again."""
        if self.active and not self._window.isFullScreen():
            self.leave()
