"""Video through PyAV (FFmpeg): decoding files as RGB frames, encoding H.264, and frame readers
for batch work that take a video file or a folder of images alike.

PyAV is imported on first use: it is slow to import, and the window starts without it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from app.media.atomic import AtomicPath
from app.media.formats import FOLDER_FPS, IMAGE_SUFFIXES, MediaError, UnreadableMedia, reason
from app.media.images import image_files, read_image
from app.media.images import resize_image as _resize
from app.media.salvage import FRAGMENTED_MP4

H264_ENCODERS = ("libx264", "libopenh264", "h264_videotoolbox", "h264_mf", "h264")
_MAX_FPS = 1000.0
_BT709 = 1  # AVCOL_SPC_BT709 = AVCOL_PRI_BT709 = AVCOL_TRC_BT709
_MPEG_RANGE = 1  # AVCOL_RANGE_MPEG (limited, 16..235)


def h264_encoder() -> str:
    """The best H.264 encoder the bundled FFmpeg offers (``libx264`` when present).

    Raises:
        MediaError: this FFmpeg build has no H.264 encoder.
    """
    import av

    for name in H264_ENCODERS:
        try:
            codec = av.codec.Codec(name, "w")
        except Exception:
            continue
        if codec.type == "video":
            return codec.name
    raise MediaError("This installation's FFmpeg has no H.264 encoder")


class VideoReader:
    """The first video stream of a file, decoded frame by frame.

    Attributes:
        path: the file.
        width, height: the picture size the stream declares.
        fps: the frame rate the stream declares, or None where it declares none.
        count: the frames the container declares, or None.
        duration: the seconds the container declares, 0 where it does not.

    Args:
        path: any container and codec FFmpeg reads (animated GIF too).
        threads: None lets FFmpeg choose frame and slice threads, 0 keeps the decoder's default,
            N asks for N threads.

    Raises:
        MediaError: the file is not a video that can be read, or holds no video stream.
    """

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None) -> None:
        self.path = Path(path)
        self._threads = threads
        self._container: Any = None
        self._frames: Iterator[Any] | None = None
        stream = self._open()
        ctx = stream.codec_context
        self.width, self.height = ctx.width, ctx.height
        self.count: int | None = stream.frames or None
        declared = self._container.duration
        self.duration = declared / 1_000_000 if declared and declared > 0 else 0.0  # AV_TIME_BASE
        self.fps: Fraction | None = None
        for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
            if rate and 0 < float(rate) <= _MAX_FPS:
                self.fps = Fraction(rate)
                break

    def _open(self) -> Any:
        import av

        self.close()
        try:
            self._container = av.open(str(self.path), mode="r")
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise UnreadableMedia(
                f"'{self.path}' is not a video that can be read ({reason(exc)})", reason(exc)
            ) from None
        if not self._container.streams.video:
            self.close()
            raise MediaError(f"'{self.path}' has no video stream")
        stream = self._container.streams.video[0]
        if self._threads is None or self._threads > 0:
            stream.thread_type = "AUTO"
        if self._threads:
            stream.codec_context.thread_count = self._threads
        self._frames = self._container.decode(stream)
        return stream

    def next(self) -> Any:
        """The next decoded ``av.VideoFrame``, or None at the end.

        Raises:
            MediaError: the file cannot be decoded further.
        """
        import av

        if self._frames is None:
            return None
        try:
            return next(self._frames)
        except StopIteration:
            return None
        except av.FFmpegError as exc:
            raise MediaError(f"'{self.path}' cannot be decoded further ({reason(exc)})") from None

    def rewind(self) -> None:
        """Starts over at the first frame."""
        self._open()

    def frames(
        self, size: tuple[int, int] | None = None, stop: threading.Event | None = None
    ) -> Iterator[np.ndarray]:
        """Yields the remaining frames as ``H x W x 3`` uint8 RGB, resized to (width, height).

        Stops early when ``stop`` is set.
        """
        options = {} if size is None else {"width": size[0], "height": size[1]}
        while (frame := self.next()) is not None:
            if stop is not None and stop.is_set():
                return
            yield frame.to_ndarray(format="rgb24", **options)

    def close(self) -> None:
        """Closes the file; safe to call twice."""
        self._frames = None
        if self._container is not None:
            container, self._container = self._container, None
            container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoWriter:
    """H.264 video written through PyAV from ``H x W x 3`` uint8 RGB frames.

    Args:
        path: the file; the container follows its suffix unless ``container_format`` is given.
        width, height: the picture size.
        fps: the frame rate (a float is reduced to a fraction with a denominator up to 1001).
        mbps: bit rate in megabits per second; None leaves it to ``crf`` or the encoder.
        crf: constant quality (libx264), None for the encoder's default.
        preset: libx264 speed preset, None for its default.
        pix_fmt: ``yuv420p``, ``yuv444p``...; None picks 4:2:0 for even sizes and 4:4:4 else.
        bt709: convert to BT.709 limited range and tag the stream so (players convert back alike).
        container_format: FFmpeg's name of the container, for a file whose suffix does not say.
        crash_safe: write so that a file cut short (a full disk, a crash) plays up to the cut: a
            keyframe every second and, in MP4 and MOV, a fragment at each
            (:mod:`app.media.salvage`); Matroska is read up to a cut anyway.

    Raises:
        MediaError: no H.264 encoder.
        av.FFmpegError, OSError, ValueError: the file cannot be opened for writing.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: float | Fraction,
        *,
        mbps: float | None = None,
        crf: int | None = None,
        preset: str | None = None,
        pix_fmt: str | None = None,
        bt709: bool = False,
        container_format: str | None = None,
        crash_safe: bool = False,
    ) -> None:
        import av

        self._av = av
        encoder = h264_encoder()
        rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
        if pix_fmt is None:
            pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        kind = container_format or Path(path).suffix.lower().lstrip(".")
        options = FRAGMENTED_MP4 if crash_safe and kind in ("mp4", "mov") else {}
        self._container = av.open(str(path), mode="w", format=container_format, options=options)
        try:
            stream = self._container.add_stream(encoder, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            if mbps is not None:
                stream.bit_rate = int(mbps * 1_000_000)
            if crash_safe:
                stream.codec_context.gop_size = max(1, round(float(rate)))
            options = {}
            if stream.codec_context.name == "libx264":
                options = {"preset": preset} if preset else {}
                if crf is not None:
                    options["crf"] = str(crf)
            stream.options = options
            self._colorspace = None
            if bt709:
                from av.video.reformatter import Colorspace

                self._colorspace = Colorspace.ITU709
                context = stream.codec_context
                context.colorspace = context.color_primaries = context.color_trc = _BT709
                context.color_range = _MPEG_RANGE
        except BaseException:
            self._container.close()
            raise
        self._stream = stream
        self._pix_fmt = pix_fmt
        self.time_base = Fraction(1) / rate
        self.frames_written = 0

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Encodes one frame; ``pts`` in frame periods (default: right after the previous one)."""
        frame = self._av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if self._colorspace is not None:
            frame = frame.reformat(format=self._pix_fmt, dst_colorspace=self._colorspace)
        frame.pts = self.frames_written if pts is None else pts
        frame.time_base = self.time_base
        self.frames_written += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        """Flushes the encoder and closes the file; safe to call twice."""
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            for packet in self._stream.encode():
                container.mux(packet)
        finally:
            container.close()

    def abandon(self) -> None:
        """Closes the file without flushing (it is about to be deleted); safe to call twice."""
        if self._container is not None:
            container, self._container = self._container, None
            with contextlib.suppress(Exception):
                container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()


def write_video(
    path: str | os.PathLike[str], frames: Sequence[np.ndarray] | np.ndarray, fps: float = 30, **kw
) -> Path:
    """Writes RGB frames as an H.264 file in one go, atomically; returns ``path``.

    Args:
        path: the file.
        frames: ``H x W x 3`` uint8 RGB frames.
        fps: the frame rate.
        **kw: :class:`VideoWriter` options (``crf``, ``preset``, ``pix_fmt``...).
    """
    height, width = frames[0].shape[:2]
    with AtomicPath(path) as out, VideoWriter(out.temp, width, height, fps, **kw) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)


def read_video(path: str | os.PathLike[str]) -> tuple[np.ndarray, Fraction | None]:
    """Every frame of a video as ``[N, H, W, 3]`` uint8 RGB, and the declared frame rate."""
    with VideoReader(path) as reader:
        return np.stack(list(reader.frames())), reader.fps


class FrameReader:
    """The frames of a video file or an image folder in order, for batch work.

    Use :func:`open_frames`. A folder plays at :data:`FOLDER_FPS`; its images must share the
    first one's size unless a size is requested.

    Attributes:
        path: the file or folder.
        width, height: the size of the frames yielded.
        fps: the frame rate.
        count: the number of frames, or None where the container does not say.
    """

    def __init__(self, path: Path, size: tuple[int, int] | None, threads: int) -> None:
        self.path = path
        self._size = size
        self._threads = threads
        self._video: VideoReader | None = None
        self._files: list[Path] = []
        if path.is_dir():
            self._files = image_files(path)
            if not self._files:
                raise MediaError(f"Folder '{path}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
            first = read_image(self._files[0])
            self.height, self.width = first.shape[:2]
            self.fps = Fraction(FOLDER_FPS)
            self.count: int | None = len(self._files)
        else:
            self._video = VideoReader(path, threads=threads)
            self.width, self.height = self._video.width, self._video.height
            self.fps = self._video.fps or Fraction(FOLDER_FPS)
            self.count = self._video.count
        if size is not None:
            self.width, self.height = size

    def _read(self, file: Path) -> np.ndarray:
        image = read_image(file)
        if self._size is not None:
            return _resize(image, self._size)
        if image.shape[:2] != (self.height, self.width):
            raise MediaError(
                f"'{file}' is {image.shape[1]}x{image.shape[0]} but the first image is "
                f"{self.width}x{self.height}; bring all images to one size"
            )
        return image

    def frames(self, stop: threading.Event) -> Iterator[np.ndarray]:
        """Yields ``H x W x 3`` uint8 RGB frames until the end or until ``stop`` is set.

        Images are read on ``threads`` threads a few frames ahead.

        Raises:
            MediaError: a frame cannot be decoded.
        """
        if self._video is not None:
            yield from self._video.frames(self._size, stop)
            return
        if self._threads <= 0:
            for file in self._files:
                if stop.is_set():
                    return
                yield self._read(file)
            return
        window = 2 * self._threads
        with ThreadPoolExecutor(self._threads, thread_name_prefix="media-decode") as pool:
            pending: list[Future[np.ndarray]] = []
            files = iter(self._files)
            try:
                while True:
                    while len(pending) < window and (file := next(files, None)) is not None:
                        pending.append(pool.submit(self._read, file))
                    if not pending or stop.is_set():
                        return
                    yield pending.pop(0).result()
            finally:
                for future in pending:
                    future.cancel()

    def close(self) -> None:
        """Releases the file; safe to call twice."""
        if self._video is not None:
            self._video.close()


def open_frames(
    path: str | os.PathLike[str], size: tuple[int, int] | None = None, threads: int = 0
) -> FrameReader:
    """Opens a video file or an image folder for reading in order.

    Args:
        path: the file or folder.
        size: resize every frame to (width, height); None keeps the input's size.
        threads: decoding threads (0: FFmpeg chooses for video, images are read in turn).

    Raises:
        MediaError: the input does not exist, holds no images, or is not a readable video.
    """
    path = Path(path)
    if not path.exists():
        raise MediaError(f"'{path}' does not exist")
    return FrameReader(path, size, threads)
