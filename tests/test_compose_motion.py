"""Carrying a matte along the motion: a textured disc moves in front of a wall."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from app.compose.host import HostMatte
from app.compose.motion import MotionCarrier, thumbnail

HEIGHT, WIDTH = 360, 480
RADIUS = 70


def _texture(seed: int, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (height // 8, width // 8, 3), np.uint8)
    return cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)


def _wall(height: int, width: int) -> np.ndarray:
    """A plain wall lit from one side (a gradient, no texture)."""
    x = np.linspace(60, 200, width, dtype=np.float32)
    rgb = np.stack([x, 0.8 * x, 255 - x], axis=-1)
    return np.broadcast_to(rgb[None], (height, width, 3)).astype(np.uint8)


def _scene(cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """The frame and its exact alpha with the disc centred at (cx, cy), sub-pixel."""
    room = _wall(HEIGHT, WIDTH)
    person = _texture(2, 2 * RADIUS + 8, 2 * RADIUS + 8)
    shift = np.float32([[1, 0, cx - RADIUS - 4], [0, 1, cy - RADIUS - 4]])
    moved = cv2.warpAffine(person, shift, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    dist = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
    alpha = np.clip(RADIUS + 0.5 - dist, 0, 1).astype(np.float32)
    frame = (moved * alpha[..., None] + room * (1 - alpha[..., None])).round().astype(np.uint8)
    return frame, alpha


def _matte(frame: np.ndarray, alpha: np.ndarray) -> HostMatte:
    fgr = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
    return HostMatte(frame, fgr, torch.from_numpy(alpha)[None, None])


def _centre(alpha: np.ndarray) -> tuple[float, float]:
    m = cv2.moments((alpha >= 0.5).astype(np.uint8), binaryImage=True)
    return m["m10"] / m["m00"], m["m01"] / m["m00"]


@pytest.mark.parametrize("motion", [(9.0, 4.0), (-6.5, 7.5), (0.0, 0.0)])
def test_carried_matte_lands_on_the_moved_disc(motion):
    start = (200.0, 170.0)
    frame0, alpha0 = _scene(*start)
    end = (start[0] + motion[0], start[1] + motion[1])
    frame1, alpha1 = _scene(*end)
    carrier = MotionCarrier()
    flow = carrier.flow(thumbnail(frame1), thumbnail(frame0))
    carried = carrier.carry(_matte(frame0, alpha0), flow)
    cx, cy = _centre(carried)
    assert abs(cx - end[0]) <= 1.0 and abs(cy - end[1]) <= 1.0
    # The pasted (not carried) matte is off by the whole motion; the carried one by far less.
    assert np.abs(carried - alpha1).mean() <= 0.25 * max(np.abs(alpha0 - alpha1).mean(), 4e-3)


def test_between_blends_the_mattes_on_either_side():
    frames = [_scene(180.0 + 8 * i, 170.0) for i in range(3)]
    carrier = MotionCarrier()
    before = (_matte(*frames[0]), thumbnail(frames[0][0]))
    after = (_matte(*frames[2]), thumbnail(frames[2][0]))
    middle = carrier.between(thumbnail(frames[1][0]), before, after, 0.5)
    cx, cy = _centre(middle.pha)
    assert abs(cx - 188.0) <= 1.0 and abs(cy - 170.0) <= 1.0
    assert middle.alpha.dtype == np.uint8 and middle.offset.dtype == np.int16
    only_after = carrier.between(thumbnail(frames[1][0]), None, after, 0.5)
    assert abs(_centre(only_after.pha)[0] - 188.0) <= 1.0
    with pytest.raises(ValueError):
        carrier.between(thumbnail(frames[1][0]), None, None, 0.5)
    blended = carrier.between(None, before, after, 0.25)  # no motion followed: a plain blend
    expected = 0.75 * frames[0][1] + 0.25 * frames[2][1]
    assert np.abs(blended.pha - expected).max() < 1e-5


def test_host_matte_from_planes_checks_its_planes():
    pha = np.zeros((4, 6), np.float32)
    with pytest.raises(ValueError):
        HostMatte.from_planes(pha, np.zeros((4, 6, 3), np.float32))
    matte = HostMatte.from_planes(pha + 1, np.zeros((4, 6, 3), np.int16))
    assert (matte.alpha == 255).all() and (matte.inverse == 0).all()
