"""Fixed-size exports without their converters: options, errors, state shapes, folded weights.

The conversions themselves are tested in tests/export_env, in the export environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from app.capture.synthetic import make_frames
from app.matting import export
from app.matting.export import ExportError
from app.matting.export_fixed import FixedGraph, FixedShape, atomic_output, fold_batchnorm
from app.matting.model import MattingNetwork


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = export.main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--size", "1920"], ["'1920' is not WIDTHxHEIGHT"]),
        (["--size", "wide x high"], ["not WIDTHxHEIGHT"]),
        (["--size", "0x1080"], ["0x1080 cannot be exported", "1 to 8192"]),
        (["--size", "20000x1080"], ["20000x1080 cannot be exported"]),
        (["--downsample-ratio", "0"], ["ratio 0 is out of range", "(0, 1]"]),
        (["--downsample-ratio", "1.5"], ["ratio 1.5 is out of range"]),
        (["--size", "640x360", "--downsample-ratio", "0.001"], ["shrinks 640x360 to 0x0"]),
        (["--size", "20x12", "--downsample-ratio", "1"], ["at least 16", "larger size"]),
        (["--size", "640x360", "--downsample-ratio", "0.04"], ["ratio of at least 0.0444"]),
        (["--model-type", "neuralnetwork"], ["saved as a .mlmodel"]),
        (["--model-type", "neuralnetwork", "--precision", "int8"], ["'int8' is not available"]),
    ],
)
def test_coreml_option_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], words: list[str]
) -> None:
    code, err = _cli(capsys, "coreml", "--output", str(tmp_path / "m.mlpackage"), *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(w in lines[0] for w in words), err
    assert list(tmp_path.iterdir()) == []


def test_tflite_option_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, argv, word in (
        ("m.onnx", [], "saved as a .tflite file"),
        ("m.tflite", ["--size", "640x360", "--downsample-ratio", "0.01"], "shrinks 640x360"),
    ):
        code, err = _cli(capsys, "tflite", "--output", str(tmp_path / name), *argv)
        assert code == 2 and len(err.strip().splitlines()) == 1 and word in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("fmt", "name", "module"),
    [("coreml", "m.mlpackage", "coremltools"), ("tflite", "m.tflite", "litert_torch")],
)
def test_missing_converter_says_what_to_install(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    name: str,
    module: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    code, err = _cli(capsys, fmt, "--output", str(tmp_path / name))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"needs the optional package '{module}'" in err
    assert f"pip install -e '.[{fmt}]'" in err and "make export-env" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("width", "height", "ratio"), [(1920, 1080, 0.25), (250, 170, 0.375)])
def test_state_shapes_are_the_networks(width: int, height: int, ratio: float) -> None:
    net = MattingNetwork().eval()
    shape = FixedShape(width, height, ratio)
    with torch.no_grad():
        out = net(torch.rand(1, 3, height, width), downsample_ratio=ratio)
    assert shape.state_shapes(net) == [tuple(r.shape) for r in out[2:]]


def test_folded_graph_follows_the_network(weights_model: MattingNetwork) -> None:
    """BatchNorm folded and plain bilinear resizing: the network's numbers over 5 frames."""
    shape = FixedShape(320, 192, 0.375)
    folded = fold_batchnorm(weights_model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    graph = FixedGraph(folded, shape.ratio)
    ref: list[torch.Tensor | None] = [None] * 4
    rec = [torch.zeros(s) for s in shape.state_shapes(weights_model)]
    frames = make_frames(5, shape.height, shape.width)
    with torch.no_grad():
        for rgb in frames:
            frame = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
            want = weights_model(frame, *ref, shape.ratio)
            got = graph(frame, *rec)
            ref, rec = want[2:], list(got[2:])
            for a, b in zip(got, want, strict=True):
                assert a.shape == b.shape
                assert float((a - b).abs().max()) < 5e-4


def test_atomic_output_replaces_a_package_only_when_complete(tmp_path: Path) -> None:
    dest = tmp_path / "m.mlpackage"
    (dest / "Data").mkdir(parents=True)
    (dest / "Data" / "old").write_text("old")
    with pytest.raises(RuntimeError), atomic_output(dest) as tmp:
        tmp.mkdir()
        (tmp / "half").write_text("half")
        raise RuntimeError("conversion failed")
    assert [p.name for p in tmp_path.iterdir()] == ["m.mlpackage"]
    assert (dest / "Data" / "old").read_text() == "old"
    with atomic_output(dest) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["m.mlpackage"]
    assert [p.name for p in dest.iterdir()] == ["new"]
    with pytest.raises(ExportError, match="does not exist"), atomic_output(tmp_path / "x" / "m"):
        pass
