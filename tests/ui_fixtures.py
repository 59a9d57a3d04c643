"""Qt fixtures for the window tests: a temporary settings store, a leak guard, a window factory,
and a fake virtual-camera driver (the one system edge the tests replace).

Import the fixtures into a test module with ``from tests.ui_fixtures import *``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QSettings
from PySide6.QtWidgets import QApplication

from app.output.virtualcam import register_backend, unregister_backend
from app.settings import Background, Settings
from app.ui.app import application, build_window
from app.ui.main_window import MainWindow
from app.ui.store import ENV_SETTINGS_DIR, Store, open_qsettings
from app.ui.workers import live_threads

__all__ = [
    "FakeDriver",
    "fake_vcam",
    "flush_qt",
    "make_settings",
    "open_window",
    "qt_app",
    "qt_guard",
    "settings_dir",
    "wait_frames",
]

SOURCE = "synthetic:320x240@15"
FRAME_TIMEOUT_MS = 60_000


def make_settings(**changes: object) -> Settings:
    """Small, quick settings for window tests: a synthetic 320x240 camera at 15 fps on the CPU."""
    base = Settings(source=SOURCE, background=Background(kind="blur"), device="cpu")
    return base.replace(**changes)


def flush_qt(rounds: int = 5) -> None:
    """Runs pending events, including deferred deletions."""
    for _ in range(rounds):
        QCoreApplication.processEvents()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture(scope="session")
def qt_app() -> QApplication:
    """The themed QApplication of the app."""
    return application([])


@pytest.fixture
def settings_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary QSettings location; the user's own settings are never read or written."""
    folder = tmp_path / "qsettings"
    folder.mkdir()
    monkeypatch.setenv(ENV_SETTINGS_DIR, str(folder))
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        for scope in (QSettings.Scope.UserScope, QSettings.Scope.SystemScope):
            QSettings.setPath(fmt, scope, str(folder))
    return folder


def _foreign(thread: threading.Thread) -> bool:
    # Threads Python did not start (Qt's own) show up as dummies; the Qt registry covers them.
    return isinstance(thread, threading._DummyThread)  # type: ignore[attr-defined]


def _top_levels() -> set[int]:
    return {shiboken6.getCppPointer(w)[0] for w in QApplication.topLevelWidgets()}


def _leftovers(before: set[threading.Thread], widgets: set[int]) -> list[str]:
    problems = [f"QThread {t.objectName()!r} still running" for t in live_threads()]
    problems += [  # Hidden ones too: a dialog or panel the test made and never deleted.
        f"top-level widget {type(w).__name__} still alive"
        for w in QApplication.topLevelWidgets()
        if shiboken6.getCppPointer(w)[0] not in widgets and not w.isVisible()
    ]
    problems += [
        f"top-level widget {type(w).__name__} still visible"
        for w in QApplication.topLevelWidgets()
        if w.isVisible()
    ]
    problems += [
        "a MainWindow is still alive"
        for w in QApplication.topLevelWidgets()
        if isinstance(w, MainWindow)
    ]
    problems += [
        f"thread {t.name!r} still running"
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not _foreign(t)
    ]
    return problems


@pytest.fixture
def qt_guard(qt_app: QApplication) -> Iterator[None]:
    """Fails the test if a worker thread, a pipeline thread or a top-level widget (a window, a
    dialog, a panel made on its own) outlives it."""
    before = set(threading.enumerate())
    widgets = _top_levels()
    yield
    deadline = time.monotonic() + 5.0
    problems = _leftovers(before, widgets)
    while problems and time.monotonic() < deadline:
        flush_qt()
        time.sleep(0.05)
        problems = _leftovers(before, widgets)
    assert not problems, "; ".join(problems)


@pytest.fixture
def open_window(
    qt_app: QApplication, qt_guard: None, settings_dir: Path
) -> Iterator[Callable[..., MainWindow]]:
    """Opens windows the way ``run_gui`` does, with the temporary store; closes them after."""
    windows: list[MainWindow] = []

    def make(
        settings: Settings | None = None,
        overrides: set[str] | None = None,
        vcam_backend: str | None = None,
        **kwargs: object,
    ) -> MainWindow:
        settings = settings if settings is not None else make_settings()
        overrides = {"source", "background", "device"} if overrides is None else overrides
        store = Store(open_qsettings(settings_dir))
        window = build_window(settings, overrides, vcam_backend, store=store, **kwargs)
        windows.append(window)
        return window

    yield make
    for window in windows:
        if shiboken6.isValid(window):
            window.close()
    flush_qt()


def wait_frames(qtbot: object, window: MainWindow, count: int) -> None:
    """Waits until the preview has shown ``count`` more frames."""
    target = window.preview.frames_shown + count
    qtbot.waitUntil(lambda: window.preview.frames_shown >= target, timeout=FRAME_TIMEOUT_MS)


class FakeDriver:
    """Stands in for a virtual camera driver (pyvirtualcam's backend interface); keeps frames."""

    instances: ClassVar[list[FakeDriver]] = []

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: object, **kw):
        self.width, self.height, self.fps = width, height, fps
        self.frames: list[np.ndarray] = []
        self.lock = threading.Lock()
        self.closed = False
        FakeDriver.instances.append(self)

    def send(self, frame: np.ndarray) -> None:
        with self.lock:
            self.frames.append(frame.reshape(self.height, self.width, 3).copy())

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return "/dev/video42"

    def native_fourcc(self) -> None:
        return None

    def snapshot(self) -> list[np.ndarray]:
        with self.lock:
            return list(self.frames)


@pytest.fixture
def fake_vcam() -> Iterator[type[FakeDriver]]:
    """Registers :class:`FakeDriver` as the ``ui-fake`` backend."""
    FakeDriver.instances.clear()
    register_backend("ui-fake", FakeDriver)
    yield FakeDriver
    unregister_backend("ui-fake")
