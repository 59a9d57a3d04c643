"""The Robust Video Matting network: encoder, LR-ASPP, recurrent decoder, projection, refiner.

The module is stateless: the caller passes the recurrent state ``r1..r4`` in and gets the new
state back, so one network can serve many streams.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .decoder import RecurrentDecoder
from .lraspp import LRASPP
from .mobilenetv3 import MobileNetV3LargeEncoder
from .refiner import DeepGuidedFilterRefiner, FastGuidedFilterRefiner
from .resnet import ResNet50Encoder

VARIANTS = {
    # encoder, LR-ASPP out channels, decoder channels (decode3, decode2, decode1, decode0)
    "mobilenetv3": (MobileNetV3LargeEncoder, 128, [80, 40, 32, 16]),
    "resnet50": (ResNet50Encoder, 256, [128, 64, 32, 16]),
}
REFINERS = {
    "deep_guided_filter": DeepGuidedFilterRefiner,
    "fast_guided_filter": FastGuidedFilterRefiner,
}


class Projection(nn.Module):
    """1x1 convolution with bias."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Returns the projected map."""
        return self.conv(x)


def _taps(size_in: int, size_out: int, ratio: float, device: torch.device) -> list[Tensor]:
    """Bilinear source taps along one axis: first index, second index, weight of the second.

    The half-pixel position ``(i + 0.5) / ratio - 0.5`` is computed in float64. PyTorch's float32
    kernel is off by up to about 1e-4 of a pixel near x = 1280, which shows in the matte (at
    1280x720@0.375 it doubles the difference from the official export).
    """
    pos = (torch.arange(size_out, dtype=torch.float64, device=device) + 0.5) / ratio - 0.5
    pos = pos.clamp(min=0.0)
    first = pos.floor().clamp(max=size_in - 1)
    weight = pos - first
    first_index = first.long()
    second_index = (first_index + 1).clamp(max=size_in - 1)
    return [first_index, second_index, weight]


def downsample(x: Tensor, ratio: float) -> Tensor:
    """``x`` resized by ``ratio`` bilinearly, as the network sees it (``x`` itself at 1.0).

    This is ``F.interpolate(x, scale_factor=ratio, mode="bilinear", align_corners=False,
    recompute_scale_factor=False)``: the output is ``floor(H * ratio) x floor(W * ratio)``,
    sampled at half-pixel centres mapped with ``1 / ratio``. For float32 and float64 the sample
    positions are computed in float64 (see :func:`_taps`); half precision and power-of-two scales,
    where PyTorch's positions are exact, use PyTorch's kernel.

    Args:
        x: frames ``[N, C, H, W]``.
        ratio: scale factor, in (0, 1] for the network.

    Returns:
        The resized frames.
    """
    if ratio == 1.0:
        return x
    height, width = int(x.shape[2] * ratio), int(x.shape[3] * ratio)
    scale = 1.0 / ratio
    # At a power-of-two scale (0.5, 0.25, ...) PyTorch's float32 positions are exact already.
    power_of_two = scale == float(int(scale)) and (int(scale) & (int(scale) - 1)) == 0
    precise = x.dtype == torch.float32 or x.dtype == torch.float64
    if power_of_two or not precise or height < 1 or width < 1:
        return F.interpolate(
            x,
            scale_factor=ratio,
            mode="bilinear",
            align_corners=False,
            recompute_scale_factor=False,
        )
    n, c, h, w = x.shape
    y0, y1, wy = _taps(h, height, ratio, x.device)
    x0, x1, wx = _taps(w, width, ratio, x.device)
    # Gathering along dim 1 of a contiguous 3D view copies whole rows: PyTorch's fast case.
    # (torch.lerp with a broadcast weight is many times slower than this multiply-add.)
    planes = x.reshape(n * c, h, w)
    top = planes.index_select(1, y0)
    rows = top + (planes.index_select(1, y1) - top) * wy.to(x.dtype).view(-1, 1)
    rows = rows.reshape(n * c * height, w)
    left = rows.index_select(1, x0)
    out = left + (rows.index_select(1, x1) - left) * wx.to(x.dtype)
    return out.reshape(n, c, height, width)


def restore_time(x: Tensor, src: Tensor) -> Tensor:
    """``x`` (``[B * T, C, H, W]``) reshaped to the leading dimensions of ``src`` (rank 4 or 5)."""
    lead = src.shape[:2] if src.dim() == 5 else src.shape[:1]
    return x.reshape(lead + x.shape[1:])


class MattingNetwork(nn.Module):
    """RVM: ``forward(src, r1, r2, r3, r4, downsample_ratio) -> [fgr, pha, r1, r2, r3, r4]``.

    Args:
        variant: ``mobilenetv3`` or ``resnet50``.
        refiner: ``deep_guided_filter`` (the trained one) or ``fast_guided_filter``.

    Attributes:
        refine_full_res: also run the refiner when ``downsample_ratio`` is 1. The original PyTorch
            model skips it there; the official ONNX export always runs it. Off by default.
    """

    def __init__(self, variant: str = "mobilenetv3", refiner: str = "deep_guided_filter"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"Unknown variant '{variant}': choose one of {', '.join(VARIANTS)}.")
        if refiner not in REFINERS:
            raise ValueError(f"Unknown refiner '{refiner}': choose one of {', '.join(REFINERS)}.")
        encoder, aspp_channels, decoder_channels = VARIANTS[variant]
        self.variant = variant
        self.backbone = encoder()
        feature_channels = list(encoder.channels)
        self.aspp = LRASPP(feature_channels[3], aspp_channels)
        self.decoder = RecurrentDecoder([*feature_channels[:3], aspp_channels], decoder_channels)
        self.project_mat = Projection(decoder_channels[3], 4)
        self.project_seg = Projection(decoder_channels[3], 1)
        self.refiner = REFINERS[refiner](decoder_channels[3])
        self.refine_full_res = False

    def forward(
        self,
        src: Tensor,
        r1: Tensor | None = None,
        r2: Tensor | None = None,
        r3: Tensor | None = None,
        r4: Tensor | None = None,
        downsample_ratio: float = 1.0,
        segmentation_pass: bool = False,
    ) -> list[Tensor]:
        """Mattes ``src`` (RGB 0..1, ``[B, 3, H, W]`` or ``[B, T, 3, H, W]``).

        Returns:
            ``[fgr, pha, r1, r2, r3, r4]`` (``[seg, r1, r2, r3, r4]`` for a segmentation pass);
            fgr and pha have the rank and size of ``src``; the state is rank 4.
        """
        t = src.shape[1] if src.dim() == 5 else 1
        x = src.flatten(0, 1) if src.dim() == 5 else src
        x_sm = downsample(x, downsample_ratio)
        f1, f2, f3, f4 = self.backbone(x_sm)
        f4 = self.aspp(f4)
        hid, r1, r2, r3, r4 = self.decoder(x_sm, f1, f2, f3, f4, r1, r2, r3, r4, t)
        if segmentation_pass:
            return [restore_time(self.project_seg(hid), src), r1, r2, r3, r4]
        fgr_res, pha = self.project_mat(hid).split([3, 1], dim=1)
        if downsample_ratio != 1.0 or self.refine_full_res:
            fgr_res, pha = self.refiner(x, x_sm, fgr_res, pha, hid)
        fgr = (fgr_res + x).clamp(0.0, 1.0)
        pha = pha.clamp(0.0, 1.0)
        return [restore_time(fgr, src), restore_time(pha, src), r1, r2, r3, r4]
