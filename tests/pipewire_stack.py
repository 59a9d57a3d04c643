"""A private PipeWire session for tests: dbus, pipewire and wireplumber in a temporary folder.

Nothing of the user's own session is touched: every process gets its own ``XDG_RUNTIME_DIR``,
``PIPEWIRE_RUNTIME_DIR``, session bus and state folders. Frames published on it are read back with
GStreamer's ``pipewiresrc``, as any PipeWire camera reader would.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from app.output import pipewire

PR_SET_PDEATHSIG = 1  # prctl option: a signal for the child when its parent thread ends
#: Debian packages the stack and the readback need (installed by .ci/run).
PROGRAMS = ("dbus-daemon", "pipewire", "wireplumber", "pw-dump", "gst-launch-1.0")


def detach_and_die_with_parent() -> None:
    """For ``preexec_fn``: a process group of its own, ended when the test process dies.

    A test run killed halfway (a timeout) then leaves no daemon behind.
    """
    os.setsid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def skip_or_fail(message: str) -> None:
    """Skips the test; on CI, where .ci/run installs every system package, fails it instead."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_programs(programs: tuple[str, ...] = PROGRAMS) -> None:
    """Skips the test when a program is missing (fails it on CI)."""
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        skip_or_fail(f"needs {', '.join(missing)} (Debian: the packages .ci/run installs)")


@contextlib.contextmanager
def private_session(monkeypatch: pytest.MonkeyPatch, **env: str) -> Iterator[PipeWireStack]:
    """A running :class:`PipeWireStack` that the app in this process finds through the environment.

    Args:
        monkeypatch: the test's, to point the environment at the session.
        env: extra variables for the session's processes (and this process).
    """
    require_programs()
    folder = Path(tempfile.mkdtemp(prefix="pw-", dir="/tmp"))  # socket paths must stay short
    stack = PipeWireStack(folder, **env)
    try:
        stack.start()
        for key in ("XDG_RUNTIME_DIR", "PIPEWIRE_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS", *env):
            monkeypatch.setenv(key, stack.env[key])
        monkeypatch.delenv("PIPEWIRE_REMOTE", raising=False)
        message = pipewire.unavailable_reason()
        if message is not None:
            skip_or_fail(message)
        yield stack
    finally:
        stack.close()
        shutil.rmtree(folder, ignore_errors=True)


class PipeWireStack:
    """dbus-daemon, pipewire and wireplumber of their own, in ``folder``."""

    def __init__(self, folder: Path, **env: str) -> None:
        """Prepares the folders; ``env`` adds variables for every process (e.g. ``DISPLAY``)."""
        self.folder = folder
        self.runtime = folder / "run"
        self.runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.env = dict(os.environ)
        self.env.update(
            XDG_RUNTIME_DIR=str(self.runtime),
            PIPEWIRE_RUNTIME_DIR=str(self.runtime),
            DBUS_SESSION_BUS_ADDRESS=f"unix:path={self.runtime / 'bus'}",
            XDG_STATE_HOME=str(folder / "state"),
            XDG_CONFIG_HOME=str(folder / "config"),
            XDG_CACHE_HOME=str(folder / "cache"),
        )
        self.env.update(env)
        self.env.pop("PIPEWIRE_REMOTE", None)
        self._bus: subprocess.Popen | None = None
        self._daemons: list[subprocess.Popen] = []

    def _spawn(self, *command: str) -> subprocess.Popen:
        log = open(self.folder / f"{Path(command[0]).name}.log", "ab")  # noqa: SIM115
        with log:
            return subprocess.Popen(
                command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=detach_and_die_with_parent,
            )

    def start(self) -> PipeWireStack:
        """Starts the bus (once) and the daemon, and waits until the session manager is ready."""
        if self._bus is None:
            self._bus = self._spawn(
                "dbus-daemon",
                "--session",
                "--nofork",
                f"--address={self.env['DBUS_SESSION_BUS_ADDRESS']}",
            )
            wait_until(lambda: (self.runtime / "bus").exists(), 10, "the session bus to start")
        self._daemons = [self._spawn("pipewire")]
        wait_until(lambda: (self.runtime / "pipewire-0").exists(), 10, "pipewire to start")
        self._daemons.append(self._spawn("wireplumber"))
        wait_until(
            lambda: any(
                o.get("info", {}).get("props", {}).get("application.name") == "WirePlumber"
                for o in self.dump()
            ),
            20,
            "wireplumber to connect",
        )
        return self

    def stop_daemon(self) -> None:
        """Stops wireplumber and pipewire (the bus stays)."""
        for process in reversed(self._daemons):
            _end(process)
        self._daemons = []
        (self.runtime / "pipewire-0").unlink(missing_ok=True)

    def close(self) -> None:
        """Stops everything."""
        self.stop_daemon()
        if self._bus is not None:
            _end(self._bus)
            self._bus = None

    def dump(self) -> list[dict]:
        """The daemon's objects as ``pw-dump`` lists them ([] when it does not answer)."""
        out = subprocess.run(
            ["pw-dump"], env=self.env, capture_output=True, timeout=20, check=False
        ).stdout
        try:
            return json.loads(out or b"[]")
        except json.JSONDecodeError:
            return []

    def node(self, name: str) -> dict | None:
        """The node called ``name``, as ``pw-dump`` shows it, or None."""
        for obj in self.dump():
            props = obj.get("info", {}).get("props", {})
            if obj.get("type", "").endswith(":Node") and props.get("node.name") == name:
                return obj
        return None

    def wait_for_node(self, name: str, timeout: float = 15) -> dict:
        """Waits until the node ``name`` is published; returns it."""
        found: list[dict] = []

        def listed() -> bool:
            node = self.node(name)
            if node is not None and node["info"]["params"].get("EnumFormat"):
                found.append(node)
                return True
            return False

        wait_until(listed, timeout, f"the node '{name}' to appear")
        return found[-1]

    def reader(
        self, name: str, width: int, height: int, keep: Callable[[np.ndarray], Any] | None = None
    ) -> FrameReader:
        """Starts reading the camera ``name`` (``width x height``) as a PipeWire client would.

        Args:
            name: the node to read.
            width: its frame width.
            height: its frame height.
            keep: what to keep of each frame, given its I420 planes as one ``H * 3 / 2 x W``
                array; None keeps the frame decoded to RGB.
        """
        return FrameReader(self.env, name, width, height, self.folder / "reader.log", keep)


