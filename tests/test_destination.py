"""Output destinations: never an input, never an existing file unless asked, never two writers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.media.destination import DestinationError, check_destination, claim, partials

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "a.mkv"
    path.write_bytes(b"the input")
    return path


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hardlink"])
def test_the_input_is_never_the_output(tmp_path: Path, video: Path, spelling: str, monkeypatch):
    if spelling == "same":
        out = video
    elif spelling == "relative":
        monkeypatch.chdir(tmp_path)
        out = Path("sub/../a.mkv")
        (tmp_path / "sub").mkdir()
    elif spelling == "symlink":
        out = tmp_path / "link.mkv"
        out.symlink_to(video)
    else:
        out = tmp_path / "hard.mkv"
        os.link(video, out)
    with pytest.raises(DestinationError, match="is the input"):
        check_destination(out, [str(video)], overwrite=True)


def test_an_existing_file_needs_overwrite(tmp_path: Path, video: Path) -> None:
    out = tmp_path / "out.mp4"
    check_destination(out, [video])  # nothing there yet
    out.write_bytes(b"an earlier recording")
    with pytest.raises(DestinationError, match="--overwrite"):
        check_destination(out, [video])
    check_destination(out, [video], overwrite=True)
    folder = tmp_path / "frames"
    folder.mkdir()
    check_destination(folder, [video])  # an empty folder is fine
    (folder / "00000.png").write_bytes(b"x")
    with pytest.raises(DestinationError, match="already holds files"):
        check_destination(folder, [video])


def test_two_writers_to_one_destination_are_refused(tmp_path: Path) -> None:
    dest = tmp_path / "take.mp4"
    first = claim(dest)
    assert first.temp.exists() and first.temp.name.startswith(".take.mp4.")
    with pytest.raises(DestinationError, match="being written by another run"):
        claim(dest)
    first.temp.unlink()
    first.release()
    second = claim(dest)
    assert second.stale == []
    second.release()


def test_a_writer_in_another_process_is_seen(tmp_path: Path) -> None:
    dest = tmp_path / "take.mkv"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom app.media.destination import claim\n"
            f"c = claim({str(dest)!r})\nprint('held', flush=True)\ntime.sleep(60)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DestinationError, match="another run"):
            claim(dest)
    finally:
        holder.kill()
        holder.wait()
    # The holder died without finishing: its partial file is stale now, and reported.
    after = claim(dest)
    assert len(after.stale) == 1 and "Unfinished output of an earlier run" in after.stale_note()
    assert set(partials(dest)) == {after.stale[0], after.temp}
    after.release()


def test_a_partial_folder_is_claimed_too(tmp_path: Path) -> None:
    dest = tmp_path / "frames"
    first = claim(dest, folder=True)
    assert first.temp.is_dir()
    with pytest.raises(DestinationError):
        claim(dest, folder=True)
    first.release()
