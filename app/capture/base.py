"""The frame-source contract: every source hands out ``H x W x 3`` uint8 RGB numpy arrays.

A source is opened, read until :meth:`FrameSource.read` returns None (end of stream), and closed.
Subclasses implement ``_open``, ``_read`` and ``_close``; the public methods add the lifecycle
(open once, close twice safely, context manager) and guarantee the frame format, so every frame
of a source has the advertised :attr:`FrameSource.width` x :attr:`FrameSource.height`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar

import cv2
import numpy as np

from app.events import UserError
from app.settings import PACES, SettingsError, parse_fps


class SourceError(UserError):
    """A frame source cannot be used; the message says what is wrong and what to do instead."""


class SourceLost(SourceError):
    """A live source (a camera) stopped delivering frames: unplugged, or taken by another app."""


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured frame.

    Attributes:
        image: ``H x W x 3`` uint8 RGB pixels.
        index: position in the stream of delivered frames, from 0.
        t_capture: ``time.monotonic()`` right after the source returned the pixels.
    """

    image: np.ndarray
    index: int
    t_capture: float

    @property
    def width(self) -> int:
        """Width in pixels."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """Height in pixels."""
        return int(self.image.shape[0])


@dataclass(frozen=True)
class Requested:
    """What was asked of a source; a size or rate of None keeps the source's own.

    Attributes:
        resolution: (width, height).
        fps: frames per second.
        loop: start a file over at its end.
        pace: ``realtime`` or ``none``.
    """

    resolution: tuple[int, int] | None = None
    fps: float | None = None
    loop: bool = False
    pace: str = "realtime"

    def options(self, *skip: str) -> dict[str, object]:
        """The requests as keyword arguments for a source's constructor, less those in ``skip``."""
        fields = dataclasses.asdict(self)
        return {k: v for k, v in fields.items() if k not in skip}

    def __str__(self) -> str:
        size = "{}x{}".format(*self.resolution) if self.resolution else "native size"
        rate = f"{self.fps:g} fps" if self.fps else "native fps"
        return f"{size} at {rate}"


def check_resolution(resolution: tuple[int, int] | None) -> tuple[int, int] | None:
    """Validates a requested (width, height); returns it as ints, or None.

    Raises:
        SourceError: the value is not a pair of sizes between 16x16 and 7680x4320.
    """
    if resolution is None:
        return None
    try:
        width, height = resolution
    except (TypeError, ValueError):
        raise SourceError(
            f"Resolution {resolution!r} is not a (width, height) pair, e.g. (1280, 720)."
        ) from None
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in resolution):
        raise SourceError(f"Resolution {resolution!r} must be whole pixels, e.g. (1280, 720).")
    if not (16 <= width <= 7680 and 16 <= height <= 4320):
        raise SourceError(f"Resolution {width}x{height} is impossible: use 16x16 up to 7680x4320.")
    return int(width), int(height)


def check_fps(fps: float | None) -> float | None:
    """Validates a requested frame rate; returns it as a float, or None.

    Raises:
        SourceError: the value is not a number between 1 and 240.
    """
    if fps is None:
        return None
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real):
        raise SourceError(f"Frame rate {fps!r} is not a number: use 1 to 240.")
    try:
        return parse_fps(fps)
    except SettingsError as e:
        raise SourceError(str(e)) from None


def check_pace(pace: str) -> str:
    """Validates a pacing mode (``realtime`` or ``none``).

    Raises:
        SourceError: the mode is unknown.
    """
    if pace not in PACES:
        raise SourceError(f"Unknown pace '{pace}': choose one of {', '.join(PACES)}.")
    return pace


