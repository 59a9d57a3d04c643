"""Outputs of video conversion, written under a temporary name that only a complete conversion
renames into place, and the checks that run before any work starts. Inputs are read with
:func:`app.media.open_frames`.
"""

from __future__ import annotations

import re
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from app.media import AtomicPath, MediaError, reason
from app.media.images import write_image
from app.media.video import FrameReader, VideoWriter, open_frames

VIDEO_CONTAINERS = (".mp4", ".mkv", ".mov", ".m4v", ".avi")
_FRAME_NAME = re.compile(r"\d{4,}\.png")


class ConvertError(ValueError):
    """A conversion request cannot be carried out; the message says what is wrong and what to do."""


def open_input(path: Path, resize: tuple[int, int] | None, threads: int) -> FrameReader:
    """Opens the video file or image folder to convert.

    Raises:
        ConvertError: the input does not exist, holds no images or is not a readable video.
    """
    if not path.exists():
        raise ConvertError(f"Input {path} does not exist; give a video file or a folder of images.")
    try:
        return open_frames(path, resize, threads)
    except MediaError as e:
        raise ConvertError(
            f"Cannot read the input: {e}; give a video file or a folder of images."
        ) from None


class Output:
    """One output written under a temporary name; ``commit`` renames it into place."""

    def __init__(self, dest: Path, *, folder: bool = False):
        self.dest = dest
        self._path = AtomicPath(dest, folder=folder)

    @property
    def committed(self) -> bool:
        """Whether the output is in place."""
        return self._path.committed

    def write(self, frames: np.ndarray) -> None:
        """Appends ``N x H x W x C`` uint8 frames."""
        raise NotImplementedError

    def _finish(self) -> None:
        """Completes the temporary file before it is renamed."""

    def commit(self) -> None:
        """Finishes the output and renames it into place."""
        self._finish()
        self._path.commit()

    def abort(self) -> None:
        """Deletes whatever was written; safe to call twice."""
        self._path.discard()


class VideoOutput(Output):
    """H.264 at a fixed bit rate; frames arrive as ``[T, H, W, 3]`` uint8 RGB."""

    def __init__(self, dest: Path, width: int, height: int, fps: Fraction, mbps: float):
        super().__init__(dest)
        try:
            # x264's "fast" preset: a third less encoding time than its default ("medium"), which
            # the network gets instead, at the same bit rate within 0.15 dB PSNR on webcam footage.
            self._writer = VideoWriter(
                self._path.temp, width, height, fps, mbps=mbps, preset="fast"
            )
        except (av.FFmpegError, OSError, ValueError) as e:
            self._path.discard()
            raise ConvertError(f"Cannot write the video {dest} ({reason(e)}).") from None
        except BaseException:
            self._path.discard()
            raise

    def write(self, frames: np.ndarray) -> None:
        for rgb in frames:
            self._writer.write(rgb)

    def _finish(self) -> None:
        self._writer.close()

    def abort(self) -> None:
        self._writer.abandon()
        super().abort()


class PngOutput(Output):
    """A folder of ``0000.png``...; RGB, RGBA or grayscale by the frames' channel count."""

    def __init__(self, dest: Path):
        super().__init__(dest, folder=True)
        self._count = 0

    def write(self, frames: np.ndarray) -> None:
        for image in frames:
            write_image(self._path.temp / f"{self._count:04d}.png", image)
            self._count += 1


def check_output(path: Path, output_type: str) -> None:
    """Raises ConvertError unless ``path`` can receive an output of ``output_type``."""
    parent = path.parent
    if not parent.is_dir():
        raise ConvertError(f"Cannot write {path}: the folder {parent} does not exist.")
    try:  # a real file tells more than permission bits (root, read-only file systems)
        with tempfile.TemporaryFile(dir=parent, prefix=".convert-probe-"):
            pass
    except OSError as e:
        raise ConvertError(
            f"Cannot write {path}: the folder {parent} is not writable ({reason(e)})."
        ) from None
    if output_type == "video":
        if path.suffix.lower() not in VIDEO_CONTAINERS:
            raise ConvertError(
                f"Cannot write the video {path}: give a file name ending in "
                f"{', '.join(VIDEO_CONTAINERS)}."
            )
        if path.is_dir():
            raise ConvertError(f"Cannot write the video {path}: a folder of that name exists.")
    elif path.exists():
        if not path.is_dir():
            raise ConvertError(f"Cannot write PNG frames to {path}: it is a file, not a folder.")
        if any(not _FRAME_NAME.fullmatch(p.name) for p in path.iterdir()):
            raise ConvertError(
                f"Cannot write PNG frames to {path}: the folder holds other files; give a new or "
                "empty folder."
            )
