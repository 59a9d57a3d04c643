"""The CPU fast path: same numbers as the official export, folding and fusion that keep outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.capture.synthetic import make_clip
from app.matting.engine import MattingEngine, build_engine, torch_runner
from app.matting.fast import FastMattingNetwork, FastRunner
from app.matting.fusion import FusedConv, fold_batchnorm, fuse_activations
from app.matting.model import MattingNetwork
from app.matting.tuning import ThreadTuner, tune_allocator
from tests.parity import assert_matches_official


def _randomised(variant: str) -> MattingNetwork:
    """A network with random weights and BatchNorm statistics far from the identity."""
    torch.manual_seed(3)
    net = MattingNetwork(variant)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
            assert module.running_mean.shape == (c,)
    return net.eval()


def _max_diff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("variant", ["mobilenetv3", "resnet50"])
def test_folding_and_fusion_keep_the_outputs(variant: str) -> None:
    net = _randomised(variant)
    bns = sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    src = torch.rand(1, 3, 64, 96)
    with torch.inference_mode():
        ref = net(src, downsample_ratio=0.5)
        folded = MattingNetwork(variant).eval()
        folded.load_state_dict(net.state_dict())
        assert fold_batchnorm(folded) == bns
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        assert _max_diff(folded(src, downsample_ratio=0.5), ref) < 1e-4
        merged = fuse_activations(folded)
        if merged:  # oneDNN present
            assert any(isinstance(m, FusedConv) and m.act != "none" for m in folded.modules())
        assert _max_diff(folded(src, downsample_ratio=0.5), ref) < 1e-4
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == bns  # untouched


def test_fused_conv_without_onednn_matches() -> None:
    conv = torch.nn.Conv2d(8, 6, 3, padding=2, dilation=2, groups=2)
    x = torch.rand(1, 8, 20, 24)
    fused = FusedConv(conv, "hardswish", op=None)
    with torch.inference_mode():
        expected = torch.nn.functional.hardswish(conv(x))
        assert torch.allclose(fused(x), expected, atol=1e-6)


@pytest.mark.parametrize("size", [(192, 256), (175, 231)])
def test_fast_path_matches_official_onnx(size: tuple[int, int], official_onnx: Path) -> None:
    from app.matting.weights import load_model

    net = load_model("mobilenetv3")
    net.refine_full_res = True  # the export refines at ratio 1 too
    assert_matches_official(FastRunner(net, threads=1), official_onnx, size)


def test_channels_last_frames_and_chunks_give_the_same_matte(weights_model) -> None:
    fast = FastMattingNetwork(weights_model)
    clip = torch.from_numpy(make_clip(2, 120, 160, seed=2)).permute(0, 3, 1, 2).float() / 255
    with torch.inference_mode():
        ref = weights_model(clip[None], downsample_ratio=0.5)
        chunk = fast(clip[None], downsample_ratio=0.5)
        # An uploaded camera frame is a permuted HxWx3 array: channels-last in memory.
        cl = clip[:1].contiguous(memory_format=torch.channels_last)
        single = fast(cl, downsample_ratio=0.5)
    assert chunk[0].shape == (1, 2, 3, 120, 160)
    assert _max_diff(chunk, ref) < 1e-4
    assert _max_diff(single[:2], [ref[0][:, 0], ref[1][:, 0]]) < 1e-4


def test_tuner_settles_on_the_faster_choice_and_keeps_probing() -> None:
    tuner = ThreadTuner([2, 1], explore_every=10, probe=2)
    cost = {2: 0.05, 1: 0.03}
    used = []
    for _ in range(40):
        n = tuner.next()
        used.append(n)
        tuner.record(n, cost[n])
    assert tuner.best == 1
    assert used[:4] == [2, 2, 1, 1]  # every choice is timed first
    assert used[-10:].count(1) >= 8
    assert 2 in used[10:]  # the slower one is still probed now and then
    cost = {2: 0.01, 1: 0.03}  # the load changed
    for _ in range(40):
        n = tuner.next()
        tuner.record(n, cost[n])
    assert tuner.best == 2
    tuner.reset()
    assert tuner.next() == 2 and tuner.best == 2


def test_single_choice_never_probes() -> None:
    tuner = ThreadTuner([1])
    for _ in range(5):
        assert tuner.next() == 1
        tuner.record(1, 0.1)


def test_allocator_tuning_is_idempotent() -> None:
    first = tune_allocator()
    assert tune_allocator() == first


def test_build_engine_picks_the_fast_path_on_cpu(weights_model) -> None:
    engine = build_engine("mobilenetv3", device="cpu", precision="fp32", warmup=1)
    assert engine.name == "torch-fast"
    assert build_engine(device="cpu", optimize=False).name == "torch"
    frame = make_clip(1, 96, 128, seed=4)[0]
    plain = MattingEngine(torch_runner(weights_model), torch.device("cpu"), torch.float32, warmup=1)
    a, b = engine.step(frame, t=0.0), plain.step(frame, t=0.0)
    assert float((a.pha - b.pha).abs().max()) < 1e-4
    assert float((a.fgr - b.fgr).abs().max()) < 1e-4


def test_guided_filter_coefficients_remake_the_matte_on_the_host(weights_model) -> None:
    import cv2

    from app.compose.host import HostMatte

    engine = build_engine("mobilenetv3", device="cpu", precision="fp32", warmup=1, ratio=0.25)
    frame = make_clip(1, 192, 256, seed=5)[0]
    m = engine.step(frame, t=0.0)
    assert m.coeffs is not None and m.coeffs.shape == (1, 8, 48, 64)
    host = HostMatte(frame, m.fgr, m.pha, m.coeffs)
    again = HostMatte.guided(frame, host.coeffs)
    assert float(abs(again.pha - host.pha).max()) < 1e-4
    # The foreground as composited (the offset added with saturation): the network's, rounded.
    fg, fg_again = (cv2.add(frame, x.offset, dtype=cv2.CV_8U).astype(int) for x in (host, again))
    assert abs(fg - fg_again).max() <= 1
    top, bottom, left, right = box = (40, 150, 30, 200)
    part = HostMatte.guided(frame, host.coeffs, box)
    assert part.box == box and float(abs(part.pha - host.pha[top:bottom, left:right]).max()) < 1e-4
    # At a ratio of 1 the refiner does not run: no coefficients to carry.
    full = build_engine("mobilenetv3", device="cpu", precision="fp32", warmup=1, ratio=1.0)
    assert full.step(frame, t=0.0).coeffs is None
