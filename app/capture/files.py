"""Sources backed by files: a video (decoded with PyAV), a folder of images, a single still image.

All three are paced like a camera by default (``pace="realtime"``) and resize to a requested
resolution with area interpolation, so any file can stand in for a 1280x720 camera.
"""

from __future__ import annotations

import re
from pathlib import Path

import av
import cv2
import numpy as np

from app.capture.base import FrameSource, SourceError, to_rgb
from app.capture.pacing import IndexedSource, Pacer
from app.capture.registry import register_source
from app.settings import IMAGE_SUFFIXES, VIDEO_SUFFIXES

DEFAULT_FPS = 30.0
_MAX_STREAM_FPS = 1000.0


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Reads an image file as ``H x W x 3`` uint8 RGB (alpha dropped, grey expanded).

    Raises:
        SourceError: the file is missing, not an image, or damaged.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise SourceError(f"Image '{path}' cannot be read ({exc.strerror or exc}).") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(
            f"Image '{path}' cannot be read: it is damaged or not a PNG, JPEG, BMP, WebP or TIFF."
        )
    return to_rgb(image, bgr=True)


def _natural_key(path: Path) -> list[object]:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    """The frame rate a video stream declares, or :data:`DEFAULT_FPS` where it declares none."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < float(rate) <= _MAX_STREAM_FPS:
            return float(rate)
    return DEFAULT_FPS


def _unreadable_video(path: Path, exc: Exception) -> str:
    """Why a video file cannot be opened, in words that fit what the file is."""
    try:
        size = path.stat().st_size
    except OSError:
        size = -1
    if size == 0:
        return f"Video '{path}' is empty (0 bytes): nothing was ever written into it."
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return (
            f"Video '{path}' cannot be read ({exc.__class__.__name__}): the file is damaged or "
            "incomplete (a recording that was cut off leaves such a file)."
        )
    return (
        f"'{path}' is not a video that can be read ({exc.__class__.__name__}): "
        "use an MP4, MKV, MOV, AVI, WebM or GIF file."
    )


@register_source("video")
class VideoFileSource(FrameSource):
    """A video file decoded with PyAV (any container and codec FFmpeg reads, animated GIF too).

    Args:
        path: the video file.
        resolution: resize frames to this (width, height); None keeps the file's size.
        fps: playback rate; None uses the rate the stream declares.
        loop: start over at the end instead of ending.
        pace: ``realtime`` (frames at the playback rate, late frames skipped) or ``none``.

    Raises:
        SourceError: a request is out of range.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        resolution: tuple[int, int] | None = None,
        fps: float | None = None,
        loop: bool = False,
        pace: str = "realtime",
    ) -> None:
        super().__init__(resolution=resolution, fps=fps, pace=pace)
        self._path = Path(path)
        self._loop = loop
        self._container: av.container.InputContainer | None = None
        self._frames = None
        self._pacer: Pacer | None = None
        self._count: int | None = None
        self._declared_s = 0.0  # the duration the container declares, 0 when it does not
        self._last_s = 0.0  # the time of the newest decoded frame
        self._decoded = 0

    @classmethod
    def from_spec(
        cls,
        target: str,
        *,
        resolution: tuple[int, int] | None = None,
        fps: float | None = None,
        loop: bool = False,
        pace: str = "realtime",
    ) -> FrameSource:
        """Builds the source from a file path."""
        return cls(target, resolution=resolution, fps=fps, loop=loop, pace=pace)

    @property
    def name(self) -> str:
        """The file name."""
        return self._path.name

    @property
    def path(self) -> Path:
        """The video file."""
        return self._path

    @property
    def loop(self) -> bool:
        """Whether the video starts over at the end."""
        return self._loop

    @property
    def frame_count(self) -> int | None:
        """Frames the container declares, or None where it does not say."""
        return self._count

    @property
    def damage(self) -> str:
        """Set when the pictures stopped well before the end the file declares."""
        rate = self._fps or DEFAULT_FPS
        short_frames = self._count is not None and self._decoded + 2 < self._count
        short_time = self._declared_s > 0 and self._last_s + max(0.5, 2 / rate) < self._declared_s
        if not (short_frames or short_time):
            return ""
        if short_time:
            said = f"its pictures stop at {self._last_s:.2f} s of the {self._declared_s:.2f} s"
        else:
            said = f"it holds {self._decoded} of the {self._count} frames"
        return f"'{self._path.name}' is damaged or incomplete: {said} it declares."

    def _open(self) -> None:
        if self._path.is_dir():
            raise SourceError(f"'{self._path}' is a folder, not a video file.")
        if not self._path.is_file():
            raise SourceError(f"Video '{self._path}' does not exist.")
        stream = self._open_container()
        self._count = stream.frames or None
        duration = self._container.duration if self._container is not None else None
        self._declared_s = duration / av.time_base if duration and duration > 0 else 0.0
        native = (stream.codec_context.width, stream.codec_context.height)
        if native[0] <= 0 or native[1] <= 0:
            raise SourceError(f"Video '{self._path}' declares no picture size; it may be damaged.")
        rate = self._requested.fps or _stream_fps(stream)
        self._set_format(native, rate)
        self._pacer = Pacer(rate, self._pace, max_skip=max(1, round(rate)))

    def _open_container(self) -> av.video.stream.VideoStream:
        """Opens the container and starts decoding its first video stream."""
        self._close_container()
        self._decoded, self._last_s = 0, 0.0
        try:
            self._container = av.open(str(self._path), mode="r")
        except (av.FFmpegError, OSError) as exc:
            raise SourceError(_unreadable_video(self._path, exc)) from None
        if not self._container.streams.video:
            raise SourceError(f"'{self._path}' has no video stream: use a video file.")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._frames = self._container.decode(stream)
        return stream

    def _next_frame(self) -> av.VideoFrame | None:
        """Decodes the next frame, starting over at the end when looping; None at the end."""
        for attempt in range(2):
            try:
                frame = next(self._frames)
                self._decoded += 1
                if frame.time is not None:
                    self._last_s = max(self._last_s, float(frame.time))
                return frame
            except StopIteration:
                if not self._loop or attempt:
                    return None
                self._open_container()
            except av.FFmpegError as exc:
                raise SourceError(
                    f"Video '{self._path}' cannot be decoded further: {exc}"
                ) from None
        return None

    def _read(self) -> np.ndarray | None:
        for _ in range(self._pacer.wait()):
            if self._next_frame() is None:
                return None
            self._skipped += 1
        frame = self._next_frame()
        if frame is None:
            return None
        return to_rgb(frame.to_ndarray(format="rgb24"))

    def _close_container(self) -> None:
        self._frames = None
        if self._container is not None:
            container, self._container = self._container, None
            container.close()

    def _close(self) -> None:
        self._close_container()


