"""Recording to an H.264 video (.mp4, .mkv, .mov) or to a folder of PNG frames.

Frames are encoded on writer threads behind a bounded queue: the caller never waits for the
encoder unless the queue is full, and then it waits rather than lose a frame. Everything is written
under a hidden temporary name beside the destination and renamed into place by :meth:`close`, so an
interrupted run never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import threading
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from app.output.base import OutputError, Sink

__all__ = ["CONTAINERS", "H264_ENCODERS", "Recorder", "h264_encoder", "unused_path"]

CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}
H264_ENCODERS = ("libx264", "libopenh264", "h264_videotoolbox", "h264_mf", "h264")

_DONE = object()
_FLUSH_TIMEOUT = 120.0
_BT709 = 1  # AVCOL_SPC_BT709 = AVCOL_PRI_BT709 = AVCOL_TRC_BT709
_MPEG_RANGE = 1  # AVCOL_RANGE_MPEG (limited, 16..235)


def h264_encoder() -> str:
    """The best H.264 encoder the bundled FFmpeg offers.

    Returns:
        An encoder name, ``libx264`` when present.

    Raises:
        OutputError: this FFmpeg build has no H.264 encoder.
    """
    import av

    for name in H264_ENCODERS:
        try:
            codec = av.codec.Codec(name, "w")
        except Exception:
            continue
        if codec.type == "video":
            return codec.name
    raise OutputError(
        "This installation's FFmpeg has no H.264 encoder; record to a folder (PNG frames) instead."
    )


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


class _VideoWriter:
    """H.264 in yuv420p through PyAV."""

    def __init__(
        self, path: str, container_format: str, width: int, height: int, fps: float, mbps: float
    ) -> None:
        import av
        from av.video.reformatter import Colorspace

        self._av = av
        self._colorspace = Colorspace.ITU709
        encoder = h264_encoder()
        self.container = av.open(path, mode="w", format=container_format)
        try:
            rate = Fraction(fps).limit_denominator(1001)
            stream = self.container.add_stream(encoder, rate=rate)
            stream.width = width
            stream.height = height
            stream.pix_fmt = "yuv420p"
            stream.bit_rate = int(mbps * 1_000_000)
            # BT.709, limited range, tagged in the stream so players convert back the same way.
            context = stream.codec_context
            context.colorspace = _BT709
            context.color_primaries = _BT709
            context.color_trc = _BT709
            context.color_range = _MPEG_RANGE
            if context.name == "libx264":
                stream.options = {"preset": "veryfast"}
            self.stream = stream
            self.time_base = Fraction(1) / rate
            self.index = 0
        except Exception:
            self.container.close()
            raise

    def write(self, index: int, frame: np.ndarray, pts: int) -> None:
        del index  # one writer thread keeps the order
        rgb = self._av.VideoFrame.from_ndarray(frame, format="rgb24")
        video_frame = rgb.reformat(format="yuv420p", dst_colorspace=self._colorspace)
        video_frame.pts = pts
        video_frame.time_base = self.time_base
        self.index += 1
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)

    def finish(self) -> None:
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
        finally:
            self.container.close()

    def abandon(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()


class _PngWriter:
    """Numbered PNG files (``00000.png`` ...) in a folder; safe to use from several threads."""

    # Fast zlib level with run-length matching: quicker and smaller than the default strategy on
    # camera frames.
    PARAMS = (
        cv2.IMWRITE_PNG_COMPRESSION,
        1,
        cv2.IMWRITE_PNG_STRATEGY,
        cv2.IMWRITE_PNG_STRATEGY_RLE,
    )

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def write(self, index: int, frame: np.ndarray, pts: int) -> None:
        del pts  # a numbered sequence keeps no time
        code = cv2.COLOR_RGBA2BGRA if frame.shape[2] == 4 else cv2.COLOR_RGB2BGR
        ok, data = cv2.imencode(".png", cv2.cvtColor(frame, code), list(self.PARAMS))
        if not ok:
            raise OSError("PNG encoding failed")
        data.tofile(os.path.join(self.folder, f"{index:05d}.png"))

    def finish(self) -> None:
        pass

    def abandon(self) -> None:
        pass


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
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._temp = self._make_temp()
        try:
            self._writer = self._open_writer()
        except OutputError:
            self._discard_temp()
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
        return self._temp

    def _fail(self, reason: str) -> OutputError:
        return OutputError(
            f"Cannot write the recording '{self.path}' ({reason}); choose another place."
        )

    def _make_temp(self) -> Path:
        """Creates the hidden temporary file or folder beside the destination."""
        parent = self.path.parent
        token = secrets.token_hex(4)
        try:
            if parent.exists() and not parent.is_dir():
                raise self._fail(f"'{parent}' is a file, not a folder")
            parent.mkdir(parents=True, exist_ok=True)
            if self.is_video:
                temp = parent / f".{self.path.stem}.{token}.partial{self.path.suffix}"
                temp.touch(exist_ok=False)
                return temp
            if self.path.is_dir() and any(self.path.iterdir()):
                raise OutputError(
                    f"Folder '{self.path}' already holds files; record into an empty or new folder."
                )
            temp = parent / f".{self.path.name}.{token}.partial"
            temp.mkdir()
            return temp
        except OSError as exc:
            raise self._fail(exc.strerror or type(exc).__name__) from None

    def _open_writer(self) -> _VideoWriter | _PngWriter:
        if not self.is_video:
            return _PngWriter(str(self._temp))
        even_w, even_h = self.width - self.width % 2, self.height - self.height % 2
        if even_w < 2 or even_h < 2:
            raise OutputError(f"Video of {self.width}x{self.height} is too small to encode.")
        container_format = CONTAINERS[self.path.suffix.lower()]
        try:
            return _VideoWriter(
                str(self._temp), container_format, even_w, even_h, self.fps, self.mbps
            )
        except OutputError:
            raise
        except Exception as exc:
            raise self._fail(str(exc) or type(exc).__name__) from None

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
                self._writer.write(index, frame, pts)
                with self._count_lock:
                    self.frames_written += 1
            except Exception as exc:
                self._error = str(exc) or type(exc).__name__

    def _send(self, frame: np.ndarray, timestamp: float | None) -> None:
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

    def _discard_temp(self) -> None:
        if self._temp.is_dir():
            shutil.rmtree(self._temp, ignore_errors=True)
        else:
            self._temp.unlink(missing_ok=True)

    def _close(self) -> None:
        for _ in self._threads:
            self._queue.put(_DONE)
        deadline = time.monotonic() + _FLUSH_TIMEOUT
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            self._writer.abandon()
            raise self._fail(f"the writer did not finish within {_FLUSH_TIMEOUT:g} s")
        if self._error is None:
            try:
                self._writer.finish()
            except Exception as exc:
                self._error = str(exc) or type(exc).__name__
        else:
            self._writer.abandon()
        if self._error is not None:
            self._discard_temp()
            raise self._fail(self._error)
        if self.frames_written == 0:
            self._discard_temp()  # an empty recording would only look like one
            return
        try:
            self._place()
        except OSError as exc:
            self._discard_temp()
            raise self._fail(exc.strerror or type(exc).__name__) from None

    def _place(self) -> None:
        """Renames the finished temporary file or folder to the destination."""
        if self.is_video:
            os.replace(self._temp, self.path)
            return
        if self.path.is_dir():
            self.path.rmdir()  # empty (checked when opening); a rename cannot replace it otherwise
        os.replace(self._temp, self.path)
