"""Sources backed by files: a video (decoded with PyAV), a folder of images, a single still image.

All three are paced like a camera by default (``pace="realtime"``) and resize to a requested
resolution with area interpolation, so any file can stand in for a 1280x720 camera.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from app.capture.base import FrameSource, Requested, SourceError, to_rgb
from app.capture.kinds import register_source
from app.capture.pacing import IndexedSource, Pacer
from app.media import VIDEO_SUFFIXES, MediaError, UnreadableMedia
from app.media.images import image_files, read_image
from app.media.video import VideoReader

DEFAULT_FPS = 30.0


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Reads an image file as ``H x W x 3`` uint8 RGB (alpha dropped, grey expanded).

    Raises:
        SourceError: the file is missing, not an image, or damaged.
    """
    try:
        return read_image(path)
    except MediaError as exc:
        raise SourceError(f"Image {exc}.") from None


class PathSource(FrameSource):
    """A source read from a file or a folder, named by its path.

    Args:
        path: the file or folder.
        resolution: resize frames to this (width, height); None keeps the file's size.
        fps: playback rate; None uses the file's own.
        loop: start over at the end instead of ending.
        pace: ``realtime`` or ``none``.
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

    @property
    def name(self) -> str:
        """The file or folder name."""
        return self._path.name or str(self._path)

    @property
    def path(self) -> Path:
        """The file or folder."""
        return self._path


def _unreadable_video(path: Path, why: str) -> str:
    """Why a video file cannot be opened, in words that fit what the file is."""
    try:
        size = path.stat().st_size
    except OSError:
        size = -1
    if size == 0:
        return f"Video '{path}' is empty (0 bytes): nothing was ever written into it."
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return (
            f"Video '{path}' cannot be read ({why}): the file is damaged or incomplete (a "
            "recording that was cut off leaves such a file)."
        )
    return (
        f"'{path}' is not a video that can be read ({why}): use an MP4, MKV, MOV, AVI, WebM or "
        "GIF file."
    )


@register_source("video")
class VideoFileSource(PathSource):
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

    _video: VideoReader | None = None
    _pacer: Pacer | None = None
    _count: int | None = None
    _decoded = 0  # frames decoded since the file was (re)opened
    _last_s = 0.0  # the time of the newest decoded frame

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
        declared_s = self._video.duration if self._video is not None else 0.0
        rate = self._fps or DEFAULT_FPS
        short_frames = self._count is not None and self._decoded + 2 < self._count
        short_time = declared_s > 0 and self._last_s + max(0.5, 2 / rate) < declared_s
        if not (short_frames or short_time):
            return ""
        if short_time:
            said = f"its pictures stop at {self._last_s:.2f} s of the {declared_s:.2f} s"
        else:
            said = f"it holds {self._decoded} of the {self._count} frames"
        return f"'{self._path.name}' is damaged or incomplete: {said} it declares."

    def _open(self) -> None:
        if self._path.is_dir():
            raise SourceError(f"'{self._path}' is a folder, not a video file.")
        if not self._path.is_file():
            raise SourceError(f"Video '{self._path}' does not exist.")
        self._decoded, self._last_s = 0, 0.0
        try:
            self._video = VideoReader(self._path)
        except UnreadableMedia as exc:
            raise SourceError(_unreadable_video(self._path, exc.reason)) from None
        except MediaError as exc:
            raise SourceError(f"{exc}: use a video file.") from None
        self._count = self._video.count
        native = (self._video.width, self._video.height)
        if native[0] <= 0 or native[1] <= 0:
            raise SourceError(f"Video '{self._path}' declares no picture size; it may be damaged.")
        rate = self._requested.fps or float(self._video.fps or DEFAULT_FPS)
        self._set_format(native, rate)
        self._pacer = Pacer(rate, self._pace, max_skip=max(1, round(rate)))

    def _next_frame(self) -> object | None:
        """Decodes the next frame, starting over at the end when looping; None at the end."""
        try:
            frame = self._video.next()
            if frame is None and self._loop:
                self._video.rewind()
                self._decoded, self._last_s = 0, 0.0
                frame = self._video.next()
        except MediaError as exc:
            raise SourceError(f"Video {exc}.") from None
        if frame is not None:
            self._decoded += 1
            if frame.time is not None:
                self._last_s = max(self._last_s, float(frame.time))
        return frame

    def _read(self) -> np.ndarray | None:
        for _ in range(self._pacer.wait()):
            if self._next_frame() is None:
                return None
            self._skipped += 1
        frame = self._next_frame()
        if frame is None:
            return None
        return to_rgb(frame.to_ndarray(format="rgb24"))

    def _close(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video = None


@register_source("folder")
class ImageFolderSource(PathSource, IndexedSource):
    """The image files of a folder, in natural name order (``2.png`` before ``10.png``).

    The images must all have the first one's size, unless a resolution is asked for (then every
    image is resized to it).

    Args:
        path: the folder.
        resolution: resize frames to this (width, height); None keeps the first image's size.
        fps: playback rate; None means 30.
        loop: start over at the end instead of ending.
        pace: ``realtime`` or ``none``.

    Raises:
        SourceError: a request is out of range.
    """

    _files: tuple[Path, ...] = ()

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
        files = image_files(self._path)
        if not files:
            raise SourceError(
                f"Folder '{self._path}' holds no images: put PNG or JPEG frames in it."
            )
        first = read_image_rgb(files[0])
        self._files = tuple(files)
        self._start((first.shape[1], first.shape[0]), self._requested.fps or DEFAULT_FPS)

    def _frame(self, index: int) -> np.ndarray:
        image = read_image_rgb(self._files[index])
        if self._requested.resolution is None and image.shape[:2] != (self.height, self.width):
            # The conversion command's rule: one size for all, or a size asked for.
            raise SourceError(
                f"Image '{self._files[index].name}' is {image.shape[1]}x{image.shape[0]} but the "
                f"first image is {self.width}x{self.height}; give a resolution (--resolution "
                "WxH) to bring all images to one size."
            )
        return image

    def _close(self) -> None:
        self._files = ()


@register_source("image")
class StillImageSource(PathSource, IndexedSource):
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
        super().__init__(path, resolution=resolution, fps=fps, loop=True, pace=pace)
        self._image: np.ndarray | None = None

    @classmethod
    def from_spec(cls, target: str, request: Requested) -> FrameSource:
        """Builds the source from an image path (``loop`` does not apply)."""
        return cls(target, **request.options("loop"))

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
