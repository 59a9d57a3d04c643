"""The RVM network as data, without torch: what the PyTorch network, its exports and the
TensorFlow network share (the TensorFlow environment has no PyTorch, so this module imports
nothing).
"""

from __future__ import annotations

# The frame normalisation of the ImageNet-trained encoders.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# MobileNetV3-Large, as RVM uses it (dilated last stage):
# in, kernel, expanded, out, squeeze-excite, hardswish, stride, dilation
MOBILENET_BLOCKS = (
    (16, 3, 16, 16, False, False, 1, 1),
    (16, 3, 64, 24, False, False, 2, 1),
    (24, 3, 72, 24, False, False, 1, 1),
    (24, 5, 72, 40, True, False, 2, 1),
    (40, 5, 120, 40, True, False, 1, 1),
    (40, 5, 120, 40, True, False, 1, 1),
    (40, 3, 240, 80, False, True, 2, 1),
    (80, 3, 200, 80, False, True, 1, 1),
    (80, 3, 184, 80, False, True, 1, 1),
    (80, 3, 184, 80, False, True, 1, 1),
    (80, 3, 480, 112, True, True, 1, 1),
    (112, 3, 672, 112, True, True, 1, 1),
    (112, 5, 672, 160, True, True, 1, 2),
    (160, 5, 960, 160, True, True, 1, 2),
    (160, 5, 960, 160, True, True, 1, 2),
)

# The interface of the official exports (ONNX, TensorFlow) and of ours.
INPUT_NAMES = ("src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio")
STATE_INPUTS = INPUT_NAMES[1:5]
OUTPUT_NAMES = ("fgr", "pha", "r1o", "r2o", "r3o", "r4o")
