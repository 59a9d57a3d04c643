"""The live pipeline end to end: real sources, the real network, compositing and outputs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from app.capture import FrameSource, Requested, SourceError, register_source
from app.capture.synthetic import make_clip
from app.cli import main
from app.compose.live import ALIGNED_DEPTH
from app.media.video import read_video
from app.pipeline import Pipeline, PipelineError
from app.settings import Background, Settings
from tests.fakes import fake_engine, run_collect, wait_until, write_clip

pytestmark = pytest.mark.slow  # runs the official network

STATS_KEYS = {
    "capture_fps",
    "matting_fps",
    "output_fps",
    "latency_ms_p50",
    "latency_ms_p95",
    "dropped_frames",
    "frames_out",
    "device",
    "precision",
    "internal_resolution",
}


def count_frames(path: Path) -> int:
    return len(read_video(path)[0])


def test_headless_cli_converts_every_frame(tmp_path: Path, no_leftover_threads) -> None:
    clip = write_clip(tmp_path / "in.mp4", make_clip(12, 144, 192, seed=2))
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    code = main(
        [
            "--headless",
            "--source",
            str(clip),
            "--pace",
            "none",
            "--background",
            "color:#ff00ff",
            "--output",
            str(out),
            "--stats-json",
            str(stats),
        ]
    )
    assert code == 0
    assert count_frames(out) == 12
    data = json.loads(stats.read_text())
    assert data.keys() >= STATS_KEYS
    assert data["frames_out"] == 12 and data["dropped_frames"] == 0
    assert data["device"] == "cpu" and data["precision"] == "fp32"
    assert data["internal_resolution"] == "192x144"


def test_colour_background_where_alpha_is_zero(no_leftover_threads) -> None:
    s = Settings(
        source="synthetic:256x144@30",
        pace="none",
        max_frames=8,
        background=Background.parse("color:#ff00ff"),
    )
    pipeline, packets, _ = run_collect(s)
    assert len(packets) == 8 and pipeline.stats().frames_matted == 8
    last = packets[-1]
    clear = last.alpha == 0
    assert clear.mean() > 0.2, "the synthetic scene has background"
    assert np.abs(last.composite[clear].astype(int) - [255, 0, 255]).max() <= 1
    opaque = last.alpha == 255
    assert opaque.any()
    assert not np.all(last.composite[opaque] == [255, 0, 255], axis=-1).any()


def test_user_errors_are_pipeline_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    for s in (
        Settings(source=str(tmp_path / "missing.mp4")),
        Settings(source="synthetic", background=Background(kind="image", path=str(bad))),
        Settings(source="7"),
    ):
        with pytest.raises(PipelineError):
            Pipeline(s).start()


@pytest.mark.parametrize(
    "argv",
    [
        ["--background", "sparkles"],
        ["--source", "nowhere.mp4"],
        ["--resolution", "10x99999"],
        ["--downsample-ratio", "2"],
        ["--fps", "500"],
        ["--fps", "x"],
        ["--device", "tpu"],
        ["--source", "9"],
        ["--output", "/no/such/folder/x.mp4", "--source", "synthetic"],
        ["--stats-json", ".", "--source", "synthetic"],
    ],
)
def test_cli_bad_values_exit_2_with_one_line(argv, capsys) -> None:
    assert main(["--headless", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mattecam: ")
    assert "Traceback" not in err[0]


def test_smooth_mode_outputs_camera_frames_between_mattes(no_leftover_threads) -> None:
    s = Settings(
        source="synthetic:1280x720@30",
        pace="realtime",
        max_frames=45,
        background=Background.parse("green"),
        sync="smooth",
    )
    pipeline, packets, _ = run_collect(s)
    st = pipeline.stats()
    assert len(packets) == 45
    assert st.frames_matted < st.frames_out, "matting is slower than the camera here"
    assert len({p.index for p in packets}) == 45
    assert pipeline._live.slot.depth == 1  # the newest camera frame, never an older one


def test_ctrl_c_finalises_the_recording(tmp_path: Path) -> None:
    out = tmp_path / "live.mp4"
    proc = headless(tmp_path, "--stats-json", str(tmp_path / "s.json"))
    deadline = time.monotonic() + 120
    while not any(tmp_path.glob(".live.*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert count_frames(out) > 0
    assert {p.name for p in tmp_path.iterdir()} == {"live.mp4", "s.json"}, "no partial file left"


def headless(tmp_path: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "main.py",
            "--headless",
            "--source",
            "synthetic:160x120@30",
            "--background",
            "green",
            "--output",
            str(tmp_path / "live.mp4"),
            *extra,
        ],
        cwd=Path(__file__).parent.parent,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ctrl_c_while_starting_up_exits_quietly(tmp_path: Path) -> None:
    proc = headless(tmp_path)
    time.sleep(0.5)  # still importing or loading the network
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert not any(p.name.startswith(".live.") for p in tmp_path.iterdir()), "no partial file"


def test_a_second_ctrl_c_cannot_cut_the_recording_short(tmp_path: Path) -> None:
    proc = headless(tmp_path)
    deadline = time.monotonic() + 120
    while not any(tmp_path.glob(".live.*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # impatient: while the recording is being finalised
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert count_frames(tmp_path / "live.mp4") > 0
    assert [p.name for p in tmp_path.iterdir()] == ["live.mp4"], "no partial file left"


def test_switching_source_while_recording_keeps_what_was_recorded(
    tmp_path: Path, no_leftover_threads
) -> None:
    out = tmp_path / "take.mp4"
    s = Settings(
        source="synthetic:160x120@30",
        pace="none",
        max_frames=40,
        output=str(out),
        background=Background.parse("green"),
    )
    packets: list = []
    events: list = []
    pipeline = Pipeline(s, on_frame=packets.append, on_event=events.append)
    pipeline.start()
    try:
        for count, source in ((5, "synthetic:160x120@25"), (15, "synthetic:192x108@30")):
            deadline = time.monotonic() + 60
            while len(packets) < count and time.monotonic() < deadline:
                time.sleep(0.01)
            pipeline.update(s.replace(source=source))
        assert pipeline.wait(120)
    finally:
        pipeline.stop()
    assert not [e for e in events if e.kind == "error"], events
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take-2.mp4", "take.mp4"]
    first, second = count_frames(out), count_frames(tmp_path / "take-2.mp4")
    assert first >= 15 and first + second == 40  # same size: one file; another size: a second
    with av.open(str(tmp_path / "take-2.mp4")) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (192, 108)


class OneOpenCamera(FrameSource):
    """Camera hardware stand-in that, like a V4L2 device, streams to one opener at a time."""

    is_live = True
    holders = 0

    def __init__(self, *, resolution=None, fps=None) -> None:
        super().__init__(resolution=resolution, fps=fps)
        self._holding = False

    @classmethod
    def from_spec(cls, target: str, request: Requested) -> OneOpenCamera:
        return cls(resolution=request.resolution, fps=request.fps)

    @property
    def name(self) -> str:
        return "single camera"

    def _open(self) -> None:
        if OneOpenCamera.holders:
            raise SourceError("the camera is busy")
        if self.requested.resolution == (32, 32):
            raise SourceError("the camera has no 32x32 mode")
        OneOpenCamera.holders += 1
        self._holding = True
        self._set_format((96, 64), 30.0)

    def _read(self) -> np.ndarray:
        time.sleep(1 / 30)
        return np.full((self.height, self.width, 3), 90, np.uint8)

    def _close(self) -> None:
        if self._holding:
            OneOpenCamera.holders -= 1
            self._holding = False


def test_another_mode_of_the_same_camera_is_applied_live(no_leftover_threads) -> None:
    register_source("single")(OneOpenCamera)
    s = Settings(source="single:x", background=Background.parse("green"))
    packets: list = []
    events: list = []
    pipeline = Pipeline(s, on_frame=packets.append, on_event=events.append)

    def wait_for_size(shape: tuple[int, int]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if packets and packets[-1].composite.shape[:2] == shape:
                return
            time.sleep(0.02)
        pytest.fail(f"no {shape} frame came out; events: {events}")

    pipeline.start()
    try:
        wait_for_size((64, 96))
        pipeline.update(s.replace(resolution=(128, 72)))
        wait_for_size((72, 128))
        pipeline.update(s.replace(resolution=(32, 32)))  # a mode the camera refuses
        deadline = time.monotonic() + 30
        while not any(e.kind == "error" for e in events) and time.monotonic() < deadline:
            time.sleep(0.02)
        count = len(packets)
        time.sleep(1.0)
        assert len(packets) > count, "the camera went back to the mode that worked"
        assert packets[-1].composite.shape[:2] == (72, 128)
    finally:
        pipeline.stop()
    errors = [e.message for e in events if e.kind == "error"]
    assert len(errors) == 1 and "32x32" in errors[0]
    assert OneOpenCamera.holders == 0


def test_holding_the_frame_rate_is_on_unless_switched_off() -> None:
    from app.cli import parse_settings

    assert parse_settings([])[0].hold_fps
    settings, given, _ = parse_settings(["--no-hold-fps"])
    assert not settings.hold_fps and "hold_fps" in given


def test_a_frame_the_network_fails_on_is_skipped_without_stalling(no_leftover_threads) -> None:
    from app.matting.engine import MattingEngine, build_engine

    def flaky_engine(settings: Settings) -> MattingEngine:
        engine = build_engine(device="cpu")
        runner, calls = engine.runner, []

        def run(src, rec, ratio):
            calls.append(1)
            if len(calls) == 6:  # after the three warm-up steps and two frames
                raise RuntimeError("out of memory")
            return runner(src, rec, ratio)

        engine.runner = run
        return engine

    s = Settings(
        source="synthetic:96x64@30", pace="none", max_frames=5, background=Background.parse("green")
    )
    start = time.monotonic()
    pipeline, packets, events = run_collect(s, engine_factory=flaky_engine)
    assert time.monotonic() - start < 25, "the failed frame did not hold the run up"
    assert len(packets) == 5
    assert pipeline.stats().frames_matted == 5
    assert [e.message for e in events if e.kind == "error"] == [
        "Matting failed on a frame: out of memory"
    ]


def test_aligned_mode_sends_every_camera_frame_in_order(no_leftover_threads, monkeypatch) -> None:
    # Mattes late on a busy machine would hide the person (app.compose.privacy); here only the
    # order and the cut-out matter.
    monkeypatch.setattr("app.compose.privacy.MATTE_AGE_LIMIT_S", 60.0)
    s = Settings(
        source="synthetic:640x480@30",
        pace="realtime",
        max_frames=40,
        background=Background.parse("green"),
        sync="aligned",
    )
    pipeline, packets, _ = run_collect(s)
    st = pipeline.stats()
    assert len(packets) == 40
    assert st.frames_matted < st.frames_out, "matting is slower than the camera here"
    times = [p.t_capture for p in packets]
    assert times == sorted(times) and len(set(times)) == 40
    assert all(p.composite.shape == (480, 640, 3) for p in packets)
    assert pipeline._live.slot.depth == ALIGNED_DEPTH  # frames kept through a burst
    assert any((p.alpha == 255).any() and (p.alpha == 0).any() for p in packets)


@pytest.mark.parametrize("sync", ["aligned", "smooth"])
def test_batch_runs_give_each_frame_its_own_matte_in_every_sync_mode(sync, tmp_path) -> None:
    clip = write_clip(tmp_path / "in.mp4", make_clip(6, 96, 128, seed=4))
    runs = []
    for mode in (sync, "exact"):
        s = Settings(source=str(clip), pace="none", background=Background.parse("green"))
        _, packets, _ = run_collect(s.replace(sync=mode))
        runs.append(packets)
    assert len(runs[0]) == len(runs[1]) == 6
    for a, b in zip(*runs, strict=True):
        assert np.array_equal(a.composite, b.composite) and np.array_equal(a.alpha, b.alpha)


def test_the_matting_thread_tells_which_frame_it_mattes_and_how_long_steps_take(
    no_leftover_threads,
) -> None:
    from app.capture.base import Frame
    from app.matting.worker import MattingWorker

    engine, go = fake_engine(), threading.Event()
    runner = engine.runner

    def held(src, rec, ratio):
        go.wait(10)
        return runner(src, rec, ratio)

    engine.runner = held
    s = Settings(source="synthetic:64x48@30", background=Background.parse("green"))
    worker = MattingWorker(engine, s, fake_engine, lambda e: None, lambda: 30.0)
    worker.start()
    try:
        assert worker.progress().t_capture is None and worker.progress().step == 0
        frame = Frame(np.zeros((48, 64, 3), np.uint8), 0, time.monotonic())
        worker.offer(frame, exact=False)
        assert wait_until(lambda: worker.progress().t_capture == frame.t_capture)
        time.sleep(0.05)
        go.set()
        assert wait_until(lambda: worker.newest() is not None)
        done = worker.progress()
        assert done.t_capture is None and done.step >= 0.05
    finally:
        worker.stop()
