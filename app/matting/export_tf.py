"""TensorFlow SavedModel and TensorFlow.js exports of the RVM network.

Both carry RVM's TensorFlow interface: inputs ``src`` (``[B, H, W, 3]``, NHWC), ``r1i``..``r4i``
and ``downsample_ratio``; outputs ``fgr``, ``pha``, ``r1o``..``r4o``. Frame size, batch and ratio
are free at run time; on the first frame the state is ``tf.constant(0.)``. The SavedModel loads
with ``tf.saved_model.load`` and with ``tf.keras.models.load_model`` (Keras 2, i.e. ``tf-keras``
with ``TF_USE_LEGACY_KERAS=1``), both called as ``model([src, *rec, downsample_ratio])``; its
``serving_default`` signature takes the same inputs by name. The TF.js export is a folder with
``model.json`` and its weight shards, converted from the SavedModel by ``tensorflowjs``.

Precision: ``fp16`` keeps the weights in half precision (about half the size; the arithmetic stays
float32); ``int8`` (TF.js only) stores the 1x1 kernels as 8-bit steps with a scale and offset per
tensor (tensorflowjs's uint8 quantisation) and the other large tensors in half precision. Tensors
under :data:`~app.matting.tf_network.SMALL_TENSOR` values (biases, the small early kernels) stay
float32 in both.

These exports need TensorFlow (and tensorflowjs), which the app does not: ``make tf-env``
installs them into ``.venv-tf``. Command line::

    python -m app.matting.export savedmodel --variant mobilenetv3 --precision fp32 --output DIR
    python -m app.matting.export tfjs --variant mobilenetv3 --precision fp16 --output DIR
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.media import AtomicPath

from .export import ExportError
from .registry import DEFAULT_VARIANT, VARIANTS

if TYPE_CHECKING:
    from .model import MattingNetwork

SAVEDMODEL_PRECISIONS = ("fp32", "fp16")
TFJS_PRECISIONS = ("fp32", "fp16", "int8")
TFJS_SHARD_BYTES = 4 * 1024 * 1024
ENV_HINT = "`make tf-env` installs it into .venv-tf; run the export with .venv-tf/bin/python"
FORMATS = {
    "savedmodel": (
        "TensorFlow SavedModel folder (NHWC, any size, runtime ratio)",
        SAVEDMODEL_PRECISIONS,
    ),
    "tfjs": ("TensorFlow.js graph model folder (model.json and weight shards)", TFJS_PRECISIONS),
}


class MissingDependencyError(ExportError):
    """An optional package that an export needs is not installed; the message says what to do."""


def _import_tf() -> Any:
    """Imports TensorFlow quietly, or says how to install it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # hides the CUDA probe's error
    try:
        import tensorflow as tf
    except ImportError:
        raise MissingDependencyError(
            f"This export needs TensorFlow, which is not installed here: {ENV_HINT} "
            "(or pip install -e '.[tensorflow]' for the SavedModel alone)."
        ) from None
    return tf


@contextlib.contextmanager
def _tfjs_converter() -> Iterator[Any]:
    """Yields ``tensorflowjs``'s SavedModel conversion function.

    tensorflowjs imports ``tensorflow_decision_forests`` only so that SavedModels holding its
    custom ops load; that package pins an older TensorFlow, and our models hold none of its ops.
    When it is not installed an empty stand-in module satisfies the import.
    """
    stub = None
    try:
        import tensorflow_decision_forests  # noqa: F401
    except ImportError:
        stub = types.ModuleType("tensorflow_decision_forests")
        sys.modules["tensorflow_decision_forests"] = stub
    try:
        try:
            from tensorflowjs.converters import tf_saved_model_conversion_v2 as conversion
        except ImportError as e:
            raise MissingDependencyError(
                f"The TensorFlow.js export needs tensorflowjs 4.x ({e}): {ENV_HINT}."
            ) from None
        yield conversion.convert_tf_saved_model
    finally:
        if stub is not None and sys.modules.get("tensorflow_decision_forests") is stub:
            del sys.modules["tensorflow_decision_forests"]


