"""The live pipeline: capture -> matting -> compositing -> outputs, each stage on its own thread.

```
CaptureThread --cap slot--> compose thread --mat slot--> matting thread
                              |   ^--------- newest matte -----'
                              '--> outputs: UI callback, virtual camera, recorder
```

Slots hold the newest item only, so a slow stage drops frames instead of queueing them. In
``smooth`` mode every camera frame is composited with the newest matte available, so the output
keeps the camera's rate even when matting is slower; in ``exact`` mode (and always with ``pace
none``) each frame waits for its own matte. With the network on the CPU, frames are composited in
uint8 on the host (:mod:`app.compose.host`), elsewhere as tensors on the engine's device. Settings
changes are applied by the threads that own what changes, never by the caller.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from app.capture import CaptureThread, Frame, FrameSource, SourceError, make_source
from app.compose.backgrounds import BackgroundError, BackgroundLayer, make_background
from app.compose.compositor import Compositor
from app.compose.host import HostBackground, HostMatte, blend
from app.matting.engine import EngineError, Matte, MattingEngine, build_engine
from app.matting.ratio import RatioError, check_ratio, live_ratio, lowest_live_ratio
from app.matting.weights import WeightsError
from app.output.base import OutputError
from app.output.recorder import Recorder, unused_path
from app.output.virtualcam import (
    VcamBackend,
    VirtualCameraSink,
    VirtualCameraUnavailable,
    backend_label,
)
from app.settings import Settings
from app.slot import LatestSlot
from app.stats import RateMeter, Samples

ENGINE_FIELDS = ("variant", "checkpoint", "device", "precision", "backend")
SOURCE_FIELDS = ("source", "resolution", "fps", "pace", "loop")
VCAM_FIELDS = ("virtual_cam", "vcam_device", "vcam_backend")
COMPOSE_THREADS = 1  # intra-op threads of the compose thread when the network runs on the CPU


class PipelineError(Exception):
    """The pipeline cannot start as configured; the message is one sentence for the user."""


@dataclass(frozen=True)
class FramePacket:
    """One output frame and what it was made of (host uint8 arrays)."""

    index: int
    t_capture: float
    source: np.ndarray
    alpha: np.ndarray
    composite: np.ndarray


@dataclass(frozen=True)
class Event:
    """Something a user should know: ``info``, ``warning``, ``error``, ``progress`` or ``state``.

    Attributes:
        kind: how to show it.
        message: one or two sentences.
        fraction: how far a ``progress`` step is (None when unknown).
        source_state: for news from the capture thread, its state (``running``,
            ``reconnecting``...); empty otherwise.
    """

    kind: str
    message: str
    fraction: float | None = None
    source_state: str = ""


@dataclass
class Stats:
    """Live statistics; :meth:`to_dict` is what ``--stats-json`` writes."""

    capture_fps: float = 0.0
    matting_fps: float = 0.0
    output_fps: float = 0.0
    latency_ms_p50: float = 0.0
    latency_ms_p95: float = 0.0
    dropped_frames: int = 0
    frames_out: int = 0
    device: str = ""
    precision: str = ""
    internal_resolution: str = ""
    backend: str = ""
    matte_age_ms: float = 0.0
    source: str = ""
    source_state: str = ""
    vcam: str = "off"
    vcam_problem: str = ""
    frames_matted: int = 0
    state_resets: int = 0

    def to_dict(self) -> dict:
        """Plain JSON-ready dictionary."""
        return dataclasses.asdict(self)


@dataclass
class _Matted:
    frame: Frame
    matte: Matte
    _delta: torch.Tensor | None = None
    _background: tuple[BackgroundLayer, torch.Tensor] | None = None
    _host: HostMatte | None = None

    def host(self) -> HostMatte:
        """The matte prepared for uint8 compositing on the host, once per matte."""
        if self._host is None:
            self._host = HostMatte(self.frame.image, self.matte.fgr, self.matte.pha)
        return self._host

    def delta(self) -> torch.Tensor:
        """``fgr - src`` of the matted frame, computed once for every later frame it serves."""
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
        if self._background is None or self._background[0] is not layer:
            m = self.matte
            height, width = m.src.shape[-2:]
            self._background = (layer, layer.render(m.src, height, width, pha=m.pha))
        return self._background[1]


class Pipeline:
    """Runs the stages for one :class:`~app.settings.Settings`; see the module docstring.

    Args:
        settings: what to run.
        on_frame: called with every output :class:`FramePacket`, from the compose thread.
        on_event: called with every :class:`Event`, from pipeline threads.
        vcam_backend: virtual camera backend name used while the settings' ``vcam_backend`` is
            ``auto`` (tests register a fake one); None picks the best one this machine has.
        engine_factory: builds the engine from settings; defaults to the real network.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        on_frame: Callable[[FramePacket], None] | None = None,
        on_event: Callable[[Event], None] | None = None,
        vcam_backend: str | None = None,
        engine_factory: Callable[[Settings], MattingEngine] | None = None,
    ):
        self._settings = settings.validate()
        self._on_frame = on_frame
        self._on_event = on_event
        self._vcam_backend = vcam_backend
        self._engine_factory = engine_factory or _default_engine
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._started = False
        self._cap_slot: LatestSlot[Frame] = LatestSlot()
        self._mat_slot: LatestSlot[Frame] = LatestSlot()
        self._matte_cv = threading.Condition()
        self._matted: _Matted | None = None
        self._failed: Frame | None = None  # the newest frame the network could not matte
        self._pending_compose: Settings | None = None
        self._pending_engine: Settings | None = None
        self._reset_requested = False
        self._capture: CaptureThread | None = None
        self._source: FrameSource | None = None
        self._engine: MattingEngine | None = None
        self._layer: BackgroundLayer | None = None
        self._compositor: Compositor | None = None
        self._host_background = HostBackground()
        self._vcam: VirtualCameraSink | None = None
        self._vcam_state = "off"
        self._recorder: Recorder | None = None
        self._threads: list[threading.Thread] = []
        self._mat_meter = RateMeter()
        self._out_meter = RateMeter()
        self._latency = Samples()
        self._matte_age = Samples(60)
        self._frames_out = 0
        self._frames_matted = 0
        self._applied = settings  # as applied by the compose thread
        self._engine_settings = settings  # as applied by the matting thread

    # ----------------------------------------------------------------------------- public API

    @property
    def settings(self) -> Settings:
        """The settings in force (the newest given to :meth:`update`)."""
        with self._lock:
            return self._settings

    @property
    def running(self) -> bool:
        """True between :meth:`start` and the end of the run."""
        return self._started and not self._done.is_set()

    def start(self) -> None:
        """Opens the source, loads the network, opens the outputs and starts the threads.

        Raises:
            PipelineError: a user error (source, background, weights, device, recording path).
        """
        if self._started:
            return
        s = self._settings
        source = self._open_source(s)
        try:
            if s.downsample_ratio is not None:
                check_ratio(source.height, source.width, s.downsample_ratio)
            self._engine = self._build_engine(s)
            self._compositor = Compositor(self._engine.device, self._engine.dtype)
            self._layer = self._make_layer(s)
            if s.output:
                self._recorder = self._open_recorder(s, source)
        except RatioError as exc:
            source.close()
            raise PipelineError(str(exc)) from None
        except PipelineError:
            source.close()
            self._close_outputs()
            raise
        if s.virtual_cam:
            self._open_vcam(s, source)
        self._start_capture(source)
        self._started = True
        for target, name in ((self._run_matting, "matting"), (self._run_compose, "compose")):
            thread = threading.Thread(target=target, name=f"mattecam-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def update(self, settings: Settings) -> None:
        """Applies new settings live; problems arrive as ``error`` events, the run goes on."""
        settings = settings.validate()
        with self._lock:
            self._settings = settings
            self._pending_compose = settings
            self._pending_engine = settings

    def reset_state(self) -> None:
        """Forgets the network's recurrent state at the next frame."""
        with self._lock:
            self._reset_requested = True

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until the run finishes (end of a file, ``max_frames``, or :meth:`stop`)."""
        return self._done.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stops every thread, finalises the recording and closes the outputs; safe twice."""
        self._stop.set()
        self._cap_slot.close()
        self._mat_slot.close()
        with self._matte_cv:
            self._matte_cv.notify_all()
        if self._capture is not None:
            self._capture.stop(timeout)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        self._close_outputs()
        self._done.set()

    def stats(self) -> Stats:
        """A snapshot of the statistics: live rates while running, whole-run rates once ended."""
        engine, capture, vcam = self._engine, self._capture, self._vcam
        internal = engine.internal_resolution if engine else None
        problem = vcam.problem if vcam is not None else None
        if self._done.is_set():  # the run is over: the rate over all of it, however short
            capture_fps = capture.mean_fps if capture else 0.0
            matting_fps, output_fps = self._mat_meter.mean_rate(), self._out_meter.mean_rate()
        else:
            capture_fps = capture.fps if capture else 0.0
            matting_fps, output_fps = self._mat_meter.rate(), self._out_meter.rate()
        return Stats(
            capture_fps=round(capture_fps, 2),
            matting_fps=round(matting_fps, 2),
            output_fps=round(output_fps, 2),
            latency_ms_p50=round(self._latency.percentile(50) * 1000, 1),
            latency_ms_p95=round(self._latency.percentile(95) * 1000, 1),
            dropped_frames=self._cap_slot.dropped + (self._source.skipped if self._source else 0),
            frames_out=self._frames_out,
            device=str(engine.device) if engine else "",
            precision=engine.precision if engine else "",
            internal_resolution=f"{internal[0]}x{internal[1]}" if internal else "",
            backend=engine.name if engine else "",
            matte_age_ms=round(self._matte_age.mean() * 1000, 1),
            source=self._source.name if self._source else "",
            source_state=capture.state if capture else "",
            vcam=self._vcam_status(problem),
            vcam_problem=problem or "",
            frames_matted=self._frames_matted,
            state_resets=engine.resets if engine else 0,
        )

    # ----------------------------------------------------------------------------- building

    def _emit(
        self, kind: str, message: str, fraction: float | None = None, source_state: str = ""
    ) -> None:
        if self._on_event is not None:
            self._on_event(Event(kind, message, fraction, source_state))

    def _open_source(self, s: Settings) -> FrameSource:
        try:
            source = make_source(
                s.source, resolution=s.resolution, fps=s.fps, loop=s.loop, pace=s.pace
            )
            return source.open()
        except SourceError as exc:
            raise PipelineError(str(exc)) from None

    def _build_engine(self, s: Settings) -> MattingEngine:
        try:
            return self._engine_factory(s)
        except (EngineError, WeightsError) as exc:
            raise PipelineError(str(exc)) from None

    def _make_layer(self, s: Settings) -> BackgroundLayer:
        assert self._engine is not None
        try:
            return make_background(s.background, self._engine.device, self._engine.dtype)
        except BackgroundError as exc:
            raise PipelineError(str(exc)) from None

    def _open_recorder(self, s: Settings, source: FrameSource, path: str | None = None) -> Recorder:
        try:
            return Recorder(
                path or s.output,
                source.width,
                source.height,
                source.fps or 30.0,
                mbps=s.output_mbps,
                rgba=s.background.has_alpha,
            )
        except (OutputError, ValueError) as exc:
            raise PipelineError(str(exc)) from None

    def _vcam_status(self, problem: str | None) -> str:
        """The virtual camera's state, and what keeps its frames from apps while it retries."""
        return f"{self._vcam_state} — {problem}" if problem else self._vcam_state

    def _open_vcam(self, s: Settings, source: FrameSource) -> None:
        route = VcamBackend(s.vcam_backend)
        try:
            self._vcam = VirtualCameraSink(
                source.width,
                source.height,
                source.fps or 30.0,
                device=s.vcam_device,
                backend=route.registry_name or self._vcam_backend,
            )
            name = f"{self._vcam.device} ({backend_label(self._vcam.backend)})"
            self._vcam_state = f"on — {name}"
            self._emit("info", f"Virtual camera on: {name}.")
        except (VirtualCameraUnavailable, OutputError) as exc:
            self._vcam, self._vcam_state = None, "unavailable"
            self._emit("warning", str(exc))

    def _start_capture(self, source: FrameSource) -> None:
        self._source = source
        self._capture = CaptureThread(
            source, self._cap_slot, on_state=self._on_capture_state, retry_forever=source.is_live
        )
        self._capture.start()

    def _stop_capture(self) -> None:
        """Stops the capture thread and discards a frame of its source still in the slot."""
        if self._capture is not None:
            self._capture.stop()
        self._cap_slot.get(timeout=0)

    def _on_capture_state(self, state: str, message: str) -> None:
        kind = {"reconnecting": "warning", "error": "error"}.get(state, "state")
        if state == "ended" and self._source is not None and self._source.damage:
            kind = "warning"
        self._emit(kind, message or f"Source {state}.", source_state=state)

    def _close_outputs(self) -> None:
        for sink in (self._vcam, self._recorder):
            if sink is not None:
                try:
                    sink.close()
                except OutputError as exc:
                    self._emit("error", str(exc))
        self._vcam = self._recorder = None
        if self._vcam_state.startswith("on"):
            self._vcam_state = "off"
        if self._layer is not None:
            self._layer.close()

    # ----------------------------------------------------------------------------- live changes

    def _exact(self) -> bool:
        s = self._settings
        return s.sync == "exact" or s.pace == "none"

    def _apply_compose_changes(self) -> None:
        with self._lock:
            new, self._pending_compose = self._pending_compose, None
        if new is None:
            return
        old_source = self._source
        cur = self._applied
        if any(getattr(new, f) != getattr(cur, f) for f in SOURCE_FIELDS):
            self._switch_source(new)
        if new.background != cur.background:
            try:
                layer = make_background(new.background, self._engine.device, self._engine.dtype)
                self._layer.close()
                self._layer = layer
            except BackgroundError as exc:
                self._emit("error", str(exc))
        source = self._source
        if any(getattr(new, f) != getattr(cur, f) for f in VCAM_FIELDS):
            if self._vcam is not None:
                self._vcam.close()
                self._vcam, self._vcam_state = None, "off"
            if new.virtual_cam:
                self._open_vcam(new, source)
        if new.output != cur.output or source is not old_source:
            # A new source of the recording's size carries on in the same file; one of another
            # size starts a second file beside it rather than overwriting the first.
            recorder = self._recorder
            same_take = recorder is not None and new.output == cur.output
            if not (same_take and recorder.frame_size == (source.width, source.height)):
                if recorder is not None:
                    self._finish_recording()
                if new.output:
                    path = str(unused_path(new.output)) if same_take else new.output
                    try:
                        self._recorder = self._open_recorder(new, source, path)
                        self._emit("info", f"Recording to {path}.")
                    except PipelineError as exc:
                        self._emit("error", str(exc))
        self._applied = new

    def _finish_recording(self) -> None:
        recorder, self._recorder = self._recorder, None
        try:
            recorder.close()
            self._emit("info", f"Recording saved: {recorder.path}.")
        except OutputError as exc:
            self._emit("error", str(exc))

    def _switch_source(self, s: Settings) -> None:
        old = self._source
        # A camera cannot be opened twice: another mode of the same one is asked for once it is
        # closed, and it goes back to the old mode if the new one fails.
        same_camera = old is not None and old.is_live and s.source == self._applied.source
        if same_camera:
            self._stop_capture()
        try:
            source = self._open_source(s)
        except PipelineError as exc:
            self._emit("error", str(exc))
            if same_camera:
                self._start_capture(old)
            return
        if not same_camera:
            self._stop_capture()
        self._start_capture(source)
        self.reset_state()
        self._emit("info", f"Source: {source.name}.")

    def _apply_engine_changes(self) -> None:
        with self._lock:
            new, self._pending_engine = self._pending_engine, None
            reset, self._reset_requested = self._reset_requested, False
        engine = self._engine
        if new is not None:
            if any(getattr(new, f) != getattr(self._engine_settings, f) for f in ENGINE_FIELDS):
                self._emit("progress", "Loading the matting network…")
                try:
                    engine = self._build_engine(new)
                    self._engine = engine
                    self._compositor = Compositor(engine.device, engine.dtype)
                    self._emit("info", f"Network ready on {engine.device} ({engine.precision}).")
                except PipelineError as exc:
                    self._emit("error", str(exc))
            engine.set_ratio(new.downsample_ratio, new.full_body)
            self._engine_settings = new
        if reset:
            engine.reset("asked")

    # ----------------------------------------------------------------------------- threads

    def _run_matting(self) -> None:
        hold = _RateHolder()
        said = ""  # the failure last reported: the same one again on every frame is no news
        while not self._stop.is_set():
            self._apply_engine_changes()
            frame = self._mat_slot.get(timeout=0.05)
            if frame is None:
                if self._mat_slot.closed:
                    break
                continue
            try:
                matte = self._engine.step(frame.image, t=frame.t_capture)
            except (RuntimeError, ValueError) as exc:
                known = isinstance(exc, (EngineError, RatioError))
                text = str(exc) if known else f"Matting failed on a frame: {exc}"
                if text != said:
                    self._emit("error", text)
                    said = text
                with self._matte_cv:
                    self._failed = frame
                    self._matte_cv.notify_all()
                continue
            said = ""
            self._mat_meter.tick()
            self._frames_matted += 1
            with self._matte_cv:
                self._matted = _Matted(frame, matte)
                self._matte_cv.notify_all()
            held = self._engine_settings.hold_fps and self._engine_settings.pace != "none"
            if held and self._capture is not None:
                hold.adjust(self._engine, self._capture.fps, self._mat_meter.rate())

    def _run_compose(self) -> None:
        if self._engine is not None and self._engine.device.type == "cpu":
            # The network has the cores to itself when it needs them; compositing a frame is a
            # handful of cheap passes that gain little from a second thread.
            torch.set_num_threads(COMPOSE_THREADS)
        try:
            while not self._stop.is_set():
                self._apply_compose_changes()
                frame = self._cap_slot.get(timeout=0.05)
                if frame is None:
                    if self._cap_slot.closed:
                        break
                    continue
                matted = self._matte_for(frame)
                if matted is None:
                    continue
                self._deliver(frame, matted)
                limit = self._applied.max_frames
                if limit is not None and self._frames_out >= limit:
                    break
        finally:
            self._mat_slot.close()
            self._done.set()

    def _matte_for(self, frame: Frame) -> _Matted | None:
        """Hands the frame to matting and returns the matte to composite it with."""
        if self._exact():
            try:
                self._mat_slot.put(frame, block=True, timeout=5.0)
            except TimeoutError:
                return None
            with self._matte_cv:
                self._matte_cv.wait_for(
                    lambda: (
                        self._stop.is_set()
                        or self._failed is frame
                        or (self._matted is not None and self._matted.frame is frame)
                    ),
                    timeout=30.0,
                )
                matted = self._matted
                if self._stop.is_set() or matted is None or matted.frame is not frame:
                    return None  # never another frame's matte; a failed frame is skipped
                return matted
        self._mat_slot.put(frame)
        with self._matte_cv:
            return self._matted

    @torch.inference_mode()
    def _deliver(self, frame: Frame, matted: _Matted) -> None:
        if self._compositor.device.type == "cpu":
            images = self._compose_on_host(frame, matted)
        else:
            images = self._compose_on_device(frame, matted)
        if images is None:
            return
        composite, alpha = images
        now = time.monotonic()
        self._latency.add(now - frame.t_capture)
        self._matte_age.add(frame.t_capture - matted.frame.t_capture)
        # A live stream records each frame at its capture time, so frames it dropped leave gaps
        # instead of speeding the recording up; a batch run (pace none) writes frame after frame.
        live = self._source is not None and self._source.pace == "realtime"
        stamp = frame.t_capture if live else None
        for sink in (self._vcam, self._recorder):
            if sink is not None:
                try:
                    sink.send(composite, stamp)
                except (OutputError, ValueError) as exc:
                    self._emit("error", str(exc))
                    self._drop_sink(sink)
        self._frames_out += 1
        self._out_meter.tick(now)
        if self._on_frame is not None:
            self._on_frame(
                FramePacket(self._frames_out, frame.t_capture, frame.image, alpha, composite)
            )

    def _compose_on_host(
        self, frame: Frame, matted: _Matted
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Composite and alpha view in uint8 through OpenCV (the network runs on the CPU)."""
        s, layer = self._applied, self._layer
        if frame.image.shape[:2] != matted.frame.image.shape[:2]:
            return None  # the newest matte is of another frame size; wait for a fresh one
        host = matted.host()
        picture = None
        if not layer.passthrough and not layer.rgba:
            m = matted.matte
            rendered = matted.background(layer)
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

    def _compose_on_device(
        self, frame: Frame, matted: _Matted
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Composite and alpha view as tensor operations on the engine's device."""
        s = self._applied
        m = matted.matte
        if matted.frame is frame:
            src, fgr = m.src, m.fgr
        else:
            src = self._compositor.to_tensor(frame.image)
            if src.shape[-2:] != m.src.shape[-2:]:
                return None  # the newest matte is of another frame size; wait for a fresh one
            fgr = torch.add(src, matted.delta()).clamp_(0, 1) if s.use_fgr else src
        composite = self._compositor.compose(
            src,
            fgr,
            m.pha,
            self._layer,
            use_fgr=s.use_fgr,
            mirror=s.mirror,
            rgba=s.background.has_alpha,
            background=matted.background(self._layer),
        )
        return composite, self._compositor.alpha_u8(m.pha, mirror=s.mirror)

    def _drop_sink(self, sink: object) -> None:
        if sink is self._vcam:
            self._vcam, self._vcam_state = None, "unavailable"
        elif sink is self._recorder:
            self._recorder = None


class _RateHolder:
    """Lowers the internal resolution when matting falls behind the camera, raises it when it can.

    Steps are 15% of the ratio, at most one every two seconds, never below a 256 px long side nor
    above the automatic ratio; the recurrent state is resampled, not reset.
    """

    def __init__(self, interval: float = 2.0):
        self.interval = interval
        self._last = time.monotonic()

    def adjust(self, engine: MattingEngine, camera_fps: float, matting_fps: float) -> None:
        now = time.monotonic()
        if now - self._last < self.interval or camera_fps <= 0 or engine.ratio is None:
            return
        self._last = now
        h, w = engine.frame_size
        floor = lowest_live_ratio(h, w)
        ceiling = live_ratio(h, w)
        ratio = engine.ratio
        if matting_fps < 0.9 * camera_fps and ratio > floor:
            engine.resize_state(max(floor, ratio * 0.85))
        elif matting_fps > 1.3 * camera_fps and ratio < ceiling:
            engine.resize_state(min(ceiling, ratio / 0.85))


def _default_engine(s: Settings) -> MattingEngine:
    return build_engine(
        s.variant,
        s.checkpoint,
        s.device,
        s.precision,
        s.backend,
        ratio=s.downsample_ratio,
        full_body=s.full_body,
    )
