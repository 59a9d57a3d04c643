"""Frame sources (camera, video file, image folder, synthetic) and the capture thread.

Every source delivers ``H x W x 3`` uint8 RGB numpy arrays. :func:`open_source` picks one from a
``--source`` value (importing the package registers the built-in kinds); :class:`CaptureThread`
reads a source into a :class:`app.slot.LatestSlot`.
"""

from app.capture.base import (
    Frame,
    FrameSource,
    Requested,
    SourceError,
    SourceLost,
    check_fps,
    check_pace,
    check_resolution,
)
from app.capture.camera import CameraInfo, CameraSource, list_cameras
from app.capture.files import ImageFolderSource, StillImageSource, VideoFileSource, read_image_rgb
from app.capture.kinds import (
    make_source,
    open_source,
    register_source,
    registered_kinds,
    resolve_spec,
)
from app.capture.synthetic import SyntheticSource
from app.capture.thread import STATES, CaptureThread

__all__ = [
    "STATES",
    "CameraInfo",
    "CameraSource",
    "CaptureThread",
    "Frame",
    "FrameSource",
    "ImageFolderSource",
    "Requested",
    "SourceError",
    "SourceLost",
    "StillImageSource",
    "SyntheticSource",
    "VideoFileSource",
    "check_fps",
    "check_pace",
    "check_resolution",
    "list_cameras",
    "make_source",
    "open_source",
    "read_image_rgb",
    "register_source",
    "registered_kinds",
    "resolve_spec",
]
