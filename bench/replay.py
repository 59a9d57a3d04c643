"""The live sync modes replayed offline on a fixed matting schedule (no timing, no load).

A live run's numbers move with the load of a shared machine; this replay does not. The network
mattes every K-th frame of the footage (its state carried from matte to matte, as live), each
matte ready K frames after its frame was taken (matting as slow as it is rare). Every frame is
then composited as each sync mode would, with the app's own code (:mod:`app.compose.align`):

- smooth: the newest matte ready when the frame arrives (K to 2K-1 frames old);
- aligned, blended: the mattes of the matted frames on either side, blended, not carried;
- aligned: the same, carried along the motion (the default);
- aligned, forward only: the matte before, carried forward (what a frame gets that waited too
  long for the matte after it);
- exact: the frame's own matte at the same internal size (the network on every frame).

Edge-band error and stability as in :mod:`bench.live_quality`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from app.capture.base import Frame
from app.compose.align import FrameAligner
from app.compose.host import HostMatte, blend
from app.matting.engine import MattingEngine, build_engine
from bench import footage as fo
from bench.live_quality import EdgeScore

MODES = ("smooth", "aligned, blended", "aligned", "aligned, forward only", "exact")


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
    m = engine.step(image, t=i / 30)
    return _Prepared(Frame(image, i, i / 30), HostMatte(image, m.fgr, m.pha))


def _code_key() -> str:
    """A digest of the code that makes the replayed frames (a change invalidates the cache)."""
    import app.compose.align as align
    import app.compose.motion as motion

    h = hashlib.sha256()
    for module in (align, motion):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()[:16]


def cached_replay(
    footage: fo.Footage, ideal: fo.Ideal, everies: tuple[int, ...], long_side: int = 256
) -> dict[int, dict[str, tuple[float, float, float, int]]]:
    """:func:`replay`, kept beside the footage until the carrying code changes."""
    cache = fo.cache_dir() / f"replay_{footage.name}.json"
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    key = f"{_code_key()}-{'-'.join(map(str, everies))}-{long_side}"
    if key not in known:
        known[key] = {str(k): v for k, v in replay(footage, ideal, everies, long_side).items()}
        cache.write_text(json.dumps(known, indent=1))
    return {int(k): {m: tuple(v) for m, v in r.items()} for k, r in known[key].items()}


def replay(
    footage: fo.Footage, ideal: fo.Ideal, everies: tuple[int, ...], long_side: int = 256
) -> dict[int, dict[str, tuple[float, float, float, int]]]:
    """Per schedule (a matte on every ``every``-th frame at ``long_side`` pixels on the long side),
    each mode's edge error mean, p95, stability and frames scored."""
    n = len(footage.frames)
    dense = _engine(footage, long_side)
    picture = fo.background(*footage.frames.shape[1:3])
    runs = {
        every: (
            _engine(footage, long_side),
            FrameAligner(),
            {},
            {m: EdgeScore(footage, ideal) for m in MODES},
        )
        for every in everies
    }
    for t in range(n):
        own = _matte(dense, footage, t)
        for every, (sparse, aligner, mattes, scores) in runs.items():
            before_i = t - t % every
            after_i = before_i if before_i == t else before_i + every
            for i in (before_i, after_i):
                if i < n and i not in mattes:
                    mattes[i] = _matte(sparse, footage, i)
            for i in [i for i in mattes if i < before_i - 2 * every]:
                del mattes[i]
            ready = max((i for i in mattes if i + every <= t), default=None)
            if ready is None:
                continue
            before = mattes[before_i]
            after = mattes.get(after_i)
            frame = before.frame if before_i == t else own.frame
            for m in (before, after):
                if m is not None:
                    aligner.add_matte(m)
            hosts = {
                "smooth": mattes[ready].host(),
                "aligned, blended": aligner.matte_for(frame, before, after, follow_motion=False),
                "aligned": aligner.matte_for(frame, before, after),
                "aligned, forward only": aligner.matte_for(frame, before, None),
                "exact": own.host(),
            }
            for mode, host in hosts.items():
                scores[mode].add(t, blend(frame.image, host, picture))
    return {every: {m: s.summary() for m, s in run[3].items()} for every, run in runs.items()}