def to_rgb(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Brings a decoded image to contiguous ``H x W x 3`` uint8 RGB.

    Args:
        image: grey (``H x W`` or ``H x W x 1``), three- or four-channel uint8 pixels.
        bgr: the channels are in OpenCV's blue-green-red order.

    Raises:
        SourceError: the array is not an 8-bit image.
    """
    if image.dtype != np.uint8:
        raise SourceError(f"Frames must be 8-bit, got {image.dtype}.")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise SourceError(f"Frames must have 1, 3 or 4 channels, got shape {image.shape}.")
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB)
    if bgr:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(image)


class FrameSource(ABC):
    """Something that delivers RGB frames: a camera, a video file, an image folder, a generator.

    Size and rate are known after :meth:`open`; before it, ``width``, ``height`` and ``fps`` are 0.

    Args:
        resolution: requested (width, height); None keeps the source's own.
        fps: requested frame rate; None keeps the source's own.
        loop: start over at the end (sources with an end: files and folders).
        pace: ``realtime``: :meth:`read` returns frames at the source's rate against the wall
            clock, like a camera; ``none``: every frame, as fast as asked. Live sources are always
            real time.

    Raises:
        SourceError: a request is out of range.
    """

    #: Whether the source is live hardware (a camera) that can be lost and reconnected.
    is_live: ClassVar[bool] = False

    def __init__(
        self,
        *,
        resolution: tuple[int, int] | None = None,
        fps: float | None = None,
        loop: bool = False,
        pace: str = "realtime",
    ) -> None:
        self._pace = "realtime" if self.is_live else check_pace(pace)
        self._loop = bool(loop)
        self._requested = Requested(check_resolution(resolution), check_fps(fps), self._loop, pace)
        self._width = 0
        self._height = 0
        self._fps = 0.0
        self._is_open = False
        self._skipped = 0

    @classmethod
    def from_spec(cls, target: str, request: Requested) -> FrameSource:
        """Builds an unopened source from the part of a ``--source`` value that names it.

        This default passes the target as the first argument and every request as a keyword;
        sources that take other arguments override it.

        Raises:
            SourceError: a request is out of range.
        """
        return cls(target, **request.options())

    # Lifecycle ------------------------------------------------------------------------------

    def open(self) -> FrameSource:
        """Opens the source (once; opening an open source does nothing) and returns it.

        Raises:
            SourceError: the source cannot be opened; the message says why.
        """
        if self._is_open:
            return self
        try:
            self._open()
        except BaseException:
            with contextlib.suppress(Exception):  # the open error is the one that matters
                self._close()
            raise
        self._is_open = True
        return self

    def read(self) -> np.ndarray | None:
        """The next frame as ``height x width x 3`` uint8 RGB, or None at the end of the stream.

        Raises:
            SourceLost: a live source stopped delivering.
            SourceError: the source cannot be read any further.
            RuntimeError: the source is not open.
        """
        if not self._is_open:
            raise RuntimeError(f"{self.name} is not open: call open() first.")
        image = self._read()
        if image is None:
            return None
        if image.shape[0] != self._height or image.shape[1] != self._width:
            image = cv2.resize(image, (self._width, self._height), interpolation=cv2.INTER_AREA)
        return image

    def close(self) -> None:
        """Releases the source; safe to call twice and on a source that never opened."""
        if not self._is_open:
            return
        self._is_open = False
        self._close()

    def __enter__(self) -> FrameSource:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self._is_open else "closed"
        return f"<{type(self).__name__} {self.name!r} {self._width}x{self._height} {state}>"

    # For subclasses -----------------------------------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Acquires the device or file and calls :meth:`_set_format`."""

    @abstractmethod
    def _read(self) -> np.ndarray | None:
        """Returns the next RGB frame (any size; it is fitted to the format) or None at the end."""

    @abstractmethod
    def _close(self) -> None:
        """Releases what :meth:`_open` acquired; also called after a failed :meth:`_open`."""

    def _set_format(self, native: tuple[int, int], fps: float) -> None:
        """Records the delivered format: the requested resolution when one was given (frames are
        resized to it), else ``native``; and the frame rate."""
        self._width, self._height = self._requested.resolution or native
        self._fps = float(fps)

    # Properties ---------------------------------------------------------------------------

    @property
    def width(self) -> int:
        """Width of the delivered frames (0 before :meth:`open`)."""
        return self._width

    @property
    def height(self) -> int:
        """Height of the delivered frames (0 before :meth:`open`)."""
        return self._height

    @property
    def fps(self) -> float:
        """The actual frame rate of the source (0 before :meth:`open`)."""
        return self._fps

    @property
    def requested(self) -> Requested:
        """What was asked; fields are None where nothing was asked."""
        return self._requested

    @property
    def pace(self) -> str:
        """``realtime`` or ``none``; see the class description."""
        return self._pace

    @property
    def is_open(self) -> bool:
        """Whether the source is open."""
        return self._is_open

    @property
    def skipped(self) -> int:
        """Frames passed over to keep up with the wall clock (real-time pacing only)."""
        return self._skipped

    @property
    def frame_count(self) -> int | None:
        """Frames in one pass of the stream, or None where unknown or endless."""
        return None

    @property
    def damage(self) -> str:
        """Why the stream ended before its declared end (a cut-off file), else empty."""
        return ""

    @property
    @abstractmethod
    def name(self) -> str:
        """A human-readable name, e.g. ``Camera 0 (HD Webcam)`` or ``clip.mp4``."""
