"""convert_video and its command line on generated clips with the official weights."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from app.capture.synthetic import make_frames
from app.matting import convert
from app.matting.convert import GREEN, ConvertError, convert_video
from app.matting.convert_io import VideoOutput
from app.matting.model import MattingNetwork
from app.media.video import read_video
from tests.fakes import write_clip

pytestmark = pytest.mark.slow  # runs the official network

ROOT = Path(__file__).resolve().parents[1]
GREEN_RGB = np.array(GREEN) * 255


class Recording(nn.Module):
    """Runs the real network and keeps a copy of every alpha it returns."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.alphas: list[torch.Tensor] = []

    def forward(self, *args: object) -> list[torch.Tensor]:
        out = self.net(*args)
        self.alphas.append(out[1][0].clone())
        return out


class StopAfter(nn.Module):
    """Runs the real network, then raises ``error`` on call number ``calls + 1``."""

    def __init__(self, net: nn.Module, calls: int, error: BaseException):
        super().__init__()
        self.net = net
        self.left = calls
        self.error = error

    def forward(self, *args: object) -> list[torch.Tensor]:
        if self.left == 0:
            raise self.error
        self.left -= 1
        return self.net(*args)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 frames of 256x192 at 24 fps."""
    return write_clip(tmp_path_factory.mktemp("clip") / "in.mp4", make_frames(24, 192, 256), 24)


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 frames of 160x120 at 25 fps."""
    return write_clip(tmp_path_factory.mktemp("small") / "in.mp4", make_frames(10, 120, 160), 25)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        image = cv2.cvtColor(image, code)
    return image


def test_video_outputs(weights_model: MattingNetwork, clip: Path, tmp_path: Path) -> None:
    out = {k: tmp_path / f"{k}.mp4" for k in ("com", "pha", "fgr")}
    convert_video(
        weights_model,
        clip,
        output_composition=out["com"],
        output_alpha=out["pha"],
        output_foreground=out["fgr"],
        output_video_mbps=4,
        progress=False,
    )
    assert _leftovers(tmp_path) == []
    com, rate = read_video(out["com"])
    pha, _ = read_video(out["pha"])
    fgr, _ = read_video(out["fgr"])
    assert rate == Fraction(24)
    assert com.shape == pha.shape == fgr.shape == (24, 192, 256, 3)
    alpha = pha[..., 1].astype(np.float32)
    # The person is matted: alpha spans the whole range, the backdrop is transparent.
    assert alpha.min() <= 5 and alpha.max() >= 250
    assert 0.1 < (alpha > 128).mean() < 0.6
    background = alpha < 3
    assert background.mean() > 0.3
    # Where alpha is 0 the composition is the green screen colour.
    err = np.abs(com[background].astype(np.float32) - GREEN_RGB).mean(axis=0)
    assert err.max() < 8, err
    # Where alpha is 1 the composition is the foreground.
    person = alpha > 252
    diff = np.abs(com[person].astype(np.float32) - fgr[person].astype(np.float32)).mean()
    assert diff < 6


def test_png_outputs_and_seq_chunk(
    weights_model: MattingNetwork, small_clip: Path, tmp_path: Path
) -> None:
    runs = {}
    for chunk in (1, 4):
        folder = tmp_path / f"chunk{chunk}"
        folder.mkdir()
        model = Recording(weights_model)
        convert_video(
            model,
            small_clip,
            output_type="png_sequence",
            output_composition=folder / "com",
            output_alpha=folder / "pha",
            output_foreground=folder / "fgr",
            downsample_ratio=0.5,
            seq_chunk=chunk,
            progress=False,
        )
        assert _leftovers(folder) == []
        # 10 frames: chunks of 4, 4 and 2 with the state carried across.
        assert [a.shape[0] for a in model.alphas] == ([1] * 10 if chunk == 1 else [4, 4, 2])
        runs[chunk] = (folder, torch.cat(model.alphas))
    assert (runs[1][1] - runs[4][1]).abs().max().item() <= 1e-4

    folder = runs[4][0]
    names = [f"{i:04d}.png" for i in range(10)]
    for kind in ("com", "pha", "fgr"):
        assert sorted(p.name for p in (folder / kind).iterdir()) == names
    com = _png(folder / "com" / "0005.png")
    pha = _png(folder / "pha" / "0005.png")
    fgr = _png(folder / "fgr" / "0005.png")
    assert com.shape == (120, 160, 4) and pha.shape == (120, 160) and fgr.shape == (120, 160, 3)
    assert np.array_equal(com[..., 3], pha)
    assert np.array_equal(com[..., :3], fgr)
    expected = np.round(runs[4][1][5, 0].numpy() * 255)
    assert np.abs(pha.astype(np.float32) - expected).max() <= 1
    assert pha.min() == 0 and pha.max() == 255
    # Chunked and single-frame runs give the same files, up to rounding.
    other = _png(runs[1][0] / "pha" / "0009.png").astype(np.int16)
    assert np.abs(other - _png(folder / "pha" / "0009.png")).max() <= 1


