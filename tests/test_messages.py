"""Messages say what is really wrong: a folder given as weights, an empty or cut-off video."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.capture.synthetic import make_clip
from app.cli import main
from tests.fakes import write_clip


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_a_checkpoint_folder_is_called_a_folder(tmp_path: Path, capsys) -> None:
    assert main(["--headless", "--source", "synthetic", "--checkpoint", str(tmp_path)]) == 2
    line = one_line(capsys)
    assert "is a folder" in line and "does not exist" not in line


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_an_empty_video_is_called_empty(tmp_path: Path, capsys, suffix: str) -> None:
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    assert main(["--headless", "--source", str(empty)]) == 2
    line = one_line(capsys)
    assert "empty" in line and "use an MP4" not in line


def test_a_cut_off_mp4_is_called_damaged(tmp_path: Path, capsys) -> None:
    clip = write_clip(tmp_path / "full.mp4", make_clip(30, 48, 64))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # the index at the end is lost
    assert main(["--headless", "--source", str(cut)]) == 2
    line = one_line(capsys)
    assert "damaged or incomplete" in line and "use an MP4" not in line


def test_a_cut_off_matroska_video_says_so_when_it_ends(tmp_path: Path, capsys) -> None:
    clip = write_clip(tmp_path / "full.mkv", make_clip(60, 48, 64))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    assert main(["--headless", "--source", str(cut), "--pace", "none"]) == 0
    err = capsys.readouterr().err
    assert "cut.mkv is damaged or incomplete" in err.replace("'", "")
    assert "Traceback" not in err


def test_a_whole_video_ends_without_a_warning(tmp_path: Path, capsys) -> None:
    clip = write_clip(tmp_path / "full.mkv", make_clip(20, 48, 64))
    assert main(["--headless", "--source", str(clip), "--pace", "none"]) == 0
    err = capsys.readouterr().err
    assert "ended after 20 frames" in err and "damaged" not in err
