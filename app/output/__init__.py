"""Frame sinks: the virtual camera and the recorder."""

from app.output.base import OutputError, Sink
from app.output.recorder import Recorder
from app.output.virtualcam import VirtualCameraSink, VirtualCameraUnavailable, guidance

__all__ = [
    "OutputError",
    "Recorder",
    "Sink",
    "VirtualCameraSink",
    "VirtualCameraUnavailable",
    "guidance",
]
