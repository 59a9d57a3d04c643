"""The window as a first-time user finds it: messages that go with their cause, choices that are
remembered, recording that cannot be missed, full screen that says how to leave, labelled views.

The parts are tested on their own where that shows the behaviour; the window runs the real
pipeline on a small synthetic source.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QImage
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QLabel,
    QPushButton,
    QRadioButton,
    QWidget,
)

from app.settings import Background, Settings
from app.ui.backgrounds_panel import BackgroundsPanel, bundled_backgrounds
from app.ui.dialogs import Folder, start_folder
from app.ui.main_window import ASSETS
from app.ui.output_panel import default_recording_path
from app.ui.preview import SPLIT_LABELS, PreviewWidget
from app.ui.quality_panel import Preset, QualityPanel
from app.ui.remedies import LINUX_INSTALL, NO_VCAM, PIPEWIRE_INSTALL, vcam_remedy
from app.ui.shortcuts import HelpDialog
from app.ui.stats_bar import FIELDS
from app.ui.thumbnails import Io
from tests.fakes import flush_qt, make_settings, wait_frames

RED, BLUE = QColor(220, 30, 30), QColor(30, 30, 220)


@pytest.fixture
def io(qt_app, qt_guard):
    worker = Io()
    yield worker
    worker.close()


def halves(width: int = 320, height: int = 120) -> QImage:
    """A frame whose left half is red and right half blue."""
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(BLUE)
    for x in range(width // 2):
        for y in range(height):
            image.setPixelColor(x, y, RED)
    return image


def is_near(color: QColor, target: QColor) -> bool:
    return all(
        abs(a - b) < 40 for a, b in zip(color.getRgb()[:3], target.getRgb()[:3], strict=True)
    )


def test_mirror_keeps_the_camera_left_in_side_by_side_and_names_the_halves(
    qt_app, qt_guard
) -> None:
    preview = PreviewWidget()
    preview.resize(640, 240)
    preview.set_mirrored(True)
    preview.set_image(halves(), split=True)
    shot = preview.grab().toImage()
    assert is_near(shot.pixelColor(200, 200), RED)  # Camera stays on the left...
    assert is_near(shot.pixelColor(440, 200), BLUE)  # ...the result on the right.
    assert preview.split and SPLIT_LABELS == ("Camera", "Result")
    # The names are drawn: dark pills over the top-left corner of each half.
    assert shot.pixelColor(24, 20).red() < 120 and shot.pixelColor(344, 20).blue() < 120

    preview.set_image(halves(), split=False)  # A single picture mirrors as a whole.
    shot = preview.grab().toImage()
    assert is_near(shot.pixelColor(200, 200), BLUE)
    preview.deleteLater()
    flush_qt()


def test_recording_indicator_and_notes_are_drawn_over_the_picture(qt_app, qt_guard, qtbot):
    preview = PreviewWidget()
    preview.resize(640, 360)
    image = QImage(320, 180, QImage.Format.Format_RGB32)
    image.fill(QColor(40, 140, 40))
    preview.set_image(image)
    preview.set_recording("REC 0:09")
    shot = preview.grab().toImage()
    corner = shot.pixelColor(preview.width() - 30, 24)
    assert corner.red() > 180 and corner.green() < 110  # The red indicator, top right.
    preview.set_recording(None)
    assert preview.grab().toImage().pixelColor(preview.width() - 30, 24).green() > 100

    preview.show_note("Press Esc to leave full screen", timeout_ms=50)
    assert preview.note is not None
    qtbot.waitUntil(lambda: preview.note is None, timeout=2000)
    preview.deleteLater()
    flush_qt()


def test_help_says_how_to_start_and_its_title_names_the_app_once(qt_app, qt_guard) -> None:
    dialog = HelpDialog()
    assert dialog.windowTitle() == "Help — mattecam"
    assert dialog.windowTitle().count("mattecam") == 1
    assert "Virtual camera" in dialog.intro.text() and "Open a video file" in dialog.intro.text()
    assert len(dialog.texts()) >= 10
    dialog.deleteLater()
    flush_qt()


def _same_pixels(icon: QIcon) -> bool:
    size = QSize(64, 36)
    normal = icon.pixmap(size, QIcon.Mode.Normal).toImage()
    selected = icon.pixmap(size, QIcon.Mode.Selected).toImage()
    return normal == selected


def test_background_grid_labels_slider_and_colour_preview(io, qtbot, tmp_path) -> None:
    picture = tmp_path / "my-beach.jpg"
    QImage(64, 48, QImage.Format.Format_RGB888).save(str(picture))
    panel = BackgroundsPanel(io, bundled_backgrounds(ASSETS / "backgrounds"), [], Background())
    panel.show()
    chosen: list[Background] = []
    panel.background_chosen.connect(chosen.append)

    panel.add_files([str(picture)])
    assert panel.item(str(picture)).text() == "My beach"  # No ".jpg".
    # Selected thumbnails keep their colours (Green screen stays green).
    assert _same_pixels(panel.item("green").icon())
    qtbot.waitUntil(lambda: str(picture.resolve()) in panel.thumbnails_ready, timeout=10_000)
    assert _same_pixels(panel.item(str(picture)).icon())

    # The blur strength shows only with the blur background.
    panel.select(Background(kind="blur"))
    assert panel.blur_row.isVisible()
    panel.select(Background(kind="green"))
    assert not panel.blur_row.isVisible()

    # The colour dialog shows each colour live; cancelling puts the old one back.
    seen: list[Background] = []

    def try_colours() -> None:
        dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QColorDialog))
        dialog.setCurrentColor(QColor("#ff8800"))
        seen.append(chosen[-1])
        dialog.reject()

    QTimer.singleShot(100, try_colours)
    item = panel.item("color")
    panel.grid.setCurrentItem(item)
    chosen.clear()
    panel.grid.itemClicked.emit(item)
    assert seen == [Background(kind="color", color=(0xFF, 0x88, 0x00))]
    assert chosen[-1] == Background(kind="color", color=(30, 90, 160))  # Back to the old one.
    panel.close()
    panel.deleteLater()
    flush_qt()


def test_file_dialogs_start_in_the_users_folders(monkeypatch, tmp_path, qt_app, qt_guard) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    assert start_folder(Folder.PICTURES) == tmp_path  # Missing: the home folder, not the cwd.
    recording = Path(default_recording_path())
    assert recording.parent == tmp_path / "Videos" and recording.parent.is_dir()
    assert recording.suffix == ".mp4"
    assert start_folder(Folder.VIDEOS) == tmp_path / "Videos"


def test_recording_from_the_start_shows_in_every_view_and_the_title(
    open_window, qtbot, tmp_path
) -> None:
    target = tmp_path / "from-start.mp4"
    window = open_window(make_settings(output=str(target)), overrides={"source", "output"})
    assert window.output_bar.recording == str(target)
    wait_frames(qtbot, window, 2)
    qtbot.waitUntil(lambda: (window.preview.recording_text or "").startswith("REC"), timeout=5000)
    assert window.windowTitle().startswith("● Recording") and "mattecam" in window.windowTitle()

    # Full screen hides the bars but not the indicator, and says how to leave.
    qtbot.keyClick(window, Qt.Key.Key_F)
    assert window.preview_fullscreen and not window.output_bar.isVisible()
    assert "Esc" in (window.preview.note or "")
    shot = window.preview.grab().toImage()
    corner = shot.pixelColor(window.preview.width() - 30, 24)
    assert corner.red() > 180 and corner.green() < 110
    qtbot.keyClick(window, Qt.Key.Key_Escape)

    qtbot.keyClick(window, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.windowTitle() == "mattecam", timeout=5000)
    assert window.preview.recording_text is None
    qtbot.waitUntil(lambda: target.is_file(), timeout=20_000)


def test_colour_blur_strength_and_divider_are_remembered(open_window, qtbot) -> None:
    first = open_window()
    panel = first.backgrounds
    panel.ask_color = lambda initial: QColor("#204060")
    item = panel.item("color")
    panel.grid.setCurrentItem(item)
    panel.grid.itemClicked.emit(item)
    assert first.settings.background == Background(kind="color", color=(0x20, 0x40, 0x60))
    panel.blur_slider.setValue(23)  # Back to blur, stronger.
    assert first.settings.background == Background(kind="blur", strength=23.0)
    first.splitter.setSizes([500, 500])  # The divider moved.
    sizes = first.splitter.sizes()
    first.close()
    flush_qt()

    second = open_window(Settings(source="synthetic:320x240@15", device="cpu"), {"device"})
    assert second.splitter.sizes() == sizes
    panel = second.backgrounds
    assert second.settings.background == Background(kind="blur", strength=23.0)
    assert panel.blur_slider.value() == 23
    colour = panel.background_for(panel.item("color").data(Qt.ItemDataRole.UserRole))
    assert colour == Background(kind="color", color=(0x20, 0x40, 0x60))
    second.close()
    flush_qt()


def test_weights_that_cannot_be_downloaded_can_be_chosen_by_hand(open_window, qtbot) -> None:
    from app.matting import weights

    cached = str(weights.fetch("mobilenetv3"))  # Stands for a file the user downloaded.

    def offline(variant: str, *, progress=None) -> Path:
        raise weights.WeightsError("Could not fetch the weights: no network.")

    window = open_window(fetch=offline)
    qtbot.waitUntil(lambda: window.banners.find("weights") is not None, timeout=20_000)
    banner = window.banners.find("weights")
    assert "rvm_mobilenetv3.pth" in banner.text and "--checkpoint" not in banner.text
    assert window.pipeline is None
    asked: list[str] = []
    window.remedies.ask_weights_file = lambda variant: asked.append(variant) or cached
    button = banner.detail.buttons["Choose MobileNetV3 weights…"]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert asked == ["mobilenetv3"]
    wait_frames(qtbot, window, 2)
    assert window.pipeline.settings.checkpoint == cached
    assert window.banners.find("weights") is None
    window.close()
    flush_qt()

    # The chosen file is remembered: the next start needs no download.
    second = open_window(fetch=offline)
    wait_frames(qtbot, second, 1)
    assert second.pipeline.settings.checkpoint == cached


def test_only_devices_and_precisions_that_can_run_are_offered(qt_app, qt_guard) -> None:
    import torch

    panel = QualityPanel(Settings())
    devices = [panel.device_combo.itemData(i) for i in range(panel.device_combo.count())]
    precisions = [panel.precision_combo.itemData(i) for i in range(panel.precision_combo.count())]
    assert "cpu" in devices and "auto" in devices
    assert ("cuda" in devices) == torch.cuda.is_available()
    assert ("fp16" in precisions) == torch.cuda.is_available()
    panel.deleteLater()
    flush_qt()


def test_quality_offers_a_simple_choice_and_says_when_detail_is_lowered(qt_app, qt_guard) -> None:
    panel = QualityPanel(Settings())
    panel.show()
    changes: list[dict] = []
    panel.changed.connect(changes.append)
    # The defaults are the smoothest choice; the expert controls wait behind a button.
    assert panel.preset_buttons[Preset.SMOOTHEST].isChecked()
    assert not panel.advanced.isVisible() and not panel.custom_note.isVisible()
    panel.preset_buttons[Preset.SHARPEST].click()
    assert changes[-1] == {"hold_fps": False, "sync": "exact"}
    assert not panel.hold_fps.isChecked() and panel.sync_combo.currentData() == "exact"
    panel.advanced_button.click()
    assert panel.advanced.isVisible()
    panel.hold_fps.setChecked(True)  # An expert mix matches no simple choice.
    assert not any(b.isChecked() for b in panel.preset_buttons.values())
    assert panel.custom_note.isVisible()

    # A fixed 87 % detail that holding the frame rate brought down to 256x144 on a 640x480
    # frame: the panel says what is in use and why, next to the 87 % chosen.
    panel.set_settings(Settings(downsample_ratio=0.87, hold_fps=True))
    assert panel.ratio_label.text() == "87\u00a0%"
    panel.show_in_use("256x192", (640, 480))
    assert panel.in_use.isVisible()
    assert "40\u00a0%" in panel.in_use.text() and "87\u00a0%" in panel.in_use.text()
    assert "keep up" in panel.in_use.text()
    panel.show_in_use("557x418", (640, 480))  # As chosen: nothing to say.
    assert not panel.in_use.isVisible()
    # Words a non-expert does not know are gone from the tab and the status bar.
    assert [title for _key, title in FIELDS] == [
        "Camera", "Cut-out", "Sent", "Delay", "Matte age", "Runs on", "Detail", "Source"
    ]  # fmt: skip
    shown = " ".join(w.text() for w in panel.findChildren(QLabel) + panel.findChildren(QCheckBox))
    shown += " ".join(b.text() for b in panel.findChildren(QPushButton))
    for word in ("downsample", "ratio", "precision", "memory", "Smooth —", "Exact"):
        assert word.lower() not in shown.lower(), word
    panel.close()
    panel.deleteLater()
    flush_qt()


SIZES = ((1024, 640), (1280, 800), (1920, 1080))


def clipped(root: QWidget) -> list[str]:
    """The visible labels, buttons and lists under ``root`` whose text does not fit, or that are
    cut off on the side. Lists may shorten long file names (the full name is in a tooltip)."""
    problems = []
    for widget in root.findChildren(QWidget):
        if not widget.isVisible() or widget.width() <= 0:
            continue
        if not isinstance(widget, (QLabel, QAbstractButton, QComboBox)):
            continue
        seen = widget.visibleRegion().boundingRect()
        if not seen.isEmpty() and seen.width() < widget.width() - 1:
            problems.append(f"{type(widget).__name__}: only {seen.width()} of {widget.width()} px")
            continue  # Cut off on the side (scrolling up and down is fine).
        text = widget.text() if isinstance(widget, (QLabel, QAbstractButton)) else ""
        name = f"{type(widget).__name__} '{text[:40]}'"
        if isinstance(widget, QLabel) and widget.text() and not widget.pixmap():
            if widget.wordWrap():
                need = widget.heightForWidth(widget.width())
                if widget.height() + 1 < need:
                    problems.append(f"{name}: {widget.height()} px high, needs {need}")
            else:
                need = widget.minimumSizeHint().width()
                if widget.width() + 1 < need:
                    problems.append(f"{name}: {widget.width()} px wide, needs {need}")
        elif isinstance(widget, (QPushButton, QCheckBox, QRadioButton)) and widget.text():
            need = widget.sizeHint().width()
            if widget.width() + 1 < need:
                problems.append(f"{name}: {widget.width()} px wide, needs {need}")
        elif isinstance(widget, QComboBox) and 0 < len(widget.currentText()) <= 40:
            need = widget.fontMetrics().horizontalAdvance(widget.currentText()) + 30
            if widget.width() < need:
                problems.append(f"{name} '{widget.currentText()}': {widget.width()} < {need} px")
    return problems


def test_nothing_is_cut_off_at_ordinary_sizes(open_window, qtbot, monkeypatch) -> None:
    monkeypatch.setattr("app.capture.camera.list_cameras", lambda *a, **k: [])
    window = open_window()
    wait_frames(qtbot, window, 1)
    window.source_panel.set_cameras([])  # "No camera found" shows in Source.
    long_name = "/videos/" + "a-rather-long-recording-name-" * 3 + ".mp4"
    window.source_panel.set_settings(window.settings.replace(source=long_name))
    window.quality_panel.set_advanced_visible(True)
    window.banners.show_message("warning", "A message that comes and goes. " * 3)
    problems = []
    for width, height in ((window.minimumWidth(), window.minimumHeight()), *SIZES):
        window.resize(width, height)
        for index in range(window.tabs.count()):
            window.tabs.setCurrentIndex(index)
            flush_qt()
            qtbot.wait(50)
            problems += [f"{width}x{height} tab {index}: {p}" for p in clipped(window)]
    assert not problems, "\n".join(problems)


def test_messages_do_not_move_the_preview(open_window, qtbot) -> None:
    window = open_window()
    wait_frames(qtbot, window, 1)
    before = window.preview.mapTo(window, window.preview.rect().topLeft())
    height = window.preview.height()
    window.banners.show_message("error", "Something the user should read.")
    flush_qt()
    assert window.banners.isVisible() and window.banners.height() > 10
    assert window.preview.mapTo(window, window.preview.rect().topLeft()) == before
    assert window.preview.height() == height
    # It floats over the lower edge, so the recording mark in the upper corner stays in view.
    bottom = window.banners.mapTo(window, window.banners.rect().bottomLeft()).y()
    preview_bottom = window.preview.mapTo(window, window.preview.rect().bottomLeft()).y()
    assert preview_bottom - 20 < bottom < preview_bottom


def test_screenshots_picture_each_tab_at_each_size(qt_guard, settings_dir, tmp_path, monkeypatch):
    from app.ui.app import ENV_SCREENSHOT, ENV_SCREENSHOT_FRAMES, ENV_SCREENSHOT_SIZES, run_gui

    shot = tmp_path / "shot.png"
    monkeypatch.setenv(ENV_SCREENSHOT, str(shot))
    monkeypatch.setenv(ENV_SCREENSHOT_FRAMES, "2")
    monkeypatch.setenv(ENV_SCREENSHOT_SIZES, "1024x640")
    assert run_gui(make_settings(), {"source", "background", "device"}) == 0
    for tab in ("background", "source", "quality"):
        image = QImage(str(tmp_path / f"shot-1024x640-{tab}.png"))
        assert (image.width(), image.height()) == (1024, 640), tab
    flush_qt()


def test_the_virtual_camera_message_keeps_the_reason_and_names_what_to_install() -> None:
    linux = vcam_remedy("Linux")
    assert linux.text.startswith(NO_VCAM) and linux.text.endswith("press Try again.")
    assert linux.commands == (PIPEWIRE_INSTALL, LINUX_INSTALL)
    why = "PipeWire was asked for, but no PipeWire daemon answers."
    assert vcam_remedy("Linux", reason=why).text.startswith(why)
    windows = vcam_remedy("Windows")
    assert "OBS Studio" in windows.text and windows.commands == ()
    assert "--" not in linux.text + windows.text  # Window words, no command-line flags.
