"""The side panel: the Background, Source and Quality tabs, with what they remember between runs
(the open tab, the blur strength and colour chosen last, whether Advanced settings are open)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtWidgets import QTabWidget, QVBoxLayout, QWidget

from app.settings import Background, Settings, SettingsError
from app.ui.backgrounds_panel import BackgroundsPanel, bundled_backgrounds
from app.ui.controls import SourcePanel
from app.ui.quality_panel import QualityPanel
from app.ui.shortcuts import BY_ACTION
from app.ui.store import Store
from app.ui.thumbnails import Io
from app.ui.widgets import scrolled

#: The tabs, in order.
TABS = ("Background", "Source", "Quality")
#: Where the blur strength and the colour chosen last are kept (as ``--background`` values).
LAST_KEYS = {"blur": "last_blur", "color": "last_color"}


class SidePanel(QWidget):
    """The tabs beside the preview.

    Args:
        io: reads thumbnails off the UI thread.
        settings: what to show first.
        store: where the panel's own preferences are kept.
        backgrounds: the folder of bundled background images.
    """

    def __init__(self, io: Io, settings: Settings, store: Store, backgrounds: Path) -> None:
        super().__init__()
        self._store = store
        self.backgrounds = BackgroundsPanel(
            io, bundled_backgrounds(backgrounds), store.user_backgrounds(), settings.background
        )
        for key in LAST_KEYS.values():
            with contextlib.suppress(SettingsError):
                self.backgrounds.select(Background.parse(store.text(key)), keep=True)
        self.backgrounds.user_files_changed.connect(store.set_user_backgrounds)
        self.backgrounds.set_hint(
            f"Click a background to use it. Next: {BY_ACTION['next_background'].label}; "
            f"previous: {BY_ACTION['previous_background'].label}; "
            f"on / off: {BY_ACTION['toggle_background'].label}."
        )
        self.source_panel = SourcePanel(settings)
        self.quality_panel = QualityPanel(settings)
        self.quality_panel.set_advanced_visible(store.flag("quality_advanced"))
        self.quality_panel.advanced_button.toggled.connect(
            lambda on: store.set_flag("quality_advanced", on)
        )

        self.tabs = QTabWidget()
        self.tabs.addTab(self.backgrounds, TABS[0])
        self.tabs.addTab(scrolled(self.source_panel), TABS[1])
        self.tabs.addTab(scrolled(self.quality_panel), TABS[2])
        self.tabs.setMinimumWidth(330)
        self.tabs.setCurrentIndex(max(0, min(int(store.text("tab", "0") or 0), len(TABS) - 1)))
        self.tabs.currentChanged.connect(lambda i: store.set_text("tab", str(i)))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 8, 8, 8)
        layout.addWidget(self.tabs)

    def show_tab(self, name: str) -> None:
        """Opens one of :data:`TABS`."""
        self.tabs.setCurrentIndex(TABS.index(name))

    def remember(self, background: Background) -> None:
        """Keeps the strength or colour of a blur or colour background for the next run."""
        if background.kind in LAST_KEYS:
            self._store.set_text(LAST_KEYS[background.kind], background.spec())
