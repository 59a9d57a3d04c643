"""The virtual webcam that meeting apps read, fed at a steady frame rate from its own thread.

``pyvirtualcam`` drives the OS driver (v4l2loopback on Linux, the OBS Virtual Camera on Windows and
macOS). The sink's thread owns the camera: it sends the newest frame at the declared rate and
repeats the last one when nothing new arrived, so apps see a steady camera however fast the matting
runs. :meth:`VirtualCameraSink.send` only swaps a reference and never blocks.
"""

from __future__ import annotations

import platform
import threading
from enum import Enum

import cv2
import numpy as np
import pyvirtualcam
from pyvirtualcam import PixelFormat
from pyvirtualcam.camera import BACKENDS

from app.output import pipewire
from app.output.base import OutputError, Sink

__all__ = [
    "LINUX_COMMAND",
    "VcamBackend",
    "VirtualCameraSink",
    "VirtualCameraUnavailable",
    "auto_backends",
    "available_backends",
    "backend_problem",
    "guidance",
    "register_backend",
    "unregister_backend",
]

LINUX_COMMAND = (
    'sudo modprobe v4l2loopback devices=1 video_nr=10 card_label="mattecam" exclusive_caps=1'
)


class VirtualCameraUnavailable(OutputError):
    """No virtual camera driver could be opened; the message says why and how to install one.

    Args:
        reason: why the chosen route did not open (one sentence), None when none is available.
        detail: what the backends reported, for logs.

    Attributes:
        reason: as given, so a front end can word the rest itself.
        detail: as given.
    """

    def __init__(self, reason: str | None, detail: str = "") -> None:
        super().__init__(f"{reason or 'No virtual camera is available.'} {guidance()}")
        self.reason = reason
        self.detail = detail


class VcamBackend(str, Enum):
    """The virtual camera routes a user can ask for (``--vcam-backend``)."""

    AUTO = "auto"
    PIPEWIRE = "pipewire"
    V4L2 = "v4l2"
    OBS = "obs"

    @property
    def registry_name(self) -> str | None:
        """The name the backend is registered under; None for automatic choice."""
        return _REGISTRY_NAMES[self]

    @property
    def label(self) -> str:
        """The route's name as users know it."""
        return _LABELS[self]


_REGISTRY_NAMES = {
    VcamBackend.AUTO: None,
    VcamBackend.PIPEWIRE: "pipewire",
    VcamBackend.V4L2: "v4l2loopback",
    VcamBackend.OBS: "obs",
}
_LABELS = {
    VcamBackend.AUTO: "Automatic",
    VcamBackend.PIPEWIRE: "PipeWire",
    VcamBackend.V4L2: "v4l2loopback",
    VcamBackend.OBS: "OBS Virtual Camera",
}


def backend_label(name: str) -> str:
    """How a registered backend is shown to users (``pipewire`` -> ``PipeWire``).

    Args:
        name: a registered backend name.
    """
    for route, registered in _REGISTRY_NAMES.items():
        if registered == name:
            return route.label
    return name


def guidance(os_name: str | None = None) -> str:
    """What to do so that a virtual camera exists on an operating system.

    Args:
        os_name: ``Linux``, ``Windows`` or ``Darwin`` (``macOS`` also works); None means this
            machine's.

    Returns:
        Instructions for a user, in a few sentences.
    """
    name = (os_name or platform.system()).strip().lower()
    if name.startswith("linux"):
        return (
            "On a desktop that runs PipeWire (GNOME or KDE on Wayland), install "
            f"'sudo apt install {pipewire.PACKAGES}' and no driver is needed; otherwise install "
            "the v4l2loopback driver (sudo apt install v4l2loopback-dkms), then load it "
            f"with: {LINUX_COMMAND} (exclusive_caps=1 lets Chrome and Meet see the camera), and "
            "start mattecam again."
        )
    if name.startswith(("win", "darwin", "mac", "osx")):
        return (
            "Install OBS Studio (version 28 or newer), open it once and click 'Start Virtual "
            "Camera' so its driver is registered, then close OBS and start mattecam again."
        )
    return (
        "Virtual cameras need v4l2loopback on Linux or the OBS Studio Virtual Camera on Windows "
        "and macOS; install the one for your system and start mattecam again."
    )


