"""Chooses a frame source from a ``--source`` value: the registry of source kinds.

Built-in kinds: ``camera`` (``0``, ``/dev/video0``), ``synthetic`` (``synthetic``,
``synthetic:640x480@30``), ``folder`` (a directory of images), ``video`` (a file PyAV opens) and
``image`` (one still image, repeated). Any registered kind can also be named explicitly as
``KIND:TARGET`` (for example ``video:clip.dat``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from app.capture.base import (
    FrameSource,
    Requested,
    SourceError,
    check_fps,
    check_pace,
    check_resolution,
)
from app.media import IMAGE_SUFFIXES

S = TypeVar("S", bound=type[FrameSource])

_REGISTRY: dict[str, type[FrameSource]] = {}

_KIND = re.compile(r"[a-z][a-z0-9_-]+")


def register_source(kind: str) -> Callable[[S], S]:
    """Class decorator that makes a :class:`FrameSource` subclass available as ``kind``.

    The class builds itself from a spec through :meth:`FrameSource.from_spec`.
    """
    if not _KIND.fullmatch(kind):
        raise ValueError(f"Source kind {kind!r} must be a lower-case word of two or more letters.")

    def decorate(cls: S) -> S:
        _REGISTRY[kind] = cls
        return cls

    return decorate


def registered_kinds() -> list[str]:
    """The kinds :func:`make_source` knows, sorted."""
    return sorted(_REGISTRY)


def resolve_spec(spec: str) -> tuple[str, str]:
    """Decides which kind of source a ``--source`` value names.

    Returns:
        (kind, target): the registered kind and the part that names the source within it.

    Raises:
        SourceError: the value is empty, or names a path that does not exist.
    """
    text = str(spec).strip()
    if not text:
        raise SourceError("No source given: use a camera index (0), a video file or a folder.")
    if text.isdigit() or text.startswith("/dev/video"):
        return "camera", text
    head, colon, rest = text.partition(":")
    path = Path(text).expanduser()
    if head.lower() in _REGISTRY and (colon or not path.exists()):
        return head.lower(), rest.strip()
    if not path.exists():
        raise SourceError(
            f"Source '{text}' does not exist: give a camera index (0), a device (/dev/video0), "
            "a video file, an image folder or 'synthetic'."
        )
    if path.is_dir():
        return "folder", str(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return "image", str(path)
    return "video", str(path)


def make_source(
    spec: str,
    *,
    resolution: tuple[int, int] | None = None,
    fps: float | None = None,
    loop: bool = False,
    pace: str = "realtime",
) -> FrameSource:
    """Builds the source a ``--source`` value names, without opening it (``with`` opens it).

    Args:
        spec: camera index or device, ``synthetic[:WxH@FPS]``, folder, video or image file.
        resolution: requested (width, height); files are resized to it.
        fps: requested frame rate.
        loop: start a file over at its end.
        pace: ``realtime`` (files behave like a camera) or ``none`` (every frame).

    Raises:
        SourceError: the value names nothing usable or a request is out of range.
    """
    request = Requested(check_resolution(resolution), check_fps(fps), loop, check_pace(pace))
    kind, target = resolve_spec(spec)
    cls = _REGISTRY.get(kind)
    if cls is None:
        raise SourceError(f"Sources of kind '{kind}' are not available in this installation.")
    return cls.from_spec(target, request)


def open_source(spec: str, **requests: Any) -> FrameSource:
    """Builds and opens the source a ``--source`` value names; see :func:`make_source`.

    Raises:
        SourceError: the source does not exist or cannot be opened; the message says what to do.
    """
    return make_source(spec, **requests).open()
