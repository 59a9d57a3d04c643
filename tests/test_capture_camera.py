"""Cameras, on machines that may have none."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from app.capture import CameraInfo, CameraSource, SourceError, list_cameras, open_source
from app.capture.camera import _list_linux

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="V4L2 device nodes")


@pytest.mark.skipif(os.path.exists("/dev/video7"), reason="this machine has a camera at index 7")
def test_missing_camera_raises_with_guidance() -> None:
    with pytest.raises(SourceError) as info:
        open_source("7")
    assert str(info.value) == (
        "No camera at index 7. Connect a camera; pick another camera with --source N or a video "
        "file with --source FILE."
    )


@linux_only
def test_missing_device_path_raises_with_guidance() -> None:
    with pytest.raises(SourceError, match=r"^No camera at /dev/video99\. Connect a camera"):
        open_source("/dev/video99")


def test_list_cameras_never_raises() -> None:
    cameras = list_cameras()
    assert isinstance(cameras, list)
    assert all(isinstance(c, CameraInfo) for c in cameras)
    if sys.platform.startswith("linux") and not list(Path("/dev").glob("video*")):
        assert cameras == []


def test_linux_listing_reads_names_and_skips_metadata_nodes(tmp_path: Path) -> None:
    dev, sysfs = tmp_path / "dev", tmp_path / "sys"
    dev.mkdir()
    for node, name, index in [
        ("video0", "HD Webcam C615", "0"),
        ("video1", "HD Webcam C615", "1"),  # the same camera's metadata node
        ("video10", "Dummy video device", "0"),
        ("video3", None, None),  # no sysfs entry
    ]:
        (dev / node).touch()
        if name is not None:
            (sysfs / node).mkdir(parents=True)
            (sysfs / node / "name").write_text(name + "\n")
            (sysfs / node / "index").write_text(index + "\n")
    (dev / "videodev").touch()  # not a device node of a camera
    cameras = _list_linux(dev, sysfs)
    assert cameras == [
        CameraInfo(0, "HD Webcam C615", str(dev / "video0")),
        CameraInfo(3, "Camera 3", str(dev / "video3")),
        CameraInfo(10, "Dummy video device", str(dev / "video10")),
    ]
    assert cameras[0].spec == str(dev / "video0")
    assert CameraInfo(2, "Camera 2").spec == "2"


def test_camera_device_values() -> None:
    assert CameraSource(2).index == 2
    assert CameraSource("3").index == 3
    assert CameraSource("/dev/video5").index == 5
    assert CameraSource(0).is_live and CameraSource(0).pace == "realtime"
    with pytest.raises(SourceError, match="neither an index"):
        CameraSource("front")
    with pytest.raises(SourceError, match="Resolution 1x1 is impossible"):
        CameraSource(0, resolution=(1, 1))


def test_unopened_camera_closes_twice() -> None:
    camera = CameraSource(0, resolution=(1280, 720), fps=30)
    camera.close()
    camera.close()
    assert camera.requested.resolution == (1280, 720)
    assert str(camera.requested) == "1280x720 at 30 fps"
    assert (camera.width, camera.height, camera.fps) == (0, 0, 0.0)
