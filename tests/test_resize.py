"""OpenCV-backed bilinear upsampling equals PyTorch's (align_corners=False) to float rounding."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from app.resize import downsample_area, downsample_bilinear, upsample_bilinear


@pytest.mark.parametrize(
    ("shape", "size"),
    [
        ((1, 8, 144, 256), (720, 1280)),  # 5x, the refiner at 1280x720@0.2
        ((1, 8, 67, 87), (175, 231)),  # sizes that do not divide
        ((2, 3, 10, 13), (10, 40)),  # height kept, width stretched
    ],
)
def test_matches_torch(shape: tuple[int, ...], size: tuple[int, int]) -> None:
    x = torch.rand(shape, generator=torch.Generator().manual_seed(3)) * 4 - 2
    got = upsample_bilinear(x, size)
    ref = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    assert got.shape == ref.shape and got.is_contiguous()
    assert (got - ref).abs().max().item() < 5e-5
    assert (got - ref).abs().mean().item() < 1e-5  # the network parity tests bound the effect


def test_edges_replicate() -> None:
    x = torch.tensor([[[[0.0, 1.0]]]])
    got = upsample_bilinear(x, (1, 4))
    assert got.flatten().tolist() == pytest.approx([0.0, 0.25, 0.75, 1.0])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_other_dtypes_and_downscaling_use_torch(dtype: torch.dtype) -> None:
    x = torch.rand(1, 2, 30, 40).to(dtype)
    for size in ((60, 80), (15, 20)):
        got = upsample_bilinear(x, size)
        ref = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        assert got.dtype == dtype and torch.equal(got, ref)


def test_works_under_inference_mode_and_on_views() -> None:
    x = torch.rand(1, 8, 20, 30)
    with torch.inference_mode():
        view = x[:, 2:6]
        got = upsample_bilinear(view, (40, 60))
    ref = F.interpolate(view, size=(40, 60), mode="bilinear", align_corners=False)
    assert (got - ref).abs().max().item() < 1e-5


@pytest.mark.parametrize(
    ("shape", "size"), [((1, 4, 720, 1280), (180, 320)), ((2, 3, 9, 12), (3, 4))]
)
def test_area_matches_torch_at_whole_factors(shape: tuple[int, ...], size: tuple[int, int]) -> None:
    x = torch.rand(shape, generator=torch.Generator().manual_seed(5))
    got = downsample_area(x, size)
    ref = F.interpolate(x, size=size, mode="area")
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() < 1e-6


def test_area_at_an_uneven_factor_keeps_the_mean() -> None:
    x = torch.rand(1, 2, 100, 70, generator=torch.Generator().manual_seed(6))
    got = downsample_area(x, (30, 21))
    assert got.shape == (1, 2, 30, 21)
    assert torch.allclose(got.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=2e-3)


@pytest.mark.parametrize(
    ("shape", "ratio"),
    [
        ((1, 3, 720, 1280), 0.375),
        ((1, 3, 720, 1280), 0.2),
        ((2, 3, 192, 256), 0.25),
        ((1, 3, 175, 231), 0.375),  # not exact: PyTorch's own kernel runs
    ],
)
def test_network_downsampling_matches_torch(shape: tuple[int, ...], ratio: float) -> None:
    x = torch.rand(shape, generator=torch.Generator().manual_seed(9))
    got = downsample_bilinear(x, ratio)
    ref = F.interpolate(
        x, scale_factor=ratio, mode="bilinear", align_corners=False, recompute_scale_factor=False
    )
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() < 2e-4
    assert (got - ref).abs().mean().item() < 1e-5
    assert downsample_bilinear(x, 1.0) is x
