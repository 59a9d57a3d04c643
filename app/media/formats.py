"""File kinds and the media layer's error; plain Python, cheap to import (settings use it)."""

from __future__ import annotations

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".gif", ".m4v")
FOLDER_FPS = 30  # the frame rate of a folder of images


class MediaError(ValueError):
    """A file cannot be read or written as a picture or a video; the message names the file."""


def reason(e: BaseException | None) -> str:
    """A short reason for an error, for a one-line message (``stopped`` when there is none)."""
    if e is None:
        return "stopped"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.rstrip(".")
    text = str(e).strip().splitlines()
    return text[0].rstrip(".") if text else type(e).__name__


class UnreadableMedia(MediaError):
    """A file that FFmpeg or OpenCV cannot open at all; :attr:`reason` says what they reported."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
