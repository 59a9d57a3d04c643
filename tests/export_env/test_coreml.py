"""CoreML export: the model's interface, its operations and its weights against ours.

Core ML predictions run only on macOS; here the files are checked as written: the spec (names,
types, shapes, optional state inputs), the operation histogram (85 convolutions, as in the official
ONNX export) and every convolution's weights against the folded network (exact in fp32, within
5e-4 relative in fp16, within half a quantization step in int8).
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import coremltools as ct
import numpy as np
import pytest
import torch
from coremltools.converters.mil.frontend.milproto.load import load as milproto_load
from coremltools.models.utils import _convert_model_spec_to_pymil_prog

from app.matting import export
from app.matting.export_fixed import FixedGraph, FixedShape, fold_batchnorm
from app.matting.model import MattingNetwork

STATES = [(1, 16, 135, 240), (1, 20, 68, 120), (1, 40, 34, 60), (1, 64, 17, 30)]
SMALL = ["--size", "320x192", "--downsample-ratio", "0.375"]


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The command line's CoreML files: the default 1080p fp32 ML program, the others smaller."""
    folder = tmp_path_factory.mktemp("coreml")
    runs = {
        "fp32": ["--output", str(folder / "rvm_fp32.mlpackage")],
        "fp16": ["--precision", "fp16", *SMALL, "--output", str(folder / "rvm_fp16.mlpackage")],
        "int8": ["--precision", "int8", *SMALL, "--output", str(folder / "rvm_int8.mlpackage")],
        "nn": ["--model-type", "neuralnetwork", *SMALL, "--output", str(folder / "rvm.mlmodel")],
    }
    files = {}
    for key, args in runs.items():
        assert export.main(["coreml", *args]) == 0
        files[key] = Path(args[-1])
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in files.values())
    return files


def _spec(path: Path) -> Any:
    return ct.models.MLModel(str(path), skip_model_load=True).get_spec()


def _folded_convs(model: MattingNetwork, shape: FixedShape) -> list[torch.nn.Conv2d]:
    """The folded network's convolutions in the order the graph runs them."""
    net = fold_batchnorm(model)
    calls: list[torch.nn.Conv2d] = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: calls.append(m))
        for m in net.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    src = torch.rand(1, 3, shape.height, shape.width)
    with torch.no_grad():
        FixedGraph(net, shape.ratio)(src, *[torch.zeros(s) for s in shape.state_shapes(net)])
    for h in hooks:
        h.remove()
    return calls


