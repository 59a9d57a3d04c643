"""mattecam: real-time webcam background replacement with Robust Video Matting."""

__version__ = "0.1.0"
