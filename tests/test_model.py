"""The network: exact checkpoint layout, state shapes, chunked time steps, scripting, and parity
with the official ONNX export under ONNX Runtime."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from app.capture.synthetic import make_clip
from app.matting.engine import torch_runner
from app.matting.export import script
from app.matting.model import MattingNetwork
from app.matting.onnx_import import OnnxImportError, state_dict_from_onnx
from app.resize import downsample
from tests.fakes import to_tensor_batch
from tests.parity import assert_matches_official

KEYS = Path(__file__).parent / "data"

# Recurrent state channels per variant (rvm-model.md).
STATE_CHANNELS = {"mobilenetv3": (16, 20, 40, 64), "resnet50": (16, 32, 64, 128)}


def _reference_keys(variant: str) -> list[tuple[str, list[int]]]:
    rows = (KEYS / f"rvm_{variant}_keys.txt").read_text().splitlines()
    out = []
    for row in rows:
        key, shape = row.split("\t")
        out.append((key, [int(s) for s in shape.strip("[]").split(",") if s.strip()]))
    return out


@pytest.mark.parametrize("variant", ["mobilenetv3", "resnet50"])
def test_state_dict_matches_official_layout(variant: str) -> None:
    ours = [(k, list(v.shape)) for k, v in MattingNetwork(variant).state_dict().items()]
    ref = _reference_keys(variant)
    assert len(ours) == len(ref)
    for (k, s), (rk, rs) in zip(ours, ref, strict=True):
        assert (k, s) == (rk, rs)


@pytest.mark.parametrize("variant", ["mobilenetv3", "resnet50"])
@pytest.mark.parametrize(
    ("size", "ratio"), [((240, 320), 1.0), ((250, 333), 0.5), ((720, 1280), 0.25)]
)
def test_state_shapes_follow_downsampled_size(variant: str, size: tuple[int, int], ratio: float):
    net = MattingNetwork(variant).eval()
    h, w = size
    with torch.inference_mode():
        fgr, pha, *rec = net(torch.rand(1, 3, h, w), downsample_ratio=ratio)
    assert fgr.shape == (1, 3, h, w) and pha.shape == (1, 1, h, w)
    hs, ws = int(h * ratio), int(w * ratio)
    for i, (r, ch) in enumerate(zip(rec, STATE_CHANNELS[variant], strict=True)):
        scale = 2 ** (i + 1)
        assert tuple(r.shape) == (1, ch, -(-hs // scale), -(-ws // scale))
    assert float(pha.min()) >= 0 and float(pha.max()) <= 1


@pytest.mark.parametrize(
    ("shape", "ratio"),
    [((1, 3, 720, 1280), 0.375), ((2, 3, 175, 231), 0.3), ((1, 3, 1080, 1920), 0.25)],
)
def test_downsampling_samples_at_exact_positions(shape: tuple[int, ...], ratio: float) -> None:
    # The reference: PyTorch's own kernel in float64, where the sample positions are exact.
    # In float32 that kernel is off by up to 8e-5 at 1280x720@0.375.
    x = torch.rand(shape, generator=torch.Generator().manual_seed(2))
    ref = torch.nn.functional.interpolate(
        x.double(),
        scale_factor=ratio,
        mode="bilinear",
        align_corners=False,
        recompute_scale_factor=False,
    )
    got = downsample(x, ratio)
    assert got.dtype == torch.float32
    assert got.shape == (*shape[:2], int(shape[2] * ratio), int(shape[3] * ratio)) == ref.shape
    assert float((got.double() - ref).abs().max()) < 5e-7
    assert downsample(x, 1.0) is x


def test_chunk_of_frames_equals_single_steps(weights_model: MattingNetwork) -> None:
    clip = torch.from_numpy(make_clip(6, 144, 176, seed=3)).permute(0, 3, 1, 2).float() / 255
    with torch.inference_mode():
        fgr_seq, pha_seq, *rec_seq = weights_model(clip[None], downsample_ratio=0.5)
        rec: list[torch.Tensor | None] = [None] * 4
        for t in range(clip.shape[0]):
            fgr, pha, *rec = weights_model(clip[t : t + 1], *rec, downsample_ratio=0.5)
            assert torch.allclose(fgr, fgr_seq[:, t], atol=1e-5)
            assert torch.allclose(pha, pha_seq[:, t], atol=1e-5)
    for a, b in zip(rec, rec_seq, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_zero_state_of_official_shape_broadcasts(weights_model: MattingNetwork) -> None:
    src = torch.from_numpy(to_tensor_batch(make_clip(1, 128, 160)[0]))
    zeros = [torch.zeros(1, 1, 1, 1)] * 4
    with torch.inference_mode():
        a = weights_model(src, downsample_ratio=0.5)
        b = weights_model(src, *zeros, downsample_ratio=0.5)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


def test_recurrent_state_changes_the_output(weights_model: MattingNetwork) -> None:
    clip = make_clip(8, 128, 160, seed=5)
    rec: list[torch.Tensor | None] = [None] * 4
    with torch.inference_mode():
        for frame in clip:
            _, pha, *rec = weights_model(torch.from_numpy(to_tensor_batch(frame)), *rec)
        _, fresh = weights_model(torch.from_numpy(to_tensor_batch(clip[-1])))[:2]
    assert float((pha - fresh).abs().max()) > 1e-3


@pytest.mark.parametrize(
    ("variant", "refiner"),
    [
        ("mobilenetv3", "deep_guided_filter"),
        ("mobilenetv3", "fast_guided_filter"),
        ("resnet50", "deep_guided_filter"),
    ],
)
def test_scriptable(variant: str, refiner: str) -> None:
    net = MattingNetwork(variant, refiner=refiner).eval()
    scripted = script(net)
    clip = torch.rand(1, 2, 3, 96, 128)
    with torch.inference_mode():
        for a, b in zip(
            net(clip, downsample_ratio=0.5), scripted(clip, downsample_ratio=0.5), strict=True
        ):
            assert torch.allclose(a, b, atol=1e-6)
        # Single frames at full resolution, the state fed back from the scripted network.
        rec: list[torch.Tensor | None] = [None] * 4
        for t in range(2):
            fgr, pha, *rec_ref = net(clip[:, t], *rec)
            fgr_s, pha_s, *rec = scripted(clip[:, t], *rec)
            for a, b in zip([fgr, pha, *rec_ref], [fgr_s, pha_s, *rec], strict=True):
                assert torch.allclose(a, b, atol=1e-6)


def test_unknown_variant_and_refiner_are_refused() -> None:
    with pytest.raises(ValueError, match="variant"):
        MattingNetwork("mobilenetv2")
    with pytest.raises(ValueError, match="refiner"):
        MattingNetwork(refiner="bilinear")


def test_onnx_import_refuses_foreign_files(tmp_path: Path, official_onnx: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(OnnxImportError, match=r"junk\.onnx"):
        state_dict_from_onnx(junk)
    with pytest.raises(OnnxImportError, match="resnet50"):
        state_dict_from_onnx(official_onnx, variant="resnet50")


@pytest.mark.parametrize("size", [(192, 256), (175, 231)])
def test_parity_with_official_onnx(size: tuple[int, int], official_onnx: Path) -> None:
    from app.matting.weights import load_model

    net = load_model("mobilenetv3")
    net.refine_full_res = True  # the export refines at ratio 1 too
    assert_matches_official(torch_runner(net), official_onnx, size)


def test_scripting_warns_about_nothing_else() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scripted = script(net)
        warnings.warn("a real warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a real warning"]
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(scripted(x), net(x))
