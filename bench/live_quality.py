"""What a viewer gets from the live pipeline on real footage, against a matte made for every frame.

Real footage (``bench.footage``: A, people signing, 960x720; B, a seated person typing,
960x540) is played like a camera through the live pipeline (colour background, CPU). Every output
frame is kept, told apart by the source frame it was made from, and compared with the *ideal*: the
network run offline on every frame at RVM's ratio, composited the same way. Per configuration:

- output fps, matting fps and camera-to-output latency p95 (taken for every output frame);
- edge-band error: mean absolute difference of the composite, x1e3, in the band 12 px either side
  of the ideal matte's 0.5 contour (frames within 20 frames of a clip join left out), as the mean
  and the 95th percentile over frames;
- stability: the mean over the band of ``|(out_t - out_prev) - (ideal_t - ideal_prev)|`` x1e3,
  between consecutive output frames (flicker the ideal does not have).

Each run plays the footage in a loop: a warm-up (the frame-rate policy settles), then one whole
pass is measured. Configurations run alone and beside a meeting app's encoder (x264 veryfast,
1280x720 at 30 fps, in another process). Two peer rows are made offline: RVM on every frame at
320x192 with camera pixels (the OBS plugin's way) and MediaPipe selfie segmentation on every frame.

Run ``python -m bench live_quality [--quick]``; it needs ``../shared/data``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np

from app.compose.align import FrameAligner
from app.compose.live import ComposeWorker, FramePacket
from app.matting import worker
from app.matting.fast import FastRunner
from app.matting.hold import EVERY_FRAME, RateBand
from app.pipeline import Pipeline
from app.settings import Background, Settings
from bench import footage as fo
from bench.common import Row, Section, load_average, percentile, table

GOALS = {"A": 15.0, "B": 20.0, "A+encoder": 18.0}
WARMUP_S = 12.0
# (network long side, a matte on every K-th frame) replayed offline
REPLAY = ((256, 2), (256, 3), (480, 2), (480, 3), (480, 4), (480, 6))
REPLAY_QUICK = ((256, 2), (480, 3))


@dataclass
class _Probe:
    """Keeps every output frame (by reference) once measuring has begun."""

    measuring: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    frames: list[tuple[bytes, np.ndarray, float, float]] = field(default_factory=list)

    def on_frame(self, packet: FramePacket) -> None:
        now = time.monotonic()
        if self.measuring:
            k = fo.key(packet.source)
            with self.lock:
                self.frames.append((k, packet.composite, packet.t_capture, now))


@dataclass
class Result:
    """One configuration on one footage."""

    output_fps: float = float("nan")
    matting_fps: float = float("nan")
    latency_p95_ms: float = float("nan")
    error_mean: float = float("nan")
    error_p95: float = float("nan")
    stability: float = float("nan")
    frames: int = 0
    internal: str = ""
    load: str = ""


def _indices(keys: list[bytes], footage: fo.Footage) -> list[int | None]:
    """The source frame of each output frame (None where it cannot be told)."""
    where: dict[bytes, list[int]] = defaultdict(list)
    for i in range(len(footage.frames)):
        where[fo.key(footage.frames[i])].append(i)
    out, last = [], -1
    for k in keys:
        options = where.get(k, [])
        later = [i for i in options if i > last]
        idx = later[0] if later else (options[0] if options else None)
        out.append(idx)
        if idx is not None:
            last = idx
    return out


class EdgeScore:
    """Edge-band errors and stability figures of a stream of output frames, frame by frame.

    Args:
        footage: where the frames come from.
        ideal: what they are compared with.
    """

    def __init__(self, footage: fo.Footage, ideal: fo.Ideal):
        self.footage, self.ideal = footage, ideal
        self.errors: list[float] = []
        self.flicker: list[float] = []
        self._scored = footage.scored()
        self._prev: tuple[int, np.ndarray] | None = None
        self._bands: dict[int, np.ndarray] = {}

    def _band(self, idx: int) -> np.ndarray:
        if idx not in self._bands:
            if len(self._bands) > 8:
                self._bands.pop(next(iter(self._bands)))
            self._bands[idx] = fo.band(self.ideal.pha[idx])
        return self._bands[idx]

    def add(self, idx: int | None, comp: np.ndarray) -> None:
        """One output frame, made from source frame ``idx`` (None: unknown)."""
        if idx is None or not self._scored[idx]:
            self._prev = None
            return
        mask = self._band(idx)
        ideal = self.ideal.comp
        self.errors.append(fo.edge_error(comp, ideal[idx], mask))
        prev = self._prev
        if prev is not None and 0 < idx - prev[0] <= 3:
            self.flicker.append(fo.stability(comp, prev[1], ideal[idx], ideal[prev[0]], mask))
        self._prev = (idx, comp)

    def summary(self) -> tuple[float, float, float, int]:
        """Error mean, error p95, stability mean, frames scored."""
        nan = float("nan")
        return (
            float(np.mean(self.errors)) if self.errors else nan,
            percentile(self.errors, 95),
            float(np.mean(self.flicker)) if self.flicker else nan,
            len(self.errors),
        )


def score(
    outputs: Iterable[tuple[int | None, np.ndarray]], footage: fo.Footage, ideal: fo.Ideal
) -> tuple[list[float], list[float]]:
    """Edge-band errors of each scored output frame, and stability figures of consecutive pairs."""
    scorer = EdgeScore(footage, ideal)
    for idx, comp in outputs:
        scorer.add(idx, comp)
    return scorer.errors, scorer.flicker


def run_live(settings: Settings, footage: fo.Footage, ideal: fo.Ideal, warmup: float) -> Result:
    """Plays the footage through the pipeline, measures one pass after ``warmup`` seconds."""
    probe = _Probe()
    pipe = Pipeline(settings, on_frame=probe.on_frame)
    pipe.start()
    seconds = len(footage.frames) / 30.0
    try:
        time.sleep(warmup)
        first = pipe.stats()
        load = load_average()
        probe.measuring = True
        start = time.monotonic()
        time.sleep(seconds)
        probe.measuring = False
        span = time.monotonic() - start
        last = pipe.stats()
    finally:
        pipe.stop()
    frames = probe.frames
    idx = _indices([f[0] for f in frames], footage)
    errors, flicker = score([(i, f[1]) for i, f in zip(idx, frames, strict=True)], footage, ideal)
    latency = [(f[3] - f[2]) * 1000 for f in frames]
    return Result(
        output_fps=len(frames) / span,
        matting_fps=(last.frames_matted - first.frames_matted) / span,
        latency_p95_ms=percentile(latency, 95),
        error_mean=float(np.mean(errors)) if errors else float("nan"),
        error_p95=percentile(errors, 95),
        stability=float(np.mean(flicker)) if flicker else float("nan"),
        frames=len(errors),
        internal=last.internal_resolution,
        load=f"{load}/{load_average()}",
    )


ENCODER_SCRIPT = """
import sys, time, av, cv2, numpy as np
base = np.load(sys.argv[1], mmap_mode="r")
pics = [cv2.resize(np.array(base[i]), (1280, 720)) for i in range(0, len(base), 10)]
with av.open("/dev/null", "w", format="mp4") as out:
    s = out.add_stream("libx264", rate=30, options={"preset": "veryfast", "tune": "zerolatency"})
    s.width, s.height, s.pix_fmt, s.bit_rate = 1280, 720, "yuv420p", 2_500_000
    t0, n = time.monotonic(), 0
    while True:
        f = av.VideoFrame.from_ndarray(pics[n % len(pics)], format="rgb24")
        for p in s.encode(f):
            out.mux(p)
        n += 1
        delay = t0 + n / 30 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