def test_image_folder_input_resize_and_png_replace(
    weights_model: MattingNetwork, tmp_path: Path
) -> None:
    images = tmp_path / "frames"
    images.mkdir()
    for i, frame in enumerate(make_frames(6, 120, 160)):
        cv2.imwrite(str(images / f"img_{i:03d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    out.mkdir()
    convert_video(
        weights_model,
        images,
        input_resize=(128, 96),
        output_alpha=out / "pha.mp4",
        num_workers=2,
        progress=False,
    )
    pha, rate = read_video(out / "pha.mp4")
    assert rate == Fraction(30)
    assert pha.shape == (6, 96, 128, 3)
    assert pha.max() > 200

    # An earlier frame folder is replaced whole, with no stale frames left.
    target = out / "com"
    target.mkdir()
    for i in range(9):
        (target / f"{i:04d}.png").write_bytes(b"old")
    convert_video(
        weights_model, images, output_type="png_sequence", output_composition=target, progress=False
    )
    assert sorted(p.name for p in target.iterdir()) == [f"{i:04d}.png" for i in range(6)]
    assert _png(target / "0000.png").shape == (120, 160, 4)
    assert _leftovers(out) == []


def test_failure_midway_leaves_nothing(
    weights_model: MattingNetwork, clip: Path, tmp_path: Path
) -> None:
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        model = StopAfter(weights_model, 3, error)
        with pytest.raises(type(error)):
            convert_video(
                model,
                clip,
                output_composition=tmp_path / "com.mp4",
                output_alpha=tmp_path / "pha.mp4",
                progress=False,
            )
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(type(error)):
            convert_video(
                StopAfter(weights_model, 2, error),
                clip,
                output_type="png_sequence",
                output_alpha=tmp_path / "pha",
                progress=False,
            )
        assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_source": "missing.mp4"}, "does not exist"),
        ({"output_type": "gif"}, "Output type 'gif'"),
        ({"output_composition": None}, "No output"),
        ({"downsample_ratio": 1.5}, "out of range"),
        ({"downsample_ratio": 0.0}, "out of range"),
        ({"seq_chunk": 0}, "at least 1"),
        ({"num_workers": -1}, "0 or more"),
        ({"output_video_mbps": 0}, "above 0"),
        ({"output_video_mbps": float("inf")}, "above 0"),
        ({"output_video_mbps": float("nan")}, "above 0"),
        ({"downsample_ratio": 0.001}, "give at least"),
        ({"input_resize": (0, 10)}, "positive"),
        ({"output_composition": "nodir/com.mp4"}, "does not exist"),
        ({"output_composition": "com.txt"}, "ending in"),
        ({"output_alpha": "com.mp4"}, "same path"),
    ],
)
def test_bad_arguments(
    weights_model: MattingNetwork, clip: Path, tmp_path: Path, kwargs: dict, message: str
) -> None:
    args = {"input_source": clip, "output_composition": "com.mp4", "progress": False, **kwargs}
    for key in ("input_source", "output_composition", "output_alpha"):
        if isinstance(args.get(key), str):
            args[key] = tmp_path / args[key]
    with pytest.raises(ConvertError, match=message):
        convert_video(weights_model, **args)
    assert list(tmp_path.iterdir()) == []


def test_output_over_the_input_is_refused(
    weights_model: MattingNetwork, clip: Path, tmp_path: Path
) -> None:
    before = clip.read_bytes()
    with pytest.raises(ConvertError, match=r"alpha output .* is the input"):
        convert_video(weights_model, clip, output_alpha=clip, progress=False)
    assert clip.read_bytes() == before
    # A folder of numbered PNGs would otherwise be replaced by the mattes of its own frames.
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(make_frames(2, 48, 64)):
        cv2.imwrite(str(frames / f"{i:04d}.png"), frame)
    with pytest.raises(ConvertError, match=r"composition output .* is the input"):
        convert_video(
            weights_model,
            frames,
            output_type="png_sequence",
            output_composition=frames,
            progress=False,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]
    assert sorted(p.name for p in frames.iterdir()) == ["0000.png", "0001.png"]


