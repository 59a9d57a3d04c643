"""Memory over a long live run: resident memory must stay flat after the first minute.

The live pipeline of ``bench/pipeline.py`` (synthetic 1280x720 camera at 30 fps, blurred background,
virtual camera, holding the frame rate) runs for ten minutes (``--quick``: two); the process's
resident set size is sampled every few seconds. The goal is that its peak after the first minute
(``--quick``: 30 s) stays within +50 MB of its peak during that minute.

Run ``python -m bench memory [--quick]``.
"""

from __future__ import annotations

import time

import torch

from app.output.virtualcam import register_backend, unregister_backend
from app.pipeline import Pipeline
from bench.common import Row, Section, load_average, rss_bytes, table
from bench.pipeline import BACKEND, NullDriver, configurations

GOAL_MB = 50.0
MB = 1024 * 1024


def run(quick: bool = False) -> Section:
    """Runs the live pipeline for minutes and returns the section for the results."""
    total, reference, every = (120.0, 30.0, 5.0) if quick else (600.0, 60.0, 10.0)
    load_before = load_average()
    settings = configurations()["smooth, hold frame rate (default)"]
    register_backend(BACKEND, NullDriver)
    samples: list[tuple[float, float, int]] = []  # (seconds, RSS MB, frames out)
    pipe = Pipeline(settings, vcam_backend=BACKEND)
    try:
        start = time.monotonic()
        pipe.start()
        while (elapsed := time.monotonic() - start) < total:
            samples.append((elapsed, rss_bytes() / MB, pipe.stats().frames_out))
            time.sleep(every)
        final = pipe.stats()
    finally:
        pipe.stop()
        unregister_backend(BACKEND)
    samples.append((time.monotonic() - start, rss_bytes() / MB, final.frames_out))
    # The heap keeps freed blocks for reuse, so RSS swings by tens of MB from one sample to the
    # next; a leak shows as a rising peak. Compare the peak after the reference with the one
    # before it.
    early = max(rss for t, rss, _ in samples if t <= reference)
    late = max(rss for t, rss, _ in samples if t > reference)
    growth = late - early
    section = Section("memory", f"resident memory over a {total / 60:g}-minute live run")
    section.rows.append(
        Row(
            f"RSS peak growth after the first {reference:g} s",
            f"{growth:+.1f} MB (peak {early:.0f} MB by {reference:g} s, {late:.0f} MB after; "
            f"last {samples[-1][1]:.0f} MB)",
            f"<= +{GOAL_MB:g} MB",
            GOAL_MB / max(growth, 1.0),  # growth under 1 MB counts as 1 MB
        )
    )
    gpu = "not measured: no GPU available"
    if torch.cuda.is_available():
        gpu = "not measured: the live run above is on the CPU"
    section.rows.append(Row("GPU memory flat", gpu, "", None))
    step = max(1, len(samples) // 12)
    section.details.append(
        table(
            ["s", "RSS MB", "frames out"],
            [[f"{t:.0f}", f"{rss:.1f}", n] for t, rss, n in samples[::step] + samples[-1:]],
        )
    )
    section.notes += [
        f"{settings.source}, background blur, smooth sync, hold frame rate, null virtual camera; "
        f"{final.frames_out} frames out, {final.frames_matted} matted, internal resolution "
        f"{final.internal_resolution} at the end",
        f"load average (1 min) before {load_before}, after {load_average()}",
    ]
    return section
