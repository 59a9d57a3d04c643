"""TorchScript and ONNX export of the RVM network.

The ONNX graph has the interface of the official ``rvm_mobilenetv3_fp32.onnx``: inputs ``src``,
``r1i``..``r4i`` and ``downsample_ratio`` (float32, shape ``[1]``), outputs ``fgr``, ``pha``,
``r1o``..``r4o``; batch and frame size are dynamic, and zeros of shape ``[1, 1, 1, 1]`` are a valid
initial state. Like the official file it always runs the refiner, also at a ratio of 1.

Command line::

    python -m app.matting.export torchscript --variant mobilenetv3 --precision fp32 --output F
    python -m app.matting.export onnx --variant mobilenetv3 --precision fp16 --output F --opset 17
    python -m app.matting.export coreml|tflite ... (fixed size; see export_coreml, export_tflite)
    python -m app.matting.export savedmodel|tfjs ... --output DIR  (see export_tf)

Outputs are written under a temporary name beside the destination and renamed when complete.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from app.media import AtomicPath
from app.resize import downsample

from .architecture import INPUT_NAMES, OUTPUT_NAMES
from .factory import DTYPES, EngineError, create_model, dtype_of
from .model import MattingNetwork
from .registry import DEFAULT_VARIANT, VARIANTS

DEFAULT_OPSET = 17
MIN_OPSET = 12


class ExportError(ValueError):
    """An export cannot be carried out; the message says what is wrong and what to do."""


class _ResizeByRatio(torch.autograd.Function):
    """Bilinear resize by a ratio held in a tensor; exported as ``Resize`` with the ratio as scale.

    ``F.interpolate`` would bake a float ratio into the graph as a constant; this keeps it an input.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, ratio: Tensor) -> Tensor:
        return downsample(x, float(ratio.reshape(-1)[0]))

    @staticmethod
    def symbolic(g: Any, x: Any, ratio: Any) -> Any:
        ones = g.op("Constant", value_t=torch.ones(2, dtype=torch.float32))
        scale = g.op("Reshape", ratio, g.op("Constant", value_t=torch.tensor([1])))
        scales = g.op("Concat", ones, scale, scale, axis_i=0)
        roi = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))
        return g.op(
            "Resize",
            x,
            roi,
            scales,
            mode_s="linear",
            coordinate_transformation_mode_s="pytorch_half_pixel",
        )


class OnnxNetwork(MattingNetwork):
    """The network with the official ONNX interface: the ratio is a ``[1]`` float32 tensor.

    The forward pass is the network's; its :meth:`downsample` hook resizes by the ratio tensor,
    so that the ratio stays a graph input. Build it with :func:`_copy_for_export`.
    """

    def downsample(self, x: Tensor, ratio: Tensor) -> Tensor:
        """The frames at the internal size, as one ``Resize`` node scaled by ``ratio``."""
        return _ResizeByRatio.apply(x, ratio)


def _destination(dest: Path) -> AtomicPath:
    """A temp file beside ``dest`` that becomes ``dest`` when its ``with`` block completes."""
    parent = dest.parent
    if not parent.is_dir():
        raise ExportError(f"Cannot write {dest}: the folder {parent} does not exist.")
    if dest.is_dir():
        raise ExportError(f"Cannot write {dest}: a folder of that name exists.")
    try:
        return AtomicPath(dest)
    except OSError as e:
        raise ExportError(f"Cannot write {dest}: {e.strerror or e}.") from None


def _precision(precision: str) -> torch.dtype:
    try:
        return dtype_of(precision)
    except EngineError as e:
        raise ExportError(str(e)) from None


#: torch's notice that TorchScript (``torch.jit.script``, ``save``, ``load``, ``freeze``) is
#: deprecated. TorchScript is the format RVM publishes and the one :func:`export_torchscript`
#: writes; torch 2.10 and later repeat the notice for every submodule compiled (over a hundred for
#: this network), which buries any other warning.
TORCHSCRIPT_NOTICE = r"`torch\.jit\.\w+` is deprecated"


@contextlib.contextmanager
def torchscript_quietly() -> Iterator[None]:
    """Runs TorchScript calls without torch's deprecation notice for them (other warnings pass)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=TORCHSCRIPT_NOTICE, category=DeprecationWarning)
        yield


def script(model: nn.Module) -> torch.jit.ScriptModule:
    """``torch.jit.script(model)`` without torch's deprecation notice for it."""
    with torchscript_quietly():
        return torch.jit.script(model)


def export_torchscript(
    model: MattingNetwork, output: str | os.PathLike[str], precision: str = "fp32"
) -> Path:
    """Saves ``torch.jit.script(model)`` to ``output`` (on the CPU, in eval mode).

    The saved module loads with ``torch.jit.load``, can be frozen with ``torch.jit.freeze`` and has
    the network's call signature.

    Args:
        model: the network; it is not changed (a copy is converted).
        output: destination file.
        precision: ``fp32``, or ``fp16`` for half-precision parameters.

    Returns:
        ``output`` as a Path.

    Raises:
        ExportError: bad precision or the destination cannot be written.
    """
    dtype = _precision(precision)
    dest = Path(output)
    net = _copy_for_export(model, dtype)
    scripted = script(net)
    with _destination(dest) as out, torchscript_quietly():
        torch.jit.save(scripted, str(out.temp))
    return dest


