"""Parity with the official ONNX export over recurrent frames, shared by the network's tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from app.capture.synthetic import make_frames
from tests.fakes import to_tensor_batch

RATIOS = (1.0, 0.5, 0.375, 0.25)
Step = Callable[[torch.Tensor, list, float], tuple]


def assert_matches_official(step: Step, official_onnx: Path, size: tuple[int, int]) -> None:
    """Runs ``step`` and ONNX Runtime on the official export over the same 30 frames.

    A cartoon person walks across a room, so the network finds a person and its edges: the matte
    covers about a quarter of each frame, with soft edges. At every ratio in :data:`RATIOS`,
    ``fgr`` and ``pha`` must agree to a max absolute difference of 5e-4 and a mean of 1e-6, and
    the recurrent state shapes must be the same. The measured differences are printed (``-s``).

    Args:
        step: ``(src, rec, ratio) -> (fgr, pha, rec)``, starting from ``[None] * 4``.
        official_onnx: the official ``rvm_mobilenetv3_fp32.onnx``.
        size: frame (height, width).
    """
    ort = pytest.importorskip("onnxruntime")
    options = ort.SessionOptions()
    # Idle ORT threads otherwise spin while PyTorch runs, which starves both on a small machine.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.inter_op_num_threads = 1
    sess = ort.InferenceSession(
        str(official_onnx), sess_options=options, providers=["CPUExecutionProvider"]
    )
    clip = make_frames(30, *size, seed=11)
    for ratio in RATIOS:
        ref_rec = [np.zeros((1, 1, 1, 1), np.float32)] * 4
        rec: list[torch.Tensor | None] = [None] * 4
        worst, mean_worst = 0.0, 0.0
        for frame in clip:
            src = to_tensor_batch(frame)
            feeds = dict(zip(("r1i", "r2i", "r3i", "r4i"), ref_rec, strict=True))
            ref_fgr, ref_pha, *ref_rec = sess.run(
                None, {"src": src, **feeds, "downsample_ratio": np.array([ratio], np.float32)}
            )
            with torch.inference_mode():
                fgr, pha, rec = step(torch.from_numpy(src), rec, ratio)
            diff = np.abs(np.concatenate([fgr.numpy() - ref_fgr, pha.numpy() - ref_pha], axis=1))
            worst = max(worst, float(diff.max()))
            mean_worst = max(mean_worst, float(diff.mean()))
        print(f"parity {size[1]}x{size[0]}@{ratio}: max {worst:.2e}, mean {mean_worst:.2e}")
        assert 0.15 < float(ref_pha.mean()) < 0.5, "the clip must give the network a person"
        assert float(((ref_pha > 0.05) & (ref_pha < 0.95)).mean()) > 0.005, "and soft edges"
        assert worst <= 5e-4, f"ratio {ratio}: max abs {worst:.2e}"
        assert mean_worst <= 1e-6, f"ratio {ratio}: mean abs {mean_worst:.2e}"
        assert [r.shape for r in ref_rec] == [tuple(r.shape) for r in rec]
