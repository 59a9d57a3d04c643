"""The PipeWire camera on a private PipeWire session, read back the way camera apps read it."""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from app.events import VcamState
from app.output import pipewire
from app.output.virtualcam import (
    VcamBackend,
    VirtualCameraSink,
    VirtualCameraUnavailable,
    auto_backends,
    backend_problem,
    guidance,
)
from app.pipeline import Pipeline
from app.settings import VCAM_BACKENDS, Background, Settings, SettingsError
from tests.pipewire_stack import (
    PipeWireStack,
    block_error,
    block_frame,
    private_session,
    wait_until,
)

pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="PipeWire runs on Linux")

WIDTH, HEIGHT, FPS = 320, 240, 30


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[PipeWireStack]:
    """A PipeWire session of the test's own, which the app finds through the environment."""
    with private_session(monkeypatch) as stack:
        yield stack


def blocks(seed: int) -> np.ndarray:
    return block_frame(seed, WIDTH, HEIGHT)


def matches(frame: np.ndarray, sent: np.ndarray, tolerance: int = 3) -> bool:
    return int(block_error(frame, sent).max()) <= tolerance


def test_the_camera_is_a_video_source_named_mattecam(session: PipeWireStack) -> None:
    with VirtualCameraSink(WIDTH, HEIGHT, FPS, backend="pipewire") as sink:
        node = session.wait_for_node("mattecam")
        assert (sink.backend, sink.device, sink.problem) == ("pipewire", "mattecam", None)
    props = node["info"]["props"]
    assert props["media.class"] == "Video/Source"
    assert props["media.role"] == "Camera"
    assert props["node.name"] == props["node.description"] == "mattecam"
    (fmt,) = node["info"]["params"]["EnumFormat"]
    assert (fmt["mediaType"], fmt["mediaSubtype"], fmt["format"]) == ("video", "raw", "I420")
    assert fmt["size"] == {"width": WIDTH, "height": HEIGHT}
    assert fmt["framerate"] == {"num": FPS, "denom": 1}
    wait_until(lambda: session.node("mattecam") is None, 10, "the node to go when closed")


def test_automatic_choice_prefers_pipewire_when_its_daemon_answers(session: PipeWireStack) -> None:
    assert auto_backends()[0] == "pipewire"
    assert "pipewire" not in auto_backends("/dev/video10")  # a device file asks for v4l2loopback
    with VirtualCameraSink(WIDTH, HEIGHT, FPS) as sink:
        assert sink.backend == "pipewire"


def test_without_a_daemon_pipewire_is_left_out_with_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("PIPEWIRE_RUNTIME_DIR", str(tmp_path))
    assert "pipewire" not in auto_backends()
    problem = backend_problem("pipewire")
    assert problem is not None and problem.count(". ") == 0 and problem.endswith(".")
    assert "PipeWire" in problem and ("daemon" in problem or "install" in problem)
    with pytest.raises(VirtualCameraUnavailable) as caught:
        VirtualCameraSink(WIDTH, HEIGHT, FPS, backend="pipewire")
    assert str(caught.value) == f"{problem} {guidance()}"


