"""Compositing and background layers, on CPU tensors."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from app.compose import BackgroundError, Compositor, make_background
from app.compose.backgrounds import (
    BlurBackground,
    ColorBackground,
    PassthroughBackground,
    TransparentBackground,
)
from app.compose.file_layers import ImageBackground, VideoBackground, cover_fit
from app.media.video import write_video
from app.settings import GREEN_SCREEN, Background
from tests.fakes import u8_tensor

H, W = 24, 32


@pytest.fixture
def frames() -> tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(7)
    src_u8 = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    fgr_u8 = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    pha = torch.zeros(1, 1, H, W)
    pha[..., :, W // 3 : 2 * W // 3] = 0.5
    pha[..., :, 2 * W // 3 :] = 1.0
    return src_u8, fgr_u8, u8_tensor(src_u8), u8_tensor(fgr_u8), pha


def test_composite_follows_the_formula(frames) -> None:
    _, fgr_u8, src, fgr, pha = frames
    colour = (10, 200, 77)
    out = Compositor().compose(src, fgr, pha, ColorBackground(colour))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    a, b = W // 3, 2 * W // 3
    assert (out[:, :a] == np.array(colour, np.uint8)).all()  # alpha 0: background exactly
    assert (out[:, b:] == fgr_u8[:, b:]).all()  # alpha 1: foreground exactly
    mix = 0.5 * fgr_u8[:, a:b] + 0.5 * np.array(colour)
    assert np.abs(out[:, a:b].astype(float) - mix).max() <= 1.0
    assert not np.array_equal(out[:, a:b], fgr_u8[:, a:b])


def test_use_fgr_false_blends_the_camera_frame(frames) -> None:
    src_u8, _, src, fgr, pha = frames
    out = Compositor().compose(src, fgr, pha, ColorBackground((0, 0, 0)), use_fgr=False)
    assert (out[:, 2 * W // 3 :] == src_u8[:, 2 * W // 3 :]).all()


def test_mirror_flips_horizontally(frames) -> None:
    _, _, src, fgr, pha = frames
    compositor = Compositor()
    layer = ColorBackground((1, 2, 3))
    plain = compositor.compose(src, fgr, pha, layer)
    mirrored = compositor.compose(src, fgr, pha, layer, mirror=True)
    assert not np.array_equal(plain, mirrored)
    assert np.array_equal(mirrored, plain[:, ::-1])


def test_transparent_output_is_foreground_with_alpha(frames) -> None:
    _, fgr_u8, src, fgr, _ = frames
    pha = torch.linspace(0, 1, W).view(1, 1, 1, W).expand(1, 1, H, W)
    out = Compositor().compose(
        src, fgr, pha, make_background(Background("transparent"), "cpu", torch.float32)
    )
    assert out.shape == (H, W, 4)
    expected_alpha = np.floor(np.linspace(0, 1, W, dtype=np.float32) * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(out[..., 3], np.broadcast_to(expected_alpha, (H, W)))
    assert np.array_equal(out[..., :3], fgr_u8)


def test_rgba_flag_adds_alpha_to_a_composite(frames) -> None:
    _, _, src, fgr, pha = frames
    out = Compositor().compose(src, fgr, pha, ColorBackground((9, 9, 9)), rgba=True)
    assert out.shape == (H, W, 4)
    assert set(np.unique(out[..., 3])) == {0, 128, 255}
    assert (out[:, : W // 3, :3] == 9).all()


def test_none_passes_the_camera_through_without_a_matte(frames) -> None:
    src_u8, _, src, _, _ = frames
    out = Compositor().compose(src, None, None, PassthroughBackground(), mirror=True)
    assert np.array_equal(out, src_u8[:, ::-1])


def test_missing_matte_is_refused(frames) -> None:
    _, _, src, fgr, _ = frames
    with pytest.raises(ValueError):
        Compositor().compose(src, fgr, None, ColorBackground((0, 0, 0)))


def test_to_tensor_and_alpha_u8_round_trip(frames) -> None:
    src_u8, *_ = frames
    compositor = Compositor()
    tensor = compositor.to_tensor(src_u8)
    assert tensor.shape == (1, 3, H, W) and tensor.dtype == torch.float32
    assert np.array_equal(compositor.compose(tensor, None, None, PassthroughBackground()), src_u8)
    pha = torch.full((1, 1, H, W), 0.25)
    assert (compositor.alpha_u8(pha) == 64).all()
    with pytest.raises(TypeError):
        compositor.to_tensor(src_u8.astype(np.float32))
    with pytest.raises(ValueError):
        compositor.to_tensor(src_u8[..., :2])


def test_make_background_covers_every_kind() -> None:
    src = torch.zeros(1, 3, H, W)
    green = make_background(Background("green"), "cpu", torch.float32)
    rendered = green.render(src, H, W)
    assert rendered.shape == (1, 3, H, W)
    assert torch.allclose(rendered[0, :, 0, 0] * 255, torch.tensor(GREEN_SCREEN, dtype=torch.float))
    assert isinstance(
        make_background(Background("none"), "cpu", torch.float32), PassthroughBackground
    )
    assert isinstance(
        make_background(Background("blur", 5.0), "cpu", torch.float32), BlurBackground
    )
    assert make_background(Background("transparent"), "cpu", torch.float32).rgba
    colour = make_background(Background("color", color=(1, 2, 3)), "cpu", torch.float32)
    assert colour.render(src, H, W)[0, :, 5, 5].mul(255).round().tolist() == [1, 2, 3]
    with pytest.raises(BackgroundError):
        make_background(Background("image", path="/nonexistent/picture.png"), "cpu", torch.float32)


def write_bands(path: Path, height: int, width: int, vertical: bool) -> None:
    """Three equal bands, red, green, blue, left to right (or top to bottom)."""
    image = np.zeros((height, width, 3), np.uint8)
    bands = np.array_split(np.arange(width if vertical else height), 3)
    for band, rgb in zip(bands, [(255, 0, 0), (0, 255, 0), (0, 0, 255)], strict=True):
        if vertical:
            image[:, band] = rgb
        else:
            image[band, :] = rgb
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def render_u8(layer, height: int, width: int) -> np.ndarray:
    out = layer.render(torch.zeros(1, 3, height, width), height, width)
    assert out.shape == (1, 3, height, width)
    return (out[0].permute(1, 2, 0) * 255).round().byte().numpy()


def test_image_cover_fit_crops_the_centre(tmp_path: Path) -> None:
    wide = tmp_path / "wide.png"
    write_bands(wide, 100, 300, vertical=True)
    layer = ImageBackground(str(wide))
    assert (render_u8(layer, 100, 100) == (0, 255, 0)).all()  # scale 1, centre third
    square = render_u8(layer, 200, 200)  # scaled x2 to 600 x 200, centre 200 columns: green
    assert (square[:, 4:-4] == (0, 255, 0)).all()
    panorama = render_u8(layer, 50, 300)  # scale 1, rows cropped: all three bands, in order
    assert tuple(panorama[25, 10]) == (255, 0, 0)
    assert tuple(panorama[25, 150]) == (0, 255, 0)
    assert tuple(panorama[25, 290]) == (0, 0, 255)

    tall = tmp_path / "tall.jpg"
    write_bands(tall, 300, 100, vertical=False)
    portrait = render_u8(ImageBackground(str(tall)), 60, 120)  # 120 x 360, centre rows: green
    assert np.abs(portrait.astype(int) - (0, 255, 0)).max() <= 8  # JPEG


def test_cover_fit_sizes() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    for height, width in [(720, 1280), (1080, 1920), (31, 17), (480, 640)]:
        assert cover_fit(image, height, width).shape == (height, width, 3)


def test_corrupt_image_raises_background_error(tmp_path: Path) -> None:
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a picture")
    with pytest.raises(BackgroundError, match=r"holiday\.png"):
        make_background(Background("image", path=str(bad)), "cpu", torch.float32)


def write_greys(path: Path, count: int, fps: int = 50) -> None:
    """A small H.264 clip whose frame i is uniformly grey level 10 * i."""
    write_video(path, [np.full((24, 32, 3), 10 * i, np.uint8) for i in range(count)], fps)


def test_video_background_loops_and_stops(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    write_greys(clip, 5)
    layer = make_background(Background("video", path=str(clip)), "cpu", torch.float32)
    assert isinstance(layer, VideoBackground)
    try:
        first = layer.render(torch.zeros(1, 3, 48, 40), 48, 40)
        assert first.shape == (1, 3, 48, 40)
        deadline = time.monotonic() + 10
        while layer.frames_decoded <= 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert layer.frames_decoded > 12  # more frames than the file holds: it loops
        levels = set()
        for _ in range(40):
            levels.add(round(float(layer.render(first, 48, 40).mean()) * 255 / 10))
            time.sleep(0.01)
        assert len(levels) > 1  # the picture changes between renders
        assert levels <= {0, 1, 2, 3, 4}
    finally:
        layer.close()
    assert not layer.alive
    layer.close()  # twice is fine


def test_broken_video_raises_background_error(tmp_path: Path) -> None:
    bad = tmp_path / "party.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 but nothing else")
    with pytest.raises(BackgroundError, match=r"party\.mp4"):
        make_background(Background("video", path=str(bad)), "cpu", torch.float32)


def test_blur_lowers_variance() -> None:
    rng = np.random.default_rng(3)
    src = u8_tensor(rng.integers(0, 256, (180, 320, 3), dtype=np.uint8))
    blurred = BlurBackground(12.0).render(src, 180, 320)
    assert blurred.shape == src.shape
    assert float(blurred.var()) < 0.05 * float(src.var())
    assert abs(float(blurred.mean()) - float(src.mean())) < 0.01


def test_blur_keeps_the_person_out_of_the_background() -> None:
    height, width = 360, 640  # sigma 6 px, blurred at half size
    src = torch.zeros(1, 3, height, width)
    src[:, 2] = 1.0  # blue room
    pha = torch.zeros(1, 1, height, width)
    pha[..., 100:260, 260:380] = 1.0  # a person ...
    src[:, :, 100:260, 260:380] = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)  # ... in red
    layer = BlurBackground(12.0)
    near = (slice(None), slice(None), slice(170, 190), slice(383, 390))  # just right of the person
    aware = layer.render(src, height, width, pha=pha)[near]
    naive = layer.render(src, height, width)[near]
    assert float(naive[:, 0].max()) > 0.2  # without the matte the red bleeds out
    assert float(aware[:, 0].max()) < 0.02
    assert float(aware[:, 2].min()) > 0.98


def test_blur_compose_end_to_end(frames) -> None:
    _, _, src, fgr, pha = frames
    out = Compositor().compose(
        src, fgr, pha, make_background(Background("blur"), "cpu", torch.float32)
    )
    assert out.shape == (H, W, 3)
    assert np.array_equal(out[:, 2 * W // 3 :], frames[1][:, 2 * W // 3 :])


def test_transparent_layer_renders_black() -> None:
    layer = TransparentBackground()
    assert float(layer.render(torch.ones(1, 3, 4, 4), 4, 4).abs().sum()) == 0.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_stays_within_one_level(frames, dtype: torch.dtype) -> None:
    src_u8, _, src, fgr, pha = frames
    compositor = Compositor("cpu", dtype)
    out = compositor.compose(
        compositor.to_tensor(src_u8), fgr.to(dtype), pha.to(dtype), ColorBackground((10, 20, 30))
    )
    exact = Compositor().compose(src, fgr, pha, ColorBackground((10, 20, 30)))
    assert np.abs(out.astype(int) - exact).max() <= 1
    assert (out[:, : W // 3] == (10, 20, 30)).all()


def test_a_prerendered_background_is_used_as_given(frames) -> None:
    _, _, src, fgr, _ = frames
    pha = torch.zeros(1, 1, H, W)
    given = torch.full((1, 3, H, W), 0.2)
    out = Compositor().compose(
        src, fgr, pha, BlurBackground(12.0), background=given
    )  # the blur itself would give something else
    assert (out == round(0.2 * 255)).all()
    assert BlurBackground.from_camera and not ColorBackground((1, 2, 3)).from_camera


def test_cpu_quantize_hwc_equals_the_generic_path() -> None:
    from app.compose.compositor import quantize, quantize_hwc

    x = torch.rand(1, 4, 7, 9, generator=torch.Generator().manual_seed(2)) * 1.2 - 0.1
    x[0, 0, 0, :3] = torch.tensor([0.5 / 255, 1.5 / 255, 254.5 / 255])
    got = quantize_hwc(x)
    assert got.shape == (7, 9, 4) and got.dtype == torch.uint8 and got.is_contiguous()
    assert torch.equal(got, quantize(x[0]).permute(1, 2, 0))


def test_a_blurred_background_is_rendered_once_per_matte() -> None:
    from app.capture.base import Frame
    from app.compose.backgrounds import BlurBackground, ColorBackground
    from app.compose.live import MatteCache
    from app.matting.engine import Matte
    from app.matting.worker import Matted

    class CountingBlur(BlurBackground):
        calls = 0

        def render(self, src, height, width, pha=None):
            CountingBlur.calls += 1
            return super().render(src, height, width, pha=pha)

    src = torch.rand(1, 3, 36, 48)
    pha = torch.zeros(1, 1, 36, 48)
    matted = MatteCache(
        Matted(Frame(np.zeros((36, 48, 3), np.uint8), 0, 0.0), Matte(src, src * 0.5, pha, 1.0))
    )
    blur, other = CountingBlur(6.0), CountingBlur(6.0)
    first = matted.background(blur)
    assert matted.background(blur) is first and CountingBlur.calls == 1
    assert torch.allclose(first, BlurBackground(6.0).render(src, 36, 48, pha=pha))
    assert matted.background(other) is not first and CountingBlur.calls == 2  # layer changed
    assert matted.background(ColorBackground((0, 255, 0))) is None  # rendered per frame
    assert torch.equal(matted.delta(), src * 0.5 - src)
