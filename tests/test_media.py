"""The media layer: files appear whole or not at all; pictures and video round-trip."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from app.media import AtomicPath, MediaError, atomic_write
from app.media.images import image_files, read_image, write_image
from app.media.video import VideoReader, open_frames, read_video, write_video


def test_a_file_appears_only_when_complete(tmp_path: Path) -> None:
    dest = tmp_path / "stats.json"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(dest, "w") as fh:
        fh.write("half")
        raise RuntimeError("interrupted")
    assert dest.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["stats.json"]
    with atomic_write(dest, "w") as fh:
        fh.write("new")
    assert dest.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["stats.json"]


@pytest.mark.parametrize("folder", [True, None])
def test_a_folder_replaces_the_old_one_whole(tmp_path: Path, folder: bool | None) -> None:
    dest = tmp_path / "frames"
    dest.mkdir()
    (dest / "0000.png").write_bytes(b"old")
    out = AtomicPath(dest, folder=folder)
    out.temp.mkdir(exist_ok=True)
    (out.temp / "0000.png").write_bytes(b"new")
    assert (dest / "0000.png").read_bytes() == b"old"  # untouched until the commit
    out.commit()
    out.discard()  # after a commit: nothing to do
    assert (dest / "0000.png").read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]


def test_discarding_leaves_nothing(tmp_path: Path) -> None:
    for folder in (False, True, None):
        out = AtomicPath(tmp_path / "x.mp4", folder=folder)
        out.discard()
        out.discard()
    assert list(tmp_path.iterdir()) == []


def test_pictures_round_trip_and_bad_ones_are_named(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    write_image(tmp_path / "10.png", rgb)
    write_image(tmp_path / "2.png", rgb[::-1])
    (tmp_path / "notes.txt").write_text("not a picture")
    assert [p.name for p in image_files(tmp_path)] == ["2.png", "10.png"]
    assert np.array_equal(read_image(tmp_path / "10.png"), rgb)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(MediaError, match=r"'.*bad\.png' cannot be read: it is damaged"):
        read_image(tmp_path / "bad.png")


def test_video_round_trip_and_frame_readers(tmp_path: Path) -> None:
    frames = [np.full((24, 32, 3), 20 * i, np.uint8) for i in range(6)]
    path = write_video(tmp_path / "clip.mp4", frames, 25, crf=0, pix_fmt="yuv444p")
    decoded, rate = read_video(path)
    assert decoded.shape == (6, 24, 32, 3) and rate == 25
    assert np.abs(decoded.astype(int) - np.stack(frames)).max() <= 2
    with VideoReader(path) as reader:
        assert (reader.width, reader.height, reader.count) == (32, 24, 6)
    reader = open_frames(path, size=(16, 12))
    assert [f.shape for f in reader.frames(threading.Event())] == [(12, 16, 3)] * 6
    reader.close()
    (tmp_path / "broken.mp4").write_bytes(b"not a video" * 10)
    with pytest.raises(MediaError, match="not a video that can be read"):
        VideoReader(tmp_path / "broken.mp4")
