"""Faster inference for the RVM network on the CPU, built from a loaded network without changing it.

What changes against running :class:`~app.matting.model.MattingNetwork` as it is:

- Every BatchNorm is folded into the convolution before it, and each convolution runs with its
  activation as one oneDNN call (:mod:`app.matting.fusion`), in a copy of the network; the
  original keeps the official state_dict layout.
- The frames are downsampled through OpenCV where it is exact (:mod:`app.resize`) and the
  network runs in the channels-last layout.
- The deep guided filter runs its four box filters as one 16-channel pass and does the full-size
  work in as few passes as possible: the residual ``+ src`` of the foreground is folded into the
  low-resolution coefficient ``A`` (bilinear resizing keeps ``A + 1 = resize(A) + 1``), ``A`` and
  ``b`` are resized together as one 8-channel map, and the output is one multiply-add per channel
  written straight into place and clamped there. On the CPU the resize goes through OpenCV,
  several times faster than PyTorch's kernel.
- :class:`FastRunner` tunes the thread count while it runs (:mod:`app.matting.tuning`).

The numbers stay those of the network: the differences are float rounding (``tests/test_fast.py``).
"""

from __future__ import annotations

import time

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from app.resize import downsample_bilinear, upsample_bilinear

from .fusion import fold_batchnorm, fuse_activations
from .model import MattingNetwork
from .model.refiner import DeepGuidedFilterRefiner
from .tuning import ThreadTuner


