"""The live sync modes replayed offline on a fixed matting schedule (no timing, no load).

A live run's numbers move with the load of a shared machine; this replay does not. The network
mattes every K-th frame of the footage at a given size (its state carried from matte to matte, as
live), each matte ready K frames after its frame was taken (matting as slow as it is rare). Every
frame is then composited as each sync mode would, with the app's own code
(:mod:`app.compose.align`):

- smooth: the newest matte ready when the frame arrives (K to 2K-1 frames old);
- aligned: the mattes on either side when the later one is ready within the aligned delay
  (:data:`~app.compose.align.MAX_DELAY`), else the nearest one before it; carried along the
  motion (the default);
- aligned, blended: the same mattes, blended but not carried;
- exact: the frame's own matte at the same internal size (the network on every frame).

With the delay at 85 ms (two whole frames at 30 fps), a matte on every K-th frame ready K frames
later leaves each matted frame its own matte when K is at most 2, and the frames between them the
matte before them, carried forward: the matte after a frame comes too late. Edge-band error and
stability as in :mod:`bench.live_quality`.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np

from app.capture.base import Frame
from app.compose.align import MAX_DELAY, FrameAligner
from app.compose.host import HostMatte, blend
from app.matting.engine import MattingEngine, build_engine
from bench import footage as fo
from bench.live_quality import EdgeScore

MODES = ("smooth", "aligned, blended", "aligned", "exact")
FPS = 30.0

Scores = dict[str, tuple[float, float, float, int]]


class _Prepared:
    """A matte of one frame, as the compose stage keeps it."""

    def __init__(self, frame: Frame, host: HostMatte):
        self.frame = frame
        self._host = host

    def host(self) -> HostMatte:
        return self._host


def _engine(footage: fo.Footage, long_side: int) -> MattingEngine:
    height, width = footage.frames.shape[1:3]
    return build_engine("mobilenetv3", None, "cpu", "fp32", ratio=long_side / max(height, width))


def _matte(engine: MattingEngine, footage: fo.Footage, i: int) -> _Prepared:
    image = np.array(footage.frames[i])
    m = engine.step(image, t=i / FPS)
    return _Prepared(Frame(image, i, i / FPS), HostMatte(image, m.fgr, m.pha, m.coeffs))


def _code_key() -> str:
    """A digest of the code that makes the replayed frames (a change invalidates the cache)."""
    import app.compose.align as align
    import app.compose.motion as motion

    h = hashlib.sha256()
    for module in (align, motion):
        h.update(Path(module.__file__).read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def cached_replay(
    footage: fo.Footage, ideal: fo.Ideal, schedules: tuple[tuple[int, int], ...]
) -> dict[tuple[int, int], Scores]:
    """:func:`replay`, kept beside the footage until the code behind it changes."""
    cache = fo.cache_dir() / f"replay_{footage.name}.json"
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    todo = [s for s in schedules if f"{_code_key()}-{s[0]}-{s[1]}" not in known]
    for (side, every), scores in replay(footage, ideal, tuple(todo)).items():
        known[f"{_code_key()}-{side}-{every}"] = scores
    if todo:
        cache.write_text(json.dumps(known, indent=1))
    return {
        s: {m: tuple(v) for m, v in known[f"{_code_key()}-{s[0]}-{s[1]}"].items()}
        for s in schedules
    }


def _sides(mattes: dict[int, _Prepared], t: int, every: int, wait: int) -> tuple[int, int | None]:
    """The matted frames whose mattes frame ``t`` is given: the nearest before it (or the frame
    itself) and the one after it when that one is ready within ``wait`` frames."""
    ready = [i for i in mattes if i + every <= t + wait]
    before = max((i for i in ready if i <= t), default=-1)
    after = min((i for i in ready if i >= t), default=None)
    return before, after


def replay(
    footage: fo.Footage, ideal: fo.Ideal, schedules: tuple[tuple[int, int], ...]
) -> dict[tuple[int, int], Scores]:
    """Per schedule ``(long_side, every)`` (a matte on every ``every``-th frame, the network at
    ``long_side`` pixels on the long side), each mode's edge error mean, p95, stability and frames
    scored."""
    n = len(footage.frames)
    picture = fo.background(*footage.frames.shape[1:3])
    wait = math.floor(MAX_DELAY * FPS + 1e-6)
    dense = {side: _engine(footage, side) for side in {s for s, _ in schedules}}
    runs = {
        s: (
            _engine(footage, s[0]),
            FrameAligner(),
            {},
            {m: EdgeScore(footage, ideal) for m in MODES},
        )
        for s in schedules
    }
    following = [0] * len(runs)
    for t in range(n):
        frame = Frame(np.array(footage.frames[t]), t, t / FPS)
        own = {side: _matte(engine, footage, t) for side, engine in dense.items()}
        for k, ((side, every), (sparse, aligner, mattes, scores)) in enumerate(runs.items()):
            while following[k] <= min(t + wait, n - 1):
                mattes[following[k]] = _matte(sparse, footage, following[k])
                following[k] += every
            for i in [i for i in mattes if i < t - 3 * every]:
                del mattes[i]
            newest = max((i for i in mattes if i + every <= t), default=None)
            before_i, after_i = _sides(mattes, t, every, wait)
            if newest is None or before_i < 0:
                continue
            before = mattes[before_i]
            after = mattes[after_i] if after_i is not None else None
            if before_i == t:
                frame = before.frame  # a matted frame goes out with its own matte
            for m in (before, after):
                if m is not None:
                    aligner.add_matte(m)
            hosts = {
                "smooth": mattes[newest].host(),
                "aligned, blended": aligner.matte_for(frame, before, after, follow_motion=False),
                "aligned": aligner.matte_for(frame, before, after),
                "exact": own[side].host(),
            }
            for mode, host in hosts.items():
                scores[mode].add(t, blend(frame.image, host, picture))
    return {s: {m: sc.summary() for m, sc in run[3].items()} for s, run in runs.items()}