"""


class EncoderLoad:
    """A meeting app's video encoder in another process: x264 veryfast, 1280x720, 30 fps."""

    def __init__(self, frames_file: Path):
        self._args = [sys.executable, "-c", ENCODER_SCRIPT, str(frames_file)]
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> EncoderLoad:
        self._proc = subprocess.Popen(self._args, stdout=subprocess.DEVNULL)
        time.sleep(2.0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)


def base_settings(footage: fo.Footage, **changes: object) -> Settings:
    """The app's defaults, playing ``footage`` in a loop on a colour background, CPU."""
    return Settings(
        source=str(footage.path),
        resolution=footage.size,
        loop=True,
        background=Background.parse("color:#3c78d8"),
        device="cpu",
        **changes,
    ).validate()


@dataclass(frozen=True)
class Config:
    """One row of the table: settings changes, levers switched by patching the app's code (owner,
    attribute, value), and what else runs beside the app."""

    name: str
    changes: dict = field(default_factory=dict)
    patches: tuple[tuple[object, str, object], ...] = ()
    record: bool = False
    encoder: bool = False


def _always_wait(*args: object) -> bool:
    return False


def _every_frame(*args: object) -> RateBand:
    return EVERY_FRAME


CONFIGS = (
    Config("default (aligned sync)"),
    Config(
        "aligned, alpha and offset resampled instead of the guided filter's coefficients",
        patches=((FastRunner, "coefficients", None),),
    ),
    Config(
        "aligned, mattes blended without following the motion",
        patches=((ComposeWorker, "follow_motion", False),),
    ),
    Config(
        "aligned, a matte for nearly every frame at a lower size (the default before)",
        patches=((worker, "carried_band", _every_frame),),
    ),
    Config(
        "aligned, every frame waits up to 85 ms for the matte after it",
        patches=((FrameAligner, "_hopeless", _always_wait),),
    ),
    Config("smooth sync (newest matte at once)", {"sync": "smooth"}),
    Config("exact sync (each frame its own matte)", {"sync": "exact"}),
    Config("aligned, RVM's ratio (--no-hold-fps)", {"hold_fps": False}),
    Config("default, recording H.264 to a file", record=True),
    Config("default beside the encoder", encoder=True),
    Config("smooth sync beside the encoder", {"sync": "smooth"}, encoder=True),
)
QUICK = ("default (aligned sync)", "smooth sync (newest matte at once)")


