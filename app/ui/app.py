"""Starts the desktop app: the QApplication, the dark theme, the remembered settings, the window.

``python main.py`` (without ``--headless``) calls :func:`run_gui` after checking that a display
exists. Environment variables serve the screenshot tool: ``MATTECAM_SCREENSHOT=PATH`` saves a
picture of the window once ``MATTECAM_SCREENSHOT_FRAMES`` (default 60) preview frames were shown,
then quits (first also at each ``MATTECAM_SCREENSHOT_SIZES``, e.g. ``1024x640,1280x800``, in each
tab, beside it); ``MATTECAM_SETTINGS_DIR`` keeps the remembered settings in a folder of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from app.cli import STOP_SIGNALS
from app.settings import Settings, SettingsError, parse_resolution
from app.ui.controls import is_camera_spec
from app.ui.main_window import ASSETS, MainWindow
from app.ui.snapshot import ScreenshotPlan
from app.ui.store import APPLICATION, ORGANISATION, Store
from app.ui.theme import apply_theme

ENV_SCREENSHOT = "MATTECAM_SCREENSHOT"
ENV_SCREENSHOT_FRAMES = "MATTECAM_SCREENSHOT_FRAMES"
ENV_SCREENSHOT_SIZES = "MATTECAM_SCREENSHOT_SIZES"


def application(argv: list[str] | None = None) -> QApplication:
    """The QApplication, created and themed on first use."""
    app = QApplication.instance()
    if app is None:
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QApplication(argv if argv is not None else sys.argv[:1])
    QCoreApplication.setOrganizationName(ORGANISATION)
    QCoreApplication.setApplicationName(APPLICATION)
    QGuiApplication.setApplicationDisplayName("mattecam")
    QGuiApplication.setDesktopFileName("mattecam")
    icon = ASSETS / "icon.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))
    apply_theme(app)
    return app  # type: ignore[return-value]


def startup_settings(
    settings: Settings, overrides: Iterable[str], store: Store
) -> tuple[Settings, list[str]]:
    """The settings the window starts with: remembered values, except where the command line
    gave one (``overrides``); a file source plays in a loop like a camera.

    Returns:
        The settings and one sentence for each remembered value that had to be skipped.
    """
    overrides = set(overrides)
    merged, problems = store.load_settings(settings, overrides)
    source = merged.source
    if (
        "loop" not in overrides
        and not is_camera_spec(source)
        and not source.startswith("synthetic")
    ):
        merged = merged.replace(loop=True)
    return merged, problems


def build_window(
    settings: Settings,
    overrides: Iterable[str] = (),
    vcam_backend: str | None = None,
    *,
    store: Store | None = None,
    fetch: Callable[..., Path] | None = None,
    screenshot: ScreenshotPlan | None = None,
) -> MainWindow:
    """Creates, restores and shows the window (a QApplication must exist).

    Args:
        settings: the command line's settings.
        overrides: names of the fields the command line gave.
        vcam_backend: virtual camera backend for the pipeline.
        store: remembered settings; None opens the default store.
        fetch: returns a variant's weights with progress (``app.matting.weights.fetch``).
        screenshot: pictures to take of the window; it closes after.
    """
    store = store if store is not None else Store()
    merged, problems = startup_settings(settings, overrides, store)
    window = MainWindow(
        merged,
        store,
        vcam_backend=vcam_backend,
        fetch=fetch,
        screenshot=screenshot,
    )
    for problem in problems:
        window.banners.show_message("warning", problem)
    geometry = store.geometry()
    if geometry is None or not window.restoreGeometry(geometry):
        screen = QGuiApplication.primaryScreen()
        area = screen.availableGeometry() if screen is not None else None
        width = min(1440, int(area.width() * 0.92)) if area else 1440
        height = min(900, int(area.height() * 0.92)) if area else 900
        window.resize(max(width, window.minimumWidth()), max(height, window.minimumHeight()))
    window.show()
    return window


def run_gui(settings: Settings, overrides: set[str], vcam_backend: str | None = None) -> int:
    """Runs the desktop app until its window closes.

    Args:
        settings: the settings the command line built.
        overrides: the :class:`Settings` field names the user gave on the command line; they win
            over the remembered values for this run.
        vcam_backend: virtual camera backend name (None: any installed driver).

    Returns:
        The exit code: 0, or 1 when a requested screenshot could not be taken.
    """
    app = application()
    screenshot = os.environ.get(ENV_SCREENSHOT, "").strip() or None
    try:
        frames = int(os.environ.get(ENV_SCREENSHOT_FRAMES, "60"))
    except ValueError:
        frames = 60
    sizes = []
    for text in os.environ.get(ENV_SCREENSHOT_SIZES, "").split(","):
        with contextlib.suppress(SettingsError):
            if text.strip():
                sizes.append(parse_resolution(text.strip()))
    plan = ScreenshotPlan(screenshot, frames, tuple(sizes)) if screenshot else None
    window = build_window(settings, overrides, vcam_backend, screenshot=plan)
    app.aboutToQuit.connect(window.shut_down)  # Also when the session ends without a close.
    # Ctrl+C in the terminal, SIGTERM (kill, a service stop, logout) and SIGHUP (the terminal
    # closed) close the window like the close button, so a recording is finalised. Python handles
    # signals only between bytecodes, so a timer lets it run now and then.
    previous = {sig: signal.signal(sig, lambda *_: window.close()) for sig in STOP_SIGNALS}
    ticker = QTimer()
    ticker.timeout.connect(lambda: None)
    ticker.start(250)
    try:
        code = app.exec()
    finally:
        ticker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return max(int(code), int(window.exit_code))
