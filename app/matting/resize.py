"""Bilinear resizing and area downsampling that are fast on the CPU.

PyTorch's CPU kernel for bilinear resizing of ``[N, C, H, W]`` float maps costs several times
more than OpenCV's (about 14 ms against 4 ms for eight 144x256 planes to 1280x720 on one core).
Both use half-pixel centres with edge replication (``align_corners=False``), so the results agree
to float rounding (about 1e-5 at a 5x scale). CPU float32 upsampling goes through OpenCV, plane by
plane into one preallocated tensor; everything else through :func:`torch.nn.functional.interpolate`.
Area downsampling (the average over each output pixel's footprint) goes through OpenCV the same
way; with a whole-number factor it equals PyTorch's ``area`` mode to float rounding. So does the
network's bilinear downsampling by a ratio, where the output size is exactly the ratio times the
input size (PyTorch maps with the ratio, OpenCV with the size quotient).
"""

from __future__ import annotations

import cv2
import torch
from torch import Tensor
from torch.nn import functional as F

from .model.network import downsample


def _planes(x: Tensor, size: tuple[int, int], interpolation: int) -> Tensor:
    height, width = size
    src = x.contiguous().numpy()
    out = torch.empty((*x.shape[:2], height, width), dtype=x.dtype)
    dst = out.numpy()
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            cv2.resize(src[i, j], (width, height), dst=dst[i, j], interpolation=interpolation)
    return out


def _cpu_float(x: Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad


def upsample_bilinear(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Resizes ``x`` (``[N, C, h, w]``) to ``size`` (height, width) bilinearly.

    Args:
        x: the maps to resize.
        size: output (height, width).

    Returns:
        A new contiguous ``[N, C, height, width]`` tensor of x's dtype and device.
    """
    height, width = size
    if not _cpu_float(x) or height < x.shape[2] or width < x.shape[3]:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return _planes(x, size, cv2.INTER_LINEAR)


def downsample_area(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Shrinks ``x`` (``[N, C, h, w]``) to ``size`` (height, width), averaging each footprint.

    Args:
        x: the maps to shrink.
        size: output (height, width), at most the input size.

    Returns:
        A new contiguous ``[N, C, height, width]`` tensor of x's dtype and device.
    """
    height, width = size
    if not _cpu_float(x) or height > x.shape[2] or width > x.shape[3]:
        return F.interpolate(x, size=size, mode="area")
    return _planes(x, size, cv2.INTER_AREA)


def downsample_bilinear(x: Tensor, ratio: float) -> Tensor:
    """Shrinks ``x`` (``[N, C, H, W]``) by ``ratio`` as the network does (bilinear, no antialias).

    The output is ``floor(H * ratio) x floor(W * ratio)``, sampled at half-pixel centres mapped
    with ``1 / ratio``.

    Args:
        x: the frames.
        ratio: the downsample ratio, at most 1.

    Returns:
        A new tensor (``x`` itself when ``ratio`` is 1).
    """
    h, w = x.shape[-2:]
    height, width = int(h * ratio), int(w * ratio)
    exact = height > 0 and width > 0 and h / height == 1 / ratio and w / width == 1 / ratio
    if ratio >= 1.0 or not _cpu_float(x) or not exact:
        return downsample(x, ratio)
    return _planes(x, (height, width), cv2.INTER_LINEAR)
