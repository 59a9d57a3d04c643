"""Webcams through OpenCV, with the backend that suits the operating system.

The camera is asked for MJPG before the resolution (many USB cameras only reach 720p/1080p at 30 fps
in MJPG), then the resolution, the frame rate and a one-frame driver buffer (so a read returns the
newest picture, not a stale one). What the camera actually delivers is reported next to what was
asked, since cameras silently pick the nearest mode they support.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app.capture.base import FrameSource, Requested, SourceError, SourceLost, to_rgb
from app.capture.kinds import register_source
from app.events import Advice

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
_DEV = Path("/dev")
_SYSFS = Path("/sys/class/video4linux")
_DEVICE_PATH = re.compile(r"/dev/video(\d+)")


@dataclass(frozen=True)
class CameraInfo:
    """A camera found on this machine.

    Attributes:
        index: the number to pass to ``--source``.
        name: what the driver calls it, e.g. ``HD Pro Webcam C920``.
        path: the device node (Linux), or None.
    """

    index: int
    name: str
    path: str | None = None

    @property
    def spec(self) -> str:
        """The ``--source`` value that opens this camera."""
        return self.path or str(self.index)


def default_backends() -> tuple[int, ...]:
    """The OpenCV capture backends to try, in order, on this operating system."""
    if sys.platform.startswith("linux"):
        return (cv2.CAP_V4L2,)
    if sys.platform == "win32":
        return (cv2.CAP_DSHOW, cv2.CAP_MSMF)
    if sys.platform == "darwin":
        return (cv2.CAP_AVFOUNDATION,)
    return (cv2.CAP_ANY,)


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silences OpenCV's own warnings (e.g. while probing indices that hold no camera)."""
    try:
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except (AttributeError, cv2.error):
        yield
        return
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def _sysfs_name(node: str, sysfs: Path = _SYSFS) -> str | None:
    """The driver's name for a V4L2 node such as ``video0``, or None."""
    try:
        return (sysfs / node / "name").read_text(encoding="utf-8", errors="replace").strip() or None
    except OSError:
        return None


def _is_capture_node(node: str, sysfs: Path) -> bool:
    """False for the extra nodes a device registers beside its picture node (e.g. UVC metadata)."""
    try:
        return int((sysfs / node / "index").read_text().strip() or 0) == 0
    except (OSError, ValueError):
        return True


def _list_linux(dev: Path = _DEV, sysfs: Path = _SYSFS) -> list[CameraInfo]:
    """Lists ``/dev/video*`` picture nodes and their names from sysfs, opening nothing."""
    found = []
    for node in dev.glob("video*"):
        m = re.fullmatch(r"video(\d+)", node.name)
        if not m or not _is_capture_node(node.name, sysfs):
            continue
        index = int(m.group(1))
        found.append(
            CameraInfo(index, _sysfs_name(node.name, sysfs) or f"Camera {index}", str(node))
        )
    return sorted(found, key=lambda info: info.index)


def _probe(max_index: int) -> list[CameraInfo]:
    """Opens indices 0, 1, ... until two in a row hold no camera."""
    found: list[CameraInfo] = []
    misses = 0
    backend = default_backends()[0]
    with _quiet_opencv():
        for index in range(max_index):
            cap = cv2.VideoCapture(index, backend)
            try:
                opened = cap.isOpened()
            finally:
                cap.release()
            if opened:
                found.append(CameraInfo(index, f"Camera {index}"))
                misses = 0
            else:
                misses += 1
                if misses >= 2:
                    break
    return found


def list_cameras(max_index: int = 8) -> list[CameraInfo]:
    """The cameras on this machine; never raises (an empty list when none or on any failure).

    Args:
        max_index: how many indices to probe where devices cannot be listed without opening them
            (Windows, macOS). On Linux every ``/dev/video*`` picture node is listed.
    """
    try:
        if sys.platform.startswith("linux"):
            return _list_linux()
        return _probe(max_index)
    except Exception:
        log.debug("Listing cameras failed", exc_info=True)
        return []


def _no_camera(where: str) -> SourceError:
    return SourceError(f"No camera at {where}. Connect a camera", Advice("source"))


