"""The live pipeline: wires capture -> matting -> compositing -> outputs and runs them.

```
CaptureThread ---camera frame---> ComposeWorker ---newest frame---> MattingWorker
(capture/live.py)                 (compose/live.py) <--newest matte--- (matting/worker.py)
                                        '---composite---> Outputs (output/outputs.py):
                                                          virtual camera, recorder; on_frame
```

Each stage runs on its own thread and hands over only the newest items (a camera frame, or in
aligned sync the last three, which the compose thread takes between the frames it sends out in a
burst), so a slow stage drops frames instead of queueing them. Settings changes given to
:meth:`Pipeline.update` are applied by the threads that own what changes: the matting thread
reloads the engine, the compose thread switches the source, the background and the outputs. The
stages live in their own modules; this one only builds them, starts and stops them, and gathers
their statistics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from app.capture.base import SourceError
from app.capture.live import LiveSource, source_for
from app.compose.backgrounds import BackgroundError, make_background
from app.compose.live import ComposeHooks, ComposeWorker, FramePacket, LiveCompositor
from app.events import Emit, Event, UserError, explain
from app.matting.engine import EngineError, MattingEngine, build_engine
from app.matting.ratio import check_ratio
from app.matting.weights import WeightsError
from app.matting.worker import MattingWorker
from app.output.base import OutputError
from app.output.outputs import Outputs
from app.settings import Settings
from app.stats import Stats

__all__ = ["Event", "FramePacket", "Pipeline", "PipelineError", "Stats"]


class PipelineError(UserError):
    """The pipeline cannot start as configured; the message is one sentence for the user."""


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


class Pipeline:
    """Runs the stages for one :class:`~app.settings.Settings`; see the module docstring.

    Args:
        settings: what to run.
        on_frame: called with every output :class:`FramePacket`, from the compose thread.
        on_event: called with every :class:`~app.events.Event`, from pipeline threads.
        vcam_backend: virtual camera backend name (tests register a fake one).
        engine_factory: builds the engine from settings; defaults to the real network.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        on_frame: Callable[[FramePacket], None] | None = None,
        on_event: Emit | None = None,
        vcam_backend: str | None = None,
        engine_factory: Callable[[Settings], MattingEngine] | None = None,
    ):
        self._settings = settings.validate()
        self._on_frame = on_frame
        self._on_event = on_event
        self._engine_factory = engine_factory or _default_engine
        self._lock = threading.Lock()
        self._pending: Settings | None = None
        self._applied = settings  # as applied by the compose thread
        self._started = False
        self._done = threading.Event()
        self._live = LiveSource(self._emit)
        self._outputs = Outputs(self._emit, vcam_backend)
        self._matting: MattingWorker | None = None
        self._compositor: LiveCompositor | None = None
        self._compose: ComposeWorker | None = None

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
        try:
            source = source_for(s)
        except SourceError as exc:
            raise PipelineError(*explain(exc)) from None
        try:
            if s.downsample_ratio is not None:
                check_ratio(source.height, source.width, s.downsample_ratio)
            engine = self._engine_factory(s)
            layer = make_background(s.background, engine.device, engine.dtype)
            self._compositor = LiveCompositor(engine, layer)
            if s.output:
                self._outputs.open_recorder(s, source)
        except (EngineError, WeightsError, BackgroundError, OutputError, ValueError) as exc:
            # RatioError is a ValueError: the network would be too small for these frames.
            source.close()
            self._close()
            raise PipelineError(*explain(exc)) from None
        if s.virtual_cam:
            self._outputs.open_vcam(s, source)
        self._live.start(source)
        self._matting = MattingWorker(engine, s, self._engine_factory, self._emit, self._camera_fps)
        hooks = ComposeHooks(
            self._outputs.send, self._on_frame, self._apply_changes, self._is_live, self._emit
        )
        self._compose = ComposeWorker(
            self._live.slot, self._matting, self._compositor, hooks, self._done
        )
        self._started = True
        self._matting.start()
        self._compose.start()

    def update(self, settings: Settings) -> None:
        """Applies new settings live; problems arrive as ``error`` events, the run goes on."""
        settings = settings.validate()
        with self._lock:
            self._settings = settings
            self._pending = settings
        if self._matting is not None:
            self._matting.update(settings)

    def reset_state(self) -> None:
        """Forgets the network's recurrent state at the next frame."""
        if self._matting is not None:
            self._matting.reset_state()

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until the run finishes (end of a file, ``max_frames``, or :meth:`stop`)."""
        return self._done.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stops every thread, finalises the recording and closes the outputs; safe twice."""
        for stage in (self._compose, self._matting):
            if stage is not None:
                stage.slot.close()
        if self._matting is not None:
            self._matting.stop(0)
        self._live.stop(timeout)
        for stage in (self._matting, self._compose):
            if stage is not None:
                stage.stop(timeout)
        self._close()
        self._done.set()

    def stats(self) -> Stats:
        """A snapshot of the statistics: live rates while running, whole-run rates once ended."""
        matting, compose, live = self._matting, self._compose, self._live
        engine = matting.engine if matting is not None else None
        internal = engine.internal_resolution if engine else None
        ended = self._done.is_set()  # the run is over: the rate over all of it, however short
        meters = (matting.meter if matting else None, compose.out_meter if compose else None)
        matting_fps, output_fps = (
            (m.mean_rate() if ended else m.rate()) if m is not None else 0.0 for m in meters
        )
        return Stats(
            capture_fps=round(live.mean_fps if ended else live.fps, 2),
            matting_fps=round(matting_fps, 2),
            output_fps=round(output_fps, 2),
            latency_ms_p50=round(compose.latency.percentile(50) * 1000, 1) if compose else 0.0,
            latency_ms_p95=round(compose.latency.percentile(95) * 1000, 1) if compose else 0.0,
            dropped_frames=live.dropped + (compose.dropped if compose else 0),
            frames_out=compose.frames_out if compose else 0,
            device=str(engine.device) if engine else "",
            precision=engine.precision if engine else "",
            internal_resolution=f"{internal[0]}x{internal[1]}" if internal else "",
            backend=engine.name if engine else "",
            matte_age_ms=round(compose.matte_age.mean() * 1000, 1) if compose else 0.0,
            source=live.source.name if live.source else "",
            source_state=live.state,
            vcam=self._outputs.vcam_state,
            vcam_device=self._outputs.vcam_device,
            vcam_problem=self._outputs.vcam_problem,
            frames_matted=matting.frames_matted if matting else 0,
            frames_covered=matting.guard.covered if matting else 0,
            state_resets=engine.resets if engine else 0,
        )

    # ----------------------------------------------------------------------------- wiring

    def _emit(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)

    def _camera_fps(self) -> float:
        return self._live.fps

    def _is_live(self) -> bool:
        source = self._live.source
        return source is not None and source.pace == "realtime"

    def _apply_changes(self) -> Settings:
        """Applies pending settings on the compose thread; returns the settings in force."""
        with self._lock:
            new, self._pending = self._pending, None
        if new is None:
            return self._applied
        cur = self._applied
        switched = self._live.changed(new, cur) and self._live.switch(new, cur)
        if switched:
            self._matting.reset_state()
            self._matting.guard.new_source(time.monotonic())  # older mattes fit another picture
        if new.background != cur.background:
            self._compositor.set_background(new.background, self._emit)
        self._outputs.apply(new, cur, self._live.source, switched)
        self._applied = new
        return new

    def _close(self) -> None:
        self._outputs.close()
        if self._compositor is not None:
            self._compositor.close()
