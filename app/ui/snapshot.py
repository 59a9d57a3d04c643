"""Saves a picture of the window once the preview has shown enough frames, then closes it.

Used for ``MATTECAM_SCREENSHOT`` (``tools/screenshot.py`` takes ``docs/screenshot.png`` with it).
With ``sizes``, it then also pictures the window at each size in each tab of its side panel
(``NAME-WxH-TAB.png`` beside the first picture), so a layout can be checked at ordinary sizes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QTabWidget, QWidget

from app.media import AtomicPath

log = logging.getLogger(__name__)

TIMEOUT_MS = 180_000
#: Time the window gets to lay itself out and show new frames after a resize or a tab switch.
SETTLE_MS = 1500


def series_name(path: Path, size: tuple[int, int], tab: str) -> Path:
    """Where the picture of the window at ``size`` in ``tab`` goes, beside ``path``."""
    return path.with_name(f"{path.stem}-{size[0]}x{size[1]}-{tab.lower()}{path.suffix}")


@dataclass(frozen=True)
class ScreenshotPlan:
    """What to picture.

    Attributes:
        path: the first picture, once ``frames`` preview frames were shown.
        frames: see ``path``.
        sizes: then the window at each (width, height), in each tab of the side panel.
    """

    path: str
    frames: int = 60
    sizes: tuple[tuple[int, int], ...] = ()


class Snapshot(QObject):
    """Grabs ``window`` into ``path`` after ``frames`` preview frames, or at the timeout.

    Args:
        window: the widget to picture; it is closed after the picture is saved.
        path: the PNG file to write (written beside it first, then renamed).
        frames: how many preview frames to wait for.
        before: called just before the grab (to refresh what the picture shows).
        timeout_ms: take the picture anyway after this long; :attr:`ok` is then False.
        sizes: (width, height) pairs to picture the window at afterwards, in each tab of ``tabs``.
        tabs: the side panel's tabs.
    """

    def __init__(
        self,
        window: QWidget,
        path: str | Path,
        frames: int,
        before: Callable[[], None] | None = None,
        timeout_ms: int = TIMEOUT_MS,
        sizes: list[tuple[int, int]] | None = None,
        tabs: QTabWidget | None = None,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._path = Path(path)
        self._frames = max(1, frames)
        self._before = before
        self._taken = False
        self.ok = True
        self._steps: list[tuple[Path, tuple[int, int], int]] = []
        if tabs is not None:
            for size in sizes or []:
                for index in range(tabs.count()):
                    path_i = series_name(self._path, size, tabs.tabText(index))
                    self._steps.append((path_i, size, index))
        self._tabs = tabs
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
        self._save(self._path)
        self._next()

    def _save(self, path: Path) -> None:
        if self._before is not None:
            self._before()
        pixmap = self._window.grab()
        path.parent.mkdir(parents=True, exist_ok=True)
        out = AtomicPath(path)
        if pixmap.save(str(out.temp), "PNG"):
            out.commit()
            log.info("Saved %s", path)
        else:
            out.discard()
            self.ok = False
            log.error("Could not save the screenshot to %s", path)

    def _next(self) -> None:
        """Sets up the next picture of the series, or closes the window after the last."""
        if not self._steps:
            self._window.close()
            return
        path, (width, height), tab = self._steps.pop(0)
        self._window.showNormal()
        self._window.resize(width, height)
        if self._tabs is not None:
            self._tabs.setCurrentIndex(tab)
        QTimer.singleShot(SETTLE_MS, self, lambda: (self._save(path), self._next()))
