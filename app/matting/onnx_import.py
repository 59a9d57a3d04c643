"""Converts the official RVM ONNX export into a complete, unfolded state_dict.

The export folds every BatchNorm into the convolution before it. Its ``Conv`` nodes, in graph
order, are the network's convolutions in execution order (the refiner's box filter once per call).
A folded convolution loads into the unfolded network exactly by turning its BatchNorm into an
identity plus bias: weight 1, bias = folded bias, running_mean 0, running_var = 1 - eps.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from torch import nn

from .model import MattingNetwork


class OnnxImportError(ValueError):
    """The ONNX file is not an RVM export this converter understands."""


def _conv_order(model: MattingNetwork) -> list[str]:
    """Names of the model's convolutions in execution order, found by running a small frame."""
    names = {
        module: name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)
    }
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: order.append(names[mod])) for m in names]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64), downsample_ratio=0.5)
    finally:
        for h in hooks:
            h.remove()
    return order


def _following_bn(model: MattingNetwork) -> dict[str, tuple[str, nn.BatchNorm2d]]:
    """Maps each convolution followed by a BatchNorm in a Sequential to that BatchNorm."""
    pairs: dict[str, tuple[str, nn.BatchNorm2d]] = {}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (cname, conv), (bname, bn) in itertools.pairwise(children):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                pairs[f"{name}.{cname}"] = (f"{name}.{bname}", bn)
    return pairs


def state_dict_from_onnx(path: str | Path, variant: str = "mobilenetv3") -> dict[str, torch.Tensor]:
    """Reads the official BN-folded ONNX export and returns a state_dict for strict loading.

    ``project_seg`` is not part of the export: it is filled with zeros, so weights converted this
    way cannot run the segmentation pass.

    Args:
        path: the ``rvm_*.onnx`` file.
        variant: network variant the export was made from.

    Raises:
        OnnxImportError: the graph does not match the network.
    """
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # onnx raises DecodeError and others for a damaged file
        reason = exc.__class__.__name__
        raise OnnxImportError(f"{path}: not a readable ONNX model ({reason}).") from None
    inits = {t.name: t for t in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]

    model = MattingNetwork(variant).eval()
    order = _conv_order(model)
    if len(convs) != len(order):
        raise OnnxImportError(
            f"{path}: {len(convs)} convolutions, the {variant} network has {len(order)}; "
            "this is not the official RVM export of that variant."
        )
    bns = _following_bn(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def tensor(name: str) -> torch.Tensor:
        if name not in inits:
            raise OnnxImportError(f"{path}: convolution weight '{name}' is not an initializer.")
        return torch.from_numpy(numpy_helper.to_array(inits[name]).copy())

    for node, conv_name in zip(convs, order, strict=False):
        weight = tensor(node.input[1])
        key = conv_name + ".weight"
        if weight.shape != state[key].shape:
            raise OnnxImportError(
                f"{path}: convolution {node.name or node.input[1]} has shape "
                f"{list(weight.shape)} where {key} needs {list(state[key].shape)}."
            )
        if not node.input[1].isdigit() and node.input[1] != key:
            raise OnnxImportError(f"{path}: found '{node.input[1]}' where '{key}' was expected.")
        state[key] = weight
        bias = tensor(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if conv_name in bns:
            bn_name, bn = bns[conv_name]
            if bias is None:
                raise OnnxImportError(f"{path}: folded convolution {key} has no bias.")
            state[bn_name + ".weight"] = torch.ones_like(bias)
            state[bn_name + ".bias"] = bias
            state[bn_name + ".running_mean"] = torch.zeros_like(bias)
            state[bn_name + ".running_var"] = torch.full_like(bias, 1.0 - bn.eps)
        elif bias is not None:
            if conv_name + ".bias" not in state:
                raise OnnxImportError(
                    f"{path}: convolution {key} carries a bias the network lacks."
                )
            state[conv_name + ".bias"] = bias
    for key in ("project_seg.conv.weight", "project_seg.conv.bias"):
        state[key] = torch.zeros_like(state[key])
    return state