@register_source("folder")
class ImageFolderSource(IndexedSource):
    """The image files of a folder, in natural name order (``2.png`` before ``10.png``).

    Images of another size than the first are resized to it.

    Args:
        path: the folder.
        resolution: resize frames to this (width, height); None keeps the first image's size.
        fps: playback rate; None means 30.
        loop: start over at the end instead of ending.
        pace: ``realtime`` or ``none``.

    Raises:
        SourceError: a request is out of range.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        resolution: tuple[int, int] | None = None,
        fps: float | None = None,
        loop: bool = False,
        pace: str = "realtime",
    ) -> None:
        super().__init__(resolution=resolution, fps=fps, loop=loop, pace=pace)
        self._path = Path(path)
        self._files: list[Path] = []

    @classmethod
    def from_spec(
        cls,
        target: str,
        *,
        resolution: tuple[int, int] | None = None,
        fps: float | None = None,
        loop: bool = False,
        pace: str = "realtime",
    ) -> FrameSource:
        """Builds the source from a folder path."""
        return cls(target, resolution=resolution, fps=fps, loop=loop, pace=pace)

    @property
    def name(self) -> str:
        """The folder name."""
        return self._path.name or str(self._path)

    @property
    def files(self) -> list[Path]:
        """The images, in playback order (empty before :meth:`open`)."""
        return list(self._files)

    @property
    def frame_count(self) -> int | None:
        """Images in the folder (None before :meth:`open`)."""
        return len(self._files) or None

    def _open(self) -> None:
        if not self._path.is_dir():
            raise SourceError(f"Folder '{self._path}' does not exist.")
        files = [
            p for p in self._path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        ]
        if not files:
            raise SourceError(
                f"Folder '{self._path}' holds no images: put PNG or JPEG frames in it."
            )
        files.sort(key=_natural_key)
        first = read_image_rgb(files[0])
        self._files = files
        self._start((first.shape[1], first.shape[0]), self._requested.fps or DEFAULT_FPS)

    def _frame(self, index: int) -> np.ndarray:
        return read_image_rgb(self._files[index])

    def _close(self) -> None:
        self._files = []


@register_source("image")
class StillImageSource(IndexedSource):
    """One image, repeated at the frame rate without end; handy for demos and benchmarks.

    Args:
        path: the image file.
        resolution: resize to this (width, height); None keeps the image's size.
        fps: frame rate; None means 30.
        pace: ``realtime`` or ``none``.

    Raises:
        SourceError: a request is out of range.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        resolution: tuple[int, int] | None = None,
        fps: float | None = None,
        pace: str = "realtime",
    ) -> None:
        super().__init__(resolution=resolution, fps=fps, loop=True, pace=pace)
        self._path = Path(path)
        self._image: np.ndarray | None = None

    @classmethod
    def from_spec(
        cls,
        target: str,
        *,
        resolution: tuple[int, int] | None = None,
        fps: float | None = None,
        loop: bool = False,
        pace: str = "realtime",
    ) -> FrameSource:
        """Builds the source from an image path (``loop`` does not apply)."""
        return cls(target, resolution=resolution, fps=fps, pace=pace)

    @property
    def name(self) -> str:
        """The file name."""
        return self._path.name

    def _open(self) -> None:
        if not self._path.is_file():
            raise SourceError(f"Image '{self._path}' does not exist.")
        image = read_image_rgb(self._path)
        self._start((image.shape[1], image.shape[0]), self._requested.fps or DEFAULT_FPS)
        w, h = self.width, self.height
        if (image.shape[1], image.shape[0]) != (w, h):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        self._image = image

    def _frame(self, index: int) -> np.ndarray:
        return self._image.copy()

    def _close(self) -> None:
        self._image = None
