"""The Robust Video Matting network: encoder, LR-ASPP, recurrent decoder, projection, refiner.

The module is stateless: the caller passes the recurrent state ``r1..r4`` in and gets the new
state back, so one network can serve many streams.

:meth:`MattingNetwork.forward` is the one forward pass. The two steps that other ways of running
the network do differently are hooks: :meth:`~MattingNetwork.downsample` (the fast CPU path
resizes through OpenCV, the ONNX graph takes the ratio as a tensor) and
:meth:`~MattingNetwork.refine` (the fast CPU path runs a fused guided filter).
"""

from __future__ import annotations

from torch import Tensor, nn

from app.resize import downsample

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


def restore_time(x: Tensor, src: Tensor) -> Tensor:
    """``x`` (``[B * T, C, H, W]``) reshaped to the leading dimensions of ``src`` (rank 4 or 5)."""
    if src.dim() == 4:
        return x
    return x.reshape(src.shape[:2] + x.shape[1:])


def finish(src: Tensor, fgr_res: Tensor, pha: Tensor) -> tuple[Tensor, Tensor]:
    """The foreground (``src`` plus its residual) and the alpha, clamped to 0..1."""
    return (fgr_res + src).clamp(0.0, 1.0), pha.clamp(0.0, 1.0)


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
        self.refiner_name = refiner
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
        x_sm = self.downsample(x, downsample_ratio)
        f1, f2, f3, f4 = self.backbone(x_sm)
        f4 = self.aspp(f4)
        hid, r1, r2, r3, r4 = self.decoder(x_sm, f1, f2, f3, f4, r1, r2, r3, r4, t)
        if segmentation_pass:
            return [restore_time(self.project_seg(hid), src), r1, r2, r3, r4]
        fgr_res, pha = self.project_mat(hid).split([3, 1], dim=1)
        if self.refine_full_res or downsample_ratio != 1.0:
            fgr, pha = self.refine(x, x_sm, fgr_res, pha, hid)
        else:
            fgr, pha = finish(x, fgr_res, pha)
        return [restore_time(fgr, src), restore_time(pha, src), r1, r2, r3, r4]

    def downsample(self, x: Tensor, ratio: float) -> Tensor:
        """Hook: the frames ``[N, 3, H, W]`` at the network's internal size."""
        return downsample(x, ratio)

    def refine(
        self, src: Tensor, src_sm: Tensor, fgr_res: Tensor, pha: Tensor, hid: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Hook: the full-size foreground and alpha, clamped, from the low-resolution ones."""
        fgr_res, pha = self.refiner(src, src_sm, fgr_res, pha, hid)
        return finish(src, fgr_res, pha)

    def copy_from(self, net: MattingNetwork) -> None:
        """Takes the weights, dtype, device and ``refine_full_res`` of ``net`` (same variant and
        refiner); ``net`` is not changed."""
        param = next(net.parameters())
        self.to(device=param.device, dtype=param.dtype)
        self.load_state_dict(net.state_dict())
        self.refine_full_res = net.refine_full_res
