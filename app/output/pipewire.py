"""The PipeWire camera: frames published as a PipeWire video source, no kernel module needed.

Desktops on Wayland (GNOME, KDE) route cameras through PipeWire, and browsers open PipeWire cameras
through the desktop portal. This backend publishes a node named ``mattecam`` with
``media.class=Video/Source`` and ``media.role=Camera`` carrying I420 frames (BT.601; Chromium
refuses RGB formats). Frames are converted here and GStreamer's ``pipewiresink`` publishes them
from a ``gst-launch-1.0`` child process that reads them from a pipe, so no Python binding is
needed. The backend has pyvirtualcam's backend interface and is registered beside pyvirtualcam's
own backends.

The camera survives its surroundings: when the PipeWire daemon goes away (or the child process
dies), the frames of the outage are dropped, the problem is reported once, and the child is started
again every second until the daemon answers.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from pyvirtualcam.util import encode_fourcc

__all__ = [
    "NODE_NAME",
    "PACKAGES",
    "PipeWireCamera",
    "daemon_answers",
    "launch_command",
    "socket_path",
    "unavailable_reason",
]

#: The node's name and description, which apps show as the camera's name.
NODE_NAME = "mattecam"
#: Debian/Ubuntu packages the PipeWire camera needs besides a running PipeWire session.
PACKAGES = "gstreamer1.0-tools gstreamer1.0-pipewire gstreamer1.0-plugins-base"
#: GStreamer elements the publishing pipeline is made of.
ELEMENTS = ("fdsrc", "rawvideoparse", "identity", "pipewiresink")
#: Seconds between attempts to publish again after the daemon or the child process went away.
RETRY_INTERVAL = 1.0
#: Seconds between checks that the daemon the camera is published on still runs.
CHECK_INTERVAL = 1.0
#: Seconds one frame may take to enter the child process before it counts as stalled.
WRITE_TIMEOUT = 2.0

_RGB = encode_fourcc("raw ")
_BGR = encode_fourcc("24BG")


def socket_path() -> Path:
    """Where the PipeWire daemon of this session listens (``$PIPEWIRE_RUNTIME_DIR/pipewire-0``)."""
    remote = os.environ.get("PIPEWIRE_REMOTE") or "pipewire-0"
    if os.path.isabs(remote):
        return Path(remote)
    folder = os.environ.get("PIPEWIRE_RUNTIME_DIR") or os.environ.get("XDG_RUNTIME_DIR") or ""
    return Path(folder) / remote


def _socket_identity() -> tuple[int, int] | None:
    """The daemon socket's inode and change time (a restarted daemon makes a new one), or None."""
    try:
        info = socket_path().stat()
    except OSError:
        return None
    return info.st_ino, info.st_ctime_ns


def daemon_answers(timeout: float = 0.5) -> bool:
    """Whether a PipeWire daemon accepts connections on this session's socket.

    Args:
        timeout: seconds to wait for the connection.
    """
    path = socket_path()
    if not str(path).startswith("/") or not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


#: GStreamer elements already found (looked up once; a missing one is looked up again, so
#: installing it while the app runs is enough).
_found: set[str] = set()


def _missing_tools() -> str | None:
    """What is missing from GStreamer for the publishing pipeline, or None."""
    if shutil.which("gst-launch-1.0") is None or shutil.which("gst-inspect-1.0") is None:
        return "GStreamer's command-line tools (gst-launch-1.0) are not installed"
    for element in ELEMENTS:
        if element in _found:
            continue
        found = subprocess.run(
            ["gst-inspect-1.0", element], capture_output=True, timeout=30, check=False
        )
        if found.returncode != 0:
            return f"the GStreamer element '{element}' is not installed"
        _found.add(element)
    return None


