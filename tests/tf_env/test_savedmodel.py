"""TensorFlow SavedModel export: RVM's snippets as written, parity with our network, files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from app.matting import export
from app.matting.model import MattingNetwork
from app.matting.tf_network import SMALL_TENSOR
from tests.tf_env.conftest import RATIOS, SIZES

FP32_MAX = 5e-4
FP16_PHA_MAX = 1e-2

# RVM's TensorFlow snippet, as its documentation gives it, over frames read from a file.
RVM_SNIPPET = """
import sys
import numpy as np
import tensorflow as tf

model = tf.keras.models.load_model(sys.argv[1])
model = tf.function(model)

rec = [tf.constant(0.)] * 4         # Initial recurrent states.
downsample_ratio = tf.constant(float(sys.argv[2]))  # Adjust based on your video.

fgrs, phas = [], []
for src in np.load(sys.argv[3]):    # src is of shape [1, H, W, 3].
    src = tf.constant(src[None])
    out = model([src, *rec, downsample_ratio])
    rec = out['r1o'], out['r2o'], out['r3o'], out['r4o']
    fgr, pha = out['fgr'], out['pha']
    fgrs.append(fgr.numpy()[0]); phas.append(pha.numpy()[0])
np.savez(sys.argv[4], fgr=np.stack(fgrs), pha=np.stack(phas))
"""


def _diff(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    return max(float(np.abs(a - b).max()) for a, b in zip(got, want, strict=True))


def test_rvm_keras_snippet_runs_as_written(tf_exports, reference, tmp_path: Path) -> None:
    """``tf.keras.models.load_model`` + ``tf.function`` (Keras 2) with scalar zero states."""
    saved = tf_exports("savedmodel", "fp32")
    script = tmp_path / "rvm_snippet.py"
    script.write_text(textwrap.dedent(RVM_SNIPPET))
    for size in SIZES:
        ratio = 0.25
        frames, fgrs, phas = reference(size, ratio)
        np.save(tmp_path / "frames.npy", frames)
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        args = [str(saved), str(ratio), str(tmp_path / "frames.npy"), str(tmp_path / "out.npz")]
        run = subprocess.run(
            [sys.executable, str(script), *args], env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert "SavedModel saved prior to TF 2.5" not in run.stderr
        out = np.load(tmp_path / "out.npz")
        worst = max(_diff(list(out["fgr"]), fgrs), _diff(list(out["pha"]), phas))
        print(f"keras snippet {size[1]}x{size[0]}@{ratio}: max {worst:.1e}")
        assert worst <= FP32_MAX


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_saved_model_load_matches_network(tf_exports, reference, precision: str) -> None:
    """``tf.saved_model.load``: 6 recurrent frames, two sizes, runtime ratios 0.25 and 0.375."""
    model = tf.saved_model.load(str(tf_exports("savedmodel", precision)))
    for size in SIZES:
        for ratio in RATIOS:
            frames, fgrs, phas = reference(size, ratio)
            rec = [tf.constant(0.0)] * 4
            got_fgr, got_pha = [], []
            for frame in frames:
                out = model([tf.constant(frame[None]), *rec, tf.constant(ratio)])
                rec = [out[f"r{i}o"] for i in range(1, 5)]
                got_fgr.append(out["fgr"].numpy()[0])
                got_pha.append(out["pha"].numpy()[0])
            d_fgr, d_pha = _diff(got_fgr, fgrs), _diff(got_pha, phas)
            name = f"savedmodel {precision} {size[1]}x{size[0]}@{ratio}"
            print(f"{name}: fgr {d_fgr:.1e} pha {d_pha:.1e}")
            assert float(np.mean(phas[-1])) > 0.1, "the clip must give the network a person"
            if precision == "fp32":
                assert max(d_fgr, d_pha) <= FP32_MAX
            else:
                assert d_pha <= FP16_PHA_MAX
            h, w = size
            sm = (int(h * ratio), int(w * ratio))
            assert [tuple(r.shape) for r in rec] == [
                (1, -(-sm[0] // 2**i), -(-sm[1] // 2**i), c)
                for i, c in zip(range(1, 5), (16, 20, 40, 64), strict=True)
            ]


def test_serving_signature_by_name_and_batch(tf_exports, reference) -> None:
    """The ``serving_default`` signature takes the inputs by name; a batch of two frames."""
    model = tf.saved_model.load(str(tf_exports("savedmodel", "fp32")))
    serve = model.signatures["serving_default"]
    assert sorted(serve.structured_input_signature[1]) == sorted(export.INPUT_NAMES)
    assert sorted(serve.structured_outputs) == sorted(export.OUTPUT_NAMES)
    frames, _, phas = reference(SIZES[0], 0.375)
    zero = tf.zeros([1, 1, 1, 1])  # the ONNX convention for the first frame works too
    out = serve(
        src=tf.constant(frames[:1].repeat(2, axis=0)),
        r1i=zero,
        r2i=zero,
        r3i=zero,
        r4i=zero,
        downsample_ratio=tf.constant([0.375]),
    )
    assert out["pha"].shape == (2, *SIZES[0], 1)
    for b in range(2):
        assert float(np.abs(out["pha"][b].numpy() - phas[0]).max()) <= FP32_MAX


def test_files_and_weights(tf_exports) -> None:
    """fp16 stores the large tensors in half precision, in about half the space."""
    sizes = {}
    for precision, dtype in (("fp32", tf.float32), ("fp16", tf.float16)):
        folder = tf_exports("savedmodel", precision)
        assert (folder / "saved_model.pb").is_file()
        sizes[precision] = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        params = tf.saved_model.load(str(folder)).params
        large = {v.dtype for k, v in params.items() if v.shape.num_elements() >= SMALL_TENSOR}
        small = {v.dtype for k, v in params.items() if v.shape.num_elements() < SMALL_TENSOR}
        assert (large, small) == ({dtype}, {tf.float32})
        kernels = [k for k in params if k.endswith(".kernel")]
        # Every BatchNorm folded: one kernel per convolution (the official ONNX export's 85 Conv
        # nodes count the refiner's box filter four times).
        assert len(kernels) == 82
    print(f"savedmodel sizes: {sizes}")
    assert 14e6 < sizes["fp32"] < 17e6
    assert 0.45 < sizes["fp16"] / sizes["fp32"] < 0.55
    assert not list(tf_exports("savedmodel", "fp32").parent.glob(".*part"))


def test_runtime_ratio_that_leaves_nothing_is_refused(tf_exports) -> None:
    model = tf.saved_model.load(str(tf_exports("savedmodel", "fp32")))
    zero = tf.constant(0.0)
    with pytest.raises(tf.errors.InvalidArgumentError, match="downsample_ratio"):
        model([tf.zeros([1, 64, 64, 3]), zero, zero, zero, zero, tf.constant(0.01)])


def test_resnet50_matches_network() -> None:
    """The ResNet-50 variant, built from a randomly initialised network, one frame at 0.5."""
    from app.matting.export_tf import build_tf_network

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = MattingNetwork("resnet50").eval()
    frame = np.random.default_rng(0).random((1, 96, 128, 3), np.float32)
    with torch.inference_mode():
        fgr, pha, *_ = net(torch.from_numpy(frame).permute(0, 3, 1, 2), downsample_ratio=0.5)
    zero = tf.constant(0.0)
    out = build_tf_network(net)([tf.constant(frame), zero, zero, zero, zero, tf.constant(0.5)])
    assert float(np.abs(out["pha"].numpy() - pha.permute(0, 2, 3, 1).numpy()).max()) <= 1e-4
    assert float(np.abs(out["fgr"].numpy() - fgr.permute(0, 2, 3, 1).numpy()).max()) <= 1e-4


def test_cli_errors(tmp_path: Path, capsys) -> None:
    existing = tmp_path / "taken"
    existing.write_text("x")
    assert export.main(["savedmodel", "--output", str(existing)]) == 2
    assert "exists" in capsys.readouterr().err
    assert existing.read_text() == "x"
    with pytest.raises(SystemExit) as e:
        export.main(["savedmodel", "--precision", "int8", "--output", str(tmp_path / "m")])
    assert e.value.code == 2
    assert "invalid choice: 'int8'" in capsys.readouterr().err
    assert export.main(["savedmodel", "--output", str(tmp_path / "no" / "m")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
