"""The live recording's H.264 encoder: CPU time and picture quality of x264's fast presets.

A recording made during a call shares the cores with the network and the meeting app, so its
encoder's CPU time is taken from the mattes. Footage A (``bench.footage``), scaled to 960x720, is
written through the recorder's own :class:`~app.media.video.VideoWriter` settings (6 Mb/s,
fragmented MP4, BT.709) with each preset in turn, the presets interleaved over the repeats; CPU
time is the process's (every encoder thread counted) per frame, PSNR against the frames written.

Run ``python -m bench recording [--quick]``; it needs ``../shared/data``.
"""

from __future__ import annotations

import resource
import statistics
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

from app.media.video import VideoWriter
from app.output.recorder import CONTAINERS
from bench import footage as fo
from bench.common import Row, Section, load_average, table

PRESETS = ("veryfast", "superfast", "ultrafast")
CHOSEN = "superfast"  # the recorder's (app/output/recorder.py)
SIZE = (960, 720)
MBPS = 6.0


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def encode(frames: np.ndarray, preset: str, path: Path) -> float:
    """Writes ``frames`` as the recorder does with ``preset``; returns CPU seconds per frame."""
    start = _cpu()
    writer = VideoWriter(
        path,
        SIZE[0],
        SIZE[1],
        30,
        mbps=MBPS,
        preset=preset,
        pix_fmt="yuv420p",
        bt709=True,
        container_format=CONTAINERS[".mp4"],
        crash_safe=True,
    )
    for i, frame in enumerate(frames):
        writer.write(frame, i)
    writer.close()
    return (_cpu() - start) / len(frames)


def psnr(path: Path, frames: np.ndarray) -> float:
    """PSNR (dB) of the video at ``path`` against the frames written."""
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    mse = np.mean(
        [np.mean((d.astype(np.float32) - f) ** 2) for d, f in zip(decoded, frames, strict=True)]
    )
    return float(10 * np.log10(255.0**2 / mse))


def run(quick: bool = False) -> Section:
    """Encodes footage A with each preset and returns the section for the results."""
    section = Section("recording", "the live recording's encoder, x264 presets at 960x720, 6 Mb/s")
    started = load_average()
    source = fo.load("A").frames[: 90 if quick else 300]
    frames = np.stack([cv2.resize(f, SIZE, interpolation=cv2.INTER_LINEAR) for f in source])
    cpu: dict[str, list[float]] = {p: [] for p in PRESETS}
    quality: dict[str, tuple[float, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(1 if quick else 3):
            for preset in PRESETS:
                path = Path(tmp) / f"{preset}.mp4"
                path.unlink(missing_ok=True)
                cpu[preset].append(encode(frames, preset, path))
                quality[preset] = (psnr(path, frames), path.stat().st_size)
    ms = {p: statistics.median(v) * 1000 for p, v in cpu.items()}
    seconds = len(frames) / 30
    rows = [
        [
            p + (" (recorder)" if p == CHOSEN else ""),
            f"{ms[p]:.1f}",
            f"{ms[p] / ms['veryfast']:.2f}",
            f"{ms[p] * 30 / 1000:.2f}",
            f"{quality[p][0]:.2f}",
            f"{quality[p][1] * 8 / seconds / 1e6:.2f}",
        ]
        for p in PRESETS
    ]
    header = ["preset", "CPU ms/frame", "vs veryfast", "cores at 30 fps", "PSNR dB", "Mb/s"]
    section.details.append(table(header, rows))
    section.rows.append(
        Row(
            f"CPU per frame, {CHOSEN} vs veryfast",
            f"{ms[CHOSEN] / ms['veryfast']:.2f}x",
            "<= 0.7x",
            0.7 / (ms[CHOSEN] / ms["veryfast"]),
        )
    )
    section.rows.append(
        Row(
            f"PSNR lost, {CHOSEN} vs veryfast",
            f"{quality['veryfast'][0] - quality[CHOSEN][0]:.2f} dB",
            "<= 0.5 dB",
            0.5 / max(quality["veryfast"][0] - quality[CHOSEN][0], 1e-3),
        )
    )
    section.notes += [
        f"footage A ({len(frames)} frames) scaled to {SIZE[0]}x{SIZE[1]}; median of "
        f"{len(cpu[CHOSEN])} interleaved runs; CPU time of the whole process",
        f"load average (1 min) at the start {started}, at the end {load_average()}",
    ]
    return section
