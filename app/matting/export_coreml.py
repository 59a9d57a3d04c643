"""CoreML export of the RVM network (coremltools 9), laid out like RVM's published CoreML files.

Inputs: ``src``, an RGB image of the built-in size; ``r1i``..``r4i``, the recurrent state, optional
with zeros as default so the first frame needs none. Outputs: ``fgr`` (RGB image), ``pha``
(grayscale image) and ``r1o``..``r4o``, fed back as ``r1i``..``r4i`` on the next frame. The frame
size and downsample ratio are built in (default 1920x1080 at 0.25).

Two model types:

- ``mlprogram`` (an ``.mlpackage`` folder, iOS 16 / macOS 13 or newer): ``fp32``, ``fp16``
  (half-precision weights, compute and state) or ``int8`` (weights in 8 bits, linear symmetric per
  output channel, fp16 compute).
- ``neuralnetwork`` (one ``.mlmodel`` file, iOS 14 / macOS 11 or newer, which the half-pixel
  bilinear resize needs): ``fp32`` or ``fp16`` weights.

BatchNorm is folded into the convolutions before conversion, so the file holds exactly the
folded weights of :func:`app.matting.export_fixed.fold_batchnorm` (in fp32).

Command line::

    python -m app.matting.export coreml --variant mobilenetv3 --precision fp16 \\
        --size 1920x1080 --downsample-ratio 0.25 --output rvm_1080p.mlpackage
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

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

DEFAULT_SHAPE = FixedShape(1920, 1080, 0.25)
MODEL_TYPES = {"mlprogram": ".mlpackage", "neuralnetwork": ".mlmodel"}
PRECISIONS = {
    "mlprogram": ("fp32", "fp16", "int8"),
    "neuralnetwork": ("fp32", "fp16"),
}
EXTRA = "coreml"


def _coremltools() -> Any:
    return require("coremltools", EXTRA, "CoreML")


def check_installed() -> None:
    """Raises ExportError when coremltools is not installed."""
    _coremltools()


def check_options(output: Path, precision: str, model_type: str) -> None:
    """Raises ExportError for a model type, precision or file name that do not go together."""
    if model_type not in MODEL_TYPES:
        known = ", ".join(MODEL_TYPES)
        raise ExportError(f"Model type '{model_type}' is not known; choose {known}.")
    if precision not in PRECISIONS[model_type]:
        raise ExportError(
            f"Precision '{precision}' is not available for a {model_type}; choose "
            f"{', '.join(PRECISIONS[model_type])}."
        )
    suffix = MODEL_TYPES[model_type]
    if output.suffix != suffix:
        raise ExportError(f"A CoreML {model_type} is saved as a {suffix}; name {output} so.")


def export_coreml(
    model: MattingNetwork,
    output: str | os.PathLike[str],
    precision: str = "fp32",
    shape: FixedShape = DEFAULT_SHAPE,
    model_type: str = "mlprogram",
) -> Path:
    """Converts the network to a CoreML model of one frame size and ratio (module docstring).

    Args:
        model: the network; it is not changed (a folded copy is converted).
        output: destination, ``.mlpackage`` for an ML program, ``.mlmodel`` for a neural network.
        precision: ``fp32``, ``fp16`` or (ML program only) ``int8`` weights.
        shape: frame size and downsample ratio built into the model.
        model_type: ``mlprogram`` or ``neuralnetwork``.

    Returns:
        ``output`` as a Path.

    Raises:
        ExportError: bad options, coremltools missing, or the destination cannot be written.
    """
    dest = Path(output)
    check_options(dest, precision, model_type)
    shape.check()
    ct = _coremltools()
    net = fold_batchnorm(model)
    states = shape.state_shapes(net)
    graph = FixedGraph(net, shape.ratio, scale=255.0).eval()
    src = torch.rand(1, 3, shape.height, shape.width)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(graph, (src, *[torch.zeros(s) for s in states]))
    mlprogram = model_type == "mlprogram"
    state_dtype = np.float16 if mlprogram and precision != "fp32" else np.float32
    inputs = [
        ct.ImageType(
            name="src",
            shape=src.shape,
            scale=1 / 255.0,
            color_layout=ct.colorlayout.RGB,
        ),
        *[
            ct.TensorType(
                name=name, shape=s, dtype=state_dtype, default_value=np.zeros(s, state_dtype)
            )
            for name, s in zip(STATE_INPUTS, states, strict=True)
        ],
    ]
    outputs = [ct.TensorType(name=name, dtype=state_dtype) for name in OUTPUTS]
    if mlprogram:
        outputs[:2] = [
            ct.ImageType(name="fgr", color_layout=ct.colorlayout.RGB),
            ct.ImageType(name="pha", color_layout=ct.colorlayout.GRAYSCALE),
        ]
    options: dict[str, Any] = {}
    if mlprogram:
        options["minimum_deployment_target"] = ct.target.iOS16
        options["compute_precision"] = (
            ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
        )
    else:
        options["minimum_deployment_target"] = ct.target.iOS14
    # coremltools prints a line per quantized layer to stdout and notes on the graph to its log.
    with quiet("coremltools"):
        mlmodel = ct.convert(
            traced,
            inputs=inputs,
            outputs=outputs,
            convert_to=model_type,
            skip_model_load=True,
            **options,
        )
        if precision == "int8":
            mlmodel = _int8_weights(ct, mlmodel)
        if not mlprogram:
            mlmodel = _image_outputs(ct, mlmodel, shape)
        if precision == "fp16" and not mlprogram:
            from coremltools.models.neural_network import quantization_utils

            mlmodel = quantization_utils.quantize_weights(mlmodel, nbits=16)
    _describe(mlmodel, model, shape, precision)
    with atomic_output(dest) as tmp:
        mlmodel.save(str(tmp))
    return dest


def _int8_weights(ct: Any, mlmodel: Any) -> Any:
    config = ct.optimize.coreml.OptimizationConfig(
        global_config=ct.optimize.coreml.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=0
        )
    )
    return ct.optimize.coreml.linear_quantize_weights(mlmodel, config=config)


def _image_outputs(ct: Any, mlmodel: Any, shape: FixedShape) -> Any:
    """Makes ``fgr`` and ``pha`` of a neural network images (its converter cannot, with more
    outputs than images)."""
    spec = mlmodel.get_spec()
    spaces = {"fgr": "RGB", "pha": "GRAYSCALE"}
    for out in spec.description.output:
        if out.name in spaces:
            image = out.type.imageType
            image.width, image.height = shape.width, shape.height
            image.colorSpace = ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Value(
                spaces[out.name]
            )
    return ct.models.MLModel(spec, skip_model_load=True)


def _describe(mlmodel: Any, model: MattingNetwork, shape: FixedShape, precision: str) -> None:
    mlmodel.author = "mattecam, after Robust Video Matting (Lin et al., WACV 2022)"
    mlmodel.license = "GPL-3.0-or-later"
    mlmodel.short_description = (
        f"Robust Video Matting {model.variant}, {shape.width}x{shape.height}, downsample ratio "
        f"{shape.ratio:g}, {precision}. Feed r1o..r4o back as r1i..r4i on the next frame."
    )
    mlmodel.input_description["src"] = "Video frame (RGB)."
    for name in STATE_INPUTS:
        mlmodel.input_description[name] = "Recurrent state from the previous frame (zeros if none)."
    mlmodel.output_description["fgr"] = "Foreground (RGB)."
    mlmodel.output_description["pha"] = "Alpha matte (grayscale)."
    for name in OUTPUTS[2:]:
        mlmodel.output_description[name] = "Recurrent state for the next frame."
    mlmodel.user_defined_metadata.update(
        {
            "variant": model.variant,
            "width": str(shape.width),
            "height": str(shape.height),
            "downsample_ratio": f"{shape.ratio:g}",
            "precision": precision,
        }
    )