def _program_convs(path: Path) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(weight, bias) of each ``conv`` op of an ML program, in program order, as float32."""
    mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
    spec = mlmodel.get_spec()
    prog = _convert_model_spec_to_pymil_prog(mlmodel, spec.specificationVersion, milproto_load)

    def value(var: Any) -> np.ndarray | None:
        if var is None:
            return None
        if var.val is not None:
            return np.asarray(var.val, dtype=np.float32)
        return np.asarray(var.op.materialized_val_inference(), dtype=np.float32)

    return [
        (value(op.weight), value(op.bias))
        for op in prog.functions["main"].operations
        if op.op_type == "conv"
    ]


def test_interface_like_rvm(models: dict[str, Path]) -> None:
    spec = _spec(models["fp32"])
    assert spec.WhichOneof("Type") == "mlProgram"
    inputs = {i.name: i for i in spec.description.input}
    outputs = {o.name: o for o in spec.description.output}
    assert list(inputs) == ["src", "r1i", "r2i", "r3i", "r4i"]
    assert list(outputs) == ["fgr", "pha", "r1o", "r2o", "r3o", "r4o"]
    src = inputs["src"].type
    assert src.WhichOneof("Type") == "imageType" and not src.isOptional
    assert (src.imageType.width, src.imageType.height) == (1920, 1080)
    assert src.imageType.colorSpace == ct.proto.FeatureTypes_pb2.ImageFeatureType.RGB
    for name, space in (("fgr", "RGB"), ("pha", "GRAYSCALE")):
        image = outputs[name].type.imageType
        assert outputs[name].type.WhichOneof("Type") == "imageType"
        assert (image.width, image.height) == (1920, 1080)
        assert image.colorSpace == ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Value(
            space
        )
    fp32 = ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32
    for i, shape in enumerate(STATES, start=1):
        state_in, state_out = inputs[f"r{i}i"].type, outputs[f"r{i}o"].type
        assert state_in.isOptional
        assert state_in.multiArrayType.WhichOneof("defaultOptionalValue") == "floatDefaultValue"
        assert state_in.multiArrayType.floatDefaultValue == 0.0
        for t in (state_in, state_out):
            assert tuple(t.multiArrayType.shape) == shape
            assert t.multiArrayType.dataType == fp32
    meta = spec.description.metadata.userDefined
    assert (meta["width"], meta["height"], meta["downsample_ratio"]) == ("1920", "1080", "0.25")
    assert spec.description.metadata.license == "GPL-3.0-or-later"


def test_fp16_and_neural_network_interfaces(models: dict[str, Path]) -> None:
    fp16 = _spec(models["fp16"])
    f16 = ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT16
    shapes = FixedShape(320, 192, 0.375).state_shapes(MattingNetwork())
    states = zip(fp16.description.input[1:], fp16.description.output[2:], shapes, strict=True)
    for i, o, shape in states:
        assert i.type.isOptional and i.type.multiArrayType.dataType == f16
        assert o.type.multiArrayType.dataType == f16
        assert tuple(i.type.multiArrayType.shape) == shape
    nn_spec = _spec(models["nn"])
    assert nn_spec.WhichOneof("Type") == "neuralNetwork"
    assert nn_spec.specificationVersion <= 5  # iOS 14 / macOS 11
    assert [i.name for i in nn_spec.description.input] == ["src", "r1i", "r2i", "r3i", "r4i"]
    assert all(i.type.isOptional for i in nn_spec.description.input[1:])
    out = {o.name: o.type.WhichOneof("Type") for o in nn_spec.description.output}
    assert out == {
        "fgr": "imageType",
        "pha": "imageType",
        **{f"r{i}o": "multiArrayType" for i in range(1, 5)},
    }


def test_operation_histogram(models: dict[str, Path]) -> None:
    ops: collections.Counter[str] = collections.Counter()
    for function in _spec(models["fp32"]).mlProgram.functions.values():
        for block in function.block_specializations.values():
            ops.update(op.type for op in block.operations)
    assert ops["conv"] == 85  # as in the official ONNX export; the box filter runs 4 times
    # One resize of the frame, four 2x upsamplings in the decoder, two in the refiner.
    assert ops["upsample_bilinear"] == 7
    assert ops["avg_pool"] == 3 and ops["tanh"] == 4 and ops["sigmoid"] == 5
    # The precise resize's index_select taps would appear as gathers.
    assert not {"gather", "gather_along_axis", "batch_norm"} & set(ops)
    layers = collections.Counter(
        layer.WhichOneof("layer") for layer in _spec(models["nn"]).neuralNetwork.layers
    )
    assert layers["convolution"] == 85


@pytest.mark.parametrize(
    ("key", "tolerance"), [("fp32", 0.0), ("fp16", 5e-4), ("int8", None)], ids=str
)
def test_weights_are_ours(
    models: dict[str, Path], weights_model: MattingNetwork, key: str, tolerance: float | None
) -> None:
    convs = _folded_convs(weights_model, FixedShape(320, 192, 0.375))
    got = _program_convs(models[key])
    assert len(got) == len(convs) == 85
    for conv, (weight, bias) in zip(convs, got, strict=True):
        want = conv.weight.detach().numpy()
        assert weight.shape == want.shape
        if tolerance is None:  # int8: symmetric per output channel, 127 steps each side
            step = np.abs(want).reshape(len(want), -1).max(axis=1) / 127
            err = np.abs(weight - want).reshape(len(want), -1).max(axis=1)
            # Half a step, plus three fp16 roundings (the weights are quantized from fp16, the
            # scale and the dequantized weight are fp16), each at most 2**-11 of the largest
            # weight (127 steps). Channels of weights under 1e-4 (nearly dead) have a scale that
            # is subnormal in fp16 and coarse: there the absolute error stays under 1e-5.
            assert np.all(err <= step * (0.5 + 3 * 127 * 2**-11) + 1e-5)
        else:
            # fp16 rounds to 11 significant bits: a relative error of at most 2**-11 (4.9e-4);
            # values under 6e-5 are subnormal in fp16 and keep an absolute error under 3e-8.
            np.testing.assert_allclose(weight, want, rtol=tolerance, atol=tolerance and 1e-7)
        want_bias = None if conv.bias is None else conv.bias.detach().numpy()
        if want_bias is None:
            assert bias is None or not bias.any()
        else:
            np.testing.assert_allclose(bias, want_bias, rtol=tolerance or 5e-4, atol=1e-7)


def test_neural_network_weights_are_ours(
    models: dict[str, Path], weights_model: MattingNetwork
) -> None:
    convs = _folded_convs(weights_model, FixedShape(320, 192, 0.375))
    layers = [
        layer.convolution
        for layer in _spec(models["nn"]).neuralNetwork.layers
        if layer.WhichOneof("layer") == "convolution"
    ]
    assert len(layers) == len(convs)
    for conv, layer in zip(convs, layers, strict=True):
        want = conv.weight.detach().numpy()
        got = np.asarray(layer.weights.floatValue, dtype=np.float32).reshape(want.shape)
        np.testing.assert_array_equal(got, want)