def measure(config: Config, footage: fo.Footage, ideal: fo.Ideal, warmup: float) -> Result:
    """One configuration on one footage, with its recording or encoder load."""
    changes = dict(config.changes)
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        if config.record:
            changes["output"] = os.path.join(tmp, "take.mp4")
        settings = base_settings(footage, **changes)
        for owner, name, value in config.patches:
            stack.enter_context(mock.patch.object(owner, name, value))
        if config.encoder:
            stack.enter_context(EncoderLoad(fo.cache_dir() / "frames_B.npy"))
        return run_live(settings, footage, ideal, warmup)


def _fmt(x: float, digits: int = 1) -> str:
    return "–" if x != x else f"{x:.{digits}f}"


def run(quick: bool = False) -> Section:
    """Measures every configuration on both footages and returns the section for the results."""
    from bench import peers, replay

    section = Section("live_quality", "what the viewer gets live, against a matte for every frame")
    started = load_average()
    data = {name: fo.load(name) for name in ("A", "B")}
    ideals = {name: fo.ideal(f) for name, f in data.items()}
    results: dict[tuple[str, str], Result] = {}
    for config in CONFIGS:
        if quick and config.name not in QUICK:
            continue
        for name in ("A", "B") if not config.encoder else ("A",):
            r = measure(config, data[name], ideals[name], WARMUP_S / (2 if quick else 1))
            results[(config.name, name)] = r
            print(f"  {config.name} [{name}]: {r}", flush=True)
    peer_rows = {name: peers.run_all(data[name], ideals[name]) for name in ("A", "B")}
    schedules = REPLAY_QUICK if quick else REPLAY
    replays = {
        (name, *schedule): result
        for name in ("A", "B")
        for schedule, result in replay.cached_replay(data[name], ideals[name], schedules).items()
    }
    _goal_rows(section, results)
    header = ["configuration", "footage", "output fps", "matting fps", "latency p95 ms"]
    header += ["edge error", "edge error p95", "stability", "frames", "internal", "load 1 min"]
    rows = [
        [
            cfg,
            name,
            _fmt(r.output_fps),
            _fmt(r.matting_fps),
            _fmt(r.latency_p95_ms, 0),
            _fmt(r.error_mean),
            _fmt(r.error_p95),
            _fmt(r.stability),
            r.frames,
            r.internal,
            r.load,
        ]
        for (cfg, name), r in results.items()
    ]
    for name, peer in peer_rows.items():
        for label, (err, p95, stab, n) in peer.items():
            rows.append(
                [label, name, "offline", "", "", _fmt(err), _fmt(p95), _fmt(stab), n, "", ""]
            )
    section.details.append(table(header, rows))
    replay_rows = [
        [mode, name, f"{side} px", f"1 frame in {every}", _fmt(err), _fmt(p95), _fmt(stab), n]
        for (name, side, every), modes in replays.items()
        for mode, (err, p95, stab, n) in modes.items()
    ]
    section.details.append(
        "Replay: the sync modes on a fixed schedule, offline (the network at the given long side "
        "on every K-th frame, each matte ready K frames after its frame; `bench/replay.py`), "
        "independent of the load:\n\n"
        + table(
            ["mode", "footage", "network", "matted", "edge error", "edge error p95", "stability"]
            + ["frames"],
            replay_rows,
        )
    )
    section.notes += [
        "A: the ten ASL clips joined (people signing, hand motion), played at 960x720@30; B: the "
        "doctor clip (seated, typing), 960x540@30; colour background, CPU, default settings "
        "unless named",
        f"each run: {WARMUP_S / (2 if quick else 1):g} s warm-up on the looping footage, then one "
        "whole pass measured; every output frame kept and matched to its source frame",
        "edge error: mean |composite - ideal| x1e3 in the band 12 px either side of the ideal "
        "matte's 0.5 contour (frames within 20 frames of a clip join left out); ideal: the "
        "network on every frame at RVM's ratio, offline; stability: mean over the band of "
        "|(out_t - out_prev) - (ideal_t - ideal_prev)| x1e3 between consecutive output frames",
        "encoder: x264 veryfast (zerolatency) 1280x720@30 at 2.5 Mb/s in another process",
        "load 1 min: load average when measuring began / when it ended; the machine is shared, "
        "so fps numbers are pessimistic when it is above 2",
        f"load average (1 min) at the start {started}, at the end {load_average()}",
    ]
    return section


