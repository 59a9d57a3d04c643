"""TFLite export of the RVM network through litert-torch, at one frame size and ratio.

The flatbuffer's default signature has RVM's names in the channels-last layout of TensorFlow:
inputs ``src`` (``[1, H, W, 3]``, RGB 0..1) and ``r1i``..``r4i`` (``[1, h, w, C]``, zeros on the
first frame), outputs ``fgr`` (``[1, H, W, 3]``), ``pha`` (``[1, H, W, 1]``) and ``r1o``..``r4o``,
fed back as ``r1i``..``r4i`` on the next frame. Frame size and downsample ratio are built in.

Precisions: ``fp32``; ``fp16`` (convolution weights stored in half precision, computed in fp32);
``int8`` (convolution weights in 8 bits per output channel, dynamic-range quantized: activations
quantized on the fly). BatchNorm is folded into the convolutions before conversion, and the frame
is downsampled with the network's own sample taps (see :class:`TapsResize`).

Command line::

    python -m app.matting.export tflite --variant mobilenetv3 --precision fp16 \\
        --size 1280x720 --downsample-ratio 0.375 --output rvm_720p.tflite
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from app.resize import bilinear_taps

from .export import ExportError
from .export_fixed import (
    OUTPUTS,
    STATE_INPUTS,
    FixedGraph,
    FixedShape,
    atomic_output,
    fold_batchnorm,
    quiet,
    require,
)
from .model import MattingNetwork

EXTRA = "tflite"
PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_SHAPE = FixedShape(1280, 720, 0.375)


class TapsResize(nn.Module):
    """The network's own bilinear downsampling of one frame size, its sample taps precomputed.

    TFLite's bilinear resize takes its scale from the sizes (``H / floor(H * ratio)``), which is
    not ``1 / ratio`` when ``H * ratio`` is not whole (320x180 at 0.375: 180 / 67): the frame
    would be sampled off the network's positions and ``fgr`` would differ by up to 0.1. Gathering
    the network's taps (positions in float64, :func:`app.resize.downsample`) keeps
    the numbers the network's at every size.

    Args:
        shape: frame size and ratio.
    """

    def __init__(self, shape: FixedShape):
        super().__init__()
        self.size = shape.small
        cpu = torch.device("cpu")
        y0, y1, wy = bilinear_taps(shape.height, self.size[0], shape.ratio, cpu)
        x0, x1, wx = bilinear_taps(shape.width, self.size[1], shape.ratio, cpu)
        for name, t in (("y0", y0), ("y1", y1), ("x0", x0), ("x1", x1)):
            self.register_buffer(name, t.to(torch.int32))
        self.register_buffer("wy", wy.float().view(-1, 1))
        self.register_buffer("wx", wx.float())

    def forward(self, x: Tensor) -> Tensor:
        """Returns ``x`` (``[N, C, H, W]``) downsampled to the built-in size."""
        n, c, h, w = x.shape
        height, width = self.size
        planes = x.reshape(n * c, h, w)
        top = planes.index_select(1, self.y0)
        rows = top + (planes.index_select(1, self.y1) - top) * self.wy
        rows = rows.reshape(n * c * height, w)
        left = rows.index_select(1, self.x0)
        out = left + (rows.index_select(1, self.x1) - left) * self.wx
        return out.reshape(n, c, height, width)


class ChannelsLastGraph(nn.Module):
    """:class:`FixedGraph` with channels-last inputs and outputs, the outputs named in a dict."""

    def __init__(self, graph: FixedGraph):
        super().__init__()
        self.fixed = graph

    def forward(
        self, src: Tensor, r1i: Tensor, r2i: Tensor, r3i: Tensor, r4i: Tensor
    ) -> dict[str, Tensor]:
        """Mattes one frame ``[1, H, W, 3]``; returns fgr, pha and r1o..r4o, channels last."""
        first = [x.permute(0, 3, 1, 2) for x in (src, r1i, r2i, r3i, r4i)]
        out = self.fixed(*first)
        return {name: x.permute(0, 2, 3, 1) for name, x in zip(OUTPUTS, out, strict=True)}


def check_installed() -> None:
    """Raises ExportError when litert-torch or the LiteRT quantizer is not installed."""
    for module in ("litert_torch", "ai_edge_quantizer"):
        require(module, EXTRA, "TFLite")


def check_options(output: Path, precision: str, model_type: str | None = None) -> None:
    """Raises ExportError for a precision or file name the TFLite export does not take."""
    del model_type  # CoreML's option
    if precision not in PRECISIONS:
        raise ExportError(f"Precision '{precision}' is not known; choose {', '.join(PRECISIONS)}.")
    if output.suffix != ".tflite":
        raise ExportError(f"A TFLite model is saved as a .tflite file; name {output} so.")


def export_tflite(
    model: MattingNetwork,
    output: str | os.PathLike[str],
    precision: str = "fp32",
    shape: FixedShape = DEFAULT_SHAPE,
) -> Path:
    """Converts the network to a TFLite flatbuffer of one frame size and ratio (module docstring).

    Args:
        model: the network; it is not changed (a folded copy is converted).
        output: destination ``.tflite`` file.
        precision: ``fp32``, ``fp16`` or ``int8`` weights.
        shape: frame size and downsample ratio built into the model.

    Returns:
        ``output`` as a Path.

    Raises:
        ExportError: bad options, litert-torch missing, or the destination cannot be written.
    """
    dest = Path(output)
    check_options(dest, precision)
    shape.check()
    litert_torch = require("litert_torch", EXTRA, "TFLite")
    net = fold_batchnorm(model)
    resize = TapsResize(shape) if shape.ratio != 1.0 else None
    graph = ChannelsLastGraph(FixedGraph(net, shape.ratio, resize=resize)).eval()
    sample = {"src": torch.rand(1, shape.height, shape.width, 3)}
    for name, (n, c, h, w) in zip(STATE_INPUTS, shape.state_shapes(net), strict=True):
        sample[name] = torch.zeros(n, h, w, c)
    with quiet():
        flatbuffer = litert_torch.convert(graph, sample_kwargs=sample).model_content()
        if precision != "fp32":
            flatbuffer = _quantize(flatbuffer, precision)
    with atomic_output(dest) as tmp:
        tmp.write_bytes(flatbuffer)
    return dest


def _quantize(flatbuffer: bytes, precision: str) -> bytes:
    """fp16 or dynamic-range int8 weights of the convolutions, by the LiteRT quantizer."""
    require("ai_edge_quantizer", EXTRA, "TFLite")
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer, recipe

    qt = quantizer.Quantizer(flatbuffer)
    ops = qtyping.TFLOperationName
    if precision == "fp16":
        for op in (ops.CONV_2D, ops.DEPTHWISE_CONV_2D):
            qt.add_weight_only_config(
                regex=".*",
                operation_name=op,
                num_bits=16,
                algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING,
            )
    else:
        qt.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    return bytes(qt.quantize().quantized_model)
