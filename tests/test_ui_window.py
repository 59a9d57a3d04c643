"""The window with the real pipeline and network on a small synthetic or file source.

Only the virtual-camera driver (a system edge) and the camera list (hardware) are replaced.
"""

from __future__ import annotations

import platform
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QColor, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QPushButton

from app.capture import SyntheticSource
from app.capture.base import Requested, SourceError, SourceLost
from app.capture.kinds import register_source
from app.matting import weights
from app.output.virtualcam import guidance, register_backend, unregister_backend
from app.settings import Background, Settings
from app.ui.app import ENV_SCREENSHOT, ENV_SCREENSHOT_FRAMES, run_gui
from app.ui.main_window import ASSETS, MainWindow
from app.ui.output_panel import UNAVAILABLE
from app.ui.remedies import LINUX_INSTALL, PIPEWIRE_INSTALL
from app.ui.stats_bar import EMPTY
from app.ui.workers import live_threads
from tests.fakes import FakeDriver, flush_qt, make_settings, synthetic_video, wait_frames

pytestmark = pytest.mark.slow  # runs the official network

BUNDLED = ASSETS / "backgrounds"
UI_OVERRIDES = {"source", "background", "device"}


def make_video(path: Path, frames: int = 24) -> Path:
    """A short H.264 clip of the synthetic scene."""
    return synthetic_video(path, (320, 240), 15, frames)


def is_grey(image: QImage) -> bool:
    """Whether a picture has no colour (as the alpha matte view)."""
    colors = [QColor(image.pixel(x, y)) for x in range(0, image.width(), 7) for y in (5, 120)]
    return all(c.red() == c.green() == c.blue() for c in colors)


def click_thumbnail(qtbot, window: MainWindow, key: str) -> None:
    grid = window.backgrounds.grid
    item = window.backgrounds.item(key)
    assert item is not None, key
    grid.scrollToItem(item)
    rect = grid.visualItemRect(item)
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def pipeline_background(window: MainWindow) -> Background | None:
    pipeline = window.pipeline
    return pipeline.settings.background if pipeline is not None else None


def test_preview_frames_arrive_change_and_follow_the_view(open_window, qtbot) -> None:
    window = open_window()
    wait_frames(qtbot, window, 3)
    first = window.preview.image().copy()
    assert (first.width(), first.height()) == (320, 240)
    qtbot.waitUntil(lambda: window.preview.image() != first, timeout=30_000)
    assert window.mailbox.received >= window.preview.frames_shown

    window.set_view("alpha")
    qtbot.waitUntil(lambda: is_grey(window.preview.image()), timeout=30_000)
    window.set_view("side-by-side")
    qtbot.waitUntil(lambda: window.preview.image().width() == 640, timeout=30_000)
    window.set_view("result")
    qtbot.waitUntil(lambda: window.preview.image().width() == 320, timeout=30_000)

    qtbot.waitUntil(lambda: window.stats_bar.values["output"].text() != EMPTY, timeout=30_000)
    assert window.stats_bar.values["device"].text().startswith("cpu")
    assert "fps" in window.stats_bar.values["capture"].text()
    assert "x" in window.stats_bar.values["internal"].text()
    assert window.stats_bar.values["age"].text().endswith(" ms")


