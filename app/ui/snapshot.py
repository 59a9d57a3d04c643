"""Saves a picture of the window once the preview has shown enough frames, then closes it.

Used for ``MATTECAM_SCREENSHOT`` (``tools/screenshot.py`` takes ``docs/screenshot.png`` with it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)

TIMEOUT_MS = 180_000


class Snapshot(QObject):
    """Grabs ``window`` into ``path`` after ``frames`` preview frames, or at the timeout.

    Args:
        window: the widget to picture; it is closed after the picture is saved.
        path: the PNG file to write (written beside it first, then renamed).
        frames: how many preview frames to wait for.
        before: called just before the grab (to refresh what the picture shows).
        timeout_ms: take the picture anyway after this long; :attr:`ok` is then False.
    """

    def __init__(
        self,
        window: QWidget,
        path: str | Path,
        frames: int,
        before: Callable[[], None] | None = None,
        timeout_ms: int = TIMEOUT_MS,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._path = Path(path)
        self._frames = max(1, frames)
        self._before = before
        self._taken = False
        self.ok = True
        QTimer.singleShot(timeout_ms, self, self._on_timeout)

    def frame_shown(self, count: int) -> None:
        """Tells how many preview frames were shown so far."""
        if not self._taken and count >= self._frames:
            self._taken = True
            QTimer.singleShot(0, self, self._take)

    def _on_timeout(self) -> None:
        if not self._taken:
            log.error("No preview frames arrived in time for the screenshot.")
            self._taken = True
            self.ok = False
            self._take()

    def _take(self) -> None:
        if self._before is not None:
            self._before()
        pixmap = self._window.grab()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        partial = self._path.with_name(f".{self._path.name}.part.png")
        if pixmap.save(str(partial), "PNG"):
            os.replace(partial, self._path)
        else:
            self.ok = False
            log.error("Could not save the screenshot to %s", self._path)
        self._window.close()
