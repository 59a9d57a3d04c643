"""TorchScript and ONNX export: files, interface, and equality with the eager network."""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from app.capture.synthetic import make_frames
from app.matting import export
from app.matting.convert import ConvertError, convert_video
from app.matting.export import TORCHSCRIPT_NOTICE
from app.matting.model import MattingNetwork
from app.media.video import read_video
from tests.fakes import write_clip

pytestmark = [
    pytest.mark.slow,  # runs the official network
    # The exported TorchScript is loaded and frozen as users do; torch's notice that TorchScript
    # is deprecated is not news here.
    pytest.mark.filterwarnings(f"ignore:{TORCHSCRIPT_NOTICE}:DeprecationWarning"),
]

MAX_ABS = 5e-4
MEAN_ABS = 1e-6


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    """6 frames ``[6, 3, 120, 160]`` in 0..1."""
    return torch.from_numpy(make_frames(6, 120, 160)).permute(0, 3, 1, 2).float().div(255)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The command line's TorchScript and ONNX files (fp32 and fp16) of the official weights."""
    folder = tmp_path_factory.mktemp("export")
    files = {}
    for fmt, precision, name in (
        ("torchscript", "fp32", "rvm.torchscript"),
        ("onnx", "fp32", "rvm_fp32.onnx"),
        ("onnx", "fp16", "rvm_fp16.onnx"),
    ):
        path = folder / name
        assert export.main([fmt, "--precision", precision, "--output", str(path)]) == 0
        files[f"{fmt}-{precision}"] = path
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in files.values())
    return files


def _eager(model: MattingNetwork, frames: torch.Tensor, ratio: float) -> list[list[torch.Tensor]]:
    rec: list[torch.Tensor | None] = [None] * 4
    outs = []
    with torch.inference_mode():
        for frame in frames:
            out = model(frame[None], *rec, ratio)
            rec = out[2:]
            outs.append(out)
    return outs


def _assert_close(got: list[torch.Tensor], want: list[torch.Tensor], mean_abs: float) -> None:
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        diff = (a.float() - b.float()).abs()
        assert diff.max().item() <= MAX_ABS
        assert diff.mean().item() <= mean_abs


def test_torchscript_scripted_and_frozen_equal_eager(
    weights_model: MattingNetwork, exported: dict[str, Path], frames: torch.Tensor
) -> None:
    scripted = torch.jit.load(str(exported["torchscript-fp32"]))
    frozen = torch.jit.freeze(torch.jit.load(str(exported["torchscript-fp32"])).eval())
    assert list(frozen.parameters()) == []
    for ratio in (0.5, 1.0):
        want = _eager(weights_model, frames, ratio)
        for module in (scripted, frozen):
            rec: list[torch.Tensor | None] = [None] * 4
            with torch.inference_mode():
                for i, frame in enumerate(frames):
                    out = module(frame[None], *rec, ratio)
                    rec = out[2:]
                    _assert_close(out, want[i], MEAN_ABS)


def test_torchscript_fp16_and_sequences(
    weights_model: MattingNetwork, tmp_path: Path, frames: torch.Tensor
) -> None:
    path = export.export_torchscript(weights_model, tmp_path / "half.pt", precision="fp16")
    half = torch.jit.load(str(path))
    assert {p.dtype for p in half.parameters()} == {torch.float16}
    with torch.inference_mode():
        _, pha, *_ = half(frames[None, :2].half(), None, None, None, None, 0.5)
        want = weights_model(frames[None, :2], downsample_ratio=0.5)[1]
    assert pha.dtype == torch.float16 and pha.shape == (1, 2, 1, 120, 160)
    assert (pha.float() - want).abs().max().item() <= 1e-2
    assert next(weights_model.parameters()).dtype == torch.float32


def test_frozen_torchscript_in_convert_video(
    weights_model: MattingNetwork, exported: dict[str, Path], frames: torch.Tensor, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "in.mp4", make_frames(6, 96, 128), 24)
    frozen = torch.jit.freeze(torch.jit.load(str(exported["torchscript-fp32"])).eval())
    with pytest.raises(ConvertError, match="pass device and dtype"):
        convert_video(frozen, clip, output_alpha=tmp_path / "a.mp4", progress=False)
    for name, model, kwargs in (
        ("frozen", frozen, {"device": "cpu", "dtype": torch.float32}),
        ("eager", weights_model, {}),
    ):
        convert_video(
            model,
            clip,
            output_type="png_sequence",
            output_alpha=tmp_path / name,
            seq_chunk=3,
            progress=False,
            **kwargs,
        )
    for i in range(6):
        a = read_png(tmp_path / "frozen" / f"{i:04d}.png")
        b = read_png(tmp_path / "eager" / f"{i:04d}.png")
        assert np.abs(a.astype(np.int16) - b).max() <= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eager", "frozen", "in.mp4"]
    assert read_video(clip)[0].shape[0] == 6


def read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None
    return image


def test_onnx_interface(exported: dict[str, Path]) -> None:
    for key, elem in (
        ("onnx-fp32", onnx.TensorProto.FLOAT),
        ("onnx-fp16", onnx.TensorProto.FLOAT16),
    ):
        model = onnx.load(str(exported[key]))
        graph = model.graph
        assert tuple(i.name for i in graph.input) == export.INPUT_NAMES
        assert tuple(o.name for o in graph.output) == export.OUTPUT_NAMES
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 12
        types = {i.name: i.type.tensor_type for i in graph.input}
        assert types["src"].elem_type == elem
        ratio = types["downsample_ratio"]
        assert ratio.elem_type == onnx.TensorProto.FLOAT
        assert [d.dim_value for d in ratio.shape.dim] == [1]
        src_dims = [d.dim_param or d.dim_value for d in types["src"].shape.dim]
        assert src_dims == ["batch", 3, "height", "width"]
        # The ratio feeds the first Resize: it is a graph input, not a folded constant.
        resize = next(n for n in graph.node if n.op_type == "Resize")
        feeds = {n.output[0]: n for n in graph.node}
        upstream, stack = set(), list(resize.input)
        while stack:
            name = stack.pop()
            upstream.add(name)
            if name in feeds:
                stack.extend(feeds[name].input)
        assert "downsample_ratio" in upstream


