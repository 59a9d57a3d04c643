"""The window under faults: a network that cannot run at the chosen size says so."""

from __future__ import annotations

from tests.ui_fixtures import *  # noqa: F403 - fixtures
from tests.ui_fixtures import make_settings


def test_a_ratio_too_small_for_the_frames_is_said_in_the_window(open_window, qtbot) -> None:
    window = open_window(
        make_settings(downsample_ratio=0.001),
        overrides={"source", "background", "device", "downsample_ratio"},
    )
    qtbot.waitUntil(lambda: window.banners.texts() != [], timeout=60_000)
    text = " ".join(window.banners.texts())
    assert "at least" in text and "leave it out" not in text
    assert "Waiting for the first frame" not in window.preview.message
