"""MobileNetV3-Large encoder (dilated last stage), as RVM uses it.

Key names follow the official checkpoint: ``features.N`` for the stem, 15 inverted residual blocks
(``features.N.block.I``) and the final 1x1 convolution.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..architecture import MEAN, MOBILENET_BLOCKS, STD

BN_EPS = 0.001


def round_channels(value: float, divisor: int = 8) -> int:
    """Rounds ``value`` to a multiple of ``divisor``, never below it nor 10% under ``value``."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if out < 0.9 * value:
        out += divisor
    return out


def conv_bn(
    cin: int,
    cout: int,
    k: int,
    stride: int = 1,
    dilation: int = 1,
    groups: int = 1,
    act: nn.Module | None = None,
) -> nn.Sequential:
    """Convolution without bias, BatchNorm, then ``act`` if given (keys ``0``, ``1``)."""
    pad = (k - 1) // 2 * dilation
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout, eps=BN_EPS),
    ]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: pool, ``fc1``, ReLU, ``fc2``, hardsigmoid, scale."""

    def __init__(self, channels: int):
        super().__init__()
        squeeze = round_channels(channels / 4)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        """Returns ``x`` scaled per channel by its attention gate."""
        s = nn.functional.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.relu(self.fc1(s))))


class InvertedResidual(nn.Module):
    """Expand 1x1, depthwise kxk, optional squeeze-excite, project 1x1; residual if shapes keep."""

    def __init__(
        self,
        cin: int,
        k: int,
        exp: int,
        cout: int,
        se: bool,
        hswish: bool,
        stride: int,
        dilation: int,
    ):
        super().__init__()
        stride = 1 if dilation > 1 else stride
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if exp != cin:
            layers.append(conv_bn(cin, exp, 1, act=nn.Hardswish() if hswish else nn.ReLU()))
        layers.append(
            conv_bn(
                exp,
                exp,
                k,
                stride,
                dilation,
                groups=exp,
                act=nn.Hardswish() if hswish else nn.ReLU(),
            )
        )
        if se:
            layers.append(SqueezeExcite(exp))
        layers.append(conv_bn(exp, cout, 1))
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Runs the block, adding ``x`` back when the shape is kept."""
        y = self.block(x)
        return x + y if self.use_residual else y


class MobileNetV3LargeEncoder(nn.Module):
    """Normalises RGB input and returns features at 1/2, 1/4, 1/8 and 1/16 (16, 24, 40, 960 ch)."""

    channels = (16, 24, 40, 960)

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, 16, 3, stride=2, act=nn.Hardswish())]
        layers += [InvertedResidual(*cfg) for cfg in MOBILENET_BLOCKS]
        layers.append(conv_bn(160, 960, 1, act=nn.Hardswish()))
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Returns ``[f1, f2, f3, f4]`` for an RGB batch ``[N, 3, H, W]`` in 0..1."""
        x = (x - self.mean) / self.std
        feats: list[Tensor] = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == 1 or i == 3 or i == 6 or i == 16:
                feats.append(x)
        return feats
