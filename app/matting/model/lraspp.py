"""Lite R-ASPP head: a 1x1 projection gated by globally pooled channel attention."""

from __future__ import annotations

from torch import Tensor, nn


class LRASPP(nn.Module):
    """``aspp1(x) * aspp2(x)``: 1x1 conv + BN + ReLU, times a pooled 1x1 conv + sigmoid gate."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.aspp1 = nn.Sequential(
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
        )
        self.aspp2 = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        """Returns the gated projection of ``x`` (``[N, cin, h, w]`` -> ``[N, cout, h, w]``)."""
        return self.aspp1(x) * self.aspp2(x)
