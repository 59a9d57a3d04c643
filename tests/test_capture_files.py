"""File sources (video, image folder, still image) and choosing a source from ``--source``."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.capture import (
    ImageFolderSource,
    SourceError,
    StillImageSource,
    VideoFileSource,
    kinds,
    open_source,
    register_source,
    resolve_spec,
)
from app.capture.base import FrameSource
from app.media.video import write_video

W, H = 160, 120
SQUARE = (slice(40, 80), slice(100, 140))  # rows, columns of the red square


def make_picture(i: int, width: int = W, height: int = H) -> np.ndarray:
    """Black picture with a red square and a grey strip whose brightness encodes ``i``."""
    img = np.zeros((height, width, 3), np.uint8)
    img[SQUARE] = (255, 0, 0)
    img[:, :32] = min(255, 8 * i)
    return img


def strip_value(frame: np.ndarray) -> float:
    return float(frame[10:-10, 8:24].mean())


def write_mp4(path: Path, n: int, fps: int = 30) -> Path:
    return write_video(path, [make_picture(i) for i in range(n)], fps, crf=8)


def write_png(path: Path, img: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One second of 160x120 video at 30 fps."""
    return write_mp4(tmp_path_factory.mktemp("video") / "clip.mp4", 30)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Twelve PNG frames named 0.png .. 11.png, plus a file that is not an image."""
    for i in range(12):
        write_png(tmp_path / f"{i}.png", make_picture(i * 2))
    (tmp_path / "notes.txt").write_text("not a frame")
    return tmp_path


def read_all(source: FrameSource, limit: int = 1000) -> list[np.ndarray]:
    frames = []
    while len(frames) < limit and (frame := source.read()) is not None:
        frames.append(frame)
    return frames


# Video files ---------------------------------------------------------------------------------


def test_video_reports_its_format(clip: Path) -> None:
    with open_source(str(clip), pace="none") as source:
        assert isinstance(source, VideoFileSource)
        assert (source.width, source.height) == (W, H)
        assert source.fps == pytest.approx(30.0)
        assert source.frame_count == 30
        assert source.name == "clip.mp4"
        assert source.is_live is False
        assert source.requested.resolution is None and source.requested.fps is None


def test_video_delivers_every_frame_in_order_as_rgb(clip: Path) -> None:
    with open_source(str(clip), pace="none") as source:
        frames = read_all(source)
        assert source.read() is None  # stays at the end
    assert len(frames) == 30
    for i, frame in enumerate(frames):
        assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
        assert strip_value(frame) == pytest.approx(8 * i, abs=6)
    red = frames[0][SQUARE][5:-5, 5:-5].mean(axis=(0, 1))
    assert red[0] > 200 and red[1] < 50 and red[2] < 50


def test_video_loops(clip: Path) -> None:
    with open_source(str(clip), pace="none", loop=True) as source:
        frames = read_all(source, limit=75)
    assert len(frames) == 75
    assert strip_value(frames[30]) == pytest.approx(0, abs=6)
    assert strip_value(frames[59]) == pytest.approx(8 * 29, abs=6)
    assert strip_value(frames[74]) == pytest.approx(8 * 14, abs=6)


@pytest.mark.parametrize("size", [(64, 48), (320, 240)])
def test_video_is_resized_to_the_requested_resolution(clip: Path, size: tuple[int, int]) -> None:
    with open_source(str(clip), pace="none", resolution=size) as source:
        assert (source.width, source.height) == size
        frame = source.read()
    assert frame.shape == (size[1], size[0], 3)
    sy, sx = size[1] / H, size[0] / W
    centre = frame[int(60 * sy), int(120 * sx)]
    assert centre[0] > 200 and centre[2] < 50


def test_requested_fps_sets_the_playback_rate(clip: Path) -> None:
    with open_source(str(clip), fps=12) as source:
        assert source.fps == 12
        assert source.requested.fps == 12


def test_video_close_twice_and_read_after_close(clip: Path) -> None:
    source = VideoFileSource(clip, pace="none")
    source.close()  # never opened: fine
    source.open()
    assert source.read() is not None
    source.close()
    source.close()
    assert not source.is_open
    with pytest.raises(RuntimeError):
        source.read()


def test_video_without_a_known_suffix_is_probed_by_content(clip: Path, tmp_path: Path) -> None:
    odd = tmp_path / "recording.dat"
    odd.write_bytes(clip.read_bytes())
    with open_source(str(odd), pace="none") as source:
        assert len(read_all(source)) == 30


def test_damaged_video_raises_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 50)
    with pytest.raises(
        SourceError, match=r"'.*broken\.mp4' cannot be read .*damaged or incomplete"
    ):
        open_source(str(bad))


def test_realtime_pacing_keeps_to_the_file_rate(clip: Path) -> None:
    with open_source(str(clip), loop=True) as source:
        count = 0
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            assert source.read() is not None
            count += 1
    assert 15 <= count <= 45


def test_realtime_pacing_skips_frames_for_a_slow_reader(clip: Path) -> None:
    with open_source(str(clip), loop=True) as source:
        reads = 6
        values = []
        for _ in range(reads):
            values.append(strip_value(source.read()))
            time.sleep(0.1)  # three frame periods
        assert source.skipped >= reads - 1
    # The stream kept to the clock: it is further along than the number of reads.
    assert max(values) > 8 * reads


def test_pace_none_delivers_every_frame_without_skipping(clip: Path) -> None:
    with open_source(str(clip), pace="none") as source:
        frames = read_all(source)
        assert source.skipped == 0
    assert len(frames) == 30


# Image folders and still images -------------------------------------------------------------


def test_folder_plays_images_in_natural_order(folder: Path) -> None:
    with open_source(str(folder), pace="none") as source:
        assert isinstance(source, ImageFolderSource)
        assert source.frame_count == 12
        assert source.fps == 30
        assert [p.name for p in source.files][:3] == ["0.png", "1.png", "2.png"]
        assert source.files[-1].name == "11.png"
        frames = read_all(source)
    assert len(frames) == 12
    assert [int(f[60, 10, 0]) for f in frames] == [16 * i for i in range(12)]
    assert tuple(frames[0][60, 120]) == (255, 0, 0)


def test_folder_fps_loop_and_resize(folder: Path) -> None:
    with open_source(str(folder), pace="none", fps=12, loop=True, resolution=(80, 60)) as source:
        assert source.fps == 12
        frames = read_all(source, limit=30)
    assert len(frames) == 30
    assert all(f.shape == (60, 80, 3) for f in frames)
    assert int(frames[12][30, 5, 0]) == 0  # started over


def test_folder_images_of_another_size_are_refused_unless_a_size_is_asked(folder: Path) -> None:
    write_png(folder / "12.png", make_picture(0, 320, 240))
    with (
        open_source(str(folder), pace="none") as source,
        pytest.raises(SourceError, match=r"'12.png' is 320x240 but the first image is"),
    ):
        read_all(source)
    with open_source(str(folder), pace="none", resolution=(W, H)) as source:
        frames = read_all(source)
    assert len(frames) == 13
    assert frames[-1].shape == (H, W, 3)


def test_empty_folder_raises(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(SourceError, match="holds no images"):
        open_source(str(tmp_path))


def test_damaged_image_in_folder_raises_when_reached(folder: Path) -> None:
    (folder / "5.png").write_bytes(b"\x89PNG broken")
    with open_source(str(folder), pace="none") as source:
        for _ in range(5):
            source.read()
        with pytest.raises(SourceError, match=r"Image '.*5\.png' cannot be read"):
            source.read()


def test_still_image_repeats_at_the_requested_rate(tmp_path: Path) -> None:
    path = write_png(tmp_path / "me.png", make_picture(3))
    with open_source(str(path), fps=10, pace="none") as source:
        assert isinstance(source, StillImageSource)
        assert source.fps == 10 and source.frame_count is None
        frames = read_all(source, limit=40)
    assert len(frames) == 40
    assert all(np.array_equal(f, frames[0]) for f in frames)
    assert frames[0] is not frames[1]  # a consumer may draw on its frame
    assert tuple(frames[0][60, 120]) == (255, 0, 0)


def test_still_image_resize(tmp_path: Path) -> None:
    path = write_png(tmp_path / "me.png", make_picture(3))
    with StillImageSource(path, resolution=(32, 24), pace="none") as source:
        assert source.read().shape == (24, 32, 3)


# Choosing a source -------------------------------------------------------------------------


def test_resolve_spec_picks_the_kind(clip: Path, folder: Path, tmp_path: Path) -> None:
    png = write_png(tmp_path / "bg.png", make_picture(0))
    assert resolve_spec("0") == ("camera", "0")
    assert resolve_spec(" 2 ") == ("camera", "2")
    assert resolve_spec("/dev/video4") == ("camera", "/dev/video4")
    assert resolve_spec("synthetic") == ("synthetic", "")
    assert resolve_spec("Synthetic:320x240@15") == ("synthetic", "320x240@15")
    assert resolve_spec(str(folder)) == ("folder", str(folder))
    assert resolve_spec(str(clip)) == ("video", str(clip))
    assert resolve_spec(str(png)) == ("image", str(png))
    assert resolve_spec(f"video:{png}") == ("video", str(png))


def test_missing_path_raises_with_guidance(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match=r"^Source '.*nope\.mp4' does not exist: give a camera"):
        open_source(str(missing))
    with pytest.raises(SourceError, match="No source given"):
        open_source("  ")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"resolution": (8, 8)}, "Resolution 8x8 is impossible"),
        ({"resolution": (640.5, 480)}, "whole pixels"),
        ({"resolution": "640x480"}, "not a \\(width, height\\) pair"),
        ({"fps": 0}, "Frame rate 0 is impossible"),
        ({"fps": "fast"}, "not a number"),
        ({"pace": "fast"}, "Unknown pace 'fast'"),
    ],
)
def test_bad_requests_raise_before_anything_opens(clip: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        open_source(str(clip), **kwargs)


def test_registered_kinds_are_chosen_by_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kinds, "_REGISTRY", dict(kinds._REGISTRY))

    @register_source("flat")
    class FlatSource(FrameSource):
        def __init__(self, level: int) -> None:
            super().__init__(pace="none")
            self.level = level

        @classmethod
        def from_spec(cls, target, request):
            return cls(int(target))

        @property
        def name(self) -> str:
            return "flat"

        def _open(self) -> None:
            self._set_format((20, 10), 5.0)

        def _read(self) -> np.ndarray:
            return np.full((10, 20, 3), self.level, np.uint8)

        def _close(self) -> None:
            pass

    with open_source("flat:77") as source:
        assert isinstance(source, FlatSource)
        assert int(source.read()[0, 0, 0]) == 77
