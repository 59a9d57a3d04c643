"""Folding and fusion of the network's layers, for faster inference with the same numbers.

- :func:`fold_batchnorm` folds every BatchNorm into the convolution before it.
- :func:`fuse_activations` runs each convolution and the activation after it as one oneDNN call
  (:class:`FusedConv`), where this PyTorch build has oneDNN's fused convolution.

Both change a module in place; :class:`app.matting.fast.FastMattingNetwork` applies them to its
own copy of the network.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


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
