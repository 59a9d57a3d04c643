"""Faster inference for the RVM network, built from a loaded network without touching its modules.

What changes against running :class:`~app.matting.model.MattingNetwork` as it is:

- Every BatchNorm is folded into the convolution before it (a copy of the network; the original
  keeps the official state_dict layout).
- The deep guided filter runs its four box filters as one 16-channel pass and does the full-size
  work in as few passes as possible: the residual ``+ src`` of the foreground is folded into the
  low-resolution coefficient ``A`` (bilinear resizing keeps ``A + 1 = resize(A) + 1``), ``A`` and
  ``b`` are resized together as one 8-channel map, and the output is one multiply-add per channel
  written straight into place and clamped there. On the CPU the resize goes through OpenCV
  (:mod:`app.matting.resize`), several times faster than PyTorch's kernel.

The numbers stay those of the network: the differences are float rounding (``tests/test_fast.py``).
"""

from __future__ import annotations

import copy
import ctypes
import statistics
import sys
import time
from collections import deque
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .model import MattingNetwork
from .model.network import restore_time
from .model.refiner import DeepGuidedFilterRefiner
from .resize import downsample_bilinear, upsample_bilinear


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1), requires_grad=False)
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias, requires_grad=False)


def fold_batchnorm(module: nn.Module) -> int:
    """Folds each eval-mode BatchNorm into the convolution registered just before it, in place.

    A BatchNorm is folded when it directly follows a ``Conv2d`` with as many output channels among
    its parent's children (``Sequential`` layers, or ``convN``/``bnN`` attribute pairs); it is then
    replaced by an identity.

    Returns:
        How many BatchNorm layers were folded.
    """
    folded = 0
    for parent in list(module.modules()):
        prev = None
        for name, child in list(parent.named_children()):
            if (
                isinstance(child, nn.BatchNorm2d)
                and isinstance(prev, nn.Conv2d)
                and prev.out_channels == child.num_features
                and not child.training
            ):
                _fold(prev, child)
                setattr(parent, name, nn.Identity())
                folded += 1
            prev = child
    return folded


_ACTIVATIONS = {
    nn.ReLU: "relu",
    nn.Hardswish: "hardswish",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.Hardsigmoid: "hardsigmoid",
}


def _pointwise_op() -> object | None:
    """oneDNN's convolution with a fused activation, when this PyTorch build has it."""
    mkldnn = getattr(torch.ops, "mkldnn", None)
    try:
        op = mkldnn._convolution_pointwise.default  # type: ignore[union-attr]
        x = torch.rand(1, 2, 4, 4)
        op(x, torch.ones(2, 2, 1, 1), None, [0, 0], [1, 1], [1, 1], 1, "relu", [], "")
    except (AttributeError, RuntimeError):
        return None
    return op


class FusedConv(nn.Module):
    """A convolution and the activation after it as one oneDNN call (plain PyTorch without oneDNN).

    Args:
        conv: the convolution (weights shared, not copied).
        act: ``relu``, ``hardswish``, ``sigmoid``, ``tanh``, ``hardsigmoid`` or None.
        op: the fused operator, or None to run ``conv`` and the activation separately.
    """

    def __init__(self, conv: nn.Conv2d, act: str | None, op: object | None):
        super().__init__()
        if isinstance(conv.padding, str):
            raise ValueError("FusedConv needs numeric padding.")
        self.weight = conv.weight
        self.bias = conv.bias
        self.padding = list(conv.padding)
        self.stride = list(conv.stride)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.act = act or "none"
        self._op = op

    def forward(self, x: Tensor) -> Tensor:
        if self._op is not None and x.device.type == "cpu" and x.dtype == torch.float32:
            return self._op(
                x,
                self.weight,
                self.bias,
                self.padding,
                self.stride,
                self.dilation,
                self.groups,
                self.act,
                [],
                "",
            )
        y = F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )
        if self.act == "relu":
            return F.relu(y)
        if self.act == "hardswish":
            return F.hardswish(y)
        if self.act == "sigmoid":
            return torch.sigmoid(y)
        if self.act == "tanh":
            return torch.tanh(y)
        if self.act == "hardsigmoid":
            return F.hardsigmoid(y)
        return y


