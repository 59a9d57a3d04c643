"""Frame sources (camera, video file, image folder, synthetic) and the capture thread."""
