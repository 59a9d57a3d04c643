"""The window's virtual camera route: PipeWire picked in the window, live, through a lost daemon."""

from __future__ import annotations

import platform
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt

from app.ui.output_panel import vcam_routes
from tests.fakes import make_settings, wait_frames
from tests.pipewire_stack import PipeWireStack, private_session

pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="PipeWire runs on Linux")

LIVE = "On — mattecam (PipeWire)"


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[PipeWireStack]:
    with private_session(monkeypatch) as stack:
        yield stack


def test_the_routes_offered_on_linux() -> None:
    assert vcam_routes() == [
        ("auto", "Automatic"),
        ("pipewire", "PipeWire"),
        ("v4l2", "v4l2loopback"),
    ]


def test_picking_pipewire_shows_it_live_and_it_rides_out_a_lost_daemon(
    open_window, qtbot, session: PipeWireStack
) -> None:
    window = open_window(make_settings())
    bar = window.output_bar
    assert bar.vcam_route.currentData() == "auto"
    index = bar.vcam_route.findData("pipewire")
    bar.vcam_route.setCurrentIndex(index)
    bar.vcam_route.activated.emit(index)  # as when the user picks it
    assert window.settings.vcam_backend == "pipewire"
    qtbot.mouseClick(bar.vcam_switch, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bar.vcam_status.text() == LIVE, timeout=30_000)
    session.wait_for_node("mattecam")

    session.stop_daemon()
    qtbot.waitUntil(lambda: "retrying" in bar.vcam_status.text(), timeout=20_000)
    assert bar.vcam_switch.isChecked()
    wait_frames(qtbot, window, 5)  # the preview runs on
    session.start()
    qtbot.waitUntil(lambda: bar.vcam_status.text() == LIVE, timeout=20_000)
    session.wait_for_node("mattecam")
    assert window.banners.find("vcam") is None
