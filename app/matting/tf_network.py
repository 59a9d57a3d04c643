"""The RVM network in TensorFlow (NHWC), built from the weights of the PyTorch network.

:class:`TFMattingNetwork` computes what :class:`app.matting.model.MattingNetwork` computes, in
TensorFlow's channels-last layout, with every BatchNorm folded into the convolution before it. It
is the model behind the SavedModel and TensorFlow.js exports (:mod:`app.matting.export_tf`).

Interface (RVM's TensorFlow one): ``model([src, r1i, r2i, r3i, r4i, downsample_ratio])`` returns
a dict with ``fgr``, ``pha``, ``r1o``..``r4o``. ``src`` is ``[B, H, W, 3]`` RGB in 0..1 of any size,
the state is ``[B, h, w, C]`` (a scalar 0 or any tensor that broadcasts to the state on the first
frame) and ``downsample_ratio`` a float32 scalar read at run time. Like the ONNX export, the
refiner always runs, also at a ratio of 1.

The layers read their kernels through :meth:`TFMattingNetwork._conv`, which creates each variable
in one eager pass over a small frame when the network is built; the traced functions only read
them. Weights may be stored in float16 (about half the file; see :data:`SMALL_TENSOR`); the
arithmetic is always float32.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from .architecture import INPUT_NAMES, MEAN, MOBILENET_BLOCKS, OUTPUT_NAMES, STD

RESNET_STAGES = ((3, 1, 1), (4, 2, 1), (6, 2, 1), (3, 1, 2))  # blocks, stride, dilation

# Tensors smaller than this stay float32 when the weights are stored in less precision: the
# biases and the small early kernels (1.8% of the MobileNetV3 weights). Rounded to float16, the
# 16-channel block 1 alone moves the matte by up to 1.2e-2; with this rule the whole network
# moves it by about 1.5e-3.
SMALL_TENSOR = 4096

# The call signature: any frame size and batch; the state has unknown rank, since the first frame
# passes a scalar zero and later ones [B, h, w, C]; the ratio is a scalar (or [1]).
INPUT_SPECS = [tf.TensorSpec([None, None, None, 3], tf.float32, name=INPUT_NAMES[0])] + [
    tf.TensorSpec(None, tf.float32, name=name) for name in INPUT_NAMES[1:]
]


@dataclass(frozen=True)
class NetworkWeights:
    """The PyTorch network's parameters as NumPy arrays, in PyTorch's layout and names.

    Attributes:
        variant: ``mobilenetv3`` or ``resnet50``.
        tensors: state_dict entries (``OIHW`` convolution weights).
        bn_eps: the epsilon of each BatchNorm, by its state_dict prefix.
    """

    variant: str
    tensors: Mapping[str, np.ndarray]
    bn_eps: Mapping[str, float] = field(default_factory=dict)

    def folded(self, conv: str, bn: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Returns convolution ``conv``'s ``OIHW`` weight and bias with BatchNorm ``bn`` folded in.

        Args:
            conv: state_dict prefix of the convolution.
            bn: prefix of the BatchNorm after it, or None.
        """
        weight = self.tensors[f"{conv}.weight"].astype(np.float64)
        bias = self.tensors.get(f"{conv}.bias")
        if bn is None:
            return weight.astype(np.float32), None if bias is None else bias.astype(np.float32)
        t = self.tensors
        scale = t[f"{bn}.weight"] / np.sqrt(
            t[f"{bn}.running_var"].astype(np.float64) + self.bn_eps[bn]
        )
        shift = t[f"{bn}.bias"] - t[f"{bn}.running_mean"] * scale
        if bias is not None:
            shift = shift + bias * scale
        return (weight * scale[:, None, None, None]).astype(np.float32), shift.astype(np.float32)


def _hardswish(x: tf.Tensor) -> tf.Tensor:
    # Not relu6: TensorFlow's graph optimiser (which the TF.js converter runs) fuses a convolution
    # with x * relu6(x + 3) / 6 into one op whose activation TF.js cannot run.
    return x * tf.clip_by_value(x + 3.0, 0.0, 6.0) / 6.0