class FrameReader:
    """Frames of a PipeWire camera as ``pipewiresrc`` delivers them, decoded as BT.601 I420.

    Sizes are multiples of 8, so GStreamer's plane strides are the tightly packed ones.
    """

    def __init__(
        self,
        env: dict[str, str],
        name: str,
        width: int,
        height: int,
        log_path: Path,
        keep: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        log = open(log_path, "ab")  # noqa: SIM115
        self.width, self.height = width, height
        self._keep = keep or (lambda i420: cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420))
        #: (arrival time from ``time.perf_counter()``, what was kept of the frame)
        self.frames: list[tuple[float, Any]] = []
        self._lock = threading.Lock()
        self._process = subprocess.Popen(
            [
                "gst-launch-1.0",
                "-q",
                "pipewiresrc",
                f"target-object={name}",
                "always-copy=true",
                "!",
                "video/x-raw,format=I420",
                "!",
                "fdsink",
                "fd=1",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            preexec_fn=detach_and_die_with_parent,
        )
        log.close()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        size = self.width * self.height * 3 // 2
        stream = self._process.stdout
        while True:
            data = stream.read(size)
            if len(data) < size:
                return
            arrived = time.perf_counter()
            i420 = np.frombuffer(data, np.uint8).reshape(self.height * 3 // 2, self.width)
            kept = self._keep(i420)
            with self._lock:
                self.frames.append((arrived, kept))

    def wait_until(
        self, condition: Callable[[list[np.ndarray]], bool], timeout: float = 20
    ) -> list[np.ndarray]:
        """Waits until ``condition(RGB frames so far)`` holds; returns those frames."""
        frames: list[np.ndarray] = []

        def met() -> bool:
            nonlocal frames
            with self._lock:
                frames = [f for _, f in self.frames]
            return condition(frames)

        try:
            wait_until(met, timeout, "the reader to get the expected frames")
        except AssertionError as exc:
            raise AssertionError(f"{exc} ({len(frames)} frames came)") from None
        return frames

    def close(self) -> None:
        """Disconnects from the camera."""
        _end(self._process)
        self._thread.join(timeout=5)


def block_frame(seed: int, width: int, height: int) -> np.ndarray:
    """An RGB frame of 16 x 16 blocks of random colours (flat, so I420's chroma keeps them).

    Args:
        seed: picks the colours.
        width: a multiple of 16.
        height: a multiple of 16.
    """
    rng = np.random.default_rng(seed)
    colours = rng.integers(16, 240, (height // 16, width // 16, 3), dtype=np.uint8)
    return np.repeat(np.repeat(colours, 16, axis=0), 16, axis=1)


def block_error(got: np.ndarray, sent: np.ndarray) -> np.ndarray:
    """Absolute differences over the middle 8 x 8 pixels of each block (I420 blurs the edges)."""
    height, width = sent.shape[:2]

    def centres(frame: np.ndarray) -> np.ndarray:
        inner = frame[:, :, :3].reshape(height // 16, 16, width // 16, 16, 3)[:, 4:12, :, 4:12]
        return inner.astype(np.int16)

    return np.abs(centres(got) - centres(sent))


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Polls ``condition`` until it holds; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