class FusedGuidedFilter(nn.Module):
    """The deep guided filter refiner with the same weights, in fewer full-size passes.

    Args:
        refiner: a trained :class:`DeepGuidedFilterRefiner` (its BatchNorms may be folded).
    """

    def __init__(self, refiner: DeepGuidedFilterRefiner):
        super().__init__()
        # The low-resolution ``A`` (the foreground's residual folded in) and ``b`` of the latest
        # call, ``[N, 8, h, w]``: what carries a matte to another frame along the motion
        # (:mod:`app.compose.motion`). Read once the call returns; each call makes a new tensor.
        self.coefficients: Tensor | None = None
        self.conv = refiner.conv
        weight = refiner.box_filter.weight.detach()
        self.register_buffer("box_weight", weight.repeat(4, 1, 1, 1).clone(), persistent=False)
        # A gets +1 on the three foreground channels: fgr = clamp(A * src + b + src).
        self.register_buffer(
            "residual", torch.tensor([1.0, 1.0, 1.0, 0.0]).view(1, 4, 1, 1), persistent=False
        )

    def forward(
        self, src: Tensor, src_sm: Tensor, fgr: Tensor, pha: Tensor, hid: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Returns the final full-size ``fgr`` and ``pha``, already clamped to 0..1."""
        base_x = torch.cat([src_sm, src_sm.mean(dim=1, keepdim=True)], dim=1)
        base_y = torch.cat([fgr, pha], dim=1)
        stacked = torch.cat([base_x, base_y, base_x * base_y, base_x * base_x], dim=1)
        box = F.conv2d(stacked, self.box_weight.to(stacked.dtype), padding=1, groups=16)
        mean_x, mean_y, mean_xy, mean_xx = box.split(4, dim=1)
        cov_xy = mean_xy - mean_x * mean_y
        var_x = mean_xx - mean_x * mean_x
        a = self.conv(torch.cat([cov_xy, var_x, hid], dim=1))
        b = mean_y - a * mean_x
        coeffs = torch.cat([a + self.residual.to(a.dtype), b], dim=1)
        self.coefficients = coeffs
        src = src.contiguous()
        big = upsample_bilinear(coeffs, (src.shape[2], src.shape[3]))
        a_big, b_big = big.split(4, dim=1)
        fgr_out = torch.addcmul(b_big[:, :3], a_big[:, :3], src).clamp_(0.0, 1.0)
        # The channel mean as two adds of whole planes: a third of the time of ``mean(dim=1)``.
        gray = torch.add(src[:, 0:1], src[:, 1:2]).add_(src[:, 2:3]).div_(3.0)
        pha_out = torch.addcmul(b_big[:, 3:], a_big[:, 3:], gray).clamp_(0.0, 1.0)
        return fgr_out, pha_out


class FastMattingNetwork(MattingNetwork):
    """Same interface and numbers as :class:`MattingNetwork`, run faster on the CPU in float32.

    The forward pass is the network's; the two hooks differ: :meth:`downsample` goes through
    OpenCV and hands the backbone channels-last frames, :meth:`refine` runs the fused guided
    filter.

    Args:
        net: a loaded network; it is copied, never changed.
        channels_last: run the convolutions in the channels-last layout.
        fuse: fold activations into the convolutions.
    """

    def __init__(self, net: MattingNetwork, channels_last: bool = True, fuse: bool = True):
        super().__init__(net.variant, net.refiner_name)
        self.copy_from(net)
        self.eval()
        fold_batchnorm(self)
        if isinstance(self.refiner, DeepGuidedFilterRefiner):
            self.refiner = FusedGuidedFilter(self.refiner)
        self.channels_last = channels_last
        if fuse:
            fuse_activations(self)
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.eval().requires_grad_(False)

    def downsample(self, x: Tensor, ratio: float) -> Tensor:
        """The frames at the internal size, through OpenCV where exact, channels-last."""
        x_sm = downsample_bilinear(x, ratio)
        if self.channels_last:
            x_sm = x_sm.contiguous(memory_format=torch.channels_last)
        return x_sm

    def refine(
        self, src: Tensor, src_sm: Tensor, fgr_res: Tensor, pha: Tensor, hid: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The fused guided filter's final foreground and alpha (or the network's own refiner)."""
        if isinstance(self.refiner, FusedGuidedFilter):
            return self.refiner(src, src_sm, fgr_res, pha, hid)
        return super().refine(src, src_sm, fgr_res, pha, hid)


class FastRunner:
    """``(src, rec, ratio) -> (fgr, pha, rec)`` on a :class:`FastMattingNetwork`, CPU, fp32.

    Args:
        net: the loaded network (copied, never changed), or a :class:`FastMattingNetwork` to run
            as it is (``channels_last`` and ``fuse`` are then its own).
        threads: fixed intra-op thread count, or None to let a :class:`ThreadTuner` choose
            between one thread and all of PyTorch's threads.
        channels_last: run the convolutions in the channels-last layout.
        fuse: fold activations into the convolutions.

    Not for concurrent calls: one runner serves one stream from one thread.
    """

    name = "torch-fast"

    def __init__(
        self,
        net: MattingNetwork | FastMattingNetwork,
        *,
        threads: int | None = None,
        channels_last: bool = True,
        fuse: bool = True,
    ):
        if not isinstance(net, FastMattingNetwork):
            net = FastMattingNetwork(net, channels_last=channels_last, fuse=fuse)
        self.net = net
        most = torch.get_num_threads()
        self.tuner = ThreadTuner([threads] if threads else [most, 1])
        self._key: tuple | None = None
        self._skip = 0

    @property
    def coefficients(self) -> Tensor | None:
        """The guided filter's low-resolution coefficients of the latest step (see
        :class:`FusedGuidedFilter`), or None when the network has no deep guided filter."""
        refiner = self.net.refiner
        return refiner.coefficients if isinstance(refiner, FusedGuidedFilter) else None

    @property
    def threads(self) -> int:
        """The thread count steps currently run with."""
        return self.tuner.best

    def __call__(self, src: Tensor, rec: list, ratio: float) -> tuple[Tensor, Tensor, list]:
        key = (tuple(src.shape), ratio, src.dtype)
        if key != self._key:
            self._key = key
            self.tuner.reset()
            self._skip = 2  # first steps at a new size pay for allocations and kernel choice
        n = self.tuner.next()
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
        start = time.perf_counter()
        with torch.inference_mode():
            fgr, pha, *new_rec = self.net(src, *rec, downsample_ratio=ratio)
        if self._skip:
            self._skip -= 1
        else:
            self.tuner.record(n, time.perf_counter() - start)
        return fgr, pha, new_rec
