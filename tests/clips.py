"""Generated video clips with real structure (texture, soft edges, motion) for network tests."""

from __future__ import annotations

import numpy as np


def make_clip(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Returns ``[frames, height, width, 3]`` uint8 RGB: a textured backdrop and moving shapes.

    A head-and-shoulders silhouette drifts across a smooth gradient with stripes, while two soft
    discs orbit; every frame differs, and no region is flat or pure noise.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xx / width, yy / height
    phase = rng.uniform(0, 2 * np.pi, size=6)
    back = np.stack(
        [
            0.5 + 0.3 * np.sin(6 * u + phase[0]) * np.cos(4 * v + phase[1]),
            0.4 + 0.25 * np.sin(9 * v + 3 * u + phase[2]),
            0.6 + 0.2 * np.cos(5 * u - 7 * v + phase[3]),
        ],
        axis=-1,
    )
    back += 0.08 * np.sin(40 * u + 25 * v)[..., None]
    out = np.empty((frames, height, width, 3), np.uint8)
    for i in range(frames):
        t = i / max(frames - 1, 1)
        img = back.copy()
        cx = 0.35 + 0.3 * t
        head = ((u - cx) / 0.11) ** 2 + ((v - 0.38) / 0.16) ** 2
        body = ((u - cx) / 0.28) ** 2 + ((v - 1.0) / 0.42) ** 2
        person = np.clip(1.5 - np.minimum(head, body) * 1.5, 0, 1)[..., None]
        skin = np.array([0.85, 0.62, 0.5], np.float32)
        shirt = np.array([0.15, 0.3, 0.75], np.float32) + 0.05 * np.sin(30 * v)[..., None]
        colour = np.where((v < 0.55)[..., None], skin, shirt)
        img = img * (1 - person) + colour * person
        for k, col in enumerate(([1.0, 0.85, 0.1], [0.1, 0.9, 0.4])):
            ang = 2 * np.pi * t + k * np.pi + phase[4 + k]
            d = ((u - 0.5 - 0.3 * np.cos(ang)) ** 2 + (v - 0.5 - 0.3 * np.sin(ang)) ** 2) / 0.006
            disc = np.clip(1.2 - d, 0, 1)[..., None]
            img = img * (1 - disc) + np.array(col, np.float32) * disc
        out[i] = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def to_tensor_batch(frame: np.ndarray) -> np.ndarray:
    """``HxWx3`` uint8 -> ``[1, 3, H, W]`` float32 in 0..1."""
    return np.ascontiguousarray(frame.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
