"""The live engine: automatic ratio, device choice, and when the recurrent state is reset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.capture.synthetic import make_clip
from app.matting.engine import EngineError, MattingEngine, build_engine, torch_runner
from app.matting.factory import create_model, dtype_of, resolve_device, resolve_dtype
from app.matting.model import MattingNetwork
from app.matting.ratio import conversion_ratio, live_ratio, lowest_live_ratio


@pytest.mark.parametrize(
    ("size", "portrait", "full_body"),
    [
        ((240, 320), 1.0, 1.0),
        ((512, 512), 1.0, 1.0),
        ((720, 1280), 0.375, 0.6),
        ((1080, 1920), 0.25, 0.4),
        ((2160, 3840), 0.125, 0.2),
        ((480, 640), 0.75, 1.0),
    ],
)
def test_live_ratio_follows_the_rvm_table(size, portrait, full_body) -> None:
    assert live_ratio(*size) == pytest.approx(portrait)
    assert live_ratio(*size, full_body=True) == pytest.approx(full_body)


def test_downsampled_long_side_stays_within_256_to_512() -> None:
    for long_side in range(513, 4097, 97):
        assert 256 <= long_side * live_ratio(long_side * 9 // 16, long_side) <= 512
        assert long_side * lowest_live_ratio(long_side * 9 // 16, long_side) == pytest.approx(256)


def test_conversion_ratio_is_rvm_convert_videos() -> None:
    assert conversion_ratio(720, 1280) == pytest.approx(0.4)
    assert conversion_ratio(1080, 1920) == pytest.approx(512 / 1920)
    assert conversion_ratio(480, 512) == 1.0


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_missing_gpu_is_a_plain_error() -> None:
    for name in ("cuda", "cuda:1"):
        with pytest.raises(EngineError, match="--device cpu"):
            resolve_device(name)
    assert resolve_device("auto").type in ("cpu", "mps")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "cpu:0", "CUDA", ""])
def test_unknown_device_names_are_refused(name: str) -> None:
    with pytest.raises(EngineError, match="Unknown device"):
        resolve_device(name)


def test_precision_choice() -> None:
    cpu = torch.device("cpu")
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16
    assert resolve_dtype(torch.float64, cpu) == torch.float64
    with pytest.raises(EngineError, match="fp32"):
        resolve_dtype("fp16", cpu)
    with pytest.raises(EngineError, match="int8"):
        resolve_dtype("int8", cpu)
    assert dtype_of("fp16") == torch.float16  # a file's precision: no device rule
    with pytest.raises(EngineError, match="auto"):
        dtype_of("auto")


def test_factory_plain_fast_and_fresh(weights_model: MattingNetwork) -> None:
    from app.matting.fast import FastMattingNetwork

    plain = create_model("mobilenetv3")
    assert type(plain) is MattingNetwork and not plain.training
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            plain.state_dict().values(), weights_model.state_dict().values(), strict=True
        )
    )
    assert isinstance(create_model(fast=True), FastMattingNetwork)
    assert type(create_model(precision=torch.float64, fast=True)) is MattingNetwork
    fresh = create_model("resnet50", pretrained=False)
    assert fresh.training and fresh.variant == "resnet50"
    with pytest.raises(ValueError, match="pretrained"):
        create_model(pretrained=False, checkpoint="x.pth")


def test_unusable_onnx_file_is_an_engine_error(tmp_path) -> None:
    missing = tmp_path / "gone.onnx"
    with pytest.raises(EngineError, match=r"gone\.onnx does not exist"):
        build_engine(checkpoint=str(missing), device="cpu", backend="onnxruntime")


@pytest.fixture
def engine(weights_model: MattingNetwork) -> MattingEngine:
    return MattingEngine(torch_runner(weights_model), torch.device("cpu"), torch.float32, warmup=2)


def fresh(weights_model: MattingNetwork) -> MattingEngine:
    return MattingEngine(torch_runner(weights_model), torch.device("cpu"), torch.float32, warmup=2)


def test_state_is_kept_between_frames(engine, weights_model) -> None:
    clip = make_clip(6, 120, 160, seed=1)
    for i, frame in enumerate(clip):
        matte = engine.step(frame, t=i / 30)
    alone = fresh(weights_model).step(clip[-1], t=0.0)
    assert engine.resets == 1  # only the start
    assert float((matte.pha - alone.pha).abs().max()) > 1e-3
    fgr, pha = matte
    assert fgr is matte.fgr and pha is matte.pha
    assert fgr.shape == (1, 3, 120, 160) and pha.shape == (1, 1, 120, 160)


def test_size_change_resets_and_matches_a_fresh_start(engine, weights_model) -> None:
    for i, frame in enumerate(make_clip(4, 120, 160, seed=1)):
        engine.step(frame, t=i / 30)
    other = make_clip(1, 150, 200, seed=2)[0]
    matte = engine.step(other, t=0.2)
    assert engine.last_reset_reason == "frame size changed"
    assert torch.equal(matte.pha, fresh(weights_model).step(other, t=0.0).pha)


def test_scene_cut_resets(engine, weights_model) -> None:
    clip = make_clip(4, 120, 160, seed=1)
    for i, frame in enumerate(clip):
        engine.step(frame, t=i / 30)
    cut = make_clip(1, 120, 160, seed=9)[0] // 4  # another, darker scene
    matte = engine.step(cut, t=0.2)
    assert engine.last_reset_reason == "scene cut"
    assert torch.equal(matte.pha, fresh(weights_model).step(cut, t=0.0).pha)


def test_long_gap_resets(engine) -> None:
    clip = make_clip(2, 120, 160, seed=1)
    engine.step(clip[0], t=0.0)
    engine.step(clip[1], t=10.0)
    assert engine.last_reset_reason == "long pause between frames"


def test_ratio_changes_mid_stream(engine) -> None:
    clip = make_clip(6, 144, 256, seed=4)
    for i, ratio in enumerate((None, 0.5, 0.5, 0.25, 0.375, None)):
        engine.set_ratio(ratio)
        matte = engine.step(clip[i], t=i / 30)
        assert matte.pha.shape == (1, 1, 144, 256)
    assert engine.last_reset_reason == "downsample ratio changed"
    engine.reset()
    assert engine.last_reset_reason == "asked"


def test_resize_state_keeps_the_sequence(engine) -> None:
    clip = make_clip(4, 360, 640, seed=6)
    engine.step(clip[0], t=0.0)
    resets = engine.resets
    engine.resize_state(0.5)
    for i, frame in enumerate(clip[1:], start=1):
        matte = engine.step(frame, t=i / 30)
    assert engine.resets == resets
    assert engine.internal_resolution == (320, 180)
    assert matte.pha.shape[-2:] == (360, 640)


def test_holding_the_frame_rate_steps_the_ratio_without_resets(engine) -> None:
    from app.matting.hold import RateHolder

    clip = make_clip(3, 360, 640, seed=8)
    engine.step(clip[0], t=0.0)
    resets, hold = engine.resets, RateHolder(interval=0.0)
    assert engine.ratio == 0.75
    ratios = []
    for _ in range(12):  # matting at 5 fps behind a 30 fps camera
        hold.adjust(engine, camera_fps=30.0, matting_fps=5.0)
        ratios.append(engine.ratio)
    assert ratios[0] == pytest.approx(0.75 * 0.85)
    assert ratios == sorted(ratios, reverse=True)
    assert ratios[-1] == pytest.approx(256 / 640)  # never below a 256 px long side
    engine.step(clip[1], t=0.1)
    assert engine.internal_resolution == (256, 144)
    for _ in range(12):  # now far ahead of the camera
        hold.adjust(engine, camera_fps=30.0, matting_fps=60.0)
    assert engine.ratio == pytest.approx(0.75)  # back up to the automatic ratio, no further
    hold.adjust(engine, camera_fps=30.0, matting_fps=30.0)
    assert engine.ratio == pytest.approx(0.75)
    matte = engine.step(clip[2], t=0.2)
    assert engine.resets == resets
    assert matte.pha.shape[-2:] == (360, 640)


def test_aligned_sync_holds_fewer_mattes_and_keeps_the_detail(engine) -> None:
    from app.matting.hold import EVERY_FRAME, RateHolder, carried_band

    engine.step(make_clip(1, 360, 640, seed=9)[0], t=0.0)
    hold, still = RateHolder(interval=0.0), carried_band(None, 30.0)
    rate = 0.5 * (still.low + still.high) * 30.0
    hold.adjust(engine, camera_fps=30.0, matting_fps=rate, band=still)
    assert engine.ratio == pytest.approx(0.75), "enough mattes to carry between frames"
    hold.adjust(engine, camera_fps=30.0, matting_fps=rate, band=EVERY_FRAME)
    assert engine.ratio == pytest.approx(0.75 * 0.85), "pasting the newest matte needs more"
    hold.adjust(engine, camera_fps=30.0, matting_fps=0.9 * still.low * 30.0, band=still)
    assert engine.ratio == pytest.approx(0.75 * 0.85**2)
    hold.adjust(engine, camera_fps=30.0, matting_fps=1.1 * still.high * 30.0, band=still)
    assert engine.ratio == pytest.approx(0.75 * 0.85)


def _disc(x: float, size: tuple[int, int] = (240, 320), radius: int = 50) -> torch.Tensor:
    ys, xs = np.mgrid[: size[0], : size[1]]
    inside = (xs - x) ** 2 + (ys - size[0] / 2) ** 2 <= radius**2
    return torch.from_numpy(inside.astype(np.float32))[None, None]


def test_the_edges_motion_is_measured_and_asks_for_mattes_close_enough_in_time() -> None:
    from app.matting.hold import MAX_EDGE_STEP, MIN_SHARE, EdgeMotion, carried_band

    motion = EdgeMotion()
    assert motion.speed() is None
    for i in range(10):  # a disc moving 8 px a frame to the right, 30 mattes a second
        motion.add(_disc(100 + 8 * i), t=i / 30)
    # The outline's mean displacement of a translated disc is 2/pi of the shift.
    expected = 8 * 2 / np.pi / 320 * 30
    assert motion.speed() == pytest.approx(expected, rel=0.25)
    band = carried_band(motion.speed(), 30.0)
    assert band.low == pytest.approx(min(expected / MAX_EDGE_STEP / 30.0, 0.9), rel=0.25)
    assert band.low > MIN_SHARE and band.high > band.low

    still = EdgeMotion()
    for i in range(10):
        still.add(_disc(100), t=i / 30)
    assert still.speed() == 0.0
    assert carried_band(still.speed(), 30.0).low == MIN_SHARE
    still.reset()
    assert still.speed() is None


def test_a_cut_to_another_scene_is_not_taken_for_motion() -> None:
    from app.matting.hold import EdgeMotion

    motion = EdgeMotion()
    motion.add(_disc(60), t=0.0)
    motion.add(_disc(62), t=1 / 30)
    slow = motion.speed()
    motion.add(_disc(260), t=2 / 30)  # the person is somewhere else in the next frame
    assert motion.speed() == slow
