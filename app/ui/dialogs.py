"""Where the window's file dialogs open: the user's standard folders (Qt's standard locations),
never the folder the app was started from."""

from __future__ import annotations

import enum
import logging
from pathlib import Path

from PySide6.QtCore import QStandardPaths

log = logging.getLogger(__name__)


class Folder(enum.Enum):
    """A kind of file the user picks, and the standard folder it usually lives in."""

    VIDEOS = QStandardPaths.StandardLocation.MoviesLocation
    PICTURES = QStandardPaths.StandardLocation.PicturesLocation
    DOWNLOADS = QStandardPaths.StandardLocation.DownloadLocation


def start_folder(kind: Folder, create: bool = False) -> Path:
    """The folder a file dialog for ``kind`` opens in.

    Args:
        kind: what the user picks.
        create: make the standard folder when it does not exist yet (a place to save to);
            otherwise a missing one falls back to the home folder.

    Returns:
        An existing folder: the standard one, else the home folder.
    """
    home = Path.home()
    found = QStandardPaths.writableLocation(kind.value)
    if not found:
        return home
    folder = Path(found)
    if create and not folder.is_dir():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            log.warning("Could not create %s: %s", folder, e)
    return folder if folder.is_dir() else home
