"""TFLite export: the LiteRT interpreter against our network over recurrent frames, two sizes.

Each size is converted once through the command line (fp32); fp16 and int8 come from that
flatbuffer through the same quantizer step the command line runs for them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ai_edge_litert.interpreter import Interpreter

from app.capture.synthetic import make_frames
from app.matting import export
from app.matting.export_tflite import _quantize
from app.matting.model import MattingNetwork

# (width, height, ratio): a ratio that is not a power of two with odd sizes inside the network,
# and a power of two.
SIZES = ((320, 180, 0.375), (256, 144, 0.5))
FRAMES = 6
NAMES = ("fgr", "pha", "r1o", "r2o", "r3o", "r4o")


@pytest.fixture(scope="session")
def flatbuffers(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[int, str], bytes]:
    """{(size index, precision): flatbuffer} for both sizes and fp32, fp16, int8."""
    folder = tmp_path_factory.mktemp("tflite")
    out = {}
    for i, (w, h, r) in enumerate(SIZES):
        path = folder / f"rvm_{w}x{h}.tflite"
        argv = ["tflite", "--size", f"{w}x{h}", "--downsample-ratio", str(r), "--output", str(path)]
        assert export.main(argv) == 0
        out[i, "fp32"] = path.read_bytes()
        for precision in ("fp16", "int8"):
            out[i, precision] = _quantize(out[i, "fp32"], precision)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"rvm_{w}x{h}.tflite" for w, h, _ in SIZES
    )
    return out


def _runner(flatbuffer: bytes) -> tuple[Interpreter, object]:
    interpreter = Interpreter(model_content=flatbuffer, num_threads=2)
    return interpreter, interpreter.get_signature_runner()


def _errors(
    model: MattingNetwork, flatbuffer: bytes, size: tuple[int, int, float]
) -> dict[str, np.ndarray]:
    """Per output, the max and mean absolute difference from the network on each frame."""
    w, h, r = size
    _, run = _runner(flatbuffer)
    inputs = run.get_input_details()
    state = {k: np.zeros(v["shape"], np.float32) for k, v in inputs.items() if k != "src"}
    ref: list[torch.Tensor | None] = [None] * 4
    model.refine_full_res = False
    errors: dict[str, list[tuple[float, float]]] = {n: [] for n in NAMES}
    for rgb in make_frames(FRAMES, h, w):
        src = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            want = model(src, *ref, r)
        ref = want[2:]
        got = run(src=src.permute(0, 2, 3, 1).numpy(), **state)
        state = {f"r{i}i": got[f"r{i}o"] for i in range(1, 5)}
        for name, b in zip(NAMES, want, strict=True):
            diff = np.abs(got[name] - b.permute(0, 2, 3, 1).numpy())
            errors[name].append((float(diff.max()), float(diff.mean())))
    return {n: np.array(v) for n, v in errors.items()}


def test_signature_like_rvm(flatbuffers: dict[tuple[int, str], bytes]) -> None:
    interpreter, run = _runner(flatbuffers[0, "fp32"])
    assert list(interpreter.get_signature_list()) == ["serving_default"]
    inputs, outputs = run.get_input_details(), run.get_output_details()
    assert sorted(inputs) == ["r1i", "r2i", "r3i", "r4i", "src"]
    assert sorted(outputs) == sorted(NAMES)
    # 320x180 at 0.375 is 120x67 inside: state at 1/2, 1/4, 1/8, 1/16 of it, rounded up.
    assert tuple(inputs["src"]["shape"]) == (1, 180, 320, 3)
    assert tuple(outputs["fgr"]["shape"]) == (1, 180, 320, 3)
    assert tuple(outputs["pha"]["shape"]) == (1, 180, 320, 1)
    states = [(1, 34, 60, 16), (1, 17, 30, 20), (1, 9, 15, 40), (1, 5, 8, 64)]
    for i, shape in enumerate(states, start=1):
        assert tuple(inputs[f"r{i}i"]["shape"]) == shape
        assert tuple(outputs[f"r{i}o"]["shape"]) == shape
    assert all(d["dtype"] == np.float32 for d in [*inputs.values(), *outputs.values()])


@pytest.mark.parametrize("index", range(len(SIZES)), ids=[f"{w}x{h}@{r}" for w, h, r in SIZES])
def test_interpreter_follows_the_network(
    flatbuffers: dict[tuple[int, str], bytes], weights_model: MattingNetwork, index: int
) -> None:
    fp32 = _errors(weights_model, flatbuffers[index, "fp32"], SIZES[index])
    for name, e in fp32.items():
        assert e[:, 0].max() <= 5e-4, (name, e)
    fp16 = _errors(weights_model, flatbuffers[index, "fp16"], SIZES[index])
    assert fp16["pha"][:, 0].max() <= 1e-2 and fp16["fgr"][:, 0].max() <= 1e-2, fp16
    int8 = _errors(weights_model, flatbuffers[index, "int8"], SIZES[index])
    # Dynamic-range int8 is coarse at edges; on average the matte stays close.
    assert int8["pha"][:, 1].max() <= 2e-2, int8["pha"]


def test_smaller_weights(flatbuffers: dict[tuple[int, str], bytes]) -> None:
    sizes = {p: len(flatbuffers[0, p]) for p in ("fp32", "fp16", "int8")}
    assert sizes["fp16"] < 0.6 * sizes["fp32"] and sizes["int8"] < 0.35 * sizes["fp32"], sizes
    interpreter, _ = _runner(flatbuffers[0, "fp16"])
    dtypes = {d["dtype"] for d in interpreter.get_tensor_details()}
    assert np.float16 in dtypes