def fuse_activations(module: nn.Module) -> int:
    """Replaces convolutions by :class:`FusedConv`, taking in the activation that follows them.

    Inside a ``Sequential`` the activation after a convolution (identities in between skipped,
    as left by :func:`fold_batchnorm`) is merged into it and replaced by an identity. Other
    convolutions become a :class:`FusedConv` without activation. Does nothing when this
    PyTorch build lacks oneDNN's fused convolution.

    Returns:
        How many activations were merged.
    """
    op = _pointwise_op()
    if op is None:
        return 0
    merged = 0
    for parent in list(module.modules()):
        children = list(parent.named_children())
        for i, (name, child) in enumerate(children):
            if not isinstance(child, nn.Conv2d) or isinstance(child.padding, str):
                continue
            act_name = None
            if isinstance(parent, nn.Sequential):
                nxt = next(
                    ((n, c) for n, c in children[i + 1 :] if not isinstance(c, nn.Identity)), None
                )
                if nxt is not None and type(nxt[1]) in _ACTIVATIONS:
                    act_name = _ACTIVATIONS[type(nxt[1])]
                    setattr(parent, nxt[0], nn.Identity())
                    merged += 1
            setattr(parent, name, FusedConv(child, act_name, op))
    return merged


class FusedGuidedFilter(nn.Module):
    """The deep guided filter refiner with the same weights, in fewer full-size passes.

    Args:
        refiner: a trained :class:`DeepGuidedFilterRefiner` (its BatchNorms may be folded).
    """

    def __init__(self, refiner: DeepGuidedFilterRefiner):
        super().__init__()
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
        src = src.contiguous()
        big = upsample_bilinear(coeffs, (src.shape[2], src.shape[3]))
        a_big, b_big = big.split(4, dim=1)
        fgr_out = torch.addcmul(b_big[:, :3], a_big[:, :3], src).clamp_(0.0, 1.0)
        # The channel mean as two adds of whole planes: a third of the time of ``mean(dim=1)``.
        gray = torch.add(src[:, 0:1], src[:, 1:2]).add_(src[:, 2:3]).div_(3.0)
        pha_out = torch.addcmul(b_big[:, 3:], a_big[:, 3:], gray).clamp_(0.0, 1.0)
        return fgr_out, pha_out


class FastMattingNetwork(nn.Module):
    """Same interface and numbers as :class:`MattingNetwork` (matting pass only), run faster.

    Args:
        net: a loaded network; it is copied, never changed.
    """

    def __init__(self, net: MattingNetwork, channels_last: bool = True, fuse: bool = True):
        super().__init__()
        net = copy.deepcopy(net).eval()
        fold_batchnorm(net)
        self.backbone = net.backbone
        self.aspp = net.aspp
        self.decoder = net.decoder
        self.project_mat = net.project_mat
        self.fused = isinstance(net.refiner, DeepGuidedFilterRefiner)
        self.refiner = FusedGuidedFilter(net.refiner) if self.fused else net.refiner
        self.refine_full_res = net.refine_full_res
        self.channels_last = channels_last
        if fuse:
            fuse_activations(self)
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.eval().requires_grad_(False)

    def forward(
        self,
        src: Tensor,
        r1: Tensor | None = None,
        r2: Tensor | None = None,
        r3: Tensor | None = None,
        r4: Tensor | None = None,
        downsample_ratio: float = 1.0,
    ) -> list[Tensor]:
        """Mattes ``src`` (``[B, 3, H, W]`` or ``[B, T, 3, H, W]``); see ``MattingNetwork``."""
        t = src.shape[1] if src.dim() == 5 else 1
        x = src.flatten(0, 1) if src.dim() == 5 else src
        x_sm = downsample_bilinear(x, downsample_ratio)
        if self.channels_last:
            x_sm = x_sm.contiguous(memory_format=torch.channels_last)
        f1, f2, f3, f4 = self.backbone(x_sm)
        f4 = self.aspp(f4)
        hid, r1, r2, r3, r4 = self.decoder(x_sm, f1, f2, f3, f4, r1, r2, r3, r4, t)
        fgr_res, pha = self.project_mat(hid).split([3, 1], dim=1)
        if downsample_ratio != 1.0 or self.refine_full_res:
            if self.fused:
                fgr, pha = self.refiner(x, x_sm, fgr_res, pha, hid)
            else:
                fgr_res, pha = self.refiner(x, x_sm, fgr_res, pha, hid)
                fgr, pha = (fgr_res + x).clamp(0.0, 1.0), pha.clamp(0.0, 1.0)
        else:
            fgr, pha = (fgr_res + x).clamp(0.0, 1.0), pha.clamp(0.0, 1.0)
        return [restore_time(fgr, src), restore_time(pha, src), r1, r2, r3, r4]


