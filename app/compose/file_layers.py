"""Background layers made from files: a still image, and a looping video decoded on a thread of
its own. Files are read once (images) or ahead of time (videos), so rendering on the hot path is
only tensor work or, for a new video frame, one upload.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
import torch

from app.compose.backgrounds import BackgroundError, BackgroundLayer
from app.media import MediaError
from app.media.images import read_image
from app.media.video import VideoReader

__all__ = ["ImageBackground", "VideoBackground", "cover_fit"]


def cover_fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scales an image to cover ``height x width`` and crops the centre.

    Args:
        image: ``h x w x C`` uint8.
        height: target height.
        width: target width.

    Returns:
        ``height x width x C`` uint8, contiguous.
    """
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return np.ascontiguousarray(image)
    scale = max(width / w, height / h)
    new_w = max(width, math.ceil(w * scale - 1e-6))
    new_h = max(height, math.ceil(h * scale - 1e-6))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top = (new_h - height) // 2
    left = (new_w - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def _upload(rgb: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``H x W x 3`` uint8 -> ``[1, 3, H, W]`` in 0..1 on device and dtype."""
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).to(device, non_blocking=False)
    return tensor.permute(2, 0, 1).unsqueeze(0).to(dtype).div_(255.0)


def _read_image(path: str) -> np.ndarray:
    """Reads an image file into ``H x W x 3`` RGB uint8, or raises :class:`BackgroundError`."""
    try:
        return read_image(path)
    except MediaError as exc:
        raise BackgroundError(f"Background image {exc}; pick a PNG or JPEG file.") from None


class ImageBackground(BackgroundLayer):
    """A still picture, cover-fitted to the output size once and kept on the device."""

    def __init__(self, path: str) -> None:
        """Loads the picture.

        Args:
            path: image file.

        Raises:
            BackgroundError: the file is missing or not a readable image.
        """
        self.path = str(path)
        self.image = _read_image(self.path)
        self._cache: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}

    def render(
        self, src: torch.Tensor, height: int, width: int, pha: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Returns the cover-fitted picture, prepared on first use of each size."""
        key = (height, width, src.device, src.dtype)
        tensor = self._cache.get(key)
        if tensor is None:
            if len(self._cache) >= 4:
                self._cache.clear()
            tensor = _upload(cover_fit(self.image, height, width), src.device, src.dtype)
            self._cache[key] = tensor
        return tensor

    def close(self) -> None:
        """Drops the prepared tensors."""
        self._cache.clear()


def _open_video(path: str) -> VideoReader:
    try:
        return VideoReader(path, threads=0)
    except MediaError as exc:
        raise BackgroundError(
            f"Background video {exc}; pick an MP4, MKV, WebM or GIF file."
        ) from None


class VideoBackground(BackgroundLayer):
    """A looping video, decoded on its own daemon thread at the file's frame rate.

    The thread keeps only the newest frame, already cover-fitted to the last requested size, so
    rendering costs at most one upload. The first frame is decoded before the constructor returns.
    """

    def __init__(self, path: str, *, first_frame_timeout: float = 5.0) -> None:
        """Opens the video and starts decoding.

        Args:
            path: video file (anything FFmpeg reads; GIF included).
            first_frame_timeout: seconds to wait for the first decoded frame.

        Raises:
            BackgroundError: the file is missing, unreadable or holds no decodable frame.
        """
        self.path = str(path)
        self._video = _open_video(self.path)
        fps = float(self._video.fps or 0.0)
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._first = threading.Event()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._size: tuple[int, int] | None = None
        self._error: str | None = None
        self.frames_decoded = 0
        self._uploaded: tuple[int, tuple[int, int], torch.device, torch.dtype] | None = None
        self._tensor: torch.Tensor | None = None
        self._thread = threading.Thread(target=self._run, name="video-background", daemon=True)
        self._thread.start()
        self._first.wait(first_frame_timeout)
        if self._frame is None:
            self.close()
            raise BackgroundError(
                f"Background video '{self.path}' has no frame that can be decoded; "
                "pick another file."
            )

    @property
    def alive(self) -> bool:
        """Whether the decoding thread is running."""
        return self._thread.is_alive()

    def _frames(self) -> Iterator[np.ndarray]:
        """Yields decoded RGB frames forever, starting over at the end of the file."""
        while not self._stop.is_set():
            produced = False
            try:
                for frame in self._video.frames():
                    produced = True
                    yield frame
                    if self._stop.is_set():
                        return
            except Exception as exc:  # a damaged packet ends this pass; looping starts over
                self._error = str(exc)
            if not produced or self._stop.is_set():
                return
            self._video.rewind()

    def _run(self) -> None:
        period = 1.0 / self.fps
        due = time.perf_counter()
        try:
            for rgb in self._frames():
                with self._lock:
                    size = self._size
                if size is not None:
                    rgb = cover_fit(rgb, *size)
                with self._lock:
                    self._frame = rgb
                    self._seq += 1
                self.frames_decoded += 1
                self._first.set()
                due += period
                delay = due - time.perf_counter()
                if delay < -period:  # fell behind (slow machine): do not try to catch up
                    due = time.perf_counter()
                elif delay > 0 and self._stop.wait(delay):
                    break
        except Exception as exc:  # the file changed under us: keep showing the last frame
            self._error = str(exc)
        finally:
            self._first.set()
            with contextlib.suppress(Exception):
                self._video.close()

    def render(
        self, src: torch.Tensor, height: int, width: int, pha: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Returns the newest decoded frame (uploaded once per new frame)."""
        with self._lock:
            self._size = (height, width)
            frame, seq = self._frame, self._seq
        key = (seq, (height, width), src.device, src.dtype)
        if self._tensor is not None and self._uploaded == key:
            return self._tensor
        assert frame is not None
        if frame.shape[:2] != (height, width):  # size just changed; the thread catches up
            frame = cover_fit(frame, height, width)
        self._tensor = _upload(frame, src.device, src.dtype)
        self._uploaded = key
        return self._tensor

    def close(self) -> None:
        """Stops the decoding thread and closes the file."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._tensor = None