def export_onnx(
    model: MattingNetwork,
    output: str | os.PathLike[str],
    precision: str = "fp32",
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Exports the network to ONNX with the official interface (see the module docstring).

    Args:
        model: the network; it is not changed (a copy is converted).
        output: destination ``.onnx`` file.
        precision: ``fp32``, or ``fp16`` (src, state and outputs in float16; the ratio stays
            float32).
        opset: ONNX opset, at least 12.

    Returns:
        ``output`` as a Path.

    Raises:
        ExportError: bad precision or opset, or the destination cannot be written.
    """
    import onnx

    dtype = _precision(precision)
    if opset < MIN_OPSET:
        raise ExportError(f"Opset {opset} is too old; give {MIN_OPSET} or newer.")
    dest = Path(output)
    graph = _copy_for_export(model, dtype, OnnxNetwork)
    graph.refine_full_res = True  # as in the official file: the ratio is not known when tracing
    src = torch.rand(1, 3, 144, 176, dtype=dtype)
    zero = torch.zeros(1, 1, 1, 1, dtype=dtype)
    ratio = torch.tensor([0.5], dtype=torch.float32)
    state_axes = {0: "batch", 1: "channels", 2: "state_height", 3: "state_width"}
    dynamic_axes: dict[str, dict[int, str]] = {
        "src": {0: "batch", 2: "height", 3: "width"},
        "fgr": {0: "batch", 2: "height", 3: "width"},
        "pha": {0: "batch", 2: "height", 3: "width"},
    }
    for i in range(1, 5):
        dynamic_axes[f"r{i}i"] = state_axes
        dynamic_axes[f"r{i}o"] = {0: "batch", 2: f"r{i}_height", 3: f"r{i}_width"}
    with _destination(dest) as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(
                graph,
                (src, zero, zero, zero, zero, ratio),
                str(out.temp),
                dynamo=False,
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                opset_version=opset,
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )
        onnx.checker.check_model(str(out.temp))
    return dest


def _copy_for_export(
    model: MattingNetwork, dtype: torch.dtype, cls: type[MattingNetwork] = MattingNetwork
) -> MattingNetwork:
    """A CPU copy of ``model`` as a ``cls``, in eval mode with ``dtype`` parameters; the model is
    untouched."""
    net = cls(model.variant, refiner=model.refiner_name)
    net.copy_from(model)
    return net.eval().to(device="cpu", dtype=dtype)


# --- command line --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Argument parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> Any:
        self.exit(2, f"error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m app.matting.export", description="Export the RVM network.")
    sub = p.add_subparsers(dest="format", required=True, parser_class=_Parser)
    for fmt, text in (("torchscript", "save torch.jit.script(model)"), ("onnx", "ONNX graph")):
        s = sub.add_parser(fmt, help=text)
        s.add_argument("--variant", default=DEFAULT_VARIANT, choices=VARIANTS)
        s.add_argument("--precision", default="fp32", choices=tuple(DTYPES))
        s.add_argument("--output", required=True, help="destination file")
        s.add_argument("--checkpoint", help="weights file (.pth or the official .onnx)")
        if fmt == "onnx":
            s.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    from . import export_fixed, export_tf

    export_fixed.add_parsers(sub)
    export_tf.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs the export command line; returns the exit status."""
    from . import export_fixed, export_tf
    from .weights import WeightsError

    args = _parser().parse_args(argv)
    fixed = args.format in export_fixed.FIXED_FORMATS
    folder = args.format in export_tf.FORMATS
    try:
        dest = Path(args.output)
        if not dest.parent.is_dir():
            raise ExportError(f"Cannot write {dest}: the folder {dest.parent} does not exist.")
        if dest.is_dir() and args.format != "coreml" and not folder:  # .mlpackage is a folder
            raise ExportError(f"Cannot write {dest}: a folder of that name exists.")
        if not os.access(dest.parent, os.W_OK | os.X_OK):
            raise ExportError(f"Cannot write {dest}: the folder {dest.parent} is not writable.")
        if args.format == "onnx" and args.opset < MIN_OPSET:
            raise ExportError(f"Opset {args.opset} is too old; give {MIN_OPSET} or newer.")
        shape = export_fixed.check_args(args) if fixed else None
        if folder:
            export_tf.check_dependencies(args.format)
        with warnings.catch_warnings():
            # torch warns about damaged files before the loader reports them in one line.
            warnings.simplefilter("ignore")
            model = create_model(args.variant, checkpoint=args.checkpoint)
        if shape is not None:
            export_fixed.run(args, model, shape)
        elif folder:
            export_tf.run(args, model)
        elif args.format == "torchscript":
            export_torchscript(model, dest, args.precision)
        else:
            export_onnx(model, dest, args.precision, args.opset)
    except (ExportError, WeightsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written.", file=sys.stderr)
        return 130
    print(dest)
    return 0


if __name__ == "__main__":
    # The imported module's main: run as __main__, this file's ExportError would be another class
    # than the one the format modules raise.
    from app.matting import export

    sys.exit(export.main())