def test_encoder_failures_leave_nothing(
    weights_model: MattingNetwork, small_clip: Path, tmp_path: Path
) -> None:
    with pytest.raises(OverflowError):
        VideoOutput(tmp_path / "a.mp4", 64, 48, Fraction(30), float("inf"))
    assert list(tmp_path.iterdir()) == []
    # libx264 refuses this bit rate only when the first frame is encoded, on the writer thread.
    with pytest.raises(ConvertError, match=r"Could not write .*(com|pha)\.mp4"):
        convert_video(
            weights_model,
            small_clip,
            output_composition=tmp_path / "com.mp4",
            output_alpha=tmp_path / "pha.mp4",
            output_video_mbps=1e9,
            progress=False,
        )
    assert list(tmp_path.iterdir()) == []


def test_unreadable_input(weights_model: MattingNetwork, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(ConvertError, match="not a video that can be read"):
        convert_video(weights_model, bad, output_alpha=tmp_path / "pha.mp4", progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConvertError, match="holds no images"):
        convert_video(weights_model, empty, output_alpha=tmp_path / "pha.mp4", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4", "empty"]


def test_model_without_parameters_needs_device_and_dtype(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(ConvertError, match="pass device and dtype"):
        convert_video(nn.Identity(), clip, output_alpha=tmp_path / "pha.mp4", progress=False)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = convert.main(list(argv))
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def test_cli_user_errors(clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    com = str(out / "com.mp4")
    cases = [
        (["--input-source", str(tmp_path / "missing.mp4"), "--output-composition", com], "exist"),
        (["--input-source", str(clip), "--output-composition", str(tmp_path / "no/c.mp4")], "c"),
        (["--input-source", str(clip), "--output-type", "gif", "--output-alpha", com], "gif"),
        (["--input-source", str(clip), "--output-composition", com, "--seq-chunk", "x"], "x"),
        (["--input-source", str(clip), "--output-composition", com, "--device", "tpu"], "tpu"),
        (
            ["--input-source", str(clip), "--output-alpha", com, "--input-resize", "0", "0"],
            "resize",
        ),
        (["--input-source", str(clip), "--output-alpha", com, "--output-video-mbps", "inf"], "inf"),
        (
            ["--input-source", str(clip), "--output-alpha", com, "--downsample-ratio", "1e-4"],
            "at least",
        ),
        (
            [
                "--input-source",
                str(clip),
                "--output-composition",
                com,
                "--checkpoint",
                str(corrupt),
            ],
            "corrupt",
        ),
    ]
    for argv, word in cases:
        code, err = _cli(capsys, *argv, "--disable-progress")
        assert code == 2, (argv, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0], err
    assert list(out.iterdir()) == []


def test_cli_unwritable_folder(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    # Root writes past permission bits; /proc takes no new files from anyone.
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    folder = Path("/proc") if root else locked
    if root and not folder.is_dir():
        pytest.skip("needs /proc to have a folder that root cannot write")
    try:
        for kind, name in (("video", "pha.mp4"), ("png_sequence", "pha")):
            code, err = _cli(
                capsys,
                "--input-source",
                str(clip),
                "--output-type",
                kind,
                "--output-alpha",
                str(folder / name),
            )
            assert code == 2 and "is not writable" in err and len(err.splitlines()) == 1
    finally:
        locked.chmod(0o755)
    assert list(locked.iterdir()) == []


def test_cli_runs_as_a_module(small_clip: Path, tmp_path: Path) -> None:
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.matting.convert",
            "--variant",
            "mobilenetv3",
            "--device",
            "cpu",
            "--input-source",
            str(small_clip),
            "--output-type",
            "video",
            "--output-alpha",
            str(tmp_path / "pha.mp4"),
            "--downsample-ratio",
            "0.5",
            "--seq-chunk",
            "5",
            "--disable-progress",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    assert read_video(tmp_path / "pha.mp4")[0].shape == (10, 120, 160, 3)
    bad = subprocess.run(
        [sys.executable, "-m", "app.matting.convert", "--input-source", str(tmp_path / "nope")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pha.mp4"]


def test_sigterm_midway_deletes_unfinished_outputs(tmp_path: Path) -> None:
    frames = make_frames(240, 360, 480)
    source = write_clip(tmp_path / "long.mp4", frames, 24)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.matting.convert",
            "--device",
            "cpu",
            "--input-source",
            str(source),
            "--output-type",
            "video",
            "--output-composition",
            str(out / "com.mp4"),
            "--output-alpha",
            str(out / "pha.mp4"),
            "--disable-progress",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not any(out.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    assert proc.poll() is None, "the conversion is still running"
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "deleted" in err
    assert list(out.iterdir()) == [], "no unfinished file left"
