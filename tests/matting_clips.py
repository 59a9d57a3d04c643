"""Small generated clips for the conversion, export and ONNX Runtime tests.

A cartoon person (head, hair, face, neck, shoulders) walks slowly across a room, so every frame
differs and the network finds a person to matte.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def _person(img: np.ndarray, cx: int, s: float) -> None:
    """Draws a cartoon head and shoulders centred at column ``cx`` with scale ``s`` in place."""
    h = img.shape[0]

    def at(fy: float) -> int:
        return int(h * fy)

    def n(x: float) -> int:
        return max(1, int(x * s))

    cv2.ellipse(img, (cx, at(1.05)), (n(95), n(70)), 0, 0, 360, (40, 60, 120), -1)
    cv2.rectangle(img, (cx - n(14), at(0.55)), (cx + n(14), at(0.75)), (200, 150, 120), -1)
    cv2.ellipse(img, (cx, at(0.42)), (n(30), n(40)), 0, 0, 360, (215, 165, 135), -1)
    cv2.ellipse(img, (cx, at(0.36)), (n(33), n(32)), 0, 180, 360, (50, 35, 25), -1)
    for dx in (-11, 11):
        cv2.ellipse(img, (cx + int(dx * s), at(0.43)), (n(5), n(3)), 0, 0, 360, (40, 30, 30), -1)
    cv2.ellipse(img, (cx, at(0.53)), (n(9), n(3)), 0, 0, 360, (150, 60, 60), -1)
    cv2.line(img, (cx, at(0.45)), (cx, at(0.49)), (170, 120, 100), n(2))


def make_frames(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Returns ``[frames, height, width, 3]`` uint8 RGB frames of a person crossing a room.

    The person covers roughly a quarter of the frame; the network's alpha is near 1 there and near
    0 on the backdrop (a gradient wall, a door and a picture, with a little sensor noise).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xx / width, yy / height
    wall = np.stack([0.75 - 0.2 * v + 0.05 * np.sin(9 * u), 0.72 - 0.15 * u, 0.65 + 0.1 * v], -1)
    room = (wall * 255).astype(np.uint8)
    cv2.rectangle(
        room,
        (int(0.05 * width), int(0.1 * height)),
        (int(0.22 * width), int(0.9 * height)),
        (120, 90, 60),
        -1,
    )
    cv2.rectangle(
        room,
        (int(0.78 * width), int(0.2 * height)),
        (int(0.97 * width), int(0.35 * height)),
        (60, 110, 70),
        -1,
    )
    out = np.empty((frames, height, width, 3), np.uint8)
    for i in range(frames):
        t = i / max(frames - 1, 1)
        img = room.copy()
        _person(img, int((0.42 + 0.16 * t) * width), height / 192)
        img = cv2.GaussianBlur(img, (3, 3), 0.8)
        noisy = img + rng.normal(0, 3, img.shape)
        out[i] = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


def write_video(path: Path, frames: np.ndarray, fps: int = 24) -> Path:
    """Writes ``frames`` as a high-quality H.264 file (near-lossless) and returns ``path``."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": "4", "preset": "ultrafast"}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def read_video(path: Path) -> tuple[np.ndarray, Fraction]:
    """Returns the frames of a video file as ``[N, H, W, 3]`` uint8 RGB and its frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return np.stack(frames), rate