def test_thumbnails_shortcuts_and_drops_switch_the_background(open_window, qtbot, tmp_path) -> None:
    window = open_window()
    wait_frames(qtbot, window, 2)
    hills = str((BUNDLED / "hills.jpg").resolve())

    click_thumbnail(qtbot, window, hills)
    qtbot.waitUntil(
        lambda: pipeline_background(window) == Background(kind="image", path=hills), timeout=10_000
    )
    click_thumbnail(qtbot, window, "none")
    qtbot.waitUntil(lambda: pipeline_background(window) == Background(kind="none"), timeout=10_000)

    # B brings the last background back and takes it away again; N and P step through the grid.
    qtbot.keyClick(window, Qt.Key.Key_B)
    qtbot.waitUntil(lambda: pipeline_background(window).path == hills, timeout=10_000)
    qtbot.keyClick(window, Qt.Key.Key_B)
    qtbot.waitUntil(lambda: pipeline_background(window).kind == "none", timeout=10_000)
    qtbot.keyClick(window, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: pipeline_background(window).kind == "blur", timeout=10_000)
    qtbot.keyClick(window, Qt.Key.Key_P)
    qtbot.waitUntil(lambda: pipeline_background(window).kind == "none", timeout=10_000)

    # An unreadable file is refused with a message; the app goes on.
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a picture")
    window.backgrounds.add_files([str(broken)])
    qtbot.waitUntil(lambda: any("broken.png" in t for t in window.banners.texts()), timeout=10_000)
    assert window.backgrounds.item(str(broken)) is None
    assert window.backgrounds.user_files() == []

    # A picture dropped on the grid is added, selected and used.
    picture = tmp_path / "mine.png"
    QImage(64, 48, QImage.Format.Format_RGB888).save(str(picture))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(picture))])
    drop = QDropEvent(
        QPoint(10, 10).toPointF(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.backgrounds.grid.dropEvent(drop)
    mine = str(picture.resolve())
    qtbot.waitUntil(lambda: pipeline_background(window).path == mine, timeout=10_000)
    assert window.backgrounds.user_files() == [mine]
    assert window.store.user_backgrounds() == [mine]
    wait_frames(qtbot, window, 2)

    # F shows only the preview on the whole screen; Esc returns.
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert window.preview_fullscreen and not window.side_panel.isVisible()
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert not window.preview_fullscreen and window.side_panel.isVisible()

    # F1 lists every shortcut without stopping the preview.
    qtbot.keyClick(window, Qt.Key.Key_F1)
    assert window.help_dialog is not None and window.help_dialog.isVisible()
    assert ("B", "Background on / off") in window.help_dialog.texts()
    assert "(V)" in window.output_bar.vcam_switch.toolTip()
    assert "Next: N or PgDown" in window.backgrounds.item(hills).toolTip()  # Over a thumbnail.
    wait_frames(qtbot, window, 2)


def test_virtual_camera_switch_drives_the_driver(open_window, qtbot, fake_driver) -> None:
    window = open_window(vcam_backend="fake")
    wait_frames(qtbot, window, 2)
    window.set_preview_mirrored(True)
    qtbot.mouseClick(window.output_bar.vcam_switch, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: len(FakeDriver.instances) == 1, timeout=10_000)
    driver = FakeDriver.instances[0]
    qtbot.waitUntil(lambda: any(f.any() for f in driver.snapshot()), timeout=30_000)
    assert (driver.width, driver.height) == (320, 240)
    on = "On — /dev/fake0 (fake)"
    qtbot.waitUntil(lambda: window.output_bar.vcam_status.text() == on, timeout=10_000)
    # Mirroring the preview never mirrors what the virtual camera gets.
    assert window.preview.mirrored
    assert window.pipeline.settings.mirror is False

    qtbot.keyClick(window, Qt.Key.Key_V)
    qtbot.waitUntil(lambda: driver.closed, timeout=10_000)
    assert window.output_bar.vcam_status.text() == "Off"
    assert window.settings.virtual_cam is False


def test_missing_driver_is_one_message_with_a_retry_and_not_remembered_on(
    open_window, qtbot, tmp_path
) -> None:
    _Driver.installed.clear()
    register_backend("ui-later", _Driver)
    try:
        window = open_window(make_settings(virtual_cam=True), vcam_backend="ui-later")
        qtbot.waitUntil(lambda: window.banners.find("vcam") is not None, timeout=20_000)
        banner = window.banners.find("vcam")
        assert not window.output_bar.vcam_switch.isChecked()
        assert window.output_bar.vcam_status.text() == UNAVAILABLE  # One line under the switch.
        # The command sits in a field of its own, ready to copy; the message says it once.
        if platform.system() == "Linux":
            fields = banner.detail.command_fields
            assert [f.text() for f in fields] == [PIPEWIRE_INSTALL, LINUX_INSTALL]
            assert all(f.isReadOnly() for f in fields) and LINUX_INSTALL not in banner.text
            copy = [b for b in banner.detail.findChildren(QPushButton) if b.text() == "Copy"]
            qtbot.mouseClick(copy[1], Qt.MouseButton.LeftButton)
            assert QApplication.clipboard().text() == LINUX_INSTALL
        assert len(window.banners.texts()) == 1
        assert guidance() not in "".join(window.banners.texts())
        mirrored = window.preview.mirrored
        qtbot.keyClick(window, Qt.Key.Key_M)  # The window's keys still work with it open.
        assert window.preview.mirrored != mirrored
        # A failed switch is remembered off: the next start does not fail again.
        assert window.store.load_settings(Settings())[0].virtual_cam is False
        wait_frames(qtbot, window, 2)

        _Driver.installed.set()  # The user installs the driver and presses Try again.
        qtbot.mouseClick(banner.detail.buttons["Try again"], Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda: window.output_bar.vcam_status.text().startswith("On"), timeout=20_000
        )
        assert window.output_bar.vcam_switch.isChecked()
        qtbot.waitUntil(lambda: window.banners.find("vcam") is None, timeout=5_000)
        assert window.store.load_settings(Settings())[0].virtual_cam is True
        wait_frames(qtbot, window, 2)
    finally:
        window.close()
        unregister_backend("ui-later")


def test_settings_survive_a_restart(open_window, qtbot, tmp_path) -> None:
    video = str(make_video(tmp_path / "clip.mp4"))
    office = str((BUNDLED / "office.jpg").resolve())
    first = open_window(make_settings(), overrides={"device"})
    wait_frames(qtbot, first, 1)
    first.source_panel.ask_video_file = lambda: video
    qtbot.mouseClick(first.source_panel.open_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: first.pipeline.settings.source == video, timeout=10_000)
    click_thumbnail(qtbot, first, office)
    qtbot.waitUntil(lambda: pipeline_background(first) == Background("image", path=office))
    first.set_view("alpha")
    first.set_preview_mirrored(True)
    first.close()
    flush_qt()

    # Started again with the defaults (nothing given on the command line).
    second = open_window(Settings(device="cpu"), overrides={"device"})
    assert second.settings.source == video
    assert second.settings.loop is True
    assert second.settings.background == Background("image", path=office)
    assert second.backgrounds.current_choice().key == office
    assert second.source_panel.camera_combo.currentText() == "Video: clip.mp4"
    assert second.preview.mirrored and second.mailbox.view == "alpha"
    assert second.store.geometry() is not None  # the window's place and size
    wait_frames(qtbot, second, 2)
    assert second.pipeline.settings.source == video
    assert is_grey(second.preview.image())


def test_no_camera_is_said_plainly_and_a_video_file_recovers(
    open_window, qtbot, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr("app.capture.camera.list_cameras", lambda *a, **k: [])
    video = str(make_video(tmp_path / "clip.mp4"))
    window = open_window(make_settings(source="/dev/video63"))
    qtbot.waitUntil(lambda: window.banners.texts() != [], timeout=30_000)
    assert "/dev/video63" in window.banners.texts()[0]
    assert "--source" not in window.banners.texts()[0]  # The window's words, not the flags.
    assert window.pipeline is None
    qtbot.waitUntil(lambda: window.source_panel.no_camera.isVisible(), timeout=10_000)
    assert "No camera found" in window.source_panel.no_camera.text()

    assert "No camera found" in window.preview.message
    assert window.preview.action_button.isVisible()

    # The preview offers the file source right where the picture would be.
    window.source_panel.ask_video_file = lambda: video
    qtbot.mouseClick(window.preview.action_button, Qt.MouseButton.LeftButton)
    wait_frames(qtbot, window, 3)
    assert window.pipeline.settings.source == video
    assert not window.preview.action_button.isVisible()
    # The message belonged to the camera that failed; with the file playing it is gone.
    assert not any("/dev/video63" in t for t in window.banners.texts())


def test_recording_writes_a_playable_file(open_window, qtbot, tmp_path) -> None:
    window = open_window()
    wait_frames(qtbot, window, 1)
    target = tmp_path / "take.mp4"
    window.output_bar.ask_record_path = lambda: str(target)
    qtbot.mouseClick(window.output_bar.record_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.pipeline.settings.output == str(target), timeout=10_000)
    wait_frames(qtbot, window, 8)
    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: target.is_file(), timeout=20_000)
    with av.open(str(target)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) >= 4
    assert frames[0].shape == (240, 320, 3)
    assert np.std(frames[-1]) > 5  # A picture, not a flat frame.

    # A file the recorder refuses: the message shows, the button returns to "Record…".
    window.output_bar.ask_record_path = lambda: str(tmp_path / "take.txt")
    qtbot.mouseClick(window.output_bar.record_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any("take.txt" in t for t in window.banners.texts()), timeout=10_000)
    assert window.output_bar.recording is None and window.settings.output is None
    assert not window.output_bar.record_button.isChecked()


def test_first_start_shows_weight_progress_in_the_window(open_window, qtbot) -> None:
    proceed = threading.Event()

    def fetch(variant: str, *, progress=None) -> Path:
        progress("Downloading rvm_mobilenetv3.pth", 0.5)
        proceed.wait(30)
        return weights.fetch(variant, progress=progress)

    window = open_window(fetch=fetch)
    qtbot.waitUntil(lambda: window.progress.bar.value() == 500, timeout=10_000)
    assert window.progress.isVisible()
    assert window.progress.label.text().startswith("Downloading rvm_mobilenetv3.pth")
    assert "Downloading" in window.preview.message
    proceed.set()
    wait_frames(qtbot, window, 2)
    assert not window.progress.isVisible()


def test_a_variant_whose_weights_cannot_be_fetched_is_refused(open_window, qtbot) -> None:
    def fetch(variant: str, *, progress=None) -> Path:
        if variant == "resnet50":  # As without internet access: the download fails.
            raise weights.WeightsError("Could not fetch the resnet50 weights: no network.")
        return weights.fetch(variant, progress=progress)

    window = open_window(fetch=fetch)
    wait_frames(qtbot, window, 2)
    combo = window.quality_panel.variant_combo
    combo.setCurrentIndex(combo.findData("resnet50"))
    combo.activated.emit(combo.currentIndex())
    qtbot.waitUntil(lambda: window.settings.variant == "mobilenetv3", timeout=10_000)
    assert any("resnet50" in text for text in window.banners.texts())
    assert combo.currentData() == "mobilenetv3"
    assert window.pipeline.settings.variant == "mobilenetv3"
    # The refused variant is not remembered either: the next start would fail on it again.
    assert window.store.load_settings(Settings())[0].variant == "mobilenetv3"
    wait_frames(qtbot, window, 2)


def test_a_precision_that_cannot_run_here_is_refused_and_a_reload_ends(open_window, qtbot) -> None:
    window = open_window()
    wait_frames(qtbot, window, 2)
    combo = window.quality_panel.precision_combo

    def choose(precision: str) -> None:
        combo.setCurrentIndex(combo.findData(precision))
        combo.activated.emit(combo.currentIndex())

    choose("fp16")  # On the CPU the engine refuses half precision.
    qtbot.waitUntil(lambda: any("fp16" in t for t in window.banners.texts()), timeout=10_000)
    qtbot.waitUntil(lambda: window.settings.precision == "auto", timeout=10_000)
    assert not any("--precision" in t for t in window.banners.texts())
    assert combo.currentData() == "auto"
    assert window.store.load_settings(Settings())[0].precision == "auto"

    choose("fp32")  # The network is loaded again; the progress row goes when it is ready.
    qtbot.waitUntil(lambda: window.pipeline.settings.precision == "fp32", timeout=10_000)
    qtbot.waitUntil(
        lambda: any("Network ready" in t for t in window.banners.texts()), timeout=30_000
    )
    assert not window.progress.isVisible()
    wait_frames(qtbot, window, 2)


class _Driver(FakeDriver):
    """A virtual camera driver that is missing until :attr:`installed` is set."""

    installed = threading.Event()

    def __init__(self, **kw: object) -> None:
        if not self.installed.is_set():
            raise RuntimeError("v4l2loopback module is not loaded")
        super().__init__(**kw)


class _Unplugged:
    """Switch for :class:`FlakyCamera`."""

    lost = threading.Event()


@register_source("uiflaky")
class FlakyCamera(SyntheticSource):
    """A live source (like a camera) that can be unplugged and plugged in again."""

    is_live = True

    @classmethod
    def from_spec(cls, target: str, request: Requested) -> FlakyCamera:
        return cls(resolution=(320, 240), fps=15)

    def _open(self) -> None:
        if _Unplugged.lost.is_set():
            raise SourceError("The camera is unplugged.")
        super()._open()

    def _read(self) -> np.ndarray | None:
        if _Unplugged.lost.is_set():
            raise SourceLost("unplugged")
        return super()._read()


def test_a_lost_camera_is_one_message_that_goes_when_it_is_back(open_window, qtbot) -> None:
    _Unplugged.lost.clear()
    window = open_window(make_settings(source="uiflaky:"))
    wait_frames(qtbot, window, 2)

    def lost_banners() -> list[str]:
        return [t for t in window.banners.texts() if "stopped delivering" in t]

    _Unplugged.lost.set()
    qtbot.waitUntil(lambda: "trying again in 1 s" in "".join(lost_banners()), timeout=20_000)
    assert len(lost_banners()) == 1  # Each retry replaces the message.
    _Unplugged.lost.clear()
    qtbot.waitUntil(lambda: "The camera is back." in window.banners.texts(), timeout=20_000)
    assert lost_banners() == []
    wait_frames(qtbot, window, 3)


def test_closing_stops_every_thread(open_window, qtbot) -> None:
    window = open_window()
    wait_frames(qtbot, window, 2)
    pipeline = window.pipeline
    names = {t.name for t in threading.enumerate()}
    assert {"mattecam-matting", "mattecam-compose"} <= names
    assert len(live_threads()) == 2
    window.close()
    assert not pipeline.running
    assert live_threads() == []
    alive = {t.name for t in threading.enumerate() if t.name.startswith("mattecam-")}
    assert alive == set()


def test_run_gui_takes_a_screenshot_and_returns(qt_guard, settings_dir, tmp_path, monkeypatch):
    shot = tmp_path / "shot.png"
    monkeypatch.setenv(ENV_SCREENSHOT, str(shot))
    monkeypatch.setenv(ENV_SCREENSHOT_FRAMES, "4")
    assert run_gui(make_settings(), UI_OVERRIDES) == 0
    image = QImage(str(shot))
    assert not image.isNull() and image.width() >= 900
    flush_qt()