def network_weights(model: MattingNetwork) -> Any:
    """The parameters of ``model`` as a :class:`~app.matting.tf_network.NetworkWeights`."""
    from torch import nn

    from .tf_network import NetworkWeights

    tensors = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    if "refiner.box_filter.weight" not in tensors:
        raise ExportError("Only the deep guided filter refiner (the trained one) can be exported.")
    eps = {n: float(m.eps) for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    return NetworkWeights(model.variant, tensors, eps)


def build_tf_network(model: MattingNetwork, precision: str = "fp32") -> Any:
    """Builds the TensorFlow network with ``model``'s weights.

    Args:
        model: the PyTorch network (only read).
        precision: ``fp32``, or ``fp16`` for half-precision weights.

    Returns:
        A ``tf.Module``: ``module([src, r1i, r2i, r3i, r4i, downsample_ratio]) -> dict``.

    Raises:
        MissingDependencyError: TensorFlow is not installed.
        ValueError: unknown precision.
    """
    tf = _import_tf()
    from .tf_network import TFMattingNetwork

    if precision not in SAVEDMODEL_PRECISIONS:
        raise ValueError(f"Precision '{precision}' is not known; choose fp32 or fp16.")
    storage = tf.float16 if precision == "fp16" else tf.float32
    net = TFMattingNetwork(network_weights(model), storage)
    return net


@contextlib.contextmanager
def _atomic_folder(dest: Path, marker: str) -> Iterator[Path]:
    """Yields an empty temp folder beside ``dest``, moved to ``dest`` when the block succeeds.

    An existing ``dest`` is replaced only when it holds ``marker`` (an earlier export); any other
    existing path is an error, and nothing is left behind on failure.
    """
    parent = dest.parent
    if not parent.is_dir():
        raise ExportError(f"Cannot write {dest}: the folder {parent} does not exist.")
    if dest.exists() and not (dest.is_dir() and (dest / marker).is_file()):
        kind = "folder" if dest.is_dir() else "file"
        raise ExportError(f"Cannot write {dest}: a {kind} of that name exists; choose another.")
    try:
        out = AtomicPath(dest, folder=True)
    except OSError as e:
        raise ExportError(f"Cannot write {dest}: {e.strerror or e}.") from None
    with out:
        yield out.temp


def _save(net: Any, folder: Path) -> None:
    tf = _import_tf()
    tf.saved_model.save(net, str(folder), signatures={"serving_default": net.serve})
    # Keras 2's load_model reads this file to revive Keras layers; empty, it says there are none,
    # and load_model returns what tf.saved_model.load does instead of warning about an old format.
    (folder / "keras_metadata.pb").write_bytes(b"")


def export_savedmodel(
    model: MattingNetwork, output: str | os.PathLike[str], precision: str = "fp32"
) -> Path:
    """Writes the network as a TensorFlow SavedModel folder (see the module docstring).

    Args:
        model: the network (only read).
        output: destination folder; an earlier SavedModel there is replaced.
        precision: ``fp32`` or ``fp16`` (half-precision weights).

    Returns:
        ``output`` as a Path.

    Raises:
        ExportError: bad precision or the destination cannot be written.
        MissingDependencyError: TensorFlow is not installed.
    """
    if precision not in SAVEDMODEL_PRECISIONS:
        raise ExportError(
            f"Precision '{precision}' is not known for a SavedModel; use fp32 or fp16."
        )
    dest = Path(output)
    net = build_tf_network(model, precision)
    with _atomic_folder(dest, "saved_model.pb") as tmp:
        _save(net, tmp)
    return dest


def export_tfjs(
    model: MattingNetwork, output: str | os.PathLike[str], precision: str = "fp32"
) -> Path:
    """Writes the network as a TensorFlow.js graph model folder (``model.json`` and shards).

    Args:
        model: the network (only read).
        output: destination folder; an earlier TF.js export there is replaced.
        precision: ``fp32``; ``fp16`` or ``int8`` quantise the stored weights (the model
            computes in float32 either way).

    Returns:
        ``output`` as a Path.

    Raises:
        ExportError: bad precision or the destination cannot be written.
        MissingDependencyError: TensorFlow or tensorflowjs is not installed.
    """
    if precision not in TFJS_PRECISIONS:
        raise ExportError(
            f"Precision '{precision}' is not known for TF.js; use fp32, fp16 or int8."
        )
    dest = Path(output)
    _import_tf()
    with _tfjs_converter() as convert:
        net = build_tf_network(model, "fp32")
        with _atomic_folder(dest, "model.json") as tmp, tempfile.TemporaryDirectory() as saved:
            _save(net, Path(saved))
            convert(saved, str(tmp), strip_debug_ops=True, weight_shard_size_bytes=TFJS_SHARD_BYTES)
            if precision != "fp32":
                _quantize_tfjs_weights(tmp, precision)
    return dest


def _quantize_tfjs_weights(folder: Path, precision: str) -> None:
    """Rewrites a TF.js model's weight shards with its large float32 tensors in less precision.

    ``fp16``: every tensor of at least :data:`~app.matting.tf_network.SMALL_TENSOR` values in
    float16. ``int8``: the 1x1 kernels among those (most of the weights) in tensorflowjs's 8-bit
    affine form, the others in float16: with the 3x3 kernels in 8 bits as well the matte moves by
    up to 0.38 (mean 7e-3) instead of 0.09 (mean 1.3e-3), measured at 256x144, ratio 0.25.

    Args:
        folder: the converted model (``model.json`` and its shards).
        precision: ``fp16`` or ``int8``.
    """
    import numpy as np
    from tensorflowjs import read_weights, write_weights

    from .tf_network import SMALL_TENSOR

    model_json = folder / "model.json"
    model = json.loads(model_json.read_text())
    manifest = model["weightsManifest"]
    entries = read_weights.read_weights(manifest, str(folder), flatten=True)
    for group in manifest:
        for path in group["paths"]:
            (folder / path).unlink()
    dtypes: dict[str, list[str]] = {"float16": [], "uint8": []}
    for e in entries:
        data = e["data"]
        if data.dtype == np.float32 and data.size >= SMALL_TENSOR:
            pointwise = data.ndim == 4 and data.shape[:2] == (1, 1)
            dtypes["uint8" if precision == "int8" and pointwise else "float16"].append(e["name"])
    model["weightsManifest"] = write_weights.write_weights(
        [entries],
        str(folder),
        shard_size_bytes=TFJS_SHARD_BYTES,
        write_manifest=False,
        quantization_dtype_map={k: v for k, v in dtypes.items() if v},
    )
    model_json.write_text(json.dumps(model))


# --- command line --------------------------------------------------------------------------------


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Adds the ``savedmodel`` and ``tfjs`` subcommands to the export command line."""
    for fmt, (text, precisions) in FORMATS.items():
        s = sub.add_parser(fmt, help=text)
        s.add_argument("--variant", default=DEFAULT_VARIANT, choices=VARIANTS)
        s.add_argument("--precision", default="fp32", choices=precisions)
        s.add_argument("--output", required=True, help="destination folder")
        s.add_argument("--checkpoint", help="weights file (.pth or the official .onnx)")


def check_dependencies(fmt: str) -> None:
    """Raises MissingDependencyError before any work when ``fmt``'s packages are missing."""
    _import_tf()
    if fmt == "tfjs":
        with _tfjs_converter():
            pass


def run(args: argparse.Namespace, model: MattingNetwork) -> Path:
    """Runs the export that ``args`` (parsed by :func:`add_parsers`) asks for."""
    if args.format == "savedmodel":
        return export_savedmodel(model, args.output, args.precision)
    return export_tfjs(model, args.output, args.precision)