def test_missing_gstreamer_is_one_sentence_naming_the_packages(
    session: PipeWireStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no gst-launch-1.0 to be found
    problem = pipewire.unavailable_reason()
    assert problem is not None and problem.count(". ") == 0 and problem.endswith(".")
    assert "gst-launch-1.0" in problem and f"sudo apt install {pipewire.PACKAGES}" in problem


def test_frames_come_back_with_their_pixels(session: PipeWireStack) -> None:
    sent = [blocks(seed) for seed in range(3)]
    with VirtualCameraSink(WIDTH, HEIGHT, FPS, backend="pipewire") as sink:
        session.wait_for_node("mattecam")
        reader = session.reader("mattecam", WIDTH, HEIGHT)
        try:
            for frame in sent:
                sink.send(frame)
                got = reader.wait_until(lambda frames, f=frame: any(matches(g, f) for g in frames))
            last = got[-1]
        finally:
            reader.close()
    error = block_error(last, sent[-1])
    assert error.max() <= 3 and error.mean() < 1.0
    assert not matches(last, sent[0])  # the check tells different frames apart


def test_a_reader_can_leave_and_another_come(session: PipeWireStack) -> None:
    with VirtualCameraSink(WIDTH, HEIGHT, FPS, backend="pipewire") as sink:
        session.wait_for_node("mattecam")
        first = blocks(10)
        sink.send(first)
        reader = session.reader("mattecam", WIDTH, HEIGHT)
        reader.wait_until(lambda frames: any(matches(g, first) for g in frames))
        reader.close()
        second = blocks(11)
        sink.send(second)
        reader = session.reader("mattecam", WIDTH, HEIGHT)
        try:
            reader.wait_until(lambda frames: any(matches(g, second) for g in frames))
        finally:
            reader.close()
        sent_before = sink.frames_sent
        wait_until(lambda: sink.frames_sent > sent_before + 5, 10, "the camera to keep sending")
        assert sink.problem is None
        sink.send(first)  # the sink still takes frames


def test_the_camera_comes_back_when_the_daemon_restarts(session: PipeWireStack) -> None:
    with VirtualCameraSink(WIDTH, HEIGHT, FPS, backend="pipewire") as sink:
        session.wait_for_node("mattecam")
        session.stop_daemon()
        wait_until(lambda: sink.problem is not None, 15, "the sink to report the lost daemon")
        assert "PipeWire" in sink.problem
        frame = blocks(20)
        sink.send(frame)  # frames are still taken while the daemon is away
        session.start()
        wait_until(lambda: sink.problem is None, 15, "the sink to publish again")
        session.wait_for_node("mattecam")
        reader = session.reader("mattecam", WIDTH, HEIGHT)
        try:
            reader.wait_until(lambda frames: any(matches(g, frame) for g in frames))
        finally:
            reader.close()


def test_the_app_runs_on_while_the_daemon_goes_and_comes_back(session: PipeWireStack) -> None:
    settings = Settings(
        source=f"synthetic:{WIDTH}x{HEIGHT}@{FPS}",
        virtual_cam=True,
        vcam_backend="pipewire",
        background=Background.parse("color:#ff0000"),
    )
    pipeline = Pipeline(settings)
    pipeline.start()
    try:
        wait_until(lambda: "(PipeWire)" in pipeline.stats().vcam_device, 60, "the camera to open")
        stats = pipeline.stats()
        assert (stats.vcam, stats.vcam_device) == (VcamState.ON, "mattecam (PipeWire)")
        session.wait_for_node("mattecam")
        session.stop_daemon()
        wait_until(
            lambda: "retrying" in pipeline.stats().vcam_problem, 15, "the lost daemon to show"
        )
        assert "PipeWire" in pipeline.stats().vcam_problem
        out = pipeline.stats().frames_out
        wait_until(lambda: pipeline.stats().frames_out > out + 10, 30, "frames to keep coming")
        session.start()
        wait_until(lambda: not pipeline.stats().vcam_problem, 15, "the camera to return")
        assert pipeline.stats().vcam_device == "mattecam (PipeWire)"
        session.wait_for_node("mattecam")
        reader = session.reader("mattecam", WIDTH, HEIGHT)
        try:
            reader.wait_until(lambda frames: len(frames) >= 5)
        finally:
            reader.close()
        assert not pipeline.wait(0)  # still running
    finally:
        pipeline.stop()


@pytest.mark.parametrize(
    ("route", "words"),
    [("pipewire", "PipeWire"), ("obs", "does not exist on Linux")],
)
def test_a_route_that_cannot_run_here_is_refused_in_one_line(
    route: str, words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # no PipeWire daemon here
    monkeypatch.setenv("PIPEWIRE_RUNTIME_DIR", str(tmp_path))
    argv = ["--headless", "--source", "synthetic", "--virtual-cam", "--vcam-backend", route]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mattecam: ") and words in err[0]


def test_the_routes_are_the_settings_choices() -> None:
    assert tuple(route.value for route in VcamBackend) == VCAM_BACKENDS
    with pytest.raises(SettingsError):
        Settings(vcam_backend="v4l2loopback").validate()


def test_headless_run_says_when_the_camera_is_lost_and_back(session: PipeWireStack, capsys) -> None:
    argv = ["--headless", "--source", f"synthetic:{WIDTH}x{HEIGHT}@{FPS}", "--max-frames", "360"]
    argv += ["--virtual-cam", "--vcam-backend", "pipewire", "--background", "blur"]
    codes: list[int] = []
    run = threading.Thread(target=lambda: codes.append(main(argv)))
    run.start()
    said: list[str] = []

    def heard(words: str) -> bool:
        said.extend(capsys.readouterr().err.splitlines())
        return any(words in line for line in said)

    try:
        wait_until(lambda: heard("Virtual camera on: mattecam (PipeWire)"), 60, "the camera")
        session.stop_daemon()
        wait_until(lambda: heard("retrying"), 15, "the lost daemon to be reported")
        session.start()
        wait_until(lambda: heard("reaches apps again"), 15, "the return to be reported")
    finally:
        run.join(timeout=120)
    assert codes == [0]
    lost = [line for line in said if "retrying" in line]
    assert len(lost) == 1 and lost[0].startswith("mattecam: ") and "PipeWire" in lost[0]


def test_odd_sizes_are_padded_to_even_i420() -> None:
    frame = np.zeros((5, 7, 3), np.uint8)
    frame[:, :, 0] = 200  # red
    i420 = pipewire.to_i420(frame)
    assert i420.shape == (8 * 6 * 3 // 2,)
    back = cv2.cvtColor(i420.reshape(6 * 3 // 2, 8), cv2.COLOR_YUV2RGB_I420)
    assert np.abs(back.astype(int) - [200, 0, 0]).max() <= 3  # the padding repeats the edge
    command = pipewire.launch_command(8, 6, 29.97)
    assert "framerate=2997/100" in command and "format=i420" in command