@register_source("camera")
class CameraSource(FrameSource):
    """A webcam opened with OpenCV; frames come out as RGB.

    Args:
        device: camera index, or a device path such as ``/dev/video2``.
        resolution: requested (width, height); the camera may pick a different mode.
        fps: requested frame rate; the camera may pick a different one.
        backends: OpenCV ``CAP_*`` backends to try in order; None picks them by operating system.
        read_attempts: failed reads in a row before the camera counts as lost.

    Raises:
        SourceError: the device value or a request is malformed.
    """

    is_live = True

    def __init__(
        self,
        device: int | str,
        *,
        resolution: tuple[int, int] | None = None,
        fps: float | None = None,
        backends: Sequence[int] | None = None,
        read_attempts: int = 3,
    ) -> None:
        super().__init__(resolution=resolution, fps=fps)
        self._index, self._path = self._parse_device(device)
        self._backends = tuple(backends) if backends else default_backends()
        self._read_attempts = max(1, read_attempts)
        self._cap: cv2.VideoCapture | None = None
        self._first: np.ndarray | None = None
        self._fourcc = ""
        node = f"video{self._index}" if self._index is not None else None
        label = f"Camera {self._index}" if self._index is not None else f"Camera {self._path}"
        sys_name = _sysfs_name(node) if node and sys.platform.startswith("linux") else None
        self._name = f"{label} ({sys_name})" if sys_name else label

    @classmethod
    def from_spec(cls, target: str, request: Requested) -> FrameSource:
        """Builds the source from an index or device path (``loop`` and ``pace`` do not apply)."""
        return cls(target, **request.options("loop", "pace"))

    @staticmethod
    def _parse_device(device: int | str) -> tuple[int | None, str | None]:
        """Splits a device into (index, path); a ``/dev/videoN`` path gives both."""
        if isinstance(device, int) and not isinstance(device, bool) and device >= 0:
            return device, None
        text = str(device).strip()
        if text.isdigit():
            return int(text), None
        m = _DEVICE_PATH.fullmatch(text)
        if m:
            return int(m.group(1)), text
        if text.startswith("/dev/"):
            return None, text
        raise SourceError(f"Camera '{device}' is neither an index (0, 1, ...) nor a device path.")

    @property
    def name(self) -> str:
        """``Camera N`` and, where the system says, the camera's own name."""
        return self._name

    @property
    def index(self) -> int | None:
        """The camera index, where known."""
        return self._index

    @property
    def fourcc(self) -> str:
        """The pixel format the camera delivers (e.g. ``MJPG``, ``YUYV``); empty if unknown."""
        return self._fourcc

    def _where(self) -> str:
        return self._path if self._path else f"index {self._index}"

    def _open(self) -> None:
        if sys.platform.startswith("linux"):
            node = self._path or f"/dev/video{self._index}"
            if not os.path.exists(node):
                raise _no_camera(self._where())
        target: int | str = self._path if self._path else self._index
        with _quiet_opencv():
            for backend in self._backends:
                cap = cv2.VideoCapture(target, backend)
                if cap.isOpened():
                    self._cap = cap
                    break
                cap.release()
        if self._cap is None:
            raise _no_camera(self._where())
        self._configure(self._cap)
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise SourceError(
                f"{self.name} opened but delivers no picture: close other apps that use it",
                Advice("source"),
            )
        self._first = to_rgb(bgr, bgr=True)
        actual = self._cap.get(cv2.CAP_PROP_FPS)
        fps = actual if 0 < actual <= 1000 else (self._requested.fps or DEFAULT_FPS)
        self._width, self._height = self._first.shape[1], self._first.shape[0]
        self._fps = float(fps)
        code = int(self._cap.get(cv2.CAP_PROP_FOURCC))
        self._fourcc = "".join(chr((code >> s) & 0xFF) for s in (0, 8, 16, 24)).strip("\0 ")
        log.info(
            "%s: asked for %s, got %dx%d at %g fps (%s)",
            self.name,
            self._requested,
            self._width,
            self._height,
            self._fps,
            self._fourcc or "unknown format",
        )

    def _configure(self, cap: cv2.VideoCapture) -> None:
        """Requests MJPG first (it decides which sizes and rates exist), then size, rate, buffer."""
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        if self._requested.resolution:
            width, height = self._requested.resolution
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if self._requested.fps:
            cap.set(cv2.CAP_PROP_FPS, self._requested.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def _read(self) -> np.ndarray | None:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        for _ in range(self._read_attempts):
            try:
                ok, bgr = self._cap.read()
            except cv2.error:
                ok, bgr = False, None
            if ok and bgr is not None:
                return to_rgb(bgr, bgr=True)
        raise SourceLost(
            f"{self.name} stopped delivering frames: check its cable, or close other apps "
            "that use it."
        )

    def _close(self) -> None:
        self._first = None
        if self._cap is not None:
            cap, self._cap = self._cap, None
            cap.release()
