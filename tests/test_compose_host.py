"""uint8 compositing on the host against the float compositor it stands in for on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.compose import Compositor
from app.compose.backgrounds import (
    BlurBackground,
    ColorBackground,
    PassthroughBackground,
    TransparentBackground,
)
from app.compose.host import HostBackground, HostMatte, blend
from tests.fakes import u8_tensor

H, W = 36, 48


@pytest.fixture
def scene() -> tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
    """A matted frame, the next camera frame, the predicted foreground and a soft matte."""
    rng = np.random.default_rng(3)
    matted = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    following = np.clip(matted.astype(int) + rng.integers(-30, 31, (H, W, 3)), 0, 255)
    fgr = (u8_tensor(matted) + torch.from_numpy(rng.uniform(-0.2, 0.2, (1, 3, H, W)))).clamp(0, 1)
    pha = torch.linspace(0, 1, W).expand(1, 1, H, W).clone()
    pha[..., :, : W // 4] = 0.0
    pha[..., :, -W // 4 :] = 1.0
    return matted, following.astype(np.uint8), fgr.float(), pha


def float_reference(matted, frame, fgr, pha, layer, **kw) -> np.ndarray:
    """What the device compositor makes of the same frame and matte."""
    src = u8_tensor(frame)
    delta = fgr - u8_tensor(matted)
    fg = (src + delta).clamp(0, 1)
    background = layer.render(u8_tensor(matted), H, W, pha=pha) if layer.from_camera else None
    return Compositor().compose(src, fg, pha, layer, background=background, **kw)


@pytest.mark.parametrize(
    "layer",
    [ColorBackground((20, 200, 90)), BlurBackground(4.0), TransparentBackground()],
    ids=["colour", "blur", "transparent"],
)
@pytest.mark.parametrize("mirror", [False, True])
def test_blend_matches_the_float_compositor(scene, layer, mirror) -> None:
    matted, frame, fgr, pha = scene
    matte = HostMatte(matted, fgr, pha)
    picture = None
    if not layer.rgba:
        picture = HostBackground().get(layer.render(u8_tensor(matted), H, W, pha=pha))
    out = blend(frame, matte, picture, mirror=mirror, rgba=layer.rgba)
    ref = float_reference(matted, frame, fgr, pha, layer, mirror=mirror)
    assert out.shape == ref.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    assert not np.array_equal(out[..., :3], frame), "the background did change the frame"


def test_blend_is_exact_where_the_matte_is_clear_or_opaque(scene) -> None:
    matted, frame, fgr, pha = scene
    colour = np.array([255, 0, 255], np.uint8)
    picture = HostBackground().get(ColorBackground(tuple(colour)).render(fgr, H, W))
    out = blend(frame, HostMatte(matted, fgr, pha), picture)
    assert (out[:, : W // 4] == colour).all()
    expected_fg = np.clip(
        frame.astype(int)
        + np.rint(fgr[0].permute(1, 2, 0).numpy() * 255).astype(int)
        - matted.astype(int),
        0,
        255,
    )
    assert (out[:, -W // 4 :] == expected_fg[:, -W // 4 :]).all()


def test_blend_without_fgr_uses_the_camera_pixels(scene) -> None:
    matted, frame, fgr, pha = scene
    picture = np.zeros((H, W, 3), np.uint8)
    out = blend(frame, HostMatte(matted, fgr, pha), picture, use_fgr=False)
    assert (out[:, -W // 4 :] == frame[:, -W // 4 :]).all()


def test_passthrough_returns_a_copy_of_the_frame(scene) -> None:
    matted, frame, fgr, pha = scene
    assert PassthroughBackground().passthrough
    out = blend(frame, HostMatte(matted, fgr, pha), None)
    assert np.array_equal(out, frame) and out is not frame
    assert np.array_equal(
        blend(frame, HostMatte(matted, fgr, pha), None, mirror=True), frame[:, ::-1]
    )


def test_alpha_view_is_shared_and_read_only(scene) -> None:
    matted, _, fgr, pha = scene
    matte = HostMatte(matted, fgr, pha)
    assert matte.alpha_u8() is matte.alpha_u8()
    assert np.array_equal(matte.alpha_u8(mirror=True), matte.alpha_u8()[:, ::-1])
    assert matte.alpha_u8()[0, -1] == 255 and matte.alpha_u8()[0, 0] == 0
    with pytest.raises(ValueError):
        matte.alpha_u8()[0, 0] = 1


def test_background_converts_only_when_the_layer_changes_its_picture() -> None:
    host = HostBackground()
    still = torch.rand(1, 3, H, W)
    first = host.get(still)
    assert host.get(still) is first
    assert host.get(ColorBackground((1, 2, 3)).render(still, H, W)) is not first
    colour = ColorBackground((1, 2, 3))
    a = host.get(colour.render(still, H, W))
    assert host.get(colour.render(still, H, W)) is a, "a new view of the same pixel"
    assert (a == [1, 2, 3]).all()


def test_sizes_must_agree(scene) -> None:
    matted, frame, fgr, pha = scene
    with pytest.raises(ValueError):
        HostMatte(matted[:-1], fgr, pha)
    with pytest.raises(ValueError):
        blend(frame[:-1], HostMatte(matted, fgr, pha), None)