class ThreadTuner:
    """Picks how many intra-op threads the network uses, from the times of the steps it runs.

    More threads are faster on an idle machine; on a busy one (other programs, the app's own
    compositing thread, the video call) every parallel region waits for a descheduled thread and
    one thread can be several times faster. The tuner keeps the recent step times of each choice,
    uses the fastest, and every ``explore_every`` steps runs ``probe`` steps with each other choice
    so that a change of load is noticed.

    Args:
        choices: thread counts to choose from.
        explore_every: steps between two probes of the other choices.
        probe: steps each other choice runs per probe.
        history: recent times kept per choice.
    """

    def __init__(
        self,
        choices: Sequence[int],
        explore_every: int = 60,
        probe: int = 3,
        history: int = 6,
    ):
        self.choices = tuple(dict.fromkeys(max(1, int(c)) for c in choices))
        self.explore_every = explore_every
        self.probe = probe
        self.history = history
        self.reset()

    def reset(self) -> None:
        """Forgets every time (the work changed, e.g. a new frame size)."""
        self._times: dict[int, deque[float]] = {c: deque(maxlen=self.history) for c in self.choices}
        self._queue: deque[int] = deque()
        self._since_probe = 0

    @property
    def best(self) -> int:
        """The choice with the lowest median recent time (the first choice before any data)."""
        timed = {c: statistics.median(t) for c, t in self._times.items() if t}
        if not timed:
            return self.choices[0]
        return min(timed, key=timed.__getitem__)

    def next(self) -> int:
        """The thread count to run the next step with."""
        if len(self.choices) == 1:
            return self.choices[0]
        if not self._queue:
            unseen = [c for c in self.choices if len(self._times[c]) < self.probe]
            if unseen:
                self._queue.extend(c for c in unseen for _ in range(self.probe))
            elif self._since_probe >= self.explore_every:
                best = self.best
                self._queue.extend(c for c in self.choices if c != best for _ in range(self.probe))
                self._since_probe = 0
        return self._queue.popleft() if self._queue else self.best

    def record(self, threads: int, seconds: float) -> None:
        """Records how long a step with ``threads`` threads took."""
        if threads in self._times:
            self._times[threads].append(seconds)
        self._since_probe += 1


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


_ALLOCATOR_TUNED = False
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def tune_allocator(threshold: int = 1 << 30) -> bool:
    """Keeps large freed blocks in the process heap for reuse (glibc only; once per process).

    glibc hands blocks above a few megabytes straight back to the system and maps them afresh on
    the next request, so every frame pays page faults to zero tens of megabytes of full-size maps.
    Raising the mmap and trim thresholds lets the next frame reuse the memory. The heap keeps its
    peak size instead of shrinking between frames. All threads share one heap: with a heap per
    thread (glibc's default) each keeps its own peak, and the resident memory of a long live run
    kept climbing (``bench/memory.py``).

    Returns:
        True when the thresholds are set (now or before).
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = all(
        mallopt(option, value) == 1
        for option, value in (
            (M_ARENA_MAX, 1),
            (M_MMAP_THRESHOLD, threshold),
            (M_TRIM_THRESHOLD, threshold),
        )
    )
    _ALLOCATOR_TUNED = ok
    return ok