def register_backend(name: str, cls: type) -> None:
    """Makes a virtual camera backend available under a name (pyvirtualcam's registry).

    Args:
        name: backend name, passed as ``backend=`` to :class:`VirtualCameraSink`.
        cls: a class with pyvirtualcam's backend interface: keyword-only constructor
            ``(width, height, fps, fourcc, device, **kw)``, ``send(frame_1d)``, ``close()``,
            ``device()`` and ``native_fourcc()``.
    """
    pyvirtualcam.register_backend(name, cls)


def unregister_backend(name: str) -> None:
    """Removes a backend registered with :func:`register_backend` (unknown names are ignored).

    Args:
        name: backend name.
    """
    BACKENDS.pop(name, None)


def available_backends() -> list[str]:
    """Names of the backends that can be asked for on this machine."""
    return list(BACKENDS)


def backend_problem(name: str) -> str | None:
    """One plain sentence saying why a backend cannot run on this machine, or None.

    Only what can be checked without opening the camera is checked (a PipeWire daemon that
    answers, GStreamer's elements; the registry for the others).

    Args:
        name: a registered backend name (``pipewire``, ``v4l2loopback``, ``obs``, ...).
    """
    if name not in BACKENDS:
        known = ", ".join(backend_label(b) for b in available_backends()) or "none"
        return (
            f"The {backend_label(name)} backend does not exist on {platform.system()} "
            f"(available here: {known})."
        )
    if name == "pipewire":
        return pipewire.unavailable_reason()
    return None


def auto_backends(device: str | None = None) -> list[str]:
    """The backends to try, best first, when none was asked for.

    On Linux the PipeWire camera comes first when a PipeWire daemon answers (it needs no kernel
    module) and is left out when none does; v4l2loopback and any other registered backend follow.
    A ``/dev/...`` device asks for v4l2loopback.

    Args:
        device: the device asked for, or None.
    """
    names = [name for name in BACKENDS if name != "pipewire"]
    wants_file = device is not None and device.startswith("/dev/")
    if "pipewire" in BACKENDS and not wants_file and pipewire.unavailable_reason() is None:
        names.insert(0, "pipewire")
    return names


if platform.system() == "Linux":
    register_backend("pipewire", pipewire.PipeWireCamera)


