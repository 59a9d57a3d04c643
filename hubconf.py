"""TorchHub entry points of mattecam, with the names of the original RVM hub.

model = torch.hub.load("path/to/mattecam", "mobilenetv3", source="local")
convert_video = torch.hub.load("path/to/mattecam", "converter", source="local")
"""

from __future__ import annotations

from typing import Any

dependencies = ["torch"]


def _network(variant: str, pretrained: bool, dtype: Any = None, **kw: Any) -> Any:
    from app.matting.factory import create_model

    return create_model(variant, pretrained=pretrained, precision=dtype or "fp32", **kw)


def mobilenetv3(pretrained: bool = True, **kw: Any) -> Any:
    """RVM with the MobileNetV3-Large encoder.

    Args:
        pretrained: load the official weights (fetched into the cache on first use) and return the
            network in eval mode; False gives a freshly initialised network.
        **kw: ``checkpoint``, ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``auto`` or a
            torch device), ``dtype`` (a torch dtype, or ``fp32``/``fp16``/``auto``), ``refiner``
            and ``fast`` (see ``app.matting.factory.create_model``).
    """
    return _network("mobilenetv3", pretrained, **kw)


def resnet50(pretrained: bool = True, **kw: Any) -> Any:
    """RVM with the ResNet-50 encoder; see :func:`mobilenetv3` for the arguments.

    Its official weights are only on the project's GitHub release; where that cannot be reached,
    pretrained loading raises the weights module's error, which says how to supply the file with
    ``checkpoint=``.
    """
    return _network("resnet50", pretrained, **kw)


def converter() -> Any:
    """Returns ``convert_video`` (see ``app.matting.convert``)."""
    from app.matting.convert import convert_video

    return convert_video