def _hardsigmoid(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.relu6(x + 3.0) / 6.0


def _taps(size_in: tf.Tensor, size_out: tf.Tensor, ratio: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """First and second source index and the second's weight for each output position."""
    pos = (tf.cast(tf.range(size_out), tf.float32) + 0.5) / ratio - 0.5
    pos = tf.maximum(pos, 0.0)
    first = tf.minimum(tf.floor(pos), tf.cast(size_in - 1, tf.float32))
    weight = pos - first
    first_index = tf.cast(first, tf.int32)
    second_index = tf.minimum(first_index + 1, size_in - 1)
    return first_index, second_index, weight


def resize_by_ratio(x: tf.Tensor, ratio: tf.Tensor) -> tf.Tensor:
    """Bilinear resize of ``x`` (``[B, H, W, C]``) by a ratio given at run time.

    As PyTorch's ``interpolate(scale_factor=ratio, align_corners=False,
    recompute_scale_factor=False)``: the output is ``floor(H * ratio) x floor(W * ratio)`` and
    output pixel ``i`` samples ``(i + 0.5) / ratio - 0.5``. (``tf.image.resize`` maps with the
    size quotient instead, which differs whenever ``H * ratio`` is not a whole number.)

    Args:
        x: the frames.
        ratio: float32 scalar.
    """
    shape = tf.shape(x)
    height, width = shape[1], shape[2]
    out_h = tf.cast(tf.floor(tf.cast(height, tf.float32) * ratio), tf.int32)
    out_w = tf.cast(tf.floor(tf.cast(width, tf.float32) * ratio), tf.int32)
    # Stripped from the TF.js export with the other debug ops.
    check = tf.debugging.assert_positive(
        tf.minimum(out_h, out_w),
        message="downsample_ratio shrinks the frame to nothing; give a larger ratio",
    )
    with tf.control_dependencies([check]):
        out_h = tf.identity(out_h)
    y0, y1, wy = _taps(height, out_h, ratio)
    x0, x1, wx = _taps(width, out_w, ratio)
    top = tf.gather(x, y0, axis=1)
    rows = top + (tf.gather(x, y1, axis=1) - top) * tf.reshape(wy, [1, -1, 1, 1])
    left = tf.gather(rows, x0, axis=2)
    return left + (tf.gather(rows, x1, axis=2) - left) * tf.reshape(wx, [1, 1, -1, 1])


def _resize_to(x: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Bilinear resize to ``size`` with half-pixel centres (PyTorch's ``align_corners=False``)."""
    return tf.image.resize(x, size, method="bilinear")


def _up2_crop(x: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """``x`` upsampled x2 bilinearly and cropped to ``like``'s height and width."""
    shape = tf.shape(x)
    x = _resize_to(x, shape[1:3] * 2)
    size = tf.shape(like)
    return x[:, : size[1], : size[2]]


def _dilated(kernel: tf.Tensor, dilation: int) -> tf.Tensor:
    """``kernel`` (``[k, k, C, M]``) with ``dilation - 1`` zero rows and columns between its taps.

    A convolution with the result at dilation 1 equals one with ``kernel`` at ``dilation``.
    """
    if dilation == 1:
        return kernel
    size, channels, multiplier = int(kernel.shape[0]), kernel.shape[2], kernel.shape[3]
    span = (size - 1) * dilation + 1
    gap = [[0, 0], [0, dilation - 1], [0, 0]]  # zeros after each tap; tensors of rank 3 at most
    rows = tf.pad(tf.reshape(kernel, [size, 1, -1]), gap)  # for the browser's WebGL backend
    rows = tf.reshape(rows, [size * dilation, -1])[:span]
    taps = tf.pad(tf.reshape(rows, [span * size, 1, -1]), gap)
    taps = tf.reshape(taps, [span, size * dilation, channels, multiplier])
    return taps[:, :span]


class TFMattingNetwork(tf.Module):
    """RVM in TensorFlow; ``model([src, r1i, r2i, r3i, r4i, downsample_ratio]) -> dict``.

    Args:
        weights: the PyTorch network's parameters.
        storage: dtype the kernels are kept in (``tf.float32`` or ``tf.float16``), except those
            under :data:`SMALL_TENSOR` values, which stay float32.
    """

    def __init__(self, weights: NetworkWeights, storage: tf.DType = tf.float32):
        super().__init__(name="rvm")
        if weights.variant not in ("mobilenetv3", "resnet50"):
            raise ValueError(f"Unknown variant '{weights.variant}'.")
        self.variant = weights.variant
        self._weights: NetworkWeights | None = weights
        self._storage = storage
        self.params: dict[str, tf.Variable] = {}
        zero = tf.zeros([])
        self.forward([tf.zeros([1, 64, 64, 3]), zero, zero, zero, zero, tf.constant(0.5)])
        self._weights = None  # every variable exists now; the NumPy copy is not kept

    # --- parameters ------------------------------------------------------------------------------

    def _param(self, name: str, value: np.ndarray | None) -> tf.Tensor | None:
        if name not in self.params:
            if value is None:
                return None
            dtype = self._storage if value.size >= SMALL_TENSOR else tf.float32
            self.params[name] = tf.Variable(
                tf.constant(value, dtype=dtype), trainable=False, name=name
            )
        return tf.cast(self.params[name], tf.float32)

    def _conv(
        self,
        x: tf.Tensor,
        conv: str,
        bn: str | None = None,
        stride: int = 1,
        dilation: int = 1,
        depthwise: bool = False,
    ) -> tf.Tensor:
        """Applies convolution ``conv`` (BatchNorm ``bn`` folded in) with PyTorch's padding."""
        if self._weights is not None:
            weight, bias = self._weights.folded(conv, bn)
            kernel = weight.transpose(2, 3, 0, 1) if depthwise else weight.transpose(2, 3, 1, 0)
        else:
            kernel, bias = None, None
        k = self._param(f"{conv}.kernel", kernel)
        b = self._param(f"{conv}.bias", bias) if bias is not None or self._weights is None else None
        size = int(k.shape[0])
        padding = "SAME"  # symmetric for odd kernels at stride 1, and nothing for 1x1 kernels
        if stride > 1 and size > 1:
            # Explicit padding inside the op would be shorter, but TensorFlow's graph optimiser
            # crashes fusing an explicitly padded depthwise convolution with its bias and ReLU.
            pad = (size - 1) // 2 * dilation
            x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
            padding = "VALID"
        if depthwise:
            # tf.nn.depthwise_conv2d runs a dilated kernel through space-to-batch, and the raw op's
            # own dilation exists only in oneDNN builds on some CPUs: spread the kernel instead.
            y = tf.raw_ops.DepthwiseConv2dNative(
                input=x,
                filter=_dilated(k, dilation),
                strides=[1, stride, stride, 1],
                padding=padding,
            )
        else:
            y = tf.nn.conv2d(x, k, stride, padding, dilations=dilation)
        return y if b is None else tf.nn.bias_add(y, b)

    # --- encoders --------------------------------------------------------------------------------

    def _mobilenet(self, x: tf.Tensor) -> list[tf.Tensor]:
        x = (x - tf.constant(MEAN)) / tf.constant(STD)
        p = "backbone.features"
        x = _hardswish(self._conv(x, f"{p}.0.0", f"{p}.0.1", stride=2))
        feats = []
        for n, (cin, _k, exp, cout, se, hswish, stride, dilation) in enumerate(MOBILENET_BLOCKS, 1):
            act = _hardswish if hswish else tf.nn.relu
            stride = 1 if dilation > 1 else stride
            b = f"{p}.{n}.block"
            y, i = x, 0
            if exp != cin:
                y = act(self._conv(y, f"{b}.0.0", f"{b}.0.1"))
                i = 1
            y = act(self._conv(y, f"{b}.{i}.0", f"{b}.{i}.1", stride, dilation, depthwise=True))
            if se:
                i += 1
                s = tf.reduce_mean(y, axis=[1, 2], keepdims=True)
                s = self._conv(tf.nn.relu(self._conv(s, f"{b}.{i}.fc1")), f"{b}.{i}.fc2")
                y = y * _hardsigmoid(s)
            y = self._conv(y, f"{b}.{i + 1}.0", f"{b}.{i + 1}.1")
            x = x + y if stride == 1 and cin == cout else y
            if n in (1, 3, 6):
                feats.append(x)
        feats.append(_hardswish(self._conv(x, f"{p}.16.0", f"{p}.16.1")))
        return feats

    def _bottleneck(self, x: tf.Tensor, name: str, stride: int, dilation: int) -> tf.Tensor:
        y = tf.nn.relu(self._conv(x, f"{name}.conv1", f"{name}.bn1"))
        y = tf.nn.relu(self._conv(y, f"{name}.conv2", f"{name}.bn2", stride, dilation))
        y = self._conv(y, f"{name}.conv3", f"{name}.bn3")
        down = f"{name}.downsample.0"
        has_down = (
            f"{down}.kernel" in self.params
            if self._weights is None
            else f"{down}.weight" in self._weights.tensors
        )
        if has_down:
            x = self._conv(x, down, f"{name}.downsample.1", stride)
        return tf.nn.relu(x + y)

    def _resnet(self, x: tf.Tensor) -> list[tf.Tensor]:
        f1 = tf.nn.relu(self._conv(x, "backbone.conv1", "backbone.bn1", stride=2))
        # Max pooling pads with -inf in PyTorch; after a ReLU, zeros give the same maxima.
        x = tf.nn.max_pool2d(tf.pad(f1, [[0, 0], [1, 1], [1, 1], [0, 0]]), 3, 2, "VALID")
        feats = [f1]
        for n, (blocks, stride, dilation) in enumerate(RESNET_STAGES, 1):
            for m in range(blocks):
                name = f"backbone.layer{n}.{m}"
                x = self._bottleneck(x, name, stride if m == 0 else 1, 1 if m == 0 else dilation)
            if n < 3:
                feats.append(x)
        feats.append(x)
        return feats

    # --- decoder and refiner ---------------------------------------------------------------------

    def _gru(self, x: tf.Tensor, h: tf.Tensor, name: str) -> tf.Tensor:
        # A scalar or [1, 1, 1, 1] zero state broadcasts to x's shape (and gets x's rank).
        h = tf.broadcast_to(h, tf.shape(x))
        rz = tf.sigmoid(self._conv(tf.concat([x, h], -1), f"{name}.ih.0"))
        r, z = tf.split(rz, 2, axis=-1)
        c = tf.tanh(self._conv(tf.concat([x, r * h], -1), f"{name}.hh.0"))
        return (1.0 - z) * h + z * c

    def _split_gru(self, x: tf.Tensor, h: tf.Tensor, name: str) -> tuple[tf.Tensor, tf.Tensor]:
        a, b = tf.split(x, 2, axis=-1)
        b = self._gru(b, h, name)
        return tf.concat([a, b], -1), b

    def _decoder(
        self, s0: tf.Tensor, feats: list[tf.Tensor], rec: list[tf.Tensor]
    ) -> tuple[tf.Tensor, list[tf.Tensor]]:
        f1, f2, f3, f4 = feats
        # 2x2 average pooling in ceil mode; TensorFlow's SAME padding leaves padding uncounted.
        s1 = tf.nn.avg_pool2d(s0, 2, 2, "SAME")
        s2 = tf.nn.avg_pool2d(s1, 2, 2, "SAME")
        s3 = tf.nn.avg_pool2d(s2, 2, 2, "SAME")
        d = "decoder"
        x4, r4 = self._split_gru(f4, rec[3], f"{d}.decode4.gru")
        x, out = x4, [r4]
        blocks = (("decode3", f3, s3, rec[2]), ("decode2", f2, s2, rec[1]))
        for name, f, s, r in (*blocks, ("decode1", f1, s1, rec[0])):
            x = tf.concat([_up2_crop(x, s), f, s], -1)
            x = tf.nn.relu(self._conv(x, f"{d}.{name}.conv.0", f"{d}.{name}.conv.1"))
            x, r = self._split_gru(x, r, f"{d}.{name}.gru")
            out.insert(0, r)
        x = tf.concat([_up2_crop(x, s0), s0], -1)
        x = tf.nn.relu(self._conv(x, f"{d}.decode0.conv.0", f"{d}.decode0.conv.1"))
        x = tf.nn.relu(self._conv(x, f"{d}.decode0.conv.3", f"{d}.decode0.conv.4"))
        return x, out

    def _refine(
        self, src: tf.Tensor, src_sm: tf.Tensor, fgr: tf.Tensor, pha: tf.Tensor, hid: tf.Tensor
    ) -> tf.Tensor:
        def gray(x: tf.Tensor) -> tf.Tensor:
            return tf.concat([x, tf.reduce_mean(x, axis=-1, keepdims=True)], -1)

        def box(x: tf.Tensor) -> tf.Tensor:
            return self._conv(x, "refiner.box_filter", depthwise=True)

        base_x = gray(src_sm)
        base_y = tf.concat([fgr, pha], -1)
        mean_x, mean_y = box(base_x), box(base_y)
        cov_xy = box(base_x * base_y) - mean_x * mean_y
        var_x = box(base_x * base_x) - mean_x * mean_x
        a = tf.concat([cov_xy, var_x, hid], -1)
        a = tf.nn.relu(self._conv(a, "refiner.conv.0", "refiner.conv.1"))
        a = tf.nn.relu(self._conv(a, "refiner.conv.3", "refiner.conv.4"))
        a = self._conv(a, "refiner.conv.6")
        b = mean_y - a * mean_x
        size = tf.shape(src)[1:3]
        return _resize_to(a, size) * gray(src) + _resize_to(b, size)

    # --- the whole network -----------------------------------------------------------------------

    @tf.function(input_signature=[INPUT_SPECS], autograph=False)
    def __call__(self, inputs: list[tf.Tensor]) -> dict[str, tf.Tensor]:
        """RVM's call, ``model([src, r1i, r2i, r3i, r4i, downsample_ratio])``: :meth:`forward`."""
        return self.forward(inputs)

    @tf.function(input_signature=INPUT_SPECS, autograph=False)
    def serve(
        self,
        src: tf.Tensor,
        r1i: tf.Tensor,
        r2i: tf.Tensor,
        r3i: tf.Tensor,
        r4i: tf.Tensor,
        downsample_ratio: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        """The same with named inputs: the ``serving_default`` signature."""
        return self.forward([src, r1i, r2i, r3i, r4i, downsample_ratio])

    def forward(self, inputs: list[tf.Tensor]) -> dict[str, tf.Tensor]:
        """Mattes one frame batch; ``inputs`` is ``[src, r1i, r2i, r3i, r4i, downsample_ratio]``.

        Returns:
            ``{"fgr", "pha", "r1o".."r4o"}``, all float32 and NHWC.
        """
        src = tf.cast(inputs[0], tf.float32)
        rec = [tf.cast(r, tf.float32) for r in inputs[1:5]]
        ratio = tf.reshape(tf.cast(inputs[5], tf.float32), [])
        src_sm = resize_by_ratio(src, ratio)
        feats = self._mobilenet(src_sm) if self.variant == "mobilenetv3" else self._resnet(src_sm)
        f4 = feats[3]
        aspp = tf.nn.relu(self._conv(f4, "aspp.aspp1.0", "aspp.aspp1.1"))
        gate = tf.sigmoid(self._conv(tf.reduce_mean(f4, [1, 2], keepdims=True), "aspp.aspp2.1"))
        hid, state = self._decoder(src_sm, [*feats[:3], aspp * gate], rec)
        fgr_res, pha = tf.split(self._conv(hid, "project_mat.conv"), [3, 1], axis=-1)
        out = self._refine(src, src_sm, fgr_res, pha, hid)
        fgr_res, pha = tf.split(out, [3, 1], axis=-1)
        fgr = tf.clip_by_value(fgr_res + src, 0.0, 1.0)
        pha = tf.clip_by_value(pha, 0.0, 1.0)
        return dict(zip(OUTPUT_NAMES, [fgr, pha, *state], strict=True))
