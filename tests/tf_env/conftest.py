"""Tests of the TensorFlow SavedModel and TensorFlow.js exports; they run in ``.venv-tf``.

``make test`` runs them there with ``MATTECAM_TF_ENV=1``, where a missing package is an error.
In an environment without TensorFlow these files are not collected. The exports are made once per
session through the command line; the reference is our PyTorch network on the same frames.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.optional import files_to_skip

NEEDS = {
    "test_savedmodel.py": ("tensorflow", "tf_keras"),
    "test_tfjs.py": ("tensorflow", "tensorflowjs"),
    "test_web.py": ("tensorflow", "tensorflowjs"),
}
collect_ignore = files_to_skip(NEEDS, "MATTECAM_TF_ENV", "TensorFlow environment", "make tf-env")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter, CUDA probe
# TensorFlow swaps in oneDNN kernels only on some CPUs (AVX-512 VNNI and newer), and those accept
# ops the plain kernels refuse: the tests run on the plain ones, as most users' machines do.
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

# Two frame sizes whose downsampled sizes are not whole numbers at either ratio, and odd sizes
# inside the network; 6 recurrent frames each.
SIZES = ((144, 256), (150, 266))
RATIOS = (0.25, 0.375)
FRAMES = 6

Reference = Callable[
    [tuple[int, int], float], tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]
]


@pytest.fixture(scope="session")
def reference(weights_model) -> Reference:
    """``(size, ratio) -> (frames, fgrs, phas)``: our network over a generated clip, NHWC float32.

    The clip is a person crossing a room (:func:`app.capture.synthetic.make_frames`); the state is
    carried from frame to frame.
    """
    import torch

    from app.capture.synthetic import make_frames

    cache: dict = {}

    def run(size: tuple[int, int], ratio: float):
        key = (size, ratio)
        if key not in cache:
            frames = make_frames(FRAMES, *size, seed=5).astype(np.float32) / 255
            rec: list = [None] * 4
            fgrs, phas = [], []
            with torch.inference_mode():
                for frame in frames:
                    src = torch.from_numpy(frame).permute(2, 0, 1)[None]
                    fgr, pha, *rec = weights_model(src, *rec, ratio)
                    fgrs.append(fgr[0].permute(1, 2, 0).numpy())
                    phas.append(pha[0].permute(1, 2, 0).numpy())
            cache[key] = (frames, fgrs, phas)
        return cache[key]

    return run


@pytest.fixture(scope="session")
def tf_exports(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """``(format, precision) -> folder``: the command line's export, made once per session."""
    from app.matting import export

    folder = tmp_path_factory.mktemp("tf_exports")
    made: dict[tuple[str, str], Path] = {}

    def get(fmt: str, precision: str) -> Path:
        if (fmt, precision) not in made:
            path = folder / f"rvm_{fmt}_{precision}"
            argv = [
                fmt,
                "--variant",
                "mobilenetv3",
                "--precision",
                precision,
                "--output",
                str(path),
            ]
            assert export.main(argv) == 0
            made[fmt, precision] = path
        return made[fmt, precision]

    return get