def _ort_run(
    session: ort.InferenceSession, frames: torch.Tensor, ratio: float, dtype: type = np.float32
) -> list[list[np.ndarray]]:
    rec = [np.zeros((1, 1, 1, 1), dtype)] * 4
    outs = []
    for frame in frames:
        feed = {"src": frame[None].numpy().astype(dtype)}
        feed.update({f"r{i + 1}i": r for i, r in enumerate(rec)})
        feed["downsample_ratio"] = np.array([ratio], np.float32)
        out = session.run(None, feed)
        rec = out[2:]
        outs.append(out)
    return outs


def test_onnx_runtime_equals_eager(
    weights_model: MattingNetwork, exported: dict[str, Path], frames: torch.Tensor
) -> None:
    session = ort.InferenceSession(str(exported["onnx-fp32"]), providers=["CPUExecutionProvider"])
    for ratio in (0.5, 0.375):
        want = _eager(weights_model, frames, ratio)
        got = _ort_run(session, frames, ratio)
        for out, ref in zip(got, want, strict=True):
            out_t = [torch.from_numpy(o) for o in out]
            _assert_close(out_t[:2], ref[:2], MEAN_ABS)
            # The state is not clamped to 0..1 and carries a little more float noise.
            _assert_close(out_t[2:], ref[2:], 1e-5)
    # Batch and frame size are dynamic.
    two = torch.stack([frames[:2], frames[2:4]])  # [2, 2, 3, H, W]: two clips
    small = torch.nn.functional.interpolate(two[:, 0], size=(96, 128), mode="bilinear")
    feed = {"src": small.numpy(), "downsample_ratio": np.array([0.5], np.float32)}
    feed.update({f"r{i}i": np.zeros((1, 1, 1, 1), np.float32) for i in range(1, 5)})
    fgr, pha, r1, *_ = session.run(None, feed)
    assert fgr.shape == (2, 3, 96, 128) and pha.shape == (2, 1, 96, 128)
    assert r1.shape == (2, 16, 24, 32)
    with torch.inference_mode():
        ref = weights_model(small, downsample_ratio=0.5)
    assert np.abs(pha - ref[1].numpy()).max() <= MAX_ABS


def test_onnx_at_ratio_one_refines_like_the_official_file(
    weights_model: MattingNetwork, exported: dict[str, Path], frames: torch.Tensor
) -> None:
    # The ratio is a graph input, so the refiner always runs, as in the official export: ONNX
    # Runtime at ratio 1 equals the eager network told to refine at full resolution.
    session = ort.InferenceSession(str(exported["onnx-fp32"]), providers=["CPUExecutionProvider"])
    refining = copy.deepcopy(weights_model)
    refining.refine_full_res = True
    want = _eager(refining, frames, 1.0)
    plain = _eager(weights_model, frames, 1.0)
    got = _ort_run(session, frames, 1.0)
    for out, ref, other in zip(got, want, plain, strict=True):
        _assert_close([torch.from_numpy(o) for o in out[:2]], ref[:2], MEAN_ABS)
        # Not a vacuous check: the refiner changes the matte at ratio 1.
        assert (ref[1] - other[1]).abs().max().item() > 1e-2


def test_ort_backend_runs_our_export(
    weights_model: MattingNetwork, exported: dict[str, Path], frames: torch.Tensor
) -> None:
    from app.matting.ort_backend import OrtRunner

    runner = OrtRunner(exported["onnx-fp32"], threads=2)
    want = _eager(weights_model, frames, 0.5)
    rec: list[torch.Tensor | None] = [None] * 4
    for frame, ref in zip(frames, want, strict=True):
        fgr, pha, rec = runner(frame[None], rec, 0.5)
        _assert_close([fgr, pha], ref[:2], MEAN_ABS)
        _assert_close(rec, ref[2:], 1e-5)


def test_onnx_fp16_close_to_fp32(exported: dict[str, Path], frames: torch.Tensor) -> None:
    cpu = ["CPUExecutionProvider"]
    s32 = ort.InferenceSession(str(exported["onnx-fp32"]), providers=cpu)
    s16 = ort.InferenceSession(str(exported["onnx-fp16"]), providers=cpu)
    few = frames[:4]
    for a, b in zip(_ort_run(s32, few, 0.5), _ort_run(s16, few, 0.5, np.float16), strict=True):
        assert b[1].dtype == np.float16
        assert np.abs(a[1] - b[1].astype(np.float32)).max() <= 1e-2


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = export.main(list(argv))
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"\x80garbage")
    out = str(tmp_path / "m.onnx")
    cases = [
        (["onnx", "--output", str(tmp_path / "no" / "m.onnx")], "does not exist"),
        (["onnx", "--output", out, "--opset", "11"], "Opset 11"),
        (["onnx", "--output", out, "--precision", "int8"], "int8"),
        (["keras", "--output", out], "keras"),
        (["torchscript", "--output", out, "--checkpoint", str(corrupt)], "corrupt"),
        (["torchscript", "--output", str(tmp_path)], "folder"),
    ]
    for argv, word in cases:
        code, err = _cli(capsys, *argv)
        assert code == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.pth"]
