"""Carrying a matte along the motion: a textured disc moves in front of a wall."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from app.compose.host import HostMatte, blend, fitted
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
    carried = carrier.carry(_matte(frame0, alpha0), flow).alpha_u8() / 255.0
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
    cx, cy = _centre(middle.alpha_u8())
    assert abs(cx - 188.0) <= 1.0 and abs(cy - 170.0) <= 1.0
    assert middle.alpha.dtype == np.uint8 and middle.offset.dtype == np.float32
    only_after = carrier.between(thumbnail(frames[1][0]), None, after, 0.5)
    assert abs(_centre(only_after.alpha_u8())[0] - 188.0) <= 1.0
    with pytest.raises(ValueError):
        carrier.between(thumbnail(frames[1][0]), None, None, 0.5)
    blended = carrier.between(None, before, after, 0.25)  # no motion followed: a plain blend
    expected = 0.75 * frames[0][1] + 0.25 * frames[2][1]
    assert np.abs(blended.pha - expected).max() < 1e-5


def test_frames_carried_one_after_another_follow_the_motion_onward():
    path = [(150.0 + 9 * i, 130.0 + 0.6 * i * i) for i in range(9)]  # speeding up, bending
    scenes = [_scene(*p) for p in path]
    carrier = MotionCarrier()
    first = (_matte(*scenes[0]), thumbnail(scenes[0][0]))
    for i, (frame, _) in enumerate(scenes[1:], start=1):
        target = thumbnail(frame)
        carried = carrier.between(target, first, None, 0.0)
        cx, cy = _centre(carried.alpha_u8())
        assert abs(cx - path[i][0]) <= 1.0 and abs(cy - path[i][1]) <= 1.0, i
    # Through the frames between, the flow to the matte is the sum of the steps, not a new guess.
    direct = carrier.flow(target, first[1])
    onward = carrier._onward(target, first[1])
    assert onward is not direct and np.abs(onward - direct).max() > 0.05
    # Another matte starts afresh from its own frame.
    other = (_matte(*scenes[4]), thumbnail(scenes[4][0]))
    assert np.array_equal(carrier._onward(target, other[1]), carrier.flow(target, other[1]))


def test_a_frame_near_one_matte_is_given_that_one_alone():
    frames = [_scene(180.0 + 3 * i, 170.0) for i in range(7)]
    carrier = MotionCarrier()
    before = (_matte(*frames[0]), thumbnail(frames[0][0]))
    after = (_matte(*frames[6]), thumbnail(frames[6][0]))
    for i, alone in ((1, before), (5, after)):
        target = thumbnail(frames[i][0])
        both = carrier.between(target, before, after, i / 6)
        if i == 1:
            one = carrier.between(target, alone, None, 0.0)
        else:
            one = carrier.between(target, None, alone, 1.0)
        assert np.array_equal(both.pha, one.pha) and both.box == one.box
    target = thumbnail(frames[3][0])
    mixed = carrier.between(target, before, after, 0.5)
    assert not np.array_equal(mixed.pha, carrier.between(target, before, None, 0.0).pha)


def test_host_matte_from_planes_checks_its_planes():
    pha = np.zeros((4, 6), np.float32)
    with pytest.raises(ValueError):
        HostMatte.from_planes(pha, np.zeros((4, 6, 3), np.uint8))
    with pytest.raises(ValueError):
        HostMatte.from_planes(pha, np.zeros((4, 6, 4), np.float32))
    matte = HostMatte.from_planes(pha + 1, np.zeros((4, 6, 3), np.int16))
    assert (matte.alpha == 255).all() and (matte.inverse == 0).all()


def test_carried_matte_moves_its_foreground_offset_with_the_edge():
    start, end = (200.0, 170.0), (209.0, 174.0)
    frame0, alpha0 = _scene(*start)
    frame1, _ = _scene(*end)
    # The network's foreground differs from the frame where the disc is: an offset on the disc.
    fgr = torch.from_numpy(frame0).permute(2, 0, 1)[None].float() / 255
    fgr = (fgr + 0.2 * torch.from_numpy(alpha0)[None, None]).clamp(0, 1)
    matte = HostMatte(frame0, fgr, torch.from_numpy(alpha0)[None, None])
    carrier = MotionCarrier()
    carried = carrier.carry(matte, carrier.flow(thumbnail(frame1), thumbnail(frame0)))
    cx, cy = _centre(np.abs(carried.offset).max(axis=-1) / 51.0)  # 0.2 of 255 levels
    top, _, left, _ = carried.box  # the planes cover the part the disc can have reached
    assert abs(left + cx - end[0]) <= 1.0 and abs(top + cy - end[1]) <= 1.0
    composite = blend(frame1, carried, np.zeros_like(frame1))
    assert composite.dtype == np.uint8 and composite.shape == frame1.shape


def test_host_matte_stack_round_trip():
    frame, alpha = _scene(200.0, 170.0)
    matte = _matte(frame, alpha)
    stack, box = matte.stack()
    assert box == (99, 242, 129, 272)  # the disc's extent and a pixel around it
    again = HostMatte.from_stack(stack, matte.size, box)
    top, bottom, left, right = box
    assert np.array_equal(again.pha, matte.pha[top:bottom, left:right])
    assert np.array_equal(again.offset, matte.offset[top:bottom, left:right].astype(np.float32))
    assert np.array_equal(again.alpha_u8(), matte.alpha_u8())
    assert matte.stack() is matte.stack()  # made once per matte


@pytest.mark.parametrize(("rgba", "mirror"), [(False, False), (False, True), (True, False)])
def test_matte_in_a_box_composites_as_over_the_whole_frame(rgba, mirror):
    frame, alpha = _scene(200.0, 170.0)
    rng = np.random.default_rng(3)
    offset = (rng.normal(0, 20, (HEIGHT, WIDTH, 3)) * (alpha > 0)[..., None]).astype(np.float32)
    box = (90, 260, 120, 290)  # holds the whole disc
    top, bottom, left, right = box
    whole = HostMatte.from_planes(alpha, offset)
    boxed = HostMatte.from_planes(
        alpha[top:bottom, left:right].copy(),
        offset[top:bottom, left:right].copy(),
        (HEIGHT, WIDTH),
        box,
    )
    assert not boxed.whole and whole.whole
    background = np.full_like(frame, (30, 200, 90))
    a = blend(frame, whole, background, rgba=rgba, mirror=mirror)
    b = blend(frame, boxed, background, rgba=rgba, mirror=mirror)
    if rgba:  # outside the box the colour under alpha 0 is the frame's, without the offset
        assert np.array_equal(a[..., 3], b[..., 3])
        assert np.array_equal(a[top:bottom, left:right], b[top:bottom, left:right])
    else:
        assert np.array_equal(a, b)
    assert np.array_equal(whole.alpha_u8(mirror), boxed.alpha_u8(mirror))
    assert boxed.extent() == whole.extent() == (100, 241, 130, 271)
    with pytest.raises(ValueError):
        HostMatte.from_planes(alpha[:10, :10].copy(), offset[:10, :10].copy(), (HEIGHT, WIDTH), box)


@pytest.mark.parametrize(
    ("start", "end"),
    [((200.0, 170.0), (214.0, 161.0)), ((200.0, HEIGHT - 20.0), (205.0, HEIGHT - 32.0))],
    ids=["inside", "cut by the frame's edge"],
)
def test_carrying_within_the_reach_loses_nothing(start, end):
    frame0, alpha0 = _scene(*start)
    frame1, _ = _scene(*end)
    matte = _matte(frame0, alpha0)
    carrier = MotionCarrier()
    flow = carrier.flow(thumbnail(frame1), thumbnail(frame0))
    carried = carrier.carry(matte, flow)
    assert not carried.whole
    everywhere = cv2.remap(
        matte.pha,
        carrier._map(flow, matte.size),
        None,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    assert np.abs(carried.alpha_u8().astype(int) - np.rint(everywhere * 255)).max() <= 1
    empty = HostMatte.from_planes(
        np.zeros((HEIGHT, WIDTH), np.float32), np.zeros((HEIGHT, WIDTH, 3), np.int16)
    )
    nobody = carrier.carry(empty, flow)
    assert nobody.box == (0, 8, 0, 8) and not nobody.alpha_u8().any()
    background = np.zeros_like(frame1)
    assert np.array_equal(blend(frame1, nobody, background), background)


@pytest.mark.parametrize(
    ("box", "fits"),
    [
        ((0, 0, 0, 0), (0, 8, 0, 8)),
        ((10, 11, 20, 21), (10, 18, 20, 28)),
        ((HEIGHT - 2, HEIGHT + 3, WIDTH - 1, WIDTH), (HEIGHT - 8, HEIGHT, WIDTH - 8, WIDTH)),
        ((-5, 40, -3, 50), (0, 40, 0, 50)),
    ],
)
def test_boxes_fit_the_frame_and_hold_a_few_pixels(box, fits):
    assert fitted(box, (HEIGHT, WIDTH)) == fits


def test_a_sliver_of_a_person_in_a_corner_composites():
    # Four pixels of alpha in the corner: the planes stay at least 8 x 8 (OpenCV takes a plane
    # of one column and up to four rows for a scalar).
    alpha = np.zeros((HEIGHT, WIDTH), np.float32)
    alpha[HEIGHT - 4 :, WIDTH - 4 :] = 1.0
    frame = np.full((HEIGHT, WIDTH, 3), 200, np.uint8)
    matte = HostMatte.from_planes(alpha, np.zeros((HEIGHT, WIDTH, 3), np.int16))
    carrier = MotionCarrier()
    thumb = thumbnail(frame)
    carried = carrier.between(thumb, (matte, thumb), (matte, thumb), 0.5)
    out = blend(frame, carried, np.zeros_like(frame))
    assert carried.box == (HEIGHT - 8, HEIGHT, WIDTH - 8, WIDTH)
    assert (out[HEIGHT - 3 : HEIGHT - 1, WIDTH - 3 : WIDTH - 1] == 200).all()
    assert not out[: HEIGHT - 5].any() and not out[:, : WIDTH - 5].any()


def _coefficients(
    a: list[float], b: np.ndarray | list[float], size: tuple[int, int]
) -> torch.Tensor:
    """``[1, 8, h, w]`` guided-filter coefficients: ``A`` per channel, ``b`` per channel (a
    constant or an ``h x w x 4`` map), on 0..1 images."""
    height, width = size
    out = np.empty((height, width, 8), np.float32)
    out[..., :4] = a
    out[..., 4:] = b
    return torch.from_numpy(out).permute(2, 0, 1)[None]


@pytest.mark.parametrize("motion", [(9.0, 4.0), (-6.5, 7.5)])
def test_carried_coefficients_land_on_the_moved_disc(motion):
    start = (200.0, 170.0)
    frame0, alpha0 = _scene(*start)
    end = (start[0] + motion[0], start[1] + motion[1])
    frame1, alpha1 = _scene(*end)
    low = (HEIGHT // 3, WIDTH // 3)
    # The foreground is the frame (A 1, b 0); the alpha is b, the disc's at a third of the size.
    b = np.zeros((*low, 4), np.float32)
    b[..., 3] = cv2.resize(alpha0, low[::-1], interpolation=cv2.INTER_AREA)
    coeffs = _coefficients([1.0, 1.0, 1.0, 0.0], b, low)
    matte = HostMatte(
        frame0,
        torch.from_numpy(frame0).permute(2, 0, 1)[None] / 255.0,
        torch.from_numpy(alpha0)[None, None],
        coeffs,
    )
    assert [x.shape for x in matte.coeffs] == [(*low, 4)] * 2
    carrier = MotionCarrier()
    carried = carrier.between(thumbnail(frame1), (matte, thumbnail(frame0)), None, 0.0, frame1)
    cx, cy = _centre(carried.alpha_u8())
    assert abs(cx - end[0]) <= 1.0 and abs(cy - end[1]) <= 1.0
    assert np.abs(carried.offset).max() < 0.01  # fgr = src: no offset
    # Without the frame to apply them to, the planes are carried instead, to the same place.
    planes = carrier.between(thumbnail(frame1), (matte, thumbnail(frame0)), None, 0.0)
    assert abs(_centre(planes.alpha_u8())[0] - end[0]) <= 1.0
    assert (
        np.abs(carried.alpha_u8() / 255.0 - alpha1).mean() < 0.25 * np.abs(alpha0 - alpha1).mean()
    )


def test_guided_matte_takes_its_edge_from_the_frame():
    # A grey disc on a darker wall: alpha = (grey - dark) / (light - dark), the same everywhere.
    dark, light = 40.0, 200.0
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    alpha = np.clip(RADIUS + 0.5 - np.hypot(xs - 231.5, ys - 180.25), 0, 1)
    frame = (
        np.repeat((dark + (light - dark) * alpha)[..., None], 3, axis=2).round().astype(np.uint8)
    )
    scale = 255.0 / (light - dark)
    coeffs = _coefficients(
        [1.0, 1.0, 1.0, scale], [0.0, 0.0, 0.0, -dark / (light - dark)], (12, 16)
    )
    empty = torch.zeros(1, 1, HEIGHT, WIDTH)
    held = HostMatte(frame, torch.zeros(1, 3, HEIGHT, WIDTH), empty, coeffs)
    matte = HostMatte.guided(frame, held.coeffs)
    assert np.abs(matte.pha - alpha).max() < 1.0 / (light - dark)  # one grey level
    assert np.abs(matte.offset).max() < 0.01


def test_guided_matte_composites_its_own_foreground_and_others_through_the_offset():
    frame = _texture(4, HEIGHT, WIDTH)
    other = _texture(5, HEIGHT, WIDTH)
    # Foreground 1.1 src + 0.1 (saturating above 255 on the bright pixels), alpha 0.6 everywhere.
    coeffs = _coefficients([1.1, 1.1, 1.1, 0.0], [0.1, 0.1, 0.1, 0.6], (12, 16))
    held = HostMatte(
        frame, torch.zeros(1, 3, HEIGHT, WIDTH), torch.zeros(1, 1, HEIGHT, WIDTH), coeffs
    )
    top, bottom, left, right = box = (40, 300, 100, 420)
    matte = HostMatte.guided(frame, held.coeffs, box)
    assert matte.alpha.dtype == np.uint8 and np.all(matte.alpha == 153)
    fg = np.clip(1.1 * frame.astype(np.float32) + 25.5, 0, 255)[top:bottom, left:right]
    assert fg.max() == 255  # the saturated pixels are part of the check
    background = np.full_like(frame, 30)
    for image, expected_fg in ((frame, fg), (other, None)):
        if expected_fg is None:  # another frame: its own pixels plus the guided frame's offset
            offset = fg.round() - frame[top:bottom, left:right]
            expected_fg = np.clip(other[top:bottom, left:right] + offset, 0, 255)
        out = blend(image, matte, background).astype(np.float32)
        inside = 0.6 * expected_fg + 0.4 * 30
        assert np.abs(out[top:bottom, left:right] - inside).max() <= 1.0
        out[top:bottom, left:right] = 30
        assert np.all(out == 30)


def test_flow_is_estimated_only_where_the_person_can_be():
    start, end = (200.0, 170.0), (207.0, 175.0)
    frame0, alpha0 = _scene(*start)
    frame1, _ = _scene(*end)
    matte = _matte(frame0, alpha0)
    target, source = thumbnail(frame1), thumbnail(frame0)
    carrier = MotionCarrier()
    region = carrier._region([matte], target.shape)
    # The disc covers columns 130-270 and rows 100-240 of the 480x360 frame: 65-135.5 and
    # 50-120.5 of the 240x180 thumbnail, widened by 0.15 of its width (36 px) and snapped
    # outwards to 8 px.
    assert region == (8, 160, 24, 176)
    flow = carrier.flow(target, source, region)
    top, bottom, left, right = region
    outside = np.ones(target.shape, bool)
    outside[top:bottom, left:right] = False
    assert not flow[outside].any()
    inside = cv2.resize(alpha0, target.shape[::-1], interpolation=cv2.INTER_AREA) > 0.99
    half = np.float32([start[0] - end[0], start[1] - end[1]]) / 2  # in thumbnail pixels
    assert np.abs(np.median(flow[inside], axis=0) - half).max() < 0.25
    carried = carrier.between(target, (matte, source), None, 0.0)
    cx, cy = _centre(carried.alpha_u8())
    assert abs(cx - end[0]) <= 1.0 and abs(cy - end[1]) <= 1.0
    # Nobody in the matte, or no margin set: the whole thumbnail.
    empty = _matte(frame0, np.zeros_like(alpha0))
    assert carrier._region([empty], target.shape) is None
    carrier.region_margin = None
    assert carrier._region([matte], target.shape) is None
