"""The one media layer: pictures and video in and out, and files that appear whole or not at all.

Capture, recording, conversion, export, the weights cache and the command line all read and write
through here; nothing here knows about the network, Qt or the live pipeline.

- :mod:`app.media.formats`: file kinds and :class:`MediaError` (plain Python).
- :mod:`app.media.atomic`: :class:`AtomicPath` and :func:`atomic_write` (standard library only).
- :mod:`app.media.images`: reading, listing and writing pictures (OpenCV).
- :mod:`app.media.video`: decoding and encoding video, frame readers for batch work (PyAV).

The package itself imports only the first two, so the settings and the command line start fast.
"""

from app.media.atomic import AtomicPath, atomic_write
from app.media.formats import (
    FOLDER_FPS,
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    MediaError,
    UnreadableMedia,
    reason,
)

__all__ = [
    "FOLDER_FPS",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "AtomicPath",
    "MediaError",
    "UnreadableMedia",
    "atomic_write",
    "reason",
]
