"""Messages that come with their remedy: the command to copy and a button that tries again
(no virtual camera driver), or a button that picks the file (weights that must be fetched by
hand). The window shows each as one banner over the preview."""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.events import VcamState
from app.output import pipewire
from app.output.virtualcam import LINUX_COMMAND
from app.ui.dialogs import Folder, start_folder
from app.ui.output_panel import OutputBar
from app.ui.store import Store
from app.ui.widgets import BannerArea

#: Keys of the banners about the virtual camera driver and about missing weights.
VCAM_BANNER = "vcam"
WEIGHTS_BANNER = "weights"
#: Installs and loads the Linux driver, in one line a user can paste into a terminal.
LINUX_INSTALL = f"sudo apt install v4l2loopback-dkms && {LINUX_COMMAND}"
#: Installs what the PipeWire camera needs (no driver) on a PipeWire desktop.
PIPEWIRE_INSTALL = f"sudo apt install {pipewire.PACKAGES}"


@dataclass(frozen=True)
class Remedy:
    """What to tell the user and what they can do about it.

    Attributes:
        text: one or two sentences.
        commands: commands to run in a terminal (each shown in a field to copy).
    """

    text: str
    commands: tuple[str, ...] = ()


#: What the window says when the pipeline gives no more precise reason.
NO_VCAM = "No virtual camera was found."


def vcam_remedy(os_name: str | None = None, reason: str | None = None) -> Remedy:
    """What to do when no virtual camera could be opened.

    Args:
        os_name: ``Linux``, ``Windows`` or ``Darwin``; None means this machine's.
        reason: why the chosen route did not open (one sentence), None when there was none.
    """
    lead = reason or NO_VCAM
    name = (os_name or platform.system()).lower()
    if name.startswith("linux"):
        return Remedy(
            f"{lead} On a PipeWire desktop (GNOME or KDE on Wayland) run the first command in a "
            "terminal; elsewhere the second, which installs and loads the v4l2loopback driver. "
            "Then press Try again.",
            (PIPEWIRE_INSTALL, LINUX_INSTALL),
        )
    return Remedy(
        f"{lead} Install OBS Studio (28 or newer), open it once and click Start Virtual Camera, "
        "close it, then press Try again."
    )


def weights_remedy(label: str, filename: str) -> Remedy:
    """What to do when a network's weights could not be downloaded.

    Args:
        label: the network's name as the window shows it.
        filename: the weights file the user can fetch by hand.
    """
    return Remedy(
        f"The {label} weights could not be downloaded (is this computer offline?). Download "
        f"{filename} on a computer with internet, then choose the file here."
    )


class RemedyRow(QWidget):
    """Commands to copy (each a read-only field with a Copy button), then action buttons.

    Args:
        commands: one field each.
        actions: (button text, what it does) pairs, in a row at the end.
    """

    def __init__(
        self,
        commands: Sequence[str],
        actions: Sequence[tuple[str, Callable[[], None]]],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 2, 0, 0)
        column.setSpacing(4)
        self.command_fields: list[QLineEdit] = []
        for command in commands:
            field = QLineEdit(command)
            field.setReadOnly(True)
            field.setCursorPosition(0)
            field.setToolTip("Select and copy this command, or press Copy")
            # Only a click focuses it: the window's letter shortcuts keep working.
            field.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
            copy = QPushButton("Copy")
            copy.setToolTip("Copy the command to the clipboard")
            copy.clicked.connect(lambda _=False, c=command: QApplication.clipboard().setText(c))
            row = QHBoxLayout()
            row.addWidget(field, 1)
            row.addWidget(copy)
            column.addLayout(row)
            self.command_fields.append(field)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.buttons: dict[str, QPushButton] = {}
        for text, action in actions:
            button = QPushButton(text)
            button.clicked.connect(action)
            buttons.addWidget(button)
            self.buttons[text] = button
        column.addLayout(buttons)


