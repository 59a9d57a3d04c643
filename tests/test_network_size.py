"""The size the network sees is checked before a run starts, for any ratio and frame shape."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from app.matting.convert import main as convert_main
from app.matting.ratio import RatioError, check_ratio, live_ratio, ratio_floor


def strip_folder(tmp_path: Path, count: int = 3) -> Path:
    folder = tmp_path / "strips"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(0, 255, (10, 10000, 3), np.uint8))
    return folder


@pytest.mark.parametrize("ratio", ["1e-9", "0.001"])
def test_a_ratio_that_leaves_nothing_is_refused_before_starting(capsys, ratio: str) -> None:
    argv = ["--headless", "--source", "synthetic:1280x720@30", "--downsample-ratio", ratio]
    assert main([*argv, "--max-frames", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert "at least 0.0223" in err[0] and "leave it out" not in err[0]


def test_a_long_thin_folder_runs_with_the_automatic_ratio(tmp_path: Path, capsys) -> None:
    stats = tmp_path / "s.json"
    argv = ["--headless", "--source", str(strip_folder(tmp_path)), "--pace", "none"]
    assert main([*argv, "--max-frames", "2", "--stats-json", str(stats)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    data = json.loads(stats.read_text())
    assert data["frames_out"] == 2 and data["frames_matted"] == 2
    assert data["internal_resolution"] == "10000x10"


def test_a_long_thin_folder_with_a_tiny_ratio_is_refused(tmp_path: Path, capsys) -> None:
    argv = ["--headless", "--source", str(strip_folder(tmp_path)), "--downsample-ratio", "0.5"]
    assert main(argv) == 2
    assert "give at least 1 (10 px on the short side)" in capsys.readouterr().err


def test_the_conversion_command_says_the_same(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.mp4"
    code = convert_main(
        ["--input-source", str(strip_folder(tmp_path, 1)), "--output-composition", str(out)]
        + ["--downsample-ratio", "0.05", "--disable-progress"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "give at least 1" in err and "leave it out" not in err
    assert not out.exists()


def test_floor_and_check() -> None:
    assert ratio_floor(720, 1280) == pytest.approx(16 / 720)
    assert ratio_floor(10, 10000) == 1.0
    assert live_ratio(10, 10000) == 1.0
    assert live_ratio(720, 1280) == pytest.approx(0.375)
    assert check_ratio(720, 1280, 0.25) == 0.25
    with pytest.raises(RatioError, match="0x0 pixels"):
        check_ratio(720, 1280, 1e-9)
