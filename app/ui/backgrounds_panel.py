"""The background picker: a grid of thumbnails for the built-in kinds, the bundled images and the
user's own images and videos (added with a button or by drag and drop, removable, remembered)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QIcon,
    QImage,
    QPixmap,
)
from PySide6.QtWidgets import (
    QColorDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from app.settings import DEFAULT_BLUR, GREEN_SCREEN, Background
from app.ui.background_grid import (
    BackgroundGrid,
    builtin_icon,
    is_background_file,
    placeholder_icon,
    tile_icon,
)
from app.ui.dialogs import Folder, start_folder
from app.ui.thumbnails import Io

KEY_ROLE = Qt.ItemDataRole.UserRole
BUILTIN = ("none", "blur", "color", "green")
BUILTIN_LABELS = {"none": "None", "blur": "Blur", "color": "Colour", "green": "Green screen"}
FILE_FILTER = "Images and videos ({})".format(
    " ".join(f"*{s}" for s in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
)


@dataclass(frozen=True)
class Choice:
    """One thumbnail of the grid.

    Attributes:
        key: ``none``, ``blur``, ``color``, ``green`` or the file's path.
        label: the text under the thumbnail.
        user: added by the user (removable).
    """

    key: str
    label: str
    user: bool = False

    @property
    def is_file(self) -> bool:
        """Whether the choice is an image or video file."""
        return self.key not in BUILTIN


def bundled_backgrounds(folder: Path) -> list[Path]:
    """The images in the bundled backgrounds folder, sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _title(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").capitalize()


def _file_key(path: str) -> str:
    return str(Path(path).expanduser().resolve())


class BackgroundsPanel(QWidget):
    """Picks the background.

    Args:
        io: reads thumbnails off the UI thread.
        bundled: the bundled background images.
        user_files: the user's files remembered from earlier runs.
        current: the background in use.

    Signals:
        background_chosen(Background): the user picked a background.
        user_files_changed(list): the user's files, after an addition or removal.
        problem(str): something the user should read (an unreadable file).
    """

    background_chosen = Signal(object)
    user_files_changed = Signal(list)
    problem = Signal(str)

    def __init__(
        self,
        io: Io,
        bundled: Iterable[Path],
        user_files: Iterable[str],
        current: Background,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._io = io
        self._items: dict[str, QListWidgetItem] = {}
        self._color = current.color if current.kind == "color" else (30, 90, 160)
        self._pending_select: str | None = None
        self._thumbs_ready: set[str] = set()
        self._hint = ""
        #: Asks the user for a colour; returns None when cancelled (replaceable for tests).
        self.ask_color: Callable[[QColor], QColor | None] = self._ask_color
        #: Asks the user for files to add (replaceable for tests).
        self.ask_files: Callable[[], list[str]] = self._ask_files

        self.grid = BackgroundGrid()
        self.grid.currentItemChanged.connect(self._on_current_changed)
        self.grid.itemClicked.connect(self._on_clicked)
        self.grid.customContextMenuRequested.connect(self._context_menu)
        self.grid.files_dropped.connect(self.add_files)
        io.worker.thumbnail_ready.connect(self._on_thumbnail, Qt.ConnectionType.QueuedConnection)
        io.worker.thumbnail_failed.connect(
            self._on_thumbnail_failed, Qt.ConnectionType.QueuedConnection
        )

        strength = current.strength if current.kind == "blur" else DEFAULT_BLUR
        self.blur_slider = QSlider(Qt.Orientation.Horizontal)
        self.blur_slider.setRange(1, 40)
        self.blur_slider.setValue(round(strength))
        self.blur_slider.setToolTip("How strongly the background is blurred")
        self.blur_value = QLabel(f"{self.blur_slider.value()}")
        self.blur_value.setMinimumWidth(24)
        self.blur_slider.valueChanged.connect(self._on_strength)

        self.add_button = QPushButton("Add images or videos…")
        self.add_button.setToolTip("Add your own backgrounds (you can also drop files on the grid)")
        self.add_button.clicked.connect(lambda: self.add_files(self.ask_files()))
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected background you added")
        self.remove_button.clicked.connect(self.remove_current)
        self.remove_button.setEnabled(False)

        self.blur_row = QWidget()
        blur_row = QHBoxLayout(self.blur_row)
        blur_row.setContentsMargins(0, 0, 0, 0)
        blur_row.addWidget(QLabel("Blur strength"))
        blur_row.addWidget(self.blur_slider, 1)
        blur_row.addWidget(self.blur_value)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button, 1)
        buttons.addWidget(self.remove_button)
        hint = QLabel("Drop images or videos here to add them.")
        hint.setObjectName("muted")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.grid, 1)
        layout.addWidget(self.blur_row)
        layout.addLayout(buttons)
        layout.addWidget(hint)

        for key in BUILTIN:
            self._add_item(
                Choice(key, BUILTIN_LABELS[key]), builtin_icon(key, self._builtin_color(key))
            )
        for path in bundled:
            self._add_file_item(str(path), _title(path), user=False)
        for path in user_files:
            self._add_file_item(path, _title(Path(path)), user=True)
        self.select(current)

    # --- items -----------------------------------------------------------------------------------

    def _builtin_color(self, key: str) -> tuple[int, int, int]:
        return self._color if key == "color" else GREEN_SCREEN

    def _add_item(self, choice: Choice, icon: QIcon) -> QListWidgetItem:
        item = QListWidgetItem(icon, choice.label)
        item.setData(KEY_ROLE, choice)
        item.setToolTip(self._tooltip(choice))
        item.setSizeHint(self.grid.gridSize() - QSize(4, 4))
        self.grid.addItem(item)
        self._items[choice.key] = item
        return item

    def _add_file_item(self, path: str, label: str, user: bool) -> QListWidgetItem | None:
        key = _file_key(path)
        if key in self._items:
            return None
        item = self._add_item(Choice(key, label, user), placeholder_icon("Loading…"))
        self._io.request_thumbnail(key)
        return item

    def _tooltip(self, choice: Choice) -> str:
        text = choice.key if choice.is_file else choice.label
        return f"{text}\n{self._hint}" if self._hint else text

    def set_hint(self, hint: str) -> None:
        """Adds a line (the keyboard shortcuts) to the tooltip of every thumbnail and the grid."""
        self._hint = hint
        self.grid.setToolTip(hint)
        for item in self._items.values():
            item.setToolTip(self._tooltip(item.data(KEY_ROLE)))

    def choices(self) -> list[Choice]:
        """Every thumbnail, in grid order."""
        return [self.grid.item(i).data(KEY_ROLE) for i in range(self.grid.count())]

    def item(self, key: str) -> QListWidgetItem | None:
        """The grid item of a choice key (file keys are resolved paths)."""
        return self._items.get(key if key in BUILTIN else _file_key(key))

    @property
    def thumbnails_ready(self) -> set[str]:
        """Keys of the files whose thumbnails are shown."""
        return set(self._thumbs_ready)

    def user_files(self) -> list[str]:
        """The user's files, in grid order."""
        return [c.key for c in self.choices() if c.user]

    def current_choice(self) -> Choice | None:
        """The selected thumbnail."""
        item = self.grid.currentItem()
        return item.data(KEY_ROLE) if item is not None else None

    def background_for(self, choice: Choice) -> Background:
        """The background a thumbnail stands for, with the current blur strength and colour."""
        if choice.key == "blur":
            return Background(kind="blur", strength=float(self.blur_slider.value()))
        if choice.key == "color":
            return Background(kind="color", color=self._color)
        if choice.key in ("none", "green"):
            return Background(kind=choice.key)
        kind = "video" if Path(choice.key).suffix.lower() in VIDEO_SUFFIXES else "image"
        return Background(kind=kind, path=choice.key)

    # --- selection -------------------------------------------------------------------------------

    def select(self, background: Background, keep: bool = False) -> None:
        """Shows ``background`` as selected without announcing it (e.g. at start-up).

        A file that is not in the grid yet is added to the user's files.

        Args:
            background: the background in use.
            keep: only take its blur strength or colour; the selection stays.
        """
        if background.kind == "blur":
            self._set_slider(background.strength)
        if background.kind == "color":
            self._set_color(background.color)
        if keep:
            return
        key = background.kind if background.kind in BUILTIN else None
        if background.kind in ("image", "video") and background.path:
            key = _file_key(background.path)
            if key not in self._items:
                self._add_file_item(key, _title(Path(key)), user=True)
                self.user_files_changed.emit(self.user_files())
        item = self._items.get(key) if key else None
        self.grid.blockSignals(True)
        try:
            self.grid.setCurrentItem(item)
            if item is None:
                self.grid.clearSelection()
        finally:
            self.grid.blockSignals(False)
        self._update_remove()

    def step(self, delta: int) -> None:
        """Selects the next (``delta`` 1) or previous (-1) thumbnail, wrapping around."""
        count = self.grid.count()
        if count == 0:
            return
        row = self.grid.currentRow()
        row = 0 if row < 0 else (row + delta) % count
        self.grid.setCurrentRow(row)

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: object) -> None:
        self._update_remove()
        if current is not None:
            self.background_chosen.emit(self.background_for(current.data(KEY_ROLE)))

    def _on_clicked(self, item: QListWidgetItem) -> None:
        if item.data(KEY_ROLE).key != "color":
            return
        before = self._color
        color = self.ask_color(QColor(*self._color))
        if color is not None and color.isValid():
            self._preview_color(color)
        elif self._color != before:  # Cancelled after trying colours: put the old one back.
            self._preview_color(QColor(*before))

    def _preview_color(self, color: QColor) -> None:
        """Uses ``color`` at once (the colour dialog shows each colour live)."""
        rgb = (color.red(), color.green(), color.blue())
        if color.isValid() and rgb != self._color:
            self._set_color(rgb)
            self.background_chosen.emit(self.background_for(self._items["color"].data(KEY_ROLE)))

    def _set_color(self, rgb: tuple[int, int, int]) -> None:
        self._color = tuple(int(c) for c in rgb)
        item = self._items.get("color")
        if item is not None:
            item.setIcon(builtin_icon("color", self._color))

    def _set_slider(self, strength: float) -> None:
        self.blur_slider.blockSignals(True)
        self.blur_slider.setValue(round(max(1.0, min(strength, 40.0))))
        self.blur_value.setText(str(self.blur_slider.value()))
        self.blur_slider.blockSignals(False)

    def _on_strength(self, value: int) -> None:
        self.blur_value.setText(str(value))
        item = self._items["blur"]
        if self.grid.currentItem() is item:
            self.background_chosen.emit(self.background_for(item.data(KEY_ROLE)))
        else:
            self.grid.setCurrentItem(item)

    def _ask_color(self, initial: QColor) -> QColor | None:
        dialog = QColorDialog(initial, self)
        dialog.setWindowTitle("Background colour")
        # Qt's own dialog reports every colour as it is picked (a native one may not).
        dialog.setOption(QColorDialog.ColorDialogOption.DontUseNativeDialog)
        dialog.currentColorChanged.connect(self._preview_color)
        accepted = dialog.exec() == QColorDialog.DialogCode.Accepted
        color = dialog.selectedColor()
        dialog.deleteLater()
        return color if accepted and color.isValid() else None

    def _ask_files(self) -> list[str]:
        folder = str(start_folder(Folder.PICTURES))
        paths, _ = QFileDialog.getOpenFileNames(self, "Add backgrounds", folder, FILE_FILTER)
        return list(paths)

    # --- the user's files ------------------------------------------------------------------------

    def add_files(self, paths: Iterable[str]) -> None:
        """Adds image and video files; the first new one is selected once its thumbnail is read."""
        added = []
        for path in paths:
            if not path:
                continue
            if not is_background_file(path):
                self.problem.emit(
                    f"'{Path(path).name}' is not an image or video file; use PNG, JPEG, WebP, "
                    "MP4, MKV, MOV or WebM."
                )
                continue
            key = _file_key(path)
            if key in self._items:
                added.append(key)
                continue
            if self._add_file_item(key, _title(Path(key)), user=True) is not None:
                added.append(key)
        if added:
            self._pending_select = added[0]
            if added[0] in self._thumbs_ready:
                self._finish_pending(added[0])
            self.user_files_changed.emit(self.user_files())

    def remove_current(self) -> None:
        """Removes the selected thumbnail if the user added it; the previous one is selected."""
        choice = self.current_choice()
        if choice is not None and choice.user:
            self.remove(choice.key)

    def remove(self, key: str) -> None:
        """Removes one of the user's files from the grid."""
        item = self.item(key)
        if item is None or not item.data(KEY_ROLE).user:
            return
        was_current = self.grid.currentItem() is item
        row = self.grid.row(item)
        self.grid.blockSignals(True)
        self.grid.takeItem(row)
        if was_current:
            self.grid.setCurrentRow(max(0, row - 1))
        self.grid.blockSignals(False)
        del self._items[item.data(KEY_ROLE).key]
        current = self.grid.currentItem()
        if was_current and current is not None:
            self.background_chosen.emit(self.background_for(current.data(KEY_ROLE)))
        self._update_remove()
        self.user_files_changed.emit(self.user_files())

    def _update_remove(self) -> None:
        choice = self.current_choice()
        self.remove_button.setEnabled(bool(choice and choice.user))
        # The strength slider only where it does something.
        self.blur_row.setVisible(choice is not None and choice.key == "blur")

    def _context_menu(self, pos: QPoint) -> None:
        item = self.grid.itemAt(pos)
        if item is None or not item.data(KEY_ROLE).user:
            return
        menu = QMenu(self)
        action = menu.addAction("Remove from the list")
        key = item.data(KEY_ROLE).key
        action.triggered.connect(lambda: self.remove(key))
        menu.popup(self.grid.viewport().mapToGlobal(pos))
        menu.aboutToHide.connect(menu.deleteLater)

    def _on_thumbnail(self, path: str, image: QImage) -> None:
        item = self._items.get(path)
        if item is None:
            return
        item.setIcon(tile_icon(QPixmap.fromImage(image)))
        self._thumbs_ready.add(path)
        if self._pending_select == path:
            self._finish_pending(path)

    def _finish_pending(self, path: str) -> None:
        self._pending_select = None
        self.grid.setCurrentItem(self._items[path])

    def _on_thumbnail_failed(self, path: str, message: str) -> None:
        item = self._items.get(path)
        if item is None:
            return
        if self._pending_select == path:
            self._pending_select = None
        self.problem.emit(message)
        if item.data(KEY_ROLE).user:
            self.remove(path)
        else:
            item.setIcon(placeholder_icon("Unreadable"))
