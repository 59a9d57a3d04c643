"""The bar above the preview: what the preview shows, mirroring, full screen and help."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QFrame, QHBoxLayout, QPushButton, QWidget

from app.ui.shortcuts import hint

VIEWS = (("result", "Result"), ("alpha", "Matte"), ("side-by-side", "Side by side"))
VIEW_KEYS = tuple(key for key, _ in VIEWS)
VIEW_TIPS = {
    "result": "Preview what the virtual camera and the recording get",
    "alpha": "Preview the alpha matte: white is the person, black the background",
    "side-by-side": "Preview the original camera picture next to the result",
}


class ViewBar(QFrame):
    """View switch (result / matte / side by side), mirror, full screen and help buttons.

    Signals:
        view_chosen(str): ``result``, ``alpha`` or ``side-by-side``.
        mirror_toggled(bool): mirror the preview.
        fullscreen_clicked(): show only the preview.
        help_clicked(): show the shortcuts.
    """

    view_chosen = Signal(str)
    mirror_toggled = Signal(bool)
    fullscreen_clicked = Signal()
    help_clicked = Signal()

    def __init__(self, view: str, mirrored: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("previewBar")
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 6, 8, 6)
        self.view_buttons = QButtonGroup(self)
        for i, (key, label) in enumerate(VIEWS):
            button = QPushButton(label)
            button.setCheckable(True)
            button.setChecked(key == view)
            button.setToolTip(VIEW_TIPS[key] + hint(f"view_{key.split('-')[0]}"))
            self.view_buttons.addButton(button, i)
            row.addWidget(button)
        self.view_buttons.idClicked.connect(lambda i: self.view_chosen.emit(VIEW_KEYS[i]))
        row.addStretch(1)
        self.mirror_button = QPushButton("Mirror")
        self.mirror_button.setCheckable(True)
        self.mirror_button.setChecked(mirrored)
        self.mirror_button.setToolTip(
            "Show the preview like a mirror; the camera output is not mirrored" + hint("mirror")
        )
        self.mirror_button.toggled.connect(self.mirror_toggled)
        self.fullscreen_button = QPushButton("Full screen")
        self.fullscreen_button.setToolTip("Show only the preview" + hint("fullscreen"))
        self.fullscreen_button.clicked.connect(self.fullscreen_clicked)
        self.help_button = QPushButton("Help")
        self.help_button.setToolTip("Keyboard shortcuts and help" + hint("help"))
        self.help_button.clicked.connect(self.help_clicked)
        for button in (self.mirror_button, self.fullscreen_button, self.help_button):
            row.addWidget(button)

    def set_view(self, view: str) -> None:
        """Checks the button of ``view`` without announcing it."""
        if view in VIEW_KEYS:
            self.view_buttons.button(VIEW_KEYS.index(view)).setChecked(True)

    def set_mirrored(self, mirrored: bool) -> None:
        """Sets the mirror button without announcing it."""
        self.mirror_button.blockSignals(True)
        self.mirror_button.setChecked(mirrored)
        self.mirror_button.blockSignals(False)
