"""Bilinear upsampling that is fast on the CPU.

PyTorch's CPU kernel for bilinear resizing of ``[N, C, H, W]`` float maps costs several times
more than OpenCV's (about 14 ms against 4 ms for eight 144x256 planes to 1280x720 on one core).
Both use half-pixel centres with edge replication (``align_corners=False``), so the results agree
to float rounding (about 1e-5 at a 5x scale). CPU float32 upsampling goes through OpenCV, plane by
plane into one preallocated tensor; everything else through :func:`torch.nn.functional.interpolate`.
"""

from __future__ import annotations

import cv2
import torch
from torch import Tensor
from torch.nn import functional as F


def upsample_bilinear(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Resizes ``x`` (``[N, C, h, w]``) to ``size`` (height, width) bilinearly.

    Args:
        x: the maps to resize.
        size: output (height, width).

    Returns:
        A new contiguous ``[N, C, height, width]`` tensor of x's dtype and device.
    """
    height, width = size
    n, c, h, w = x.shape
    if (
        x.device.type != "cpu"
        or x.dtype != torch.float32
        or x.requires_grad
        or height < h
        or width < w
    ):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    src = x.contiguous().numpy()
    out = torch.empty((n, c, height, width), dtype=x.dtype)
    dst = out.numpy()
    for i in range(n):
        for j in range(c):
            cv2.resize(src[i, j], (width, height), dst=dst[i, j], interpolation=cv2.INTER_LINEAR)
    return out
