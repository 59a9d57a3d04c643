"""One way to make the matting network: variant, weights, device, precision, fast or plain.

The live engine, video conversion, export, the TorchHub entry points and the benchmarks all build
their network with :func:`create_model` and turn the names a user gives into a device and a dtype
with :func:`resolve_device` and :func:`resolve_dtype`. So each of them accepts the same names
(:data:`~app.matting.registry.DEVICES` and ``cuda:N``, :data:`~app.matting.registry.PRECISIONS`)
and refuses the same things with the same sentence.
"""

from __future__ import annotations

import os
import re

import torch
from torch import nn

from app.events import Advice, UserError

from .registry import DEFAULT_VARIANT, DEVICE_PATTERN

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


class EngineError(UserError, RuntimeError):
    """The network cannot run as asked here (device, precision or backend); the message says what
    to do instead."""


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def available_devices() -> tuple[str, ...]:
    """The device names :func:`resolve_device` accepts on this machine: ``auto`` and ``cpu``
    always, ``cuda`` and ``mps`` where PyTorch sees them."""
    found = ["auto", "cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if _mps_available():
        found.append("mps")
    return tuple(found)


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turns a device name into a device that is there.

    Args:
        name: ``auto`` (a CUDA GPU, else Apple MPS, else the CPU), ``cpu``, ``cuda``, ``cuda:N``
            or ``mps``.

    Returns:
        The device.

    Raises:
        EngineError: the name is not a device, or the device is not available here.
    """
    text = str(name)
    if not re.fullmatch(DEVICE_PATTERN, text):
        raise EngineError(f"Unknown device '{text}': use auto, cpu, cuda, cuda:N or mps.")
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise EngineError(
                "CUDA was asked for, but PyTorch sees no CUDA GPU here",
                Advice("device", ("cpu", "auto")),
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise EngineError(
                f"Device {text} does not exist; this machine has {count} CUDA device(s)."
            )
    if device.type == "mps" and not _mps_available():
        raise EngineError(
            "Apple MPS was asked for but is not available", Advice("device", ("cpu",))
        )
    return device


def dtype_of(precision: str) -> torch.dtype:
    """The dtype of ``fp32`` or ``fp16``, whatever the device (e.g. an fp16 file written on a CPU).

    Raises:
        EngineError: the name is not ``fp32`` or ``fp16``.
    """
    if precision not in DTYPES:
        raise EngineError(f"Unknown precision '{precision}': use {' or '.join(DTYPES)}.")
    return DTYPES[precision]


def resolve_dtype(precision: str | torch.dtype, device: torch.device) -> torch.dtype:
    """The dtype the network runs in on ``device``.

    Args:
        precision: ``auto`` (fp16 on CUDA, fp32 elsewhere), ``fp32`` or ``fp16``; a dtype is taken
            as it is (for callers that know what they want, e.g. float64 for reference checks).
        device: where the network runs.

    Raises:
        EngineError: the name is not known, or fp16 is asked for on the CPU (slower there, and not
            every layer supports it).
    """
    if isinstance(precision, torch.dtype):
        return precision
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision not in DTYPES:
        raise EngineError(f"Unknown precision '{precision}': use auto, fp32 or fp16.")
    if precision == "fp16" and device.type == "cpu":
        raise EngineError("fp16 needs a GPU", Advice("precision", ("fp32", "auto")))
    return DTYPES[precision]


def precision_name(dtype: torch.dtype) -> str:
    """``fp32``, ``fp16`` or ``bf16`` for people (other dtypes read as fp32)."""
    return _NAMES.get(dtype, "fp32")


def create_model(
    variant: str = DEFAULT_VARIANT,
    *,
    pretrained: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    precision: str | torch.dtype = "fp32",
    refiner: str = "deep_guided_filter",
    fast: bool = False,
) -> nn.Module:
    """Builds the network, loads its weights and puts it on its device, like timm's
    ``create_model``.

    Args:
        variant: ``mobilenetv3`` or ``resnet50``.
        pretrained: load weights and return the network in eval mode; False gives a freshly
            initialised network (in training mode).
        checkpoint: ``.pth`` or the official ``.onnx``; None fetches the registered weights.
        device: see :func:`resolve_device`.
        precision: see :func:`resolve_dtype`.
        refiner: ``deep_guided_filter`` (the trained one) or ``fast_guided_filter``.
        fast: on the CPU in float32, return the optimised copy from :mod:`app.matting.fast`
            (same numbers, fewer passes; matting pass only); elsewhere the network as it is.

    Returns:
        The network, called as ``model(src, r1, r2, r3, r4, downsample_ratio)``.

    Raises:
        EngineError: the device or precision cannot be used here.
        ValueError: a checkpoint was given with ``pretrained=False``, or the variant or refiner
            is not known.
        app.matting.weights.WeightsError: the weights are missing or unusable.
    """
    dev = resolve_device(device)
    dtype = resolve_dtype(precision, dev)
    if pretrained:
        from .weights import load_model

        model = load_model(variant, checkpoint, device=dev, dtype=dtype, refiner=refiner)
    else:
        if checkpoint is not None:
            raise ValueError("A checkpoint was given with pretrained=False; give one or the other.")
        from .model import MattingNetwork

        model = MattingNetwork(variant, refiner=refiner).to(device=dev, dtype=dtype)
    if fast and dev.type == "cpu" and dtype == torch.float32:
        from .fast import FastMattingNetwork
        from .tuning import tune_allocator

        tune_allocator()
        return FastMattingNetwork(model)
    return model
