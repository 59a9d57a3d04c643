"""Recording to an H.264 video (.mp4, .mkv, .mov) or to a folder of PNG frames.

Frames are encoded on writer threads behind a bounded queue: the caller never waits for the
encoder unless the queue is full, and then it waits rather than lose a frame. Everything is written
under a hidden partial name beside the destination, claimed exclusively (a second run recording to
the same destination is refused), and renamed into place by :meth:`close`, so an interrupted run
never leaves a file that looks complete.

A video that stops abruptly stays playable: ``.mp4`` and ``.mov`` are written as fragmented MP4
(one fragment per second), ``.mkv`` is Matroska. When the disk fills up the recording stops, what
was written is trimmed to its last complete fragment and renamed into place, and the error says so.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import threading
import time
from pathlib import Path

import numpy as np

from app.media import AtomicPath, MediaError
from app.media.destination import DestinationError
from app.media.images import write_image
from app.media.salvage import trim_fragments
from app.media.video import VideoWriter
from app.output.base import OutputError, Sink

__all__ = ["CONTAINERS", "Recorder", "unused_path"]

CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}

_DONE = object()
_FULL = {  # the disk, the user's quota or the file system's size limit is reached
    errno.ENOSPC: "The disk is full",
    errno.EDQUOT: "The disk quota is used up",
    errno.EFBIG: "The file has reached the largest size allowed here",
}
_FLUSH_TIMEOUT = 120.0


def unused_path(path: str | os.PathLike[str]) -> Path:
    """``path`` when nothing is there yet, else the first free ``name-2.mp4``, ``name-3.mp4``...

    Args:
        path: a recording destination (file or folder).

    Returns:
        A destination that does not exist yet.
    """
    path = Path(path).expanduser()
    number = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
        number += 1
    return candidate


class Recorder(Sink):
    """Writes frames to a video file or a PNG sequence, on a writer thread.

    A path ending in .mp4, .mkv or .mov becomes H.264 video; a path without a suffix (or an
    existing folder) becomes a PNG sequence. Transparent (RGBA) output needs a PNG sequence.
    H.264 needs even sizes: an odd width or height loses its last column or row in video files.
    Frames sent with their capture timestamps keep their moments in a video: where a live
    stream lost frames, the previous picture stays up for the gap, so the recording lasts as long
    as the session did; frames sent without one follow each other at ``fps``.
    A recording that received no frame leaves nothing behind.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: float,
        *,
        mbps: float = 6.0,
        rgba: bool = False,
        queue_size: int = 8,
    ) -> None:
        """Prepares the destination and starts the writer thread.

        Args:
            path: video file or folder.
            width: frame width.
            height: frame height.
            fps: frame rate stored in the video.
            mbps: video bit rate in megabits per second.
            rgba: frames are RGBA (written as RGBA PNGs).
            queue_size: frames that may wait for the encoder before :meth:`send` blocks.

        Raises:
            ValueError: impossible size, rate, bit rate or queue size.
            OutputError: the destination cannot be written, is of an unknown kind, or does not
                fit the frames (RGBA into a video file).
        """
        if width < 1 or height < 1:
            raise ValueError(f"Recording size {width}x{height} is impossible.")
        if not 0 < fps <= 1000:
            raise ValueError(f"Recording frame rate {fps:g} must be above 0.")
        if not 0 < mbps <= 1000:
            raise ValueError(f"Bit rate {mbps:g} Mb/s must be above 0.")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1.")
        self.path = Path(path).expanduser().absolute()
        self.width, self.height, self.fps, self.mbps = int(width), int(height), float(fps), mbps
        self.rgba = bool(rgba)
        self.channels = (4,) if self.rgba else (3,)
        self.frame_size = (self.width, self.height)
        suffix = self.path.suffix.lower()
        self.is_video = suffix in CONTAINERS and not self.path.is_dir()
        if not self.is_video and suffix and not self.path.is_dir():
            raise OutputError(
                f"Cannot record to '{self.path}': use a .mp4, .mkv or .mov file, or a folder "
                "for PNG frames."
            )
        if self.is_video and self.rgba:
            raise OutputError(
                f"Transparent output cannot go into '{self.path.name}': give a folder to record "
                "RGBA PNG frames instead."
            )
        self.frames_written = 0
        self._frames_queued = 0
        self._next_pts = 0
        self._t0: float | None = None
        self._count_lock = threading.Lock()
        self._error: str | None = None
        self._full = ""  # why the disk took no more (see _FULL); what was written is kept
        self._incomplete: list[Path] = []  # pictures a full disk cut short
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._temp = self._make_temp()
        try:
            self._video = self._open_video()
        except OutputError:
            self._temp.discard()
            raise
        # Video frames must be encoded in order: one thread. PNG frames are independent, and
        # OpenCV encodes without holding the GIL, so a few threads share the work.
        workers = 1 if self.is_video else max(1, min(4, (os.cpu_count() or 2) // 2))
        self._threads = [
            threading.Thread(target=self._run, name=f"recorder-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def temp_path(self) -> Path:
        """Where the recording grows until :meth:`close` renames it into place."""
        return self._temp.temp

    @property
    def notes(self) -> list[str]:
        """What the user should know from the start, one sentence each: unfinished files of
        earlier runs beside this one, a size the encoder had to change."""
        notes = [self._temp.stale_note()]
        even_w, even_h = self.width - self.width % 2, self.height - self.height % 2
        if self.is_video and (even_w, even_h) != (self.width, self.height):
            lost = " and ".join(
                part
                for part, odd in (("column", even_w != self.width), ("row", even_h != self.height))
                if odd
            )
            notes.append(
                f"The recording is {even_w}x{even_h}: H.264 video needs even sizes, so the last "
                f"{lost} of the {self.width}x{self.height} frames are left out; record to a "
                "folder (PNG frames) to keep every pixel."
            )
        return [n for n in notes if n]

    def _fail(self, reason: str) -> OutputError:
        return OutputError(
            f"Cannot write the recording '{self.path}' ({reason}); choose another place."
        )

    def _make_temp(self) -> AtomicPath:
        """Creates the hidden temporary file or folder beside the destination."""
        parent = self.path.parent
        try:
            if parent.exists() and not parent.is_dir():
                raise self._fail(f"'{parent}' is a file, not a folder")
            parent.mkdir(parents=True, exist_ok=True)
            if not self.is_video and self.path.is_dir() and any(self.path.iterdir()):
                raise OutputError(
                    f"Folder '{self.path}' already holds files; record into an empty or new folder."
                )
            return AtomicPath(self.path, folder=not self.is_video)
        except DestinationError as exc:
            raise OutputError(str(exc)) from None
        except OSError as exc:
            raise self._fail(exc.strerror or type(exc).__name__) from None

    def _open_video(self) -> VideoWriter | None:
        """The H.264 encoder for a video recording; None for PNG frames."""
        if not self.is_video:
            return None
        even_w, even_h = self.width - self.width % 2, self.height - self.height % 2
        if even_w < 2 or even_h < 2:
            raise OutputError(f"Video of {self.width}x{self.height} is too small to encode.")
        try:
            return VideoWriter(
                self._temp.temp,
                even_w,
                even_h,
                self.fps,
                mbps=self.mbps,
                # The network shares the cores with the encoder: x264's "superfast" takes about
                # half the CPU time of "veryfast" at 960x720 and the same bit rate, for 0.3 dB of
                # PSNR (42.0 against 42.3 on the signing footage at 6 Mb/s).
                preset="superfast",
                pix_fmt="yuv420p",
                bt709=True,
                container_format=CONTAINERS[self.path.suffix.lower()],
                crash_safe=True,
            )
        except MediaError as exc:
            raise OutputError(f"{exc}; record to a folder (PNG frames) instead.") from None
        except Exception as exc:
            raise self._fail(str(exc) or type(exc).__name__) from None

    def _write(self, index: int, frame: np.ndarray, pts: int) -> None:
        if self._video is not None:
            self._video.write(frame, pts)  # one writer thread keeps the order
        else:  # a numbered sequence keeps no time
            file = self._temp.temp / f"{index:05d}.png"
            try:
                write_image(file, frame, fast=True)
            except OSError:
                self._incomplete.append(file)
                raise

    def _run(self) -> None:
        even_h, even_w = self.height - self.height % 2, self.width - self.width % 2
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is not None:
                continue  # keep draining so producers never block on a dead writer
            index, frame, pts = item
            if self.is_video and frame.shape[:2] != (even_h, even_w):
                frame = np.ascontiguousarray(frame[:even_h, :even_w])
            try:
                self._write(index, frame, pts)
                with self._count_lock:
                    self.frames_written += 1
            except Exception as exc:
                if isinstance(exc, OSError) and exc.errno in _FULL:
                    self._full = _FULL[exc.errno]
                self._error = str(exc) or type(exc).__name__

    def _send(self, frame: np.ndarray, timestamp: float | None) -> None:
        if self._full:
            raise OutputError(
                f"{self._full}: the recording '{self.path.name}' stopped; what was recorded until "
                "then is kept."
            )
        if self._error is not None:
            raise self._fail(self._error)
        with self._count_lock:
            index = self._frames_queued
            self._frames_queued += 1
            pts = self._next_pts
            if timestamp is not None:
                if self._t0 is None:
                    self._t0 = timestamp
                pts = max(pts, round((timestamp - self._t0) * self.fps))
            self._next_pts = pts + 1
        self._queue.put((index, frame, pts))

    def _close(self) -> None:
        for _ in self._threads:
            self._queue.put(_DONE)
        deadline = time.monotonic() + _FLUSH_TIMEOUT
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            if self._video is not None:
                self._video.abandon()
            raise self._fail(f"the writer did not finish within {_FLUSH_TIMEOUT:g} s")
        if self._full:
            self._salvage()
        if self._video is not None and self._error is None:
            try:
                self._video.close()
            except Exception as exc:
                if isinstance(exc, OSError) and exc.errno in _FULL:
                    self._full = _FULL[exc.errno]
                    self._salvage()
                self._error = str(exc) or type(exc).__name__
        elif self._video is not None:
            self._video.abandon()
        if self._error is not None:
            self._temp.discard()
            raise self._fail(self._error)
        if self.frames_written == 0:
            self._temp.discard()  # an empty recording would only look like one
            return
        try:
            self._temp.commit()
        except OSError as exc:
            self._temp.discard()
            raise self._fail(exc.strerror or type(exc).__name__) from None

    def _salvage(self) -> None:
        """Keeps what was written before the disk filled up, playable, under the final name.

        Raises:
            OutputError: always; it says what was kept.
        """
        if self._video is not None:
            self._video.abandon()
        with contextlib.suppress(OSError):
            if self._video is not None and self.path.suffix.lower() in (".mp4", ".mov"):
                trim_fragments(self._temp.temp)
            for file in self._incomplete:
                file.unlink(missing_ok=True)
        if self.frames_written == 0:
            self._temp.discard()
            raise OutputError(f"{self._full}: nothing could be recorded to '{self.path}'.")
        try:
            self._temp.commit()
        except OSError as exc:
            self._temp.discard()
            raise self._fail(exc.strerror or type(exc).__name__) from None
        raise OutputError(
            f"{self._full}: the recording stopped after {self.frames_written} frames; what was "
            f"recorded until then is saved in '{self.path}'. Free some space to record again."
        )
