"""Keyboard shortcuts: one table that the window, the tooltips and the help dialog share."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True)
class Shortcut:
    """One keyboard shortcut.

    Attributes:
        action: the window's name for the action.
        keys: key sequences in Qt's portable text form, the first one shown in tooltips.
        description: what it does, for the help dialog.
    """

    action: str
    keys: tuple[str, ...]
    description: str

    @property
    def label(self) -> str:
        """The keys as the user reads them (``B``, ``Ctrl+Q``)."""
        native = QKeySequence.SequenceFormat.NativeText
        return " or ".join(QKeySequence(k).toString(native) for k in self.keys)


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("toggle_background", ("B",), "Background on / off"),
    Shortcut("next_background", ("N", "PgDown"), "Next background"),
    Shortcut("previous_background", ("P", "PgUp"), "Previous background"),
    Shortcut("toggle_vcam", ("V",), "Virtual camera on / off"),
    Shortcut("toggle_record", ("Ctrl+R",), "Start / stop recording"),
    Shortcut("fullscreen", ("F11", "F"), "Full-screen preview (Esc leaves it)"),
    Shortcut("mirror", ("M",), "Mirror the preview (the camera output is not mirrored)"),
    Shortcut("view_result", ("1",), "Preview: result"),
    Shortcut("view_alpha", ("2",), "Preview: alpha matte"),
    Shortcut("view_side", ("3",), "Preview: side by side with the original"),
    Shortcut("help", ("F1",), "This list of shortcuts"),
    Shortcut("quit", ("Ctrl+Q",), "Quit"),
)

BY_ACTION = {s.action: s for s in SHORTCUTS}

#: What the help dialog says before the shortcuts: how to do the usual things.
GETTING_STARTED = (
    (
        "Background",
        "Click a picture on the right. Blur and Colour have their own settings "
        "there; add your own images or videos with the button or by dropping them on the grid.",
    ),
    (
        "Video calls",
        "Turn on Virtual camera under the preview, then choose the mattecam camera "
        "in your meeting app's camera settings.",
    ),
    (
        "Recording",
        "Record… saves what the preview shows as Result to a video file; a red REC "
        "mark shows while it runs.",
    ),
    ("No camera?", "Open a video file in Source: it plays in a loop, like a camera."),
    (
        "Quality",
        "Pick Smoothest, Balanced or Sharpest; Advanced settings hold the expert controls.",
    ),
)


def install_shortcuts(
    window: QWidget, handlers: Mapping[str, Callable[[], None]]
) -> dict[str, QAction]:
    """Gives ``window`` an action for every shortcut (and Esc for ``leave_fullscreen``).

    Args:
        window: the window the keys work in.
        handlers: what each action does, by :attr:`Shortcut.action`.

    Returns:
        The actions by name.
    """
    actions: dict[str, QAction] = {}
    for shortcut in SHORTCUTS:
        action = QAction(shortcut.description, window)
        action.setShortcuts([QKeySequence(k) for k in shortcut.keys])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(handlers[shortcut.action])
        window.addAction(action)
        actions[shortcut.action] = action
    leave = QAction("Leave full screen", window)
    leave.setShortcut(QKeySequence(Qt.Key.Key_Escape))
    leave.triggered.connect(handlers["leave_fullscreen"])
    window.addAction(leave)
    actions["leave_fullscreen"] = leave
    return actions


def hint(action: str) -> str:
    """`` (B)``: the shortcut of an action, to append to a tooltip."""
    shortcut = BY_ACTION.get(action)
    return f" ({shortcut.label})" if shortcut else ""


class HelpDialog(QDialog):
    """How to get started, and every keyboard shortcut; not modal, so the preview keeps running
    behind it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Help — mattecam")  # Ends in the app's name: Qt adds it otherwise.
        rows = "".join(
            f"<tr><td style='padding:2px 10px 2px 0'><b>{title}</b></td><td>{text}</td></tr>"
            for title, text in GETTING_STARTED
        )
        self.intro = QLabel(f"<table>{rows}</table>")
        self.intro.setWordWrap(True)
        self.intro.setTextFormat(Qt.TextFormat.RichText)
        heading = QLabel("<b>Keyboard shortcuts</b>")
        self.setModal(False)
        self.table = QTableWidget(len(SHORTCUTS), 2)
        self.table.setHorizontalHeaderLabels(["Keys", "Action"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        for row, shortcut in enumerate(SHORTCUTS):
            self.table.setItem(row, 0, QTableWidgetItem(shortcut.label))
            self.table.setItem(row, 1, QTableWidgetItem(shortcut.description))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        note = QLabel("Double-click the preview for full screen, too.")
        note.setObjectName("muted")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addWidget(heading)
        layout.addWidget(self.table)
        layout.addWidget(note)
        layout.addWidget(buttons)
        header = self.table.horizontalHeader().sizeHint().height()
        rows = self.table.verticalHeader().length()
        self.table.setMinimumHeight(header + rows + 2 * self.table.frameWidth() + 2)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.resize(600, self.sizeHint().height())

    def texts(self) -> list[tuple[str, str]]:
        """The rows of the table: (keys, action)."""
        return [
            (self.table.item(r, 0).text(), self.table.item(r, 1).text())
            for r in range(self.table.rowCount())
        ]
