"""The ONNX Runtime backend against the eager network, on the official ONNX export."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest
import torch

from app.capture.synthetic import make_frames
from app.matting.model import MattingNetwork
from app.matting.ort_backend import OrtBackendError, OrtRunner

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers() and torch.cuda.is_available()


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    """20 frames ``[20, 3, 120, 160]`` in 0..1."""
    return torch.from_numpy(make_frames(20, 120, 160)).permute(0, 3, 1, 2).float().div(255)


def _compare(
    runner: OrtRunner, model: MattingNetwork, frames: torch.Tensor, ratio: float
) -> list[torch.Tensor]:
    """Runs both over ``frames`` recurrently; asserts equality; returns the runner's last state."""
    rec_ort: list[torch.Tensor | None] = [None] * 4
    rec: list[torch.Tensor | None] = [None] * 4
    with torch.inference_mode():
        for frame in frames:
            fgr, pha, *rec = model(frame[None], *rec, ratio)
            got_fgr, got_pha, rec_ort = runner(frame[None], rec_ort, ratio)
            for got, want in ((got_fgr, fgr), (got_pha, pha)):
                diff = (got.cpu().float() - want).abs()
                assert diff.max().item() <= 5e-4
                assert diff.mean().item() <= 1e-6
            for got, want in zip(rec_ort, rec, strict=True):
                assert got.shape == want.shape
                assert (got.cpu().float() - want).abs().max().item() <= 5e-4
    return rec_ort


def test_cpu_equals_eager_over_recurrent_frames(
    weights_model: MattingNetwork, frames: torch.Tensor
) -> None:
    runner = OrtRunner(device="cpu", threads=2)
    assert runner.name == "onnxruntime-cpu"
    assert runner.providers == ["CPUExecutionProvider"]
    rec = _compare(runner, weights_model, frames, 0.5)
    assert [tuple(r.shape) for r in rec] == [
        (1, 16, 30, 40),
        (1, 20, 15, 20),
        (1, 40, 8, 10),
        (1, 64, 4, 5),
    ]
    assert all(r.device.type == "cpu" and r.dtype == torch.float32 for r in rec)


def test_size_change_restarts_the_state(
    weights_model: MattingNetwork, frames: torch.Tensor
) -> None:
    runner = OrtRunner()
    rec: list[torch.Tensor | None] = [None] * 4
    for frame in frames[:3]:
        _, _, rec = runner(frame[None], rec, 0.5)
    # A new size with the old state: the state starts again at the new size.
    small = torch.nn.functional.interpolate(frames[3:4], size=(96, 128), mode="bilinear")
    fgr, pha, rec = runner(small, rec, 0.5)
    assert fgr.shape == (1, 3, 96, 128) and pha.shape == (1, 1, 96, 128)
    assert [tuple(r.shape[2:]) for r in rec] == [(24, 32), (12, 16), (6, 8), (3, 4)]
    with torch.inference_mode():
        want = weights_model(small, downsample_ratio=0.5)
    assert (pha - want[1]).abs().max().item() <= 5e-4
    # So does a new ratio at the same size.
    _, _, rec = runner(small, rec, 0.25)
    assert [tuple(r.shape[2:]) for r in rec] == [(12, 16), (6, 8), (3, 4), (2, 2)]
    # And an explicit reset.
    runner.reset()
    _, pha_again, _ = runner(small, rec, 0.5)
    assert torch.equal(pha_again, pha)


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(OrtBackendError, match="does not exist"):
        OrtRunner(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx at all")
    with pytest.raises(OrtBackendError, match="not a usable ONNX model"):
        OrtRunner(bad)
    with pytest.raises(OrtBackendError, match="not supported"):
        OrtRunner(device="mps")
    if not HAS_CUDA:
        with pytest.raises(OrtBackendError, match="CUDA"):
            OrtRunner(device="cuda")


@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu and a CUDA device")
def test_cuda_equals_eager_and_keeps_state_on_device(
    weights_model: MattingNetwork, frames: torch.Tensor
) -> None:
    runner = OrtRunner(device="cuda")
    assert runner.name == "onnxruntime-cuda"
    assert runner.providers[0] == "CUDAExecutionProvider"
    rec = _compare(runner, weights_model, frames[:10], 0.5)
    assert all(r.device.type == "cuda" for r in rec)
