"""Small file and device work off the UI thread: thumbnails of background files, the camera list.

:class:`Io` is the UI's handle: it starts an :class:`IoWorker` on its own QThread and forwards
requests to it through queued signals.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QRect, QSize, Qt, Signal, Slot
from PySide6.QtGui import QImage, QImageReader

# Imported here, on the thread that builds the window: the worker threads that list cameras and
# start the pipeline would otherwise import the capture package at the same moment, and one of
# them could find it half initialised.
from app.capture import camera
from app.media import IMAGE_SUFFIXES
from app.ui.frames import to_qimage
from app.ui.workers import start_thread, stop_thread

log = logging.getLogger(__name__)

THUMB_SIZE = QSize(160, 90)


def cover_thumbnail(image: QImage, size: QSize = THUMB_SIZE) -> QImage:
    """Scales an image to fill ``size`` and crops the overflow (keeps the centre)."""
    scaled = image.scaled(
        size,
        Qt.AspectRatioMode.KeepAspectRatioByExpanding,
        Qt.TransformationMode.SmoothTransformation,
    )
    x = (scaled.width() - size.width()) // 2
    y = (scaled.height() - size.height()) // 2
    return scaled.copy(QRect(x, y, size.width(), size.height()))


def read_thumbnail(path: str, size: QSize = THUMB_SIZE) -> QImage:
    """A thumbnail of an image or of a video's first frame.

    Raises:
        ValueError: the file cannot be read as an image or video; the message names it.
    """
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"'{file.name}' does not exist any more; remove it from the list.")
    if file.suffix.lower() in IMAGE_SUFFIXES:
        reader = QImageReader(str(file))
        reader.setAutoTransform(True)
        full = reader.size()
        if full.isValid() and full.width() > 2 * size.width():
            reader.setScaledSize(
                full.scaled(size * 2, Qt.AspectRatioMode.KeepAspectRatioByExpanding)
            )
        image = reader.read()
        if image.isNull():
            raise ValueError(
                f"'{file.name}' could not be read as an image ({reader.errorString()}); "
                "use a PNG, JPEG or WebP file."
            )
        return cover_thumbnail(image, size)
    from app.capture.kinds import open_source

    try:
        with open_source(str(file), pace="none") as source:
            frame = source.read()
    except Exception as e:
        raise ValueError(f"'{file.name}' could not be read as a video: {e}") from None
    if frame is None:
        raise ValueError(f"'{file.name}' holds no video frames; use another file.")
    return cover_thumbnail(to_qimage(frame), size)


class IoWorker(QObject):
    """Reads thumbnails and lists cameras on its own thread."""

    thumbnail_ready = Signal(str, QImage)  # path, thumbnail
    thumbnail_failed = Signal(str, str)  # path, one sentence
    cameras_listed = Signal(list)  # list[app.capture.camera.CameraInfo]

    @Slot(str)
    def load_thumbnail(self, path: str) -> None:
        """Reads one thumbnail and reports it."""
        try:
            image = read_thumbnail(path)
        except ValueError as e:
            self.thumbnail_failed.emit(path, str(e))
            return
        except Exception as e:
            log.exception("Reading a thumbnail failed")
            self.thumbnail_failed.emit(path, f"'{Path(path).name}' could not be read: {e}")
            return
        self.thumbnail_ready.emit(path, image)

    @Slot()
    def list_cameras(self) -> None:
        """Lists the cameras on this machine (never fails: none found is an empty list)."""
        try:
            cameras = camera.list_cameras()
        except Exception:
            log.exception("Listing cameras failed")
            cameras = []
        self.cameras_listed.emit(list(cameras))


class Io(QObject):
    """The UI's handle on an :class:`IoWorker` and its thread.

    Call :meth:`request_thumbnail` and :meth:`request_cameras` from the UI thread; connect to the
    worker's signals through :attr:`worker`.
    """

    _thumbnail = Signal(str)
    _cameras = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker = IoWorker()
        self._thread = start_thread(self.worker, "mattecam-io")
        self._thumbnail.connect(self.worker.load_thumbnail, Qt.ConnectionType.QueuedConnection)
        self._cameras.connect(self.worker.list_cameras, Qt.ConnectionType.QueuedConnection)
        self._closed = False

    def request_thumbnail(self, path: str) -> None:
        """Asks for the thumbnail of an image or video file."""
        if not self._closed:
            self._thumbnail.emit(path)

    def request_cameras(self) -> None:
        """Asks for the camera list."""
        if not self._closed:
            self._cameras.emit()

    def close(self) -> None:
        """Ends the thread after the work already asked for; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        stop_thread(self._thread)
