"""Work that must not run on the UI thread, and the bridges that bring its results back.

* :class:`FrameMailbox`: the pipeline's frame callback leaves each packet in a one-item slot; a
  thread of the mailbox turns the newest into a picture, and the UI is notified by one queued
  signal and takes only the newest picture (older ones that were never shown are dropped, so the
  preview never lags behind the camera).
* :class:`PipelineWorker`: a QObject on its own QThread that fetches the weights (with progress),
  starts, updates and stops the :class:`~app.pipeline.Pipeline`.
* :class:`IoWorker`: a QObject on its own QThread for small file and device work (thumbnails of
  background files, the camera list).

Every QThread is started through :func:`start_thread` and so appears in :func:`live_threads`;
threads stop cooperatively (their event loop quits), they are never terminated.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRect, QSize, Qt, QThread, Signal, Slot
from PySide6.QtGui import QImage, QImageReader

from app.settings import IMAGE_SUFFIXES, Settings, SettingsError
from app.slot import LatestSlot

log = logging.getLogger(__name__)

_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()

THUMB_SIZE = QSize(160, 90)


# --- threads -------------------------------------------------------------------------------------


def start_thread(worker: QObject, name: str) -> QThread:
    """Moves ``worker`` to a new QThread named ``name`` and starts the thread's event loop."""
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    _THREADS.add(thread)
    thread.start()
    return thread


def stop_thread(thread: QThread, timeout_ms: int = 10_000) -> bool:
    """Asks a thread's event loop to quit and waits for it; True when it ended in time."""
    try:
        thread.quit()
        return bool(thread.wait(timeout_ms))
    except RuntimeError:  # The Qt object is already gone, and so is its thread.
        return True


def live_threads() -> list[QThread]:
    """Threads started by :func:`start_thread` that are still running."""
    alive = []
    for thread in list(_THREADS):
        try:
            if thread.isRunning():
                alive.append(thread)
        except RuntimeError:
            continue
    return alive


# --- preview frames ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewFrame:
    """A frame ready to draw.

    Attributes:
        image: what the preview shows (it owns its pixels).
        index: the pipeline's output frame number.
        t_capture: ``time.monotonic()`` of the camera frame.
    """

    image: QImage
    index: int
    t_capture: float


def to_qimage(array: np.ndarray) -> QImage:
    """Copies an ``H x W`` grey, ``H x W x 3`` RGB or ``H x W x 4`` RGBA uint8 array to a QImage."""
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    if array.ndim == 2:
        fmt = QImage.Format.Format_Grayscale8
    elif array.shape[2] == 4:
        fmt = QImage.Format.Format_RGBA8888
    else:
        fmt = QImage.Format.Format_RGB888
    image = QImage(array.data, width, height, array.strides[0], fmt)
    return image.copy()  # Own the pixels: the array may be reused or freed.


def compose_view(
    view: str, source: np.ndarray, alpha: np.ndarray, composite: np.ndarray
) -> np.ndarray:
    """The picture a preview view shows.

    Args:
        view: ``result`` (what the outputs get), ``alpha`` (the matte) or ``side-by-side``
            (original on the left, result on the right).
        source: the camera frame, RGB.
        alpha: the matte, ``H x W``.
        composite: the result, RGB or RGBA.
    """
    if view == "alpha":
        return alpha
    if view == "side-by-side":
        result = composite[:, :, :3]
        if result.shape[:2] != source.shape[:2]:
            return result
        return np.concatenate([source, result], axis=1)
    return composite


def display_image(array: np.ndarray) -> QImage:
    """A QImage of an array in the format Qt draws fastest (RGB32, or premultiplied ARGB32 when
    the array has alpha)."""
    image = to_qimage(array)
    if image.hasAlphaChannel():
        return image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    return image.convertToFormat(QImage.Format.Format_RGB32)


class FrameMailbox(QObject):
    """Hands the newest pipeline frame to the UI thread, without ever queueing stale frames.

    :meth:`put` (called on a pipeline thread) only drops the packet into a one-item slot, so the
    pipeline never waits for the preview. A thread of the mailbox prepares the picture for the
    current :attr:`view` and keeps the newest one; :attr:`frame_ready` is emitted only when no
    notification is pending, so at most one is ever queued and :meth:`take` always gets the newest.
    Call :meth:`close` to stop the thread.
    """

    frame_ready = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._inbox: LatestSlot[object] = LatestSlot()
        self._frame: PreviewFrame | None = None
        self._latest_index = -1
        self._notified = False
        self._replaced = 0
        self._received = 0
        self.view = "result"
        self._thread = threading.Thread(target=self._run, name="mattecam-preview", daemon=True)
        self._thread.start()

    def put(self, packet: object) -> None:
        """Accepts a :class:`~app.pipeline.FramePacket` (from any thread; never blocks)."""
        with self._lock:
            self._received += 1
        self._inbox.put(packet)

    def _run(self) -> None:
        while True:
            packet = self._inbox.get()
            if packet is None:  # Closed.
                return
            try:
                pixels = compose_view(self.view, packet.source, packet.alpha, packet.composite)
                frame = PreviewFrame(
                    display_image(pixels), int(packet.index), float(packet.t_capture)
                )
            except Exception:  # A malformed packet must not end the preview.
                log.exception("Could not prepare a preview frame")
                continue
            with self._lock:
                if self._frame is not None:
                    self._replaced += 1
                self._frame = frame
                self._latest_index = frame.index
                notify = not self._notified
                self._notified = True
            if notify:
                self.frame_ready.emit()

    def take(self) -> PreviewFrame | None:
        """The newest frame not yet taken, or None (UI thread)."""
        with self._lock:
            frame, self._frame = self._frame, None
            self._notified = False
            return frame

    @property
    def latest_index(self) -> int:
        """The pipeline index of the newest prepared frame (-1 before the first)."""
        with self._lock:
            return self._latest_index

    @property
    def dropped(self) -> int:
        """Frames never shown: replaced in the slot or before the UI took them."""
        with self._lock:
            return self._replaced + self._inbox.dropped

    @property
    def received(self) -> int:
        """Frames handed in by the pipeline."""
        with self._lock:
            return self._received

    def close(self, timeout: float = 2.0) -> None:
        """Stops the preparing thread; safe to call twice."""
        self._inbox.close()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)


