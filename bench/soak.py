"""A video call's length in the real window: ten minutes (``--quick``: two) under the offscreen
platform, with a camera that is lost and comes back, the background switched and a recording on.

The window runs in a child process (so an abort inside Qt is a measured failure, not a crash of
the runner), with the real pipeline and network on the CPU. The camera is a live synthetic 640x480
source at 15 fps that stops delivering for 3 s every 30 s and then comes back; the background goes
round colour, green, image and blur every 10 s; the virtual camera (a driver that counts frames)
and a recording to ``.mp4`` run all along. Measured:

- the window is still alive at the end and closes with exit code 0;
- resident memory: the peak after the first minute (``--quick``: 30 s) against the peak in it;
- the recording: frames decoded from the file against the frames that went out;
- privacy: for every second frame shown with a colour or green background, the share of the
  pixels where the figure's true matte says background (5 px away from it) that show the camera's
  room instead of the background.

Run ``python -m bench soak [--quick]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np

from bench.common import Row, Section, load_average, percentile, rss_bytes

MB = 1024 * 1024
LOSS_EVERY_S, LOSS_FOR_S, SWITCH_EVERY_S = 30.0, 3.0, 10.0
RSS_GOAL_MB = 50.0
LEAK_GOAL = 0.02  # a small fraction of the room, where the matte is out of date by a frame or two
BACKGROUNDS = ("color:#ff00ff", "green", "IMAGE", "blur")


def run(quick: bool = False) -> Section:
    """Runs the soak in a child process and returns the section for the results."""
    seconds = 120.0 if quick else 600.0
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="mattecam-soak-") as work:
        out = Path(work) / "result.json"
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
        child = subprocess.run(
            [sys.executable, "-m", "bench.soak", str(seconds), str(out), work],
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=seconds + 600,
        )
        data = json.loads(out.read_text()) if out.is_file() else {}
    section = Section("soak", f"the window for {seconds / 60:g} minutes of a video call")
    alive = child.returncode == 0 and bool(data)
    tail = " ".join(child.stderr.strip().splitlines()[-2:]) if child.stderr else ""
    section.rows.append(
        Row(
            "window alive to the end, closed cleanly",
            "yes" if alive else f"no: exit code {child.returncode} {tail}".strip(),
            "yes",
            1.0 if alive else 0.0,
        )
    )
    if not data:
        return section
    growth = data["rss_peak_late_mb"] - data["rss_peak_early_mb"]
    section.rows.append(
        Row(
            f"RSS peak growth after the first {data['reference_s']:g} s",
            f"{growth:+.1f} MB (peak {data['rss_peak_early_mb']:.0f} MB, then "
            f"{data['rss_peak_late_mb']:.0f} MB; last {data['rss_last_mb']:.0f} MB)",
            f"<= +{RSS_GOAL_MB:g} MB",
            RSS_GOAL_MB / max(growth, 1.0),
        )
    )
    recorded, sent = data["recorded_frames"], data["frames_out"]
    section.rows.append(
        Row(
            "recording: frames in the file / frames that went out",
            f"{recorded} / {sent}",
            "all",
            recorded / sent if sent else 0.0,
        )
    )
    leaks = data["leaks"]
    worst = max(leaks) if leaks else 0.0
    p99 = percentile(leaks, 99) if leaks else 0.0
    section.rows.append(
        Row(
            "room shown where the true matte says background (p99 over frames)",
            f"p99 {100 * p99:.2f} %, max {100 * worst:.2f} %, "
            f"{sum(v > LEAK_GOAL for v in leaks)} of {len(leaks)} frames over "
            f"{100 * LEAK_GOAL:g} %",
            f"<= {100 * LEAK_GOAL:g} %",
            LEAK_GOAL / max(p99, 1e-4),
        )
    )
    section.rows.append(
        Row(
            "camera losses recovered",
            f"{data['recoveries']} of {data['losses']}",
            "all",
            data["recoveries"] / data["losses"] if data["losses"] else None,
        )
    )
    section.details.append(
        f"frames out {sent} ({sent / data['seconds']:.1f} fps over the run), virtual camera "
        f"frames {data['vcam_frames']}, background switches {data['switches']}, preview frames "
        f"{data['preview_frames']}; final stats: {json.dumps(data['stats'])}"
    )
    section.notes.append(
        "synthetic 640x480 camera at 15 fps, lost for 3 s every 30 s; background every 10 s: "
        + ", ".join(BACKGROUNDS)
        + "; recording to .mp4 and the virtual camera on; CPU, default settings"
    )
    section.notes.append(f"load average before: {load_before}; after: {load_average()}")
    return section


# --- the child: the window itself -----------------------------------------------------------


def _child(seconds: float, out: Path, work: Path) -> None:
    os.environ["MATTECAM_SETTINGS_DIR"] = str(work / "settings")
    import av
    import cv2

    from app.capture.base import SourceError, SourceLost
    from app.capture.kinds import register_source
    from app.capture.synthetic import SyntheticSource
    from app.output.virtualcam import register_backend
    from app.settings import Background, Settings
    from app.ui import frames as ui_frames
    from app.ui.app import application, build_window
    from app.ui.main_window import ASSETS
    from app.ui.store import Store, open_qsettings
    from bench.pipeline import NullDriver

    start = time.monotonic()
    fingerprints: dict[int, int] = {}
    lock = threading.Lock()
    losses = [0, 0]  # lost, back

    def lost_now() -> bool:
        return (time.monotonic() - start) % LOSS_EVERY_S >= LOSS_EVERY_S - LOSS_FOR_S

    def fingerprint(image: np.ndarray) -> int:
        return zlib.crc32(np.ascontiguousarray(image[::29, ::31]).tobytes())

    @register_source("soakcam")
    class SoakCamera(SyntheticSource):
        is_live = True
        was_lost = False

        @classmethod
        def from_spec(cls, target: str, request: object) -> SoakCamera:
            return cls(resolution=(640, 480), fps=15)

        def _open(self) -> None:
            if lost_now():
                raise SourceError("The soak camera is unplugged.")
            super()._open()

        def _read(self) -> np.ndarray | None:
            if lost_now():
                if not SoakCamera.was_lost:
                    SoakCamera.was_lost = True
                    losses[0] += 1
                raise SourceLost("unplugged")
            if SoakCamera.was_lost:
                SoakCamera.was_lost = False
                losses[1] += 1
            return super()._read()

        def _frame(self, index: int) -> np.ndarray:
            image = super()._frame(index)
            with lock:
                fingerprints[fingerprint(image)] = index
                if len(fingerprints) > 600:
                    fingerprints.pop(next(iter(fingerprints)))
            return image

    sources: list[SoakCamera] = []
    original_open = SoakCamera.open

    def remember_open(self: SoakCamera) -> SoakCamera:
        if self not in sources:
            sources.append(self)
        return original_open(self)

    SoakCamera.open = remember_open  # type: ignore[method-assign]

    drivers: list[NullDriver] = []

    class CountingDriver(NullDriver):
        def __init__(self, **kw: object) -> None:
            super().__init__(**kw)
            drivers.append(self)

    register_backend("soak", CountingDriver)

    current = {"background": BACKGROUNDS[0]}
    leaks: list[float] = []
    seen = [0]
    kernel = np.ones((11, 11), np.uint8)

    def analyse(packet: object) -> None:
        spec = current["background"]
        colour = {"color:#ff00ff": (255, 0, 255), "green": (0, 177, 64)}.get(spec)
        if colour is None or not sources:
            return
        src, comp = packet.source, packet.composite
        with lock:
            index = fingerprints.get(fingerprint(src))
        if index is None or comp.shape[:2] != src.shape[:2]:
            return
        figure = sources[-1].alpha(index) > 0
        room = cv2.dilate(figure.astype(np.uint8), kernel) == 0
        src_i = src.astype(np.int16)
        distinct = room & (np.abs(src_i - np.array(colour)).max(-1) > 40)
        shown = distinct & (np.abs(comp[..., :3].astype(np.int16) - src_i).max(-1) <= 8)
        total = int(distinct.sum())
        if total:
            leaks.append(float(shown.sum()) / total)

    original_put = ui_frames.FrameMailbox.put

    def put(self: object, packet: object) -> None:
        seen[0] += 1
        if seen[0] % 2 == 0:
            try:
                analyse(packet)
            except Exception as exc:  # the measurement must not take the window down
                print(f"analysis failed: {exc}", file=sys.stderr)
        original_put(self, packet)

    ui_frames.FrameMailbox.put = put  # type: ignore[method-assign]

    image = next(iter(sorted((ASSETS / "backgrounds").glob("*.jpg"))))
    backgrounds = [Background.parse(str(image) if b == "IMAGE" else b) for b in BACKGROUNDS]
    recording = work / "call.mp4"
    settings = Settings(
        source="soakcam:",
        background=backgrounds[0],
        device="cpu",
        virtual_cam=True,
        output=str(recording),
    )
    app = application([])
    store = Store(open_qsettings(work / "settings"))
    given = {"source", "background", "device", "virtual_cam", "output"}
    window = build_window(settings, given, "soak", store=store)
    samples: list[tuple[float, float]] = []
    next_sample = next_switch = 0.0
    switches = 0
    while (elapsed := time.monotonic() - start) < seconds:
        app.processEvents()
        if elapsed >= next_sample:
            samples.append((elapsed, rss_bytes() / MB))
            next_sample += 5.0
        if elapsed >= next_switch and elapsed > 0:
            switches += 1
            spec = BACKGROUNDS[switches % len(BACKGROUNDS)]
            current["background"] = ""  # not measured while the switch is under way
            window._change(background=backgrounds[switches % len(backgrounds)])
            threading.Timer(1.0, lambda s=spec: current.__setitem__("background", s)).start()
        if elapsed >= next_switch:
            next_switch += SWITCH_EVERY_S
        time.sleep(0.005)
    pipeline = window.pipeline
    preview_frames = window.preview.frames_shown
    window.close()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    stats = pipeline.stats().to_dict() if pipeline is not None else {}  # after the last frame
    samples.append((time.monotonic() - start, rss_bytes() / MB))
    frames_out = int(stats.get("frames_out", 0))
    recorded = 0
    if recording.is_file():
        with av.open(str(recording)) as container:
            recorded = sum(1 for _ in container.decode(video=0))
    reference = 30.0 if seconds <= 180 else 60.0
    result = {
        "seconds": seconds,
        "reference_s": reference,
        "rss_peak_early_mb": max(r for t, r in samples if t <= reference),
        "rss_peak_late_mb": max(r for t, r in samples if t > reference),
        "rss_last_mb": samples[-1][1],
        "frames_out": frames_out,
        "recorded_frames": recorded,
        "vcam_frames": sum(d.count for d in drivers),
        "leaks": leaks,
        "losses": losses[0] - int(SoakCamera.was_lost),  # one still under way had no time to end
        "recoveries": losses[1],
        "switches": switches,
        "preview_frames": preview_frames,
        "stats": stats,
    }
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    _child(float(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
