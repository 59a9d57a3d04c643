"""Recurrent decoder: ConvGRU bottleneck, three upsampling blocks with ConvGRUs, output block.

Frames arrive flattened as ``[B*T, C, h, w]``; only the ConvGRUs look across time, stepping through
the ``T`` frames of each clip in order. The state ``r`` of each GRU is ``[B, C, h, w]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class ConvGRU(nn.Module):
    """Convolutional GRU over ``channels``: gates ``ih`` (reset, update) and candidate ``hh``."""

    def __init__(self, channels: int, kernel: int = 3):
        super().__init__()
        self.channels = channels
        pad = kernel // 2
        self.ih = nn.Sequential(
            nn.Conv2d(channels * 2, channels * 2, kernel, padding=pad), nn.Sigmoid()
        )
        self.hh = nn.Sequential(nn.Conv2d(channels * 2, channels, kernel, padding=pad), nn.Tanh())

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        """One GRU update of state ``h`` by input ``x`` (both ``[B, C, h, w]``); returns ``h'``."""
        r, z = self.ih(torch.cat([x, h], dim=1)).split(self.channels, dim=1)
        c = self.hh(torch.cat([x, r * h], dim=1))
        return (1 - z) * h + z * c

    def forward(self, x: Tensor, h: Tensor | None, t: int) -> tuple[Tensor, Tensor]:
        """Steps ``x`` (``[B*T, C, h, w]``) through time from ``h``; returns outputs, last state."""
        first = x[::t] if t > 1 else x
        # A state of zeros shaped [1, 1, 1, 1] (the official ONNX convention) broadcasts.
        h = torch.zeros_like(first) if h is None else h.expand_as(first)
        if t == 1:
            h = self.step(x, h)
            return h, h
        xs = x.reshape([x.shape[0] // t, t] + list(x.shape[1:]))
        outs: list[Tensor] = []
        for i in range(t):
            h = self.step(xs[:, i], h)
            outs.append(h)
        return torch.stack(outs, dim=1).flatten(0, 1), h


def _up2(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class BottleneckBlock(nn.Module):
    """ConvGRU on the second half of the LR-ASPP channels."""

    def __init__(self, channels: int):
        super().__init__()
        self.half = channels // 2
        self.gru = ConvGRU(self.half)

    def forward(self, x: Tensor, r: Tensor | None, t: int) -> tuple[Tensor, Tensor]:
        """Returns ``x`` with its second half run through the GRU, and the new state."""
        a, b = x.split(self.half, dim=1)
        b, r = self.gru(b, r, t)
        return torch.cat([a, b], dim=1), r


class UpsamplingBlock(nn.Module):
    """Upsample x2, crop to the skip size, concat [x, skip, image], conv, ConvGRU on half."""

    def __init__(self, cin: int, cskip: int, csrc: int, cout: int):
        super().__init__()
        self.half = cout // 2
        self.conv = nn.Sequential(*_conv_bn_relu(cin + cskip + csrc, cout))
        self.gru = ConvGRU(self.half)

    def forward(
        self, x: Tensor, f: Tensor, s: Tensor, r: Tensor | None, t: int
    ) -> tuple[Tensor, Tensor]:
        """Decodes ``x`` one scale up with skip ``f`` and image ``s``; returns it and the state."""
        x = _up2(x)[:, :, : s.shape[2], : s.shape[3]]
        x = self.conv(torch.cat([x, f, s], dim=1))
        a, b = x.split(self.half, dim=1)
        b, r = self.gru(b, r, t)
        return torch.cat([a, b], dim=1), r


class OutputBlock(nn.Module):
    """Upsample x2, crop to the image size, concat the image, two conv + BN + ReLU."""

    def __init__(self, cin: int, csrc: int, cout: int):
        super().__init__()
        self.conv = nn.Sequential(*_conv_bn_relu(cin + csrc, cout), *_conv_bn_relu(cout, cout))

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        """Returns the hidden map at the size of image ``s``."""
        x = _up2(x)[:, :, : s.shape[2], : s.shape[3]]
        return self.conv(torch.cat([x, s], dim=1))


class RecurrentDecoder(nn.Module):
    """Decodes encoder features to a 16-channel hidden map at the input size, updating r1..r4."""

    def __init__(self, feature_channels: list[int], decoder_channels: list[int]):
        super().__init__()
        self.avgpool = nn.AvgPool2d(2, 2, count_include_pad=False, ceil_mode=True)
        self.decode4 = BottleneckBlock(feature_channels[3])
        self.decode3 = UpsamplingBlock(
            feature_channels[3], feature_channels[2], 3, decoder_channels[0]
        )
        self.decode2 = UpsamplingBlock(
            decoder_channels[0], feature_channels[1], 3, decoder_channels[1]
        )
        self.decode1 = UpsamplingBlock(
            decoder_channels[1], feature_channels[0], 3, decoder_channels[2]
        )
        self.decode0 = OutputBlock(decoder_channels[2], 3, decoder_channels[3])

    def forward(
        self,
        s0: Tensor,
        f1: Tensor,
        f2: Tensor,
        f3: Tensor,
        f4: Tensor,
        r1: Tensor | None,
        r2: Tensor | None,
        r3: Tensor | None,
        r4: Tensor | None,
        t: int,
    ) -> list[Tensor]:
        """Returns ``[hid, r1, r2, r3, r4]``: the 16-channel hidden map and the new state.

        Args:
            s0: the (downsampled) image, ``[B*T, 3, h, w]``.
            f1: encoder features at 1/2 of ``s0``.
            f2: encoder features at 1/4.
            f3: encoder features at 1/8.
            f4: LR-ASPP output at 1/16.
            r1: recurrent state at 1/2 (None at the start, as are the others).
            r2: recurrent state at 1/4.
            r3: recurrent state at 1/8.
            r4: recurrent state at 1/16.
            t: frames per clip in the flattened batch.
        """
        s1 = self.avgpool(s0)
        s2 = self.avgpool(s1)
        s3 = self.avgpool(s2)
        x4, r4 = self.decode4(f4, r4, t)
        x3, r3 = self.decode3(x4, f3, s3, r3, t)
        x2, r2 = self.decode2(x3, f2, s2, r2, t)
        x1, r1 = self.decode1(x2, f1, s1, r1, t)
        x0 = self.decode0(x1, s0)
        return [x0, r1, r2, r3, r4]
