"""Refiners that bring the low-resolution matte back to full resolution, guided by the image.

Both work on 4D tensors ``[N, C, h, w]`` and return the full-size ``fgr_residual`` (3 ch) and
``pha`` (1 ch).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _with_gray(x: Tensor) -> Tensor:
    return torch.cat([x, x.mean(dim=1, keepdim=True)], dim=1)


def _resize_to(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(
        x, size=(like.shape[2], like.shape[3]), mode="bilinear", align_corners=False
    )


class GuidedFilterRefiner(nn.Module):
    """Guided filter upsampling: per-pixel linear coefficients ``A, b`` found at low resolution
    from box-filtered statistics of the image and the matte, resized, applied to the full image.

    Subclasses say how to box-filter and how ``A`` follows from the statistics.
    """

    def box(self, x: Tensor) -> Tensor:
        """Returns the 3x3 box mean of each channel of ``x``, same size."""
        raise NotImplementedError

    def coefficients(self, cov_xy: Tensor, var_x: Tensor, hid: Tensor) -> Tensor:
        """Returns the slope ``A`` (4 ch) from the local covariance, variance and hidden map."""
        raise NotImplementedError

    def forward(
        self, src: Tensor, src_sm: Tensor, fgr: Tensor, pha: Tensor, hid: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Upsamples ``fgr`` (3 ch) and ``pha`` (1 ch) from ``src_sm``'s size to ``src``'s.

        Args:
            src: full-size image ``[N, 3, H, W]``.
            src_sm: downsampled image ``[N, 3, h, w]``.
            fgr: low-resolution foreground residual ``[N, 3, h, w]``.
            pha: low-resolution alpha ``[N, 1, h, w]``.
            hid: decoder hidden map ``[N, 16, h, w]``.

        Returns:
            The full-size foreground residual and alpha.
        """
        base_x = _with_gray(src_sm)
        base_y = torch.cat([fgr, pha], dim=1)
        mean_x = self.box(base_x)
        mean_y = self.box(base_y)
        cov_xy = self.box(base_x * base_y) - mean_x * mean_y
        var_x = self.box(base_x * base_x) - mean_x * mean_x
        a = self.coefficients(cov_xy, var_x, hid)
        b = mean_y - a * mean_x
        out = _resize_to(a, src) * _with_gray(src) + _resize_to(b, src)
        fgr_out, pha_out = out.split([3, 1], dim=1)
        return fgr_out, pha_out


class DeepGuidedFilterRefiner(GuidedFilterRefiner):
    """Guided filter whose coefficients come from a small learned 1x1 network."""

    def __init__(self, hid_channels: int = 16):
        super().__init__()
        self.box_filter = nn.Conv2d(4, 4, 3, padding=1, bias=False, groups=4)
        self.box_filter.weight.data[...] = 1 / 9
        self.conv = nn.Sequential(
            nn.Conv2d(4 * 2 + hid_channels, hid_channels, 1, bias=False),
            nn.BatchNorm2d(hid_channels),
            nn.ReLU(),
            nn.Conv2d(hid_channels, hid_channels, 1, bias=False),
            nn.BatchNorm2d(hid_channels),
            nn.ReLU(),
            nn.Conv2d(hid_channels, 4, 1),
        )

    def box(self, x: Tensor) -> Tensor:
        """Box mean through the learned depthwise convolution (weights 1/9)."""
        return self.box_filter(x)

    def coefficients(self, cov_xy: Tensor, var_x: Tensor, hid: Tensor) -> Tensor:
        """``A`` from the 1x1 network on ``[cov_xy, var_x, hid]``."""
        return self.conv(torch.cat([cov_xy, var_x, hid], dim=1))


class FastGuidedFilterRefiner(GuidedFilterRefiner):
    """Classic fast guided filter (radius 1, eps 1e-5); no learned weights."""

    def __init__(self, hid_channels: int = 16, eps: float = 1e-5):
        super().__init__()
        self.eps = eps

    def box(self, x: Tensor) -> Tensor:
        """Box mean by average pooling over a zero-padded 3x3 window."""
        return F.avg_pool2d(F.pad(x, [1, 1, 1, 1]), 3, stride=1)

    def coefficients(self, cov_xy: Tensor, var_x: Tensor, hid: Tensor) -> Tensor:
        """``A = cov_xy / (var_x + eps)``; ``hid`` is unused."""
        return cov_xy / (var_x + self.eps)
