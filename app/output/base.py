"""What every frame sink shares: validation at the edge, idempotent close, context manager."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

__all__ = ["OutputError", "Sink"]


class OutputError(RuntimeError):
    """An output cannot be written or opened; the message says what is wrong and what to do."""


class Sink(ABC):
    """A consumer of ``H x W x C`` uint8 RGB(A) frames.

    Subclasses set :attr:`channels` (the channel counts they accept) and :attr:`frame_size`
    (``(width, height)`` when frames must have exactly that size, else None), and implement
    :meth:`_send` and :meth:`_close`.
    """

    channels: tuple[int, ...] = (3,)
    frame_size: tuple[int, int] | None = None

    _closed: bool = False

    def send(self, frame: np.ndarray, timestamp: float | None = None) -> None:
        """Hands one frame to the sink.

        Args:
            frame: ``H x W x C`` uint8 array, RGB or RGBA.
            timestamp: when the frame was captured (seconds, e.g. ``time.monotonic()``), for
                sinks that keep time (a video recording); None: right after the previous frame.

        Raises:
            TypeError: the frame is not a uint8 numpy array.
            ValueError: the frame's shape is not one this sink takes.
            RuntimeError: the sink is closed.
        """
        self.validate(frame)
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed.")
        self._send(frame, timestamp)

    def validate(self, frame: np.ndarray) -> None:
        """Checks a frame's type and shape without sending it.

        Args:
            frame: the frame to check.

        Raises:
            TypeError: not a uint8 numpy array.
            ValueError: wrong number of dimensions or channels, or wrong size.
        """
        if not isinstance(frame, np.ndarray):
            raise TypeError(f"Frames must be numpy arrays, got {type(frame).__name__}.")
        if frame.dtype != np.uint8:
            raise TypeError(f"Frames must be uint8, got {frame.dtype}.")
        channels = " or ".join(str(c) for c in self.channels)
        if frame.ndim != 3 or frame.shape[2] not in self.channels:
            raise ValueError(f"Frames must be H x W x {channels}, got shape {frame.shape}.")
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise ValueError(f"Frames must not be empty, got shape {frame.shape}.")
        if self.frame_size is not None:
            width, height = self.frame_size
            if frame.shape[:2] != (height, width):
                raise ValueError(
                    f"Frames must be {height} x {width} x {channels}, got shape {frame.shape}."
                )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def close(self) -> None:
        """Flushes and releases the sink; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._close()

    @abstractmethod
    def _send(self, frame: np.ndarray, timestamp: float | None) -> None:
        """Consumes one validated frame, captured at ``timestamp`` (None when unknown)."""

    @abstractmethod
    def _close(self) -> None:
        """Releases resources; called once."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
