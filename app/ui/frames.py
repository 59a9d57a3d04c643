"""Preview frames: from the pipeline's packets to pictures the preview draws.

The pipeline's frame callback leaves each packet in a one-item slot of a :class:`FrameMailbox`; a
thread of the mailbox turns the newest into a picture, and the UI is notified by one queued signal
and takes only the newest picture (older ones that were never shown are dropped, so the preview
never lags behind the camera).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from app.slot import LatestSlot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreviewFrame:
    """A frame ready to draw.

    Attributes:
        image: what the preview shows (it owns its pixels).
        index: the pipeline's output frame number.
        t_capture: ``time.monotonic()`` of the camera frame.
        view: the view it was prepared for (``result``, ``alpha`` or ``side-by-side``).
    """

    image: QImage
    index: int
    t_capture: float
    view: str = "result"


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
            view = self.view
            try:
                pixels = compose_view(view, packet.source, packet.alpha, packet.composite)
                split = view == "side-by-side" and pixels.shape[1] == 2 * packet.source.shape[1]
                frame = PreviewFrame(
                    display_image(pixels),
                    int(packet.index),
                    float(packet.t_capture),
                    "side-by-side" if split else ("alpha" if view == "alpha" else "result"),
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