# --- the pipeline --------------------------------------------------------------------------------


class _Cancelled(Exception):
    """Raised from a progress callback to abandon a download when the window closes."""


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or f"Something went wrong ({type(exc).__name__})."


class PipelineWorker(QObject):
    """Owns the pipeline; lives on its own QThread, so the UI never waits for it.

    Slots are called through queued signals from the window; results come back as signals.

    Args:
        mailbox: receives every frame.
        vcam_backend: virtual camera backend name passed to the pipeline.
        fetch: returns the weights of a variant, reporting progress (``app.matting.weights.fetch``
            when None).
    """

    progress = Signal(str, float)  # message, fraction (-1 when unknown)
    started = Signal(object)  # the running Pipeline
    failed = Signal(str)  # the pipeline could not start; one sentence
    event = Signal(object)  # an app.pipeline.Event from the pipeline's threads
    reverted = Signal(object)  # the Settings actually applied when a change was refused
    stopped = Signal()

    def __init__(
        self,
        mailbox: FrameMailbox,
        vcam_backend: str | None = None,
        fetch: Callable[..., Path] | None = None,
    ) -> None:
        super().__init__()
        self._mailbox = mailbox
        self._vcam_backend = vcam_backend
        self._fetch_fn = fetch
        self._pipeline = None
        self._variants_ready: set[str] = set()
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Abandons work in progress (a download) as soon as possible; any thread may call it."""
        self._cancel.set()

    def _progress(self, message: str, fraction: float | None) -> None:
        if self._cancel.is_set():
            raise _Cancelled
        self.progress.emit(message, -1.0 if fraction is None else float(fraction))

    def _weights(self, settings: Settings) -> bool:
        """Makes sure the weights for ``settings`` are on disk; False (and a message) if not."""
        if settings.checkpoint is not None or settings.variant in self._variants_ready:
            return True
        fetch = self._fetch_fn
        if fetch is None:
            from app.matting.weights import fetch
        self.progress.emit(f"Preparing the {settings.variant} weights", -1.0)
        try:
            fetch(settings.variant, progress=self._progress)
        except _Cancelled:
            return False
        except Exception as e:  # WeightsError and anything unexpected: say it, keep the window.
            self.failed.emit(_message(e))
            return False
        self._variants_ready.add(settings.variant)
        return True

    def _start(self, settings: Settings) -> None:
        from app.pipeline import Pipeline, PipelineError

        if not self._weights(settings) or self._cancel.is_set():
            return
        self.progress.emit("Starting the camera and the matting model", -1.0)
        pipeline = None
        try:
            pipeline = Pipeline(
                settings,
                on_frame=self._mailbox.put,
                on_event=self.event.emit,
                vcam_backend=self._vcam_backend,
            )
            pipeline.start()
        except Exception as e:  # PipelineError is the user's; anything else is still shown.
            if not isinstance(e, (PipelineError, SettingsError)):
                log.exception("The pipeline failed to start")
            if pipeline is not None:
                pipeline.stop()
            self.failed.emit(_message(e))
            return
        if self._cancel.is_set():
            pipeline.stop()
            return
        self._pipeline = pipeline
        self.started.emit(pipeline)

    @Slot(object)
    def apply(self, settings: Settings) -> None:
        """Starts the pipeline with ``settings``, or applies them to the running one."""
        if self._cancel.is_set():
            return
        pipeline = self._pipeline
        if pipeline is not None and not pipeline.running:
            pipeline.stop()  # It ended (end of a file, or it failed): start afresh.
            self._pipeline = pipeline = None
        if pipeline is None:
            self._start(settings)
            return
        if settings.variant != pipeline.settings.variant and not self._weights(settings):
            settings = settings.replace(variant=pipeline.settings.variant)
            self.reverted.emit(settings)
        try:
            pipeline.update(settings)
        except Exception as e:
            log.exception("Applying settings failed")
            self.failed.emit(_message(e))

    @Slot()
    def reset_state(self) -> None:
        """Resets the network's recurrent state."""
        if self._pipeline is not None:
            self._pipeline.reset_state()

    @Slot()
    def shutdown(self) -> None:
        """Stops the pipeline and ends this worker's thread."""
        self._cancel.set()
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            try:
                pipeline.stop()
            except Exception:
                log.exception("Stopping the pipeline failed")
        self.stopped.emit()
        QThread.currentThread().quit()


# --- small file and device work ------------------------------------------------------------------


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
    from app.capture.registry import open_source

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
            from app.capture.camera import list_cameras

            cameras = list_cameras()
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
