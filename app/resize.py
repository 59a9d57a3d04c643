"""Bilinear and area resizing of ``[N, C, H, W]`` tensors, shared by the network and the compositor.

A leaf module: it imports torch (and OpenCV when a CPU fast path runs), nothing of the app.

- :func:`downsample` is the network's own downsampling by a ratio, in PyTorch alone (it runs inside
  the scripted and exported network): ``F.interpolate(x, scale_factor=ratio, mode="bilinear",
  align_corners=False, recompute_scale_factor=False)`` with the sample positions computed in
  float64.
- :func:`downsample_bilinear` is the same on the CPU through OpenCV where the output size is exactly
  the ratio times the input size (PyTorch maps with the ratio, OpenCV with the size quotient), and
  :func:`downsample` elsewhere.
- :func:`upsample_bilinear` and :func:`downsample_area` go through OpenCV for CPU float32 maps.
  PyTorch's CPU kernel for bilinear resizing costs several times more than OpenCV's (about 14 ms
  against 4 ms for eight 144x256 planes to 1280x720 on one core). Both use half-pixel centres
  with edge replication (``align_corners=False``), so the results agree to float rounding (about
  1e-5 at a 5x scale); area downsampling by a whole-number factor equals PyTorch's ``area`` mode
  to float rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def bilinear_taps(size_in: int, size_out: int, ratio: float, device: torch.device) -> list[Tensor]:
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


def downsample(x: Tensor, ratio: float, exact: bool = True) -> Tensor:
    """``x`` resized by ``ratio`` bilinearly, as the network sees it (``x`` itself at 1.0).

    The output is ``floor(H * ratio) x floor(W * ratio)``, sampled at half-pixel centres mapped
    with ``1 / ratio``. For float32 and float64 the sample positions are computed in float64
    (see :func:`bilinear_taps`); half precision and power-of-two scales, where PyTorch's
    positions are exact, use PyTorch's kernel.

    Args:
        x: frames ``[N, C, H, W]``.
        ratio: scale factor, in (0, 1] for the network.
        exact: False always uses PyTorch's kernel, for graphs that must convert to formats
            without ``index_select`` (CoreML); it differs by the float32 rounding of the positions.

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
    if power_of_two or not precise or not exact or height < 1 or width < 1:
        return F.interpolate(
            x,
            scale_factor=ratio,
            mode="bilinear",
            align_corners=False,
            recompute_scale_factor=False,
        )
    n, c, h, w = x.shape
    y0, y1, wy = bilinear_taps(h, height, ratio, x.device)
    x0, x1, wx = bilinear_taps(w, width, ratio, x.device)
    # Gathering along dim 1 of a contiguous 3D view copies whole rows: PyTorch's fast case.
    # (torch.lerp with a broadcast weight is many times slower than this multiply-add.)
    planes = x.reshape(n * c, h, w)
    top = planes.index_select(1, y0)
    rows = top + (planes.index_select(1, y1) - top) * wy.to(x.dtype).view(-1, 1)
    rows = rows.reshape(n * c * height, w)
    left = rows.index_select(1, x0)
    out = left + (rows.index_select(1, x1) - left) * wx.to(x.dtype)
    return out.reshape(n, c, height, width)


def _planes(x: Tensor, size: tuple[int, int], interpolation: str) -> Tensor:
    """``x`` resized plane by plane with OpenCV into one new tensor (``linear`` or ``area``)."""
    import cv2

    flag = cv2.INTER_LINEAR if interpolation == "linear" else cv2.INTER_AREA
    height, width = size
    src = x.contiguous().numpy()
    out = torch.empty((*x.shape[:2], height, width), dtype=x.dtype)
    dst = out.numpy()
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            cv2.resize(src[i, j], (width, height), dst=dst[i, j], interpolation=flag)
    return out


def _cpu_float(x: Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad


def downsample_bilinear(x: Tensor, ratio: float) -> Tensor:
    """:func:`downsample`, through OpenCV for CPU float32 frames whose size the ratio divides.

    Args:
        x: frames ``[N, C, H, W]``.
        ratio: the downsample ratio, at most 1.

    Returns:
        A new tensor (``x`` itself when ``ratio`` is 1).
    """
    h, w = x.shape[-2:]
    height, width = int(h * ratio), int(w * ratio)
    exact = height > 0 and width > 0 and h / height == 1 / ratio and w / width == 1 / ratio
    if ratio >= 1.0 or not _cpu_float(x) or not exact:
        return downsample(x, ratio)
    return _planes(x, (height, width), "linear")


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
    return _planes(x, size, "linear")


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
    return _planes(x, size, "area")