def _goal_rows(section: Section, results: dict[tuple[str, str], Result]) -> None:
    default = CONFIGS[0].name
    for name, goal in (("A", GOALS["A"]), ("B", GOALS["B"])):
        r = results.get((default, name))
        if r is not None:
            section.rows.append(
                Row(
                    f"edge error, default, {name}",
                    _fmt(r.error_mean),
                    f"<= {goal:g}",
                    goal / r.error_mean if r.error_mean == r.error_mean else None,
                )
            )
    for key, goal, label in (
        ((default, "A"), 29.0, "output fps, default, A"),
        ((default, "B"), 29.0, "output fps, default, B"),
        (("default, recording H.264 to a file", "A"), 29.0, "output fps, recording, A"),
        (("default beside the encoder", "A"), 28.0, "output fps beside the encoder, A"),
    ):
        r = results.get(key)
        if r is not None:
            section.rows.append(Row(label, _fmt(r.output_fps), f">= {goal:g}", r.output_fps / goal))
    r = results.get(("default beside the encoder", "A"))
    if r is not None:
        section.rows.append(
            Row(
                "edge error beside the encoder, A",
                _fmt(r.error_mean),
                "<= 18",
                18.0 / r.error_mean if r.error_mean == r.error_mean else None,
            )
        )
    for name in ("A", "B"):
        r = results.get((default, name))
        if r is not None:
            section.rows.append(
                Row(
                    f"latency p95, default, {name}",
                    f"{_fmt(r.latency_p95_ms, 0)} ms",
                    "<= 120 ms",
                    120.0 / max(r.latency_p95_ms, 1e-9),
                )
            )
        exact = results.get(("exact sync (each frame its own matte)", name))
        if r is not None and exact is not None:
            section.rows.append(
                Row(
                    f"stability, default vs exact, {name}",
                    f"{_fmt(r.stability)} vs {_fmt(exact.stability)}",
                    "<= exact's",
                    exact.stability / r.stability if r.stability == r.stability else None,
                )
            )