def variant_name(variant: str) -> str:
    """A network's name as the window shows it (``MobileNetV3``)."""
    from app.ui.quality_panel import VARIANT_LABELS

    return VARIANT_LABELS.get(variant, variant).split(" — ")[0]


def weights_filename(variant: str) -> str:
    """The name of the weights file of ``variant`` (what the user downloads by hand)."""
    from app.matting.registry import lookup

    try:
        return lookup(variant).filename
    except Exception:  # An unknown variant: name it as the registry would.
        return f"rvm_{variant}.pth"


def checkpoint_for(store: Store, variant: str) -> str | None:
    """The weights file the user chose for ``variant`` earlier, if it is still there."""
    path = store.text(f"checkpoint_{variant}")
    return path if path and Path(path).is_file() else None


class Remedies:
    """Shows the banners that come with a remedy and carries the remedy out.

    Args:
        banners: where the messages go.
        output_bar: the virtual-camera switch.
        store: remembers the weights files the user chose.
        change: applies changed settings (the window's ``_change``).
    """

    def __init__(
        self,
        banners: BannerArea,
        output_bar: OutputBar,
        store: Store,
        change: Callable[..., None],
    ) -> None:
        self._banners = banners
        self._output_bar = output_bar
        self._store = store
        self._change = change
        self._vcam_was_on = False
        #: Asks for a weights file of a variant; None when cancelled (replaceable for tests).
        self.ask_weights_file: Callable[[str], str | None] = self._ask_weights_file

    # --- virtual camera --------------------------------------------------------------------------

    def vcam_state(self, state: VcamState, device: str = "", problem: str = "") -> None:
        """Follows the pipeline's virtual-camera state (its device while on, and what keeps its
        frames from apps while it retries)."""
        if state is VcamState.ON:
            self._vcam_was_on = True
            self._banners.dismiss_key(VCAM_BANNER)
        if state is VcamState.UNAVAILABLE and self._vcam_was_on:  # It failed while running.
            self.vcam_unavailable()
        elif state is not VcamState.UNAVAILABLE:
            self._output_bar.set_vcam_state(state, device, problem)

    def vcam_unavailable(self, reason: str | None = None) -> None:
        """No driver: the switch goes off (and is remembered off); one banner says what to do.

        Args:
            reason: why the chosen route did not open, when the pipeline said more than that
                none is available.
        """
        self._vcam_was_on = False
        self._output_bar.show_unavailable()
        self._change(virtual_cam=False)
        remedy = vcam_remedy(reason=reason)
        detail = RemedyRow(remedy.commands, [("Try again", self.retry_vcam)])
        self._banners.show_message("warning", remedy.text, key=VCAM_BANNER, detail=detail)

    def retry_vcam(self) -> None:
        """Looks for the virtual camera driver again (after the user installed it)."""
        self._output_bar.set_vcam_requested(True)
        self._change(virtual_cam=True)

    # --- weights ---------------------------------------------------------------------------------

    def weights_missing(self, variant: str) -> None:
        """The weights of ``variant`` could not be downloaded: offer to choose the file."""
        label = variant_name(variant)
        remedy = weights_remedy(label, weights_filename(variant))
        choose = (f"Choose {label} weights…", lambda: self.choose_weights(variant))
        detail = RemedyRow((), [choose])
        self._banners.show_message("error", remedy.text, key=WEIGHTS_BANNER, detail=detail)

    def choose_weights(self, variant: str) -> None:
        """Asks for a weights file of ``variant``, uses it and remembers it."""
        path = self.ask_weights_file(variant)
        if not path:
            return
        self._banners.dismiss_key(WEIGHTS_BANNER)
        self._store.set_text(f"checkpoint_{variant}", path)
        self._change(variant=variant, checkpoint=path)

    def _ask_weights_file(self, variant: str) -> str | None:
        folder = str(start_folder(Folder.DOWNLOADS))
        title = f"Choose the {variant_name(variant)} weights"
        parent = self._banners.window()
        path, _ = QFileDialog.getOpenFileName(parent, title, folder, "Weights (*.pth *.pt)")
        return path or None