class VirtualCameraSink(Sink):
    """Sends frames to a virtual webcam at a steady rate.

    Frames of any size are accepted (they are resized to the camera's), RGBA frames lose their
    alpha. The sink keeps a reference to the newest frame: do not write into a frame after sending
    it. Before the first frame, black frames go out so the camera appears at once.
    """

    channels = (3, 4)

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        *,
        device: str | None = None,
        backend: str | None = None,
        fmt: PixelFormat = PixelFormat.RGB,
        start_timeout: float = 10.0,
    ) -> None:
        """Opens the virtual camera on the sink's thread and waits until it is ready.

        Args:
            width: camera width in pixels.
            height: camera height in pixels.
            fps: frame rate the camera announces and is fed at.
            device: device to use (e.g. ``/dev/video10``); None lets the backend pick.
            backend: backend name (``pipewire``, ``v4l2loopback``, ``obs``, ``unitycapture`` or a
                registered one); None tries :func:`auto_backends`, best first.
            fmt: pixel format handed to the backend: ``PixelFormat.RGB`` or ``PixelFormat.BGR``.
            start_timeout: seconds to wait for the camera to open.

        Raises:
            ValueError: impossible size, rate or format.
            VirtualCameraUnavailable: no driver or device could be opened.
        """
        if width < 1 or height < 1:
            raise ValueError(f"Camera size {width}x{height} is impossible.")
        if not 0 < fps <= 240:
            raise ValueError(f"Camera frame rate {fps:g} must be above 0 and at most 240.")
        if fmt not in (PixelFormat.RGB, PixelFormat.BGR):
            raise ValueError(f"Pixel format {fmt} is not supported: use RGB or BGR.")
        if backend is not None and backend not in BACKENDS:
            known = ", ".join(available_backends()) or "none"
            raise VirtualCameraUnavailable(
                f"Virtual camera backend '{backend}' does not exist on this system (available: "
                f"{known}).",
                detail=f"unknown backend {backend!r}",
            )
        self.width, self.height, self.declared_fps = int(width), int(height), float(fps)
        self.fmt = fmt
        self._requested_device = device
        self._backend_name = backend
        self._lock = threading.Lock()
        self._pending: np.ndarray | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._camera: pyvirtualcam.Camera | None = None
        self._startup_error: str | None = None
        self._error: str | None = None
        self._problem: str | None = None
        self._device = ""
        self._frames_sent = 0
        self._frames_new = 0
        self._thread = threading.Thread(target=self._run, name="virtual-camera", daemon=True)
        self._thread.start()
        if not self._ready.wait(start_timeout):
            self._closed = True
            self._stop.set()
            raise VirtualCameraUnavailable(
                f"The virtual camera did not open within {start_timeout:g} s.", detail="timeout"
            )
        if self._startup_error is not None:
            self._closed = True
            self._thread.join(timeout=2.0)
            reason = backend_problem(backend) if backend else None
            raise VirtualCameraUnavailable(reason, detail=self._startup_error)

    @property
    def device(self) -> str:
        """The device name the backend reports (e.g. ``/dev/video10``, ``OBS Virtual Camera``)."""
        return self._device

    @property
    def backend(self) -> str:
        """The backend in use."""
        return self._backend_name or ""

    @property
    def problem(self) -> str | None:
        """What keeps frames from reaching apps right now (the backend retries), or None."""
        return self._problem

    @property
    def frames_sent(self) -> int:
        """Frames handed to the driver, repeats included."""
        return self._frames_sent

    @property
    def frames_new(self) -> int:
        """Distinct frames that reached the driver (the rest were repeats)."""
        return self._frames_new

    @property
    def fps(self) -> float:
        """The measured rate at which frames reach the driver."""
        camera = self._camera
        return float(camera.current_fps) if camera is not None else 0.0

    def _send(self, frame: np.ndarray, timestamp: float | None) -> None:
        del timestamp  # the sink's own thread paces the camera
        if self._error is not None:
            raise OutputError(f"The virtual camera stopped ({self._error}); restart it.")
        with self._lock:
            self._pending = frame

    def _convert(self, frame: np.ndarray) -> np.ndarray:
        """Makes a frame what the backend takes: camera size, 3 channels, the chosen order."""
        if frame.shape[2] == 4:
            frame = frame[:, :, :3]
        if frame.shape[:2] != (self.height, self.width):
            shrinking = frame.shape[0] > self.height
            interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
            frame = cv2.resize(frame, (self.width, self.height), interpolation=interpolation)
        if self.fmt == PixelFormat.BGR:
            frame = frame[:, :, ::-1]
        return np.ascontiguousarray(frame)

    def _report(self, problem: str | None) -> None:
        self._problem = problem

    def _open(self) -> pyvirtualcam.Camera:
        """Opens the asked-for backend, or the first of :func:`auto_backends` that opens."""
        names = [self._backend_name] if self._backend_name else None
        errors = []
        for name in names or auto_backends(self._requested_device):
            reports = getattr(BACKENDS[name], "reports_problems", False)
            extra = {"report": self._report} if reports else {}
            try:
                return pyvirtualcam.Camera(
                    self.width,
                    self.height,
                    self.declared_fps,
                    fmt=self.fmt,
                    device=self._requested_device,
                    backend=name,
                    **extra,
                )
            except Exception as exc:  # every driver fails in its own way
                errors.append(str(exc) or type(exc).__name__)
        raise RuntimeError("\n".join(errors) or "no virtual camera backend is registered")

    def _run(self) -> None:
        try:
            camera = self._open()
            self._device = str(camera.device)
            self._backend_name = camera.backend
        except Exception as exc:  # reported to the opener
            self._startup_error = str(exc) or type(exc).__name__
            self._ready.set()
            return
        self._camera = camera
        self._ready.set()
        current = np.zeros((self.height, self.width, 3), np.uint8)
        try:
            while not self._stop.is_set():
                with self._lock:
                    frame, self._pending = self._pending, None
                if frame is not None:
                    current = self._convert(frame)
                    self._frames_new += 1
                camera.send(current)
                self._frames_sent += 1
                camera.sleep_until_next_frame()
        except Exception as exc:  # device vanished or driver failed: report on the next send()
            self._error = str(exc) or type(exc).__name__
        finally:
            camera.close()

    def _close(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0 + 1.0 / self.declared_fps)