def unavailable_reason() -> str | None:
    """One plain sentence saying why the PipeWire camera cannot run here, or None when it can.

    The daemon is asked first: it is one connection, where GStreamer's elements take a few
    processes to look up.
    """
    if not daemon_answers():
        path = socket_path()
        where = f"at {path}" if path.is_absolute() else "(XDG_RUNTIME_DIR is not set)"
        return (
            f"The PipeWire camera cannot start: no PipeWire daemon answers {where}; log in to a "
            "desktop session that runs PipeWire (GNOME or KDE on Wayland do) or use the "
            "v4l2loopback camera."
        )
    missing = _missing_tools()
    if missing is not None:
        return (
            f"The PipeWire camera cannot start: {missing}; install it with "
            f"'sudo apt install {PACKAGES}' (or your distribution's GStreamer PipeWire plugin)."
        )
    return None


def launch_command(width: int, height: int, fps: float, name: str = NODE_NAME) -> list[str]:
    """The ``gst-launch-1.0`` command that publishes tightly packed I420 frames read from stdin.

    Args:
        width: frame width in pixels (even).
        height: frame height in pixels (even).
        fps: the frame rate the node announces.
        name: the node's name and description.

    Returns:
        The command line as a list.
    """
    rate = Fraction(fps).limit_denominator(1001)
    luma, chroma = width * height, (width // 2) * (height // 2)
    props = (
        f"props,media.class=Video/Source,media.role=Camera,node.name={name},node.description={name}"
    )
    return [
        "gst-launch-1.0",
        "-q",
        "fdsrc",
        "fd=0",
        f"blocksize={luma + 2 * chroma}",
        "!",
        "rawvideoparse",
        "format=i420",
        f"width={width}",
        f"height={height}",
        f"framerate={rate.numerator}/{rate.denominator}",
        "colorimetry=bt601",
        f"plane-strides=<{width},{width // 2},{width // 2}>",
        f"plane-offsets=<0,{luma},{luma + chroma}>",
        f"frame-size={luma + 2 * chroma}",
        "!",
        # pipewiresink 0.3.65 crashes when a consumer connects unless upstream allocation is off.
        "identity",
        "drop-allocation=true",
        "!",
        "pipewiresink",
        "mode=provide",
        "sync=false",
        f"client-name={name}",
        f"stream-properties={props}",
    ]


def to_i420(frame: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Converts an ``H x W x 3`` frame to tightly packed I420, BT.601 limited range.

    BT.601 is what webcams and the v4l2loopback route deliver and what Chromium assumes for camera
    frames. Odd sizes are padded to even ones by repeating the last row or column.

    Args:
        frame: uint8 RGB (or BGR) pixels.
        bgr: the channels are in BGR order.

    Returns:
        A 1-D array of ``W * H * 3 / 2`` bytes (for the padded size).
    """
    height, width = frame.shape[:2]
    if height % 2 or width % 2:
        frame = cv2.copyMakeBorder(frame, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)
    code = cv2.COLOR_BGR2YUV_I420 if bgr else cv2.COLOR_RGB2YUV_I420
    return cv2.cvtColor(frame, code).reshape(-1)


class PipeWireCamera:
    """A pyvirtualcam backend that publishes frames as the PipeWire camera ``mattecam``.

    Attributes:
        reports_problems: the constructor takes ``report``, called with a sentence when
            publishing stops working and with None when it works again.
    """

    reports_problems = True

    def __init__(
        self,
        *,
        width: int,
        height: int,
        fps: float,
        fourcc: int,
        device: str | None,
        report: Callable[[str | None], None] | None = None,
        **kw: object,
    ) -> None:
        """Starts publishing.

        Args:
            width: frame width in pixels.
            height: frame height in pixels.
            fps: the frame rate the node announces.
            fourcc: pixel format of the frames given to :meth:`send` (RGB or BGR).
            device: the node's name; None: ``mattecam``.
            report: called with a sentence when publishing fails, None when it recovers.
            kw: unused extra options.

        Raises:
            ValueError: a pixel format other than RGB or BGR.
            RuntimeError: PipeWire or GStreamer is missing (the message says what to install).
        """
        del kw
        if fourcc not in (_RGB, _BGR):
            raise ValueError("The PipeWire camera takes RGB or BGR frames.")
        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        self._width, self._height = int(width), int(height)
        self._out_size = (self._width + self._width % 2, self._height + self._height % 2)
        self._fps = float(fps)
        self._bgr = fourcc == _BGR
        self._name = device or NODE_NAME
        self._report = report
        self._process: subprocess.Popen[bytes] | None = None
        self._errors: collections.deque[str] = collections.deque(maxlen=4)
        self._problem: str | None = None
        self._next_try = 0.0
        self._next_check = 0.0
        self._daemon: tuple[int, int] | None = None
        #: How many times the publishing process was started.
        self.starts = 0
        self._start()

    # --- pyvirtualcam's backend interface --------------------------------------------------------

    def device(self) -> str:
        """The node's name, which apps list as the camera's name."""
        return self._name

    def native_fourcc(self) -> int | None:
        """The frames' format as given to :meth:`send` is converted here, so none is native."""
        return None

    def send(self, frame: np.ndarray) -> None:
        """Publishes one frame; while publishing is impossible the frame is dropped.

        Args:
            frame: the frame as a 1-D uint8 array in the constructor's size and format.
        """
        now = time.monotonic()
        if self._process is not None and now >= self._next_check:
            self._next_check = now + CHECK_INTERVAL
            if self._process.poll() is not None:
                self._fail("the publishing process ended")
            elif _socket_identity() != self._daemon or not daemon_answers():
                self._fail("the PipeWire daemon went away")
        if self._process is None and (now < self._next_try or not self._start()):
            return
        data = to_i420(frame.reshape(self._height, self._width, 3), self._bgr)
        try:
            self._write(memoryview(data))
        except OSError as exc:
            self._fail(exc.strerror or str(exc))
            return
        if self._problem is not None:
            self._set_problem(None)

    def close(self) -> None:
        """Stops publishing; the node disappears from PipeWire."""
        self._stop_process()

    # --- the child process -----------------------------------------------------------------------

    def _start(self) -> bool:
        """Starts the publishing process; False (and a report) when the daemon does not answer."""
        self._next_try = time.monotonic() + RETRY_INTERVAL
        if not daemon_answers():
            self._set_problem(
                f"PipeWire is not answering at {socket_path()}; the camera is published again "
                "as soon as it is back."
            )
            return False
        self.starts += 1
        self._daemon = _socket_identity()
        self._next_check = time.monotonic() + CHECK_INTERVAL
        self._process = subprocess.Popen(
            launch_command(*self._out_size, self._fps, self._name),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        os.set_blocking(self._process.stdin.fileno(), False)
        threading.Thread(
            target=self._collect_errors, args=(self._process,), name="pipewire-log", daemon=True
        ).start()
        return True

    def _collect_errors(self, process: subprocess.Popen[bytes]) -> None:
        """Keeps GStreamer's error lines (and a crash's first line) for the next report."""
        for line in process.stderr:
            text = line.decode(errors="replace").strip()
            if text.startswith(("ERROR", "Caught SIG")):
                self._errors.append(text)

    def _write(self, data: memoryview) -> None:
        """Writes one frame into the process's pipe, waiting at most :data:`WRITE_TIMEOUT`."""
        fd = self._process.stdin.fileno()
        deadline = time.monotonic() + WRITE_TIMEOUT
        while data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise OSError("the publishing process stopped taking frames")
            _, writable, _ = select.select([], [fd], [], left)
            if writable:
                try:
                    data = data[os.write(fd, data) :]
                except BlockingIOError:
                    continue

    def _fail(self, why: str) -> None:
        self._stop_process(wait=0.0)
        detail = f" ({self._errors[-1]})" if self._errors else ""
        self._errors.clear()
        self._next_try = time.monotonic() + RETRY_INTERVAL
        self._set_problem(f"The PipeWire camera stopped: {why}{detail}; retrying.")

    def _stop_process(self, wait: float = 1.0) -> None:
        """Ends the publishing process: end of stream, then killed after ``wait`` seconds."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5.0)

    def _set_problem(self, problem: str | None) -> None:
        if problem == self._problem:
            return
        self._problem = problem
        if self._report is not None:
            self._report(problem)
