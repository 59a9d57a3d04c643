"""The compose stage: every camera frame composited with a matte and sent to the outputs.

The thread takes the newest camera frame (in ``aligned`` sync each of up to three waiting) and
hands it to the matting worker. In ``aligned`` sync (the default) the frame waits until a frame at
or after it is matted (at most 85 ms) and is composited with the mattes of the matted frames on
either side of it, carried to it along the motion (:mod:`app.compose.align`); in ``smooth`` sync
it is composited at once with the matte that worker has ready; in ``exact`` sync with its own
matte. With the network on the CPU the composite is made in uint8 on the host
(:mod:`app.compose.host`), elsewhere as tensors on the engine's device
(:class:`~app.compose.compositor.Compositor`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from app.capture.base import Frame
from app.compose.align import FrameAligner
from app.compose.backgrounds import BackgroundError, BackgroundLayer, make_background
from app.compose.compositor import Compositor
from app.compose.host import HostBackground, HostMatte, blend
from app.compose.privacy import background_only
from app.events import Emit, Event, EventKind, Field
from app.matting.engine import MattingEngine
from app.matting.worker import Matted, MattingWorker
from app.settings import Background, Settings
from app.slot import LatestSlot
from app.stats import RateMeter, Samples

COMPOSE_THREADS = 1  # intra-op threads of the compose thread when the network runs on the CPU
# Camera frames the capture hand-off holds for the compose thread in aligned sync, which goes out
# in bursts (a matte releases several frames) and would otherwise lose the frames that arrive
# during one; how late a frame may still go out is the aligner's to say.
ALIGNED_DEPTH = 3


@dataclass(frozen=True)
class FramePacket:
    """One output frame and what it was made of (host uint8 arrays)."""

    index: int
    t_capture: float
    source: np.ndarray
    alpha: np.ndarray
    composite: np.ndarray


class MatteCache:
    """One matte and what compositing derives from it, computed once for every frame it serves."""

    def __init__(self, matted: Matted) -> None:
        self.matted = matted
        self.frame = matted.frame
        self.matte = matted.matte
        self._delta: torch.Tensor | None = None
        self._background: tuple[BackgroundLayer, torch.Tensor] | None = None
        self._host: HostMatte | None = None
        self._origin: MatteCache | None = None

    @classmethod
    def carried(cls, origin: MatteCache, frame: Frame, host: HostMatte) -> MatteCache:
        """The matte of ``origin`` carried to another ``frame``, already prepared as ``host``."""
        cache = cls(origin.matted)
        cache.frame, cache._host, cache._origin = frame, host, origin
        return cache

    def host(self) -> HostMatte:
        """The matte prepared for uint8 compositing on the host."""
        if self._host is None:
            m = self.matte
            self._host = HostMatte(self.frame.image, m.fgr, m.pha, m.coeffs)
        return self._host

    def delta(self) -> torch.Tensor:
        """``fgr - src`` of the matted frame."""
        if self._delta is None:
            self._delta = self.matte.fgr - self.matte.src
        return self._delta

    def background(self, layer: BackgroundLayer) -> torch.Tensor | None:
        """The layer rendered from the matted frame, once, when it is made from the camera.

        A blurred background shows no detail that moves between two mattes, so the frames in
        between reuse it; other layers (a video moves on every frame) render each frame.
        """
        if not layer.from_camera or layer.passthrough or layer.rgba:
            return None
        if self._origin is not None:
            return self._origin.background(layer)
        if self._background is None or self._background[0] is not layer:
            m = self.matte
            height, width = m.src.shape[-2:]
            self._background = (layer, layer.render(m.src, height, width, pha=m.pha))
        return self._background[1]


class LiveCompositor:
    """Composites camera frames with a matte, on the host or on the engine's device.

    Args:
        engine: the engine whose device and precision the tensors use (followed after reloads).
        layer: the background.
    """

    def __init__(self, engine: MattingEngine, layer: BackgroundLayer) -> None:
        self.layer = layer
        self._compositor = Compositor(engine.device, engine.dtype)
        self._host_background = HostBackground()

    def follow(self, engine: MattingEngine) -> None:
        """Moves to the engine's device and precision after a reload."""
        c = self._compositor
        if c.device != engine.device or c.dtype != engine.dtype:
            self._compositor = Compositor(engine.device, engine.dtype)

    def set_background(self, background: Background, emit: Emit) -> None:
        """Replaces the background; a background that cannot be made is reported, the old kept."""
        c = self._compositor
        try:
            layer = make_background(background, c.device, c.dtype)
        except BackgroundError as exc:
            emit(Event.error(exc, Field.BACKGROUND))
            return
        self.layer.close()
        self.layer = layer

    def close(self) -> None:
        """Releases the background."""
        self.layer.close()

    @torch.inference_mode()
    def compose(
        self, frame: Frame, cache: MatteCache, s: Settings
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The composite and the alpha view of ``frame``.

        Returns:
            uint8 ``H x W x 3`` (or ``x 4``) and ``H x W``; None while the newest matte is of
            another frame size (a fresh one follows).
        """
        if self._compositor.device.type == "cpu":
            return self._on_host(frame, cache, s)
        return self._on_device(frame, cache, s)

    def _on_host(
        self, frame: Frame, cache: MatteCache, s: Settings
    ) -> tuple[np.ndarray, np.ndarray] | None:
        layer = self.layer
        if frame.image.shape[:2] != cache.frame.image.shape[:2]:
            return None
        host = cache.host()
        picture = None
        if not layer.passthrough and not layer.rgba:
            m = cache.matte
            rendered = cache.background(layer)
            if rendered is None:
                rendered = layer.render(m.src, *host.size, pha=m.pha)
            picture = self._host_background.get(rendered)
        composite = blend(
            frame.image,
            host,
            picture,
            use_fgr=s.use_fgr,
            mirror=s.mirror,
            rgba=s.background.has_alpha or layer.rgba,
        )
        return composite, host.alpha_u8(s.mirror)

    def _on_device(
        self, frame: Frame, cache: MatteCache, s: Settings
    ) -> tuple[np.ndarray, np.ndarray] | None:
        m, compositor = cache.matte, self._compositor
        if cache.frame is frame:
            src, fgr = m.src, m.fgr
        else:
            src = compositor.to_tensor(frame.image)
            if src.shape[-2:] != m.src.shape[-2:]:
                return None
            fgr = torch.add(src, cache.delta()).clamp_(0, 1) if s.use_fgr else src
        composite = compositor.compose(
            src,
            fgr,
            m.pha,
            self.layer,
            use_fgr=s.use_fgr,
            mirror=s.mirror,
            rgba=s.background.has_alpha,
            background=cache.background(self.layer),
        )
        return composite, compositor.alpha_u8(m.pha, mirror=s.mirror)


@dataclass(frozen=True)
class ComposeHooks:
    """What the compose thread calls out to.

    Attributes:
        send: passes a composite and its capture time (None: next in line) to the outputs.
        on_frame: called with every output frame.
        apply_changes: called before each frame; applies pending settings and returns those in
            force.
        live: whether the source runs in real time (a recording then keeps capture times).
        emit: where news goes (the room hidden because matting fell behind or fails).
    """

    send: Callable[[np.ndarray, float | None], None]
    on_frame: Callable[[FramePacket], None] | None
    apply_changes: Callable[[], Settings]
    live: Callable[[], bool]
    emit: Emit | None = None


class ComposeWorker:
    """The compose thread.

    Attributes:
        follow_motion: aligned sync carries the mattes along the motion (True) or only blends
            them (False, cheaper; for measuring the difference).

    Args:
        slot: where the capture thread puts camera frames.
        matting: the matting worker.
        compositor: the live compositor.
        hooks: what it calls out to.
        done: set when the thread ends.
    """

    follow_motion = True

    def __init__(
        self,
        slot: LatestSlot[Frame],
        matting: MattingWorker,
        compositor: LiveCompositor,
        hooks: ComposeHooks,
        done: threading.Event,
    ) -> None:
        self.slot = slot
        self.done = done
        self.out_meter = RateMeter()
        self.latency = Samples()
        self.matte_age = Samples(60)
        self.frames_out = 0
        self._matting, self._compositor, self._hooks = matting, compositor, hooks
        self._stop = threading.Event()
        self._cache: MatteCache | None = None
        self._aligner: FrameAligner[MatteCache] = FrameAligner()
        self._cost = 0.0  # seconds an aligned frame takes to go out once released (average)
        self._thread = threading.Thread(target=self._run, name="mattecam-compose", daemon=True)

    @property
    def dropped(self) -> int:
        """Frames dropped because compositing fell behind the camera (aligned sync)."""
        return self._aligner.dropped

    def start(self) -> None:
        """Starts the thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops the thread; safe twice."""
        self._stop.set()
        self.slot.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        if self._matting.engine.device.type == "cpu":
            # The network has the cores to itself when it needs them; compositing a frame is a
            # handful of cheap passes that gain little from a second thread.
            torch.set_num_threads(COMPOSE_THREADS)
        try:
            while not self._stop.is_set():
                s = self._hooks.apply_changes()
                aligned = s.sync == "aligned" and s.pace != "none"
                if not aligned and self._aligner.waiting:
                    self._aligner.clear()
                depth = ALIGNED_DEPTH if aligned else 1
                if self.slot.depth != depth:
                    self.slot.depth = depth
                frame = self.slot.get(timeout=0.005 if self._aligner.waiting else 0.05)
                if frame is None and self.slot.closed:
                    break
                if aligned:
                    ready = self._aligned(frame)
                elif frame is not None:
                    matted = self._matting.offer(frame, exact=s.sync == "exact" or s.pace == "none")
                    ready = [] if matted is None else [(frame, self._cache_of(matted))]
                else:
                    continue
                for out_frame, cache in ready:
                    if s.max_frames is not None and self.frames_out >= s.max_frames:
                        break
                    self._deliver(out_frame, cache, s)
                if s.max_frames is not None and self.frames_out >= s.max_frames:
                    break
        finally:
            self._matting.slot.close()
            self.done.set()

    def _cache_of(self, matted: Matted) -> MatteCache:
        """The cache of the newest matte (made once per matte)."""
        if self._cache is None or self._cache.matted is not matted:
            self._cache = MatteCache(matted)
        return self._cache

    def _aligned(self, frame: Frame | None) -> Iterator[tuple[Frame, MatteCache]]:
        """Aligned sync: queues ``frame`` and yields the waiting frames that can go out now,
        each carried only when the one before it has gone out (the caller delivers it in
        between), so none waits for the carrying of those behind it.

        A matte often releases two or three frames at once; the camera frames that arrive while
        they go out are queued before the next one is carried. They wait in the capture hand-off
        (up to :data:`ALIGNED_DEPTH` of them) instead of the newest overwriting the others.
        Beside a meeting app's encoder on 2 cores (footage A, 960x720), taking the waiting frame
        between the frames of a burst took the output from 21.6-26.0 to 26.3-27.5 fps; keeping
        three frames there instead of one took it from 28.1-29.1 to 29.5-30.0 fps (on another
        2-core machine), with 0-1 frames lost there per 45 s instead of 35-72.
        """
        aligner = self._aligner
        if frame is not None:
            self._queue(frame)
        self._queue_waiting()
        newest = self._matting.newest()
        if newest is not None:
            aligner.add_matte(self._cache_of(newest))
        released = aligner.ready(time.monotonic(), self._matting.progress(), self._cost)
        for f, before, after in released:
            start = time.monotonic()
            yield f, self._carried(f, before, after)
            # Back from delivering it: what going out costs, for the next frames' waits.
            self._cost += 0.1 * (time.monotonic() - start - self._cost)
            self._queue_waiting()

    def _queue_waiting(self) -> None:
        """Queues the camera frames waiting in the capture hand-off (aligned sync)."""
        while (frame := self.slot.get(timeout=0)) is not None:
            self._queue(frame)

    def _queue(self, frame: Frame) -> None:
        """Offers ``frame`` to the matting worker and queues it to go out (aligned sync)."""
        self._matting.offer(frame, exact=False)
        self._aligner.add_frame(frame)

    def _carried(
        self, frame: Frame, before: MatteCache | None, after: MatteCache | None
    ) -> MatteCache:
        """The matte for ``frame`` made from the mattes of the frames on either side of it."""
        nearest = after if before is None else before
        t = frame.t_capture
        if before is not None and after is not None:
            nearer_after = after.frame.t_capture - t < t - before.frame.t_capture
            nearest = after if nearer_after else before
        if nearest.frame is frame or self._matting.engine.device.type != "cpu":
            return nearest  # the carrier works on host mattes only
        follow = self.follow_motion and not self._aligner.is_late(frame, time.monotonic())
        host = self._aligner.matte_for(frame, before, after, follow)
        return MatteCache.carried(nearest, frame, host)

    def _guarded(self, frame: Frame, cache: MatteCache) -> MatteCache:
        """The matte to cut ``frame`` with, or one that hides the whole room (see
        :mod:`app.compose.privacy`)."""
        verdict = self._matting.guard.check(frame, cache.matted.frame)
        if verdict.news and self._hooks.emit is not None:
            kind = EventKind.INFO if verdict.cover is None else EventKind.WARNING
            self._hooks.emit(Event(kind, verdict.news, field=Field.MATTING))
        if verdict.cover is None:
            return cache
        engine = self._matting.engine
        return MatteCache(Matted(frame, background_only(frame, engine.device, engine.dtype)))

    def _deliver(self, frame: Frame, cache: MatteCache, s: Settings) -> None:
        matted = cache.matted
        if s.sync != "exact" and s.pace != "none":  # a frame's own matte needs no guard
            cache = self._guarded(frame, cache)
        self._compositor.follow(self._matting.engine)
        images = self._compositor.compose(frame, cache, s)
        if images is None:
            return
        composite, alpha = images
        now = time.monotonic()
        self.latency.add(now - frame.t_capture)
        self.matte_age.add(abs(frame.t_capture - matted.frame.t_capture))
        # A live stream records each frame at its capture time, so frames it dropped leave gaps
        # instead of speeding the recording up; a batch run (pace none) writes frame after frame.
        self._hooks.send(composite, frame.t_capture if self._hooks.live() else None)
        self.frames_out += 1
        self.out_meter.tick(now)
        if self._hooks.on_frame is not None:
            self._hooks.on_frame(
                FramePacket(self.frames_out, frame.t_capture, frame.image, alpha, composite)
            )
