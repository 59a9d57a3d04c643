"""The window's parts on their own: settings store, preview, frame mailbox, panels, banners."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QObject, QRect, QSize, Qt, Slot
from PySide6.QtGui import QColor, QImage

from app.capture import CameraInfo
from app.events import SourceState, VcamState
from app.output.virtualcam import guidance
from app.pipeline import FramePacket
from app.settings import Background, Settings
from app.stats import Stats
from app.ui.app import startup_settings
from app.ui.backgrounds_panel import BackgroundsPanel, bundled_backgrounds
from app.ui.controls import SourcePanel
from app.ui.frames import FrameMailbox, compose_view
from app.ui.main_window import ASSETS
from app.ui.output_panel import UNAVAILABLE, OutputBar
from app.ui.preview import PreviewWidget, fit_rect
from app.ui.quality_panel import QualityPanel
from app.ui.stats_bar import FIELDS, StatsBar
from app.ui.store import Store, open_qsettings
from app.ui.thumbnails import Io
from app.ui.widgets import BannerArea
from app.ui.wording import for_window
from tests.fakes import flush_qt, synthetic_video


@pytest.fixture
def store(settings_dir: Path) -> Store:
    return Store(open_qsettings(settings_dir))


def test_store_restores_what_was_saved_except_overrides(store, settings_dir, tmp_path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    picture = tmp_path / "wall.png"
    picture.write_bytes(b"")
    saved = Settings(
        source=str(clip),
        resolution=(1280, 720),
        fps=30.0,
        background=Background(kind="image", path=str(picture)),
        variant="resnet50",
        downsample_ratio=0.5,
        full_body=True,
        hold_fps=False,
        sync="exact",
        virtual_cam=True,
    )
    store.save_settings(saved)
    store.sync()
    assert (settings_dir / "mattecam.ini").is_file()

    loaded, problems = startup_settings(Settings(fps=15.0), {"fps"}, store)
    assert problems == []
    assert loaded.replace(loop=False, fps=30.0) == saved
    assert loaded.fps == 15.0  # given on the command line: wins for this run
    assert loaded.loop  # a file plays in a loop, like a camera


def test_store_skips_remembered_values_that_are_no_longer_usable(store, tmp_path) -> None:
    store.save_settings(
        Settings(background=Background(kind="color", color=(1, 2, 3))), ["background"]
    )
    store.qsettings.setValue("settings/variant", "giant")
    store.qsettings.setValue("settings/resolution", "tiny")
    loaded, problems = store.load_settings(Settings(), ())
    assert loaded.background == Background(kind="color", color=(1, 2, 3))
    assert loaded.variant == "mobilenetv3" and loaded.resolution is None
    assert len(problems) == 2 and any("giant" in p for p in problems)

    gone = tmp_path / "gone.jpg"
    store.save_settings(Settings(), ["background"])
    store.qsettings.setValue("settings/background", str(gone))
    loaded, problems = store.load_settings(Settings(), ())
    assert loaded.background == Background()
    assert any("gone.jpg" in p for p in problems)


def test_store_keeps_user_backgrounds_and_preferences(store) -> None:
    assert store.user_backgrounds() == []
    store.set_user_backgrounds(["/a.png", "/b.mp4"])
    store.set_flag("preview_mirror", True)
    store.set_text("view", "alpha")
    again = Store(open_qsettings(Path(store.qsettings.fileName()).parent))
    assert again.user_backgrounds() == ["/a.png", "/b.mp4"]
    assert again.flag("preview_mirror") and again.text("view") == "alpha"


def halves(width: int = 320, height: int = 240) -> QImage:
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = (255, 0, 0)
    pixels[:, width // 2 :] = (0, 0, 255)
    image = QImage(pixels.data, width, height, width * 3, QImage.Format.Format_RGB888)
    return image.copy()


def test_preview_fits_the_frame_and_mirrors_only_the_drawing(qt_app, qt_guard) -> None:
    assert fit_rect(QSize(640, 360), QRect(0, 0, 400, 400)) == QRect(0, 87, 400, 225)
    assert fit_rect(QSize(320, 240), QRect(10, 0, 100, 300)) == QRect(10, 112, 100, 75)
    preview = PreviewWidget()
    preview.resize(320, 240)
    preview.set_image(halves())
    shot = preview.grab().toImage()
    assert QColor(shot.pixel(40, 120)) == QColor(255, 0, 0)
    preview.set_mirrored(True)
    shot = preview.grab().toImage()
    assert QColor(shot.pixel(40, 120)) == QColor(0, 0, 255)
    assert QColor(shot.pixel(280, 120)) == QColor(255, 0, 0)
    assert QColor(preview.image().pixel(40, 120)) == QColor(255, 0, 0)  # frame untouched
    assert preview.frames_shown == 1
    preview.deleteLater()
    flush_qt()


class _Counter(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    @Slot()
    def hit(self) -> None:
        self.calls += 1


def packet(index: int, size: tuple[int, int] = (32, 24)) -> FramePacket:
    w, h = size
    source = np.full((h, w, 3), index, np.uint8)
    return FramePacket(index, float(index), source, source[:, :, 0].copy(), source // 2)


def test_mailbox_hands_over_only_the_newest_frame(qt_app, qt_guard, qtbot) -> None:
    mailbox = FrameMailbox()
    counter = _Counter()
    mailbox.frame_ready.connect(counter.hit, Qt.ConnectionType.QueuedConnection)
    thread = threading.Thread(target=lambda: [mailbox.put(packet(i)) for i in range(1, 51)])
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: mailbox.latest_index == 50, timeout=10_000)
    flush_qt()
    assert counter.calls == 1  # one notification for fifty frames: nothing queues up
    frame = mailbox.take()
    assert frame.index == 50 and QColor(frame.image.pixel(0, 0)) == QColor(25, 25, 25)
    assert mailbox.take() is None
    assert mailbox.dropped == 49 and mailbox.received == 50
    mailbox.put(packet(51))
    qtbot.waitUntil(lambda: counter.calls == 2, timeout=10_000)
    assert mailbox.take().index == 51
    mailbox.close()
    mailbox.close()


def test_views_show_the_result_the_matte_or_both() -> None:
    p = packet(7, (40, 30))
    rgba = np.zeros((30, 40, 4), np.uint8)
    assert compose_view("result", p.source, p.alpha, p.composite) is p.composite
    assert compose_view("alpha", p.source, p.alpha, p.composite).shape == (30, 40)
    both = compose_view("side-by-side", p.source, p.alpha, rgba)
    assert both.shape == (30, 80, 3)
    assert (both[:, :40] == 7).all() and (both[:, 40:] == 0).all()


def make_video(path: Path) -> Path:
    return synthetic_video(path, (160, 120), 10, 5)


@pytest.fixture
def io(qt_app, qt_guard):
    worker = Io()
    yield worker
    worker.close()


def test_background_panel_offers_builtins_bundled_and_user_files(io, qtbot, tmp_path) -> None:
    bundled = bundled_backgrounds(ASSETS / "backgrounds")
    assert len(bundled) >= 6
    panel = BackgroundsPanel(io, bundled, [], Background(kind="blur"))
    chosen: list[Background] = []
    files: list[list[str]] = []
    panel.background_chosen.connect(chosen.append)
    panel.user_files_changed.connect(files.append)
    keys = [c.key for c in panel.choices()]
    assert keys[:4] == ["none", "blur", "color", "green"]
    assert keys[4:] == [str(p.resolve()) for p in bundled]
    assert panel.current_choice().key == "blur"
    qtbot.waitUntil(lambda: len(panel.thumbnails_ready) == len(bundled), timeout=20_000)

    video = str(make_video(tmp_path / "waves.mp4").resolve())
    panel.add_files([video, str(tmp_path / "notes.txt")])
    qtbot.waitUntil(lambda: bool(chosen) and chosen[-1].path == video, timeout=20_000)
    assert chosen[-1] == Background(kind="video", path=video)
    assert files[-1] == [video] and panel.remove_button.isEnabled()

    panel.remove_current()
    assert files[-1] == [] and panel.user_files() == []
    assert chosen[-1].kind == "image"  # the previous thumbnail: the last bundled image

    panel.ask_color = lambda initial: QColor("#123456")
    item = panel.item("color")
    panel.grid.setCurrentItem(item)
    panel.grid.itemClicked.emit(item)
    assert chosen[-1] == Background(kind="color", color=(0x12, 0x34, 0x56))
    panel.blur_slider.setValue(20)
    assert chosen[-1] == Background(kind="blur", strength=20.0)

    problems: list[str] = []
    panel.problem.connect(problems.append)
    panel.add_files([str(tmp_path / "notes.txt")])
    assert "notes.txt" in problems[-1]
    panel.deleteLater()
    flush_qt()


def test_source_panel_says_when_there_is_no_camera(qt_app, qt_guard) -> None:
    panel = SourcePanel(Settings(source="0"))
    panel.show()
    changes: list[dict] = []
    panel.changed.connect(changes.append)
    panel.set_cameras([])
    assert panel.no_camera.isVisible()
    assert panel.camera_combo.currentText() == "Camera 0"
    panel.set_cameras(
        [CameraInfo(0, "Desk camera", "/dev/video0"), CameraInfo(2, "USB", "/dev/video2")]
    )
    assert not panel.no_camera.isVisible()
    assert panel.camera_combo.currentText() == "Desk camera"
    panel.camera_combo.setCurrentIndex(1)
    panel.camera_combo.activated.emit(1)
    assert changes[-1] == {"source": "/dev/video2", "loop": False}
    index = panel.resolution_combo.findText("1280 × 720")
    panel.resolution_combo.setCurrentIndex(index)
    panel.resolution_combo.activated.emit(index)
    assert changes[-1] == {"resolution": (1280, 720)}
    panel.ask_video_file = lambda: "/videos/talk.mp4"
    panel.open_button.click()
    assert changes[-1] == {"source": "/videos/talk.mp4", "loop": True}
    assert panel.camera_combo.currentText() == "Video: talk.mp4"
    panel.close()
    panel.deleteLater()
    flush_qt()


def test_quality_panel_emits_valid_settings(qt_app, qt_guard) -> None:
    panel = QualityPanel(Settings(hold_fps=False))
    changes: list[dict] = []
    panel.changed.connect(changes.append)
    assert not panel.ratio_row.isVisibleTo(panel)  # Hidden, not a slider that looks usable.
    for mode in ("manual", "full_body"):
        index = panel.ratio_mode.findData(mode)
        panel.ratio_mode.setCurrentIndex(index)
        panel.ratio_mode.activated.emit(index)
        if mode == "manual":
            assert changes[-1] == {"downsample_ratio": 0.38, "full_body": False}
            panel.ratio_slider.setValue(50)
            assert changes[-1] == {"downsample_ratio": 0.5}
    assert changes[-1] == {"downsample_ratio": None, "full_body": True}
    index = panel.variant_combo.findData("resnet50")
    panel.variant_combo.setCurrentIndex(index)
    panel.variant_combo.activated.emit(index)
    panel.hold_fps.setChecked(True)
    assert changes[-1] == {"hold_fps": True}
    index = panel.sync_combo.findData("exact")
    panel.sync_combo.setCurrentIndex(index)
    panel.sync_combo.activated.emit(index)
    settings = Settings()
    for change in changes:
        settings = settings.replace(**change)
    assert (settings.variant, settings.full_body, settings.downsample_ratio) == (
        "resnet50",
        True,
        None,
    )
    assert settings.hold_fps and settings.sync == "exact"
    count = len(changes)
    panel.set_settings(Settings(hold_fps=False, sync="smooth"))  # shown, not announced
    assert not panel.hold_fps.isChecked() and panel.sync_combo.currentData() == "smooth"
    assert len(changes) == count
    panel.deleteLater()
    flush_qt()


def test_banners_can_be_read_and_dismissed(qt_app, qt_guard) -> None:
    area = BannerArea(limit=2)
    area.show_message("error", "Camera lost.")
    area.show_message("error", "Camera lost.")
    assert area.texts() == ["Camera lost."]
    area.show_message("warning", "Slow.")
    area.show_message("info", "Recording saved.")
    assert area.texts() == ["Slow.", "Recording saved."]
    area.banners()[0].dismiss()
    assert area.texts() == ["Recording saved."]

    # News about one thing replaces itself instead of piling up, and goes with its key.
    area.show_message("warning", "Camera lost; trying again in 1 s.", key="source")
    area.show_message("warning", "Camera lost; trying again in 2 s.", key="source")
    assert area.texts() == ["Recording saved.", "Camera lost; trying again in 2 s."]
    assert area.dismiss_key("source") and not area.dismiss_key("source")
    assert area.texts() == ["Recording saved."]
    area.deleteLater()
    flush_qt()


def test_advice_is_worded_for_the_window_and_the_command_line() -> None:
    from app.capture.camera import _no_camera
    from app.events import Advice, UserError
    from app.matting.factory import EngineError

    missing = _no_camera("index 0")
    assert str(missing) == (
        "No camera at index 0. Connect a camera; pick another camera with --source N or a video "
        "file with --source FILE."
    )
    assert for_window(missing.reason, missing.advice) == (
        "No camera at index 0. Connect a camera; pick another camera in Source, or open a video "
        "file in Source."
    )
    fp16 = EngineError("fp16 needs a GPU", Advice("precision", ("fp32", "auto")))
    assert str(fp16) == "fp16 needs a GPU; use --precision fp32 or auto."
    assert for_window(fp16.reason, fp16.advice) == (
        "fp16 needs a GPU; choose FP32 or Automatic as the precision in Quality."
    )
    variant = UserError("weights", Advice("variant", ("resnet50",)))
    assert for_window(variant.reason, variant.advice) == (
        "weights; choose resnet50 as the network in Quality."
    )
    assert for_window("Recording saved: a.mp4.") == "Recording saved: a.mp4."


def test_stats_bar_wraps_instead_of_cutting_values_off(qt_app, qt_guard) -> None:
    bar = StatsBar()
    bar.resize(1400, 30)
    bar.show()
    stats = Stats(
        capture_fps=29.9,
        matting_fps=10.6,
        output_fps=13.6,
        latency_ms_p50=118,
        latency_ms_p95=289,
        device="cuda",
        precision="fp16",
        internal_resolution="1920x1080",
        source_state=SourceState.RECONNECTING,
    )
    bar.show_stats(stats)
    flush_qt()
    assert bar.columns == len(FIELDS)
    assert bar.minimumSizeHint().width() < 400  # It never forces the window wider.
    for width in (870, 420):
        bar.resize(width, 30)
        flush_qt()
        assert bar.columns < len(FIELDS)
        for key, value in bar.values.items():
            assert value.width() >= value.sizeHint().width(), (width, key)
            assert value.mapTo(bar, value.rect().bottomRight()).x() <= width, (width, key)
    bar.set_source_detail("Desk camera: 1280x720 at 30 fps.")
    assert bar.values["state"].toolTip() == "Desk camera: 1280x720 at 30 fps."
    bar.close()
    bar.deleteLater()
    flush_qt()


def test_output_bar_shows_the_camera_state_and_the_guidance(qt_app, qt_guard) -> None:
    bar = OutputBar()
    toggles: list[bool] = []
    records: list[object] = []
    bar.vcam_toggled.connect(toggles.append)
    bar.record_toggled.connect(records.append)
    bar.vcam_switch.click()
    assert toggles == [True] and bar.vcam_status.text() == "Starting…"
    bar.set_vcam_state(VcamState.ON, "/dev/video10")
    assert bar.vcam_status.text() == "On — /dev/video10"
    bar.set_vcam_state(VcamState.UNAVAILABLE)
    # A few words under the switch; what to do is the window's one message above the preview.
    assert bar.vcam_status.text() == UNAVAILABLE and not bar.vcam_switch.isChecked()
    assert guidance() not in bar.vcam_status.text()
    bar.set_vcam_state(VcamState.OFF)
    assert bar.vcam_status.text() == UNAVAILABLE  # stays until the user tries again
    bar.vcam_switch.click()
    assert toggles[-1] is True and bar.vcam_status.text() == "Starting…"

    bar.ask_record_path = lambda: None
    bar.toggle_recording()
    assert records == [] and not bar.record_button.isChecked()
    bar.ask_record_path = lambda: "/tmp/take"
    bar.toggle_recording()
    assert records == ["/tmp/take.mp4"] and bar.record_button.isChecked()
    bar.toggle_recording()
    assert records[-1] is None and bar.record_button.text() == "Record…"
    bar.deleteLater()
    flush_qt()
