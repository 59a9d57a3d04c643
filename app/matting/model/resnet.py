"""ResNet-50 encoder with a dilated last stage (output stride 16), as RVM uses it.

Key names follow the usual ResNet layout (``conv1``, ``bn1``, ``layerN.M.convK``, ``downsample``);
there is no classifier head and no input normalisation.
"""

from __future__ import annotations

from torch import Tensor, nn

BN_EPS = 1e-5


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided or dilated), 1x1 expand x4, identity or projected shortcut."""

    expansion = 4

    def __init__(
        self,
        cin: int,
        width: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=BN_EPS)
        self.conv2 = nn.Conv2d(
            width, width, 3, stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(width, eps=BN_EPS)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """Returns ``relu(residual(x) + shortcut(x))``."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _stage(
    cin: int, width: int, blocks: int, stride: int, dilation: int, first_dilation: int
) -> nn.Sequential:
    cout = width * Bottleneck.expansion
    down = None
    if stride != 1 or cin != cout:
        down = nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout, eps=BN_EPS)
        )
    layers = [Bottleneck(cin, width, stride, first_dilation, down)]
    layers += [Bottleneck(cout, width, 1, dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet50Encoder(nn.Module):
    """Returns features at 1/2, 1/4, 1/8 and 1/16 (64, 256, 512, 2048 channels)."""

    channels = (64, 256, 512, 2048)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=BN_EPS)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _stage(64, 64, 3, 1, 1, 1)
        self.layer2 = _stage(256, 128, 4, 2, 1, 1)
        self.layer3 = _stage(512, 256, 6, 2, 1, 1)
        # The last stage trades its stride for dilation 2 (its first block keeps dilation 1).
        self.layer4 = _stage(1024, 512, 3, 1, 2, 1)

    def forward(self, x: Tensor) -> list[Tensor]:
        """Returns ``[f1, f2, f3, f4]`` for an RGB batch ``[N, 3, H, W]`` in 0..1."""
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer4(self.layer3(f3))
        return [f1, f2, f3, f4]
