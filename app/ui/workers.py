"""The pipeline's worker thread, and the registry of every QThread the window starts.

:class:`PipelineWorker` is a QObject on its own QThread that fetches the weights (with progress),
starts, updates and stops the :class:`~app.pipeline.Pipeline`, so the UI never waits for it. Every
QThread is started through :func:`start_thread` and so appears in :func:`live_threads`; threads
stop cooperatively (their event loop quits), they are never terminated.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.events import Advice, Event, explain
from app.settings import Settings, SettingsError
from app.ui.frames import FrameMailbox

log = logging.getLogger(__name__)

_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


def start_thread(worker: QObject, name: str) -> QThread:
    """Moves ``worker`` to a new QThread named ``name`` and starts the thread's event loop."""
    thread = QThread()
    thread.setObjectName(name)
    worker.moveToThread(thread)
    _THREADS.add(thread)
    thread.start()
    return thread


def stop_thread(thread: QThread, timeout_ms: int = 10_000) -> bool:
    """Asks a thread's event loop to quit and waits for it; True when it ended in time."""
    try:
        thread.quit()
        return bool(thread.wait(timeout_ms))
    except RuntimeError:  # The Qt object is already gone, and so is its thread.
        return True


def live_threads() -> list[QThread]:
    """Threads started by :func:`start_thread` that are still running."""
    alive = []
    for thread in list(_THREADS):
        try:
            if thread.isRunning():
                alive.append(thread)
        except RuntimeError:
            continue
    return alive


class _Cancelled(Exception):
    """Raised from a progress callback to abandon a download when the window closes."""


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or f"Something went wrong ({type(exc).__name__})."


def _problem(exc: BaseException) -> tuple[str, Advice | None]:
    """What :attr:`PipelineWorker.failed` says about ``exc``: the reason and the advice."""
    reason, advice = explain(exc)
    return reason.strip() or _message(exc), advice


def _hardware_problem(settings: Settings) -> tuple[str, Advice | None] | None:
    """Why the device and precision of ``settings`` cannot run here, or None when they can."""
    from app.matting.factory import EngineError, resolve_device, resolve_dtype

    try:
        resolve_dtype(settings.precision, resolve_device(settings.device))
    except EngineError as e:
        return _problem(e)
    return None


class PipelineWorker(QObject):
    """Owns the pipeline; lives on its own QThread, so the UI never waits for it.

    Slots are called through queued signals from the window; results come back as signals.

    Args:
        mailbox: receives every frame.
        vcam_backend: virtual camera backend name passed to the pipeline.
        fetch: returns the weights of a variant, reporting progress (``app.matting.weights.fetch``
            when None).
    """

    progress = Signal(str, float)  # message, fraction (-1 when unknown)
    started = Signal(object)  # the running Pipeline (imported on first use: it loads torch)
    # The pipeline could not start, or a change was refused: the reason and an Advice (or None).
    failed = Signal(str, object)
    event = Signal(Event)  # from the pipeline's threads
    reverted = Signal(object)  # {field: value} put back when a change was refused
    weights_missing = Signal(str, str)  # variant, why: its weights could not be fetched
    stopped = Signal()

    def __init__(
        self,
        mailbox: FrameMailbox,
        vcam_backend: str | None = None,
        fetch: Callable[..., Path] | None = None,
    ) -> None:
        super().__init__()
        self._mailbox = mailbox
        self._vcam_backend = vcam_backend
        self._fetch_fn = fetch
        self._pipeline = None
        self._variants_ready: set[str] = set()
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Abandons work in progress (a download) as soon as possible; any thread may call it."""
        self._cancel.set()

    def _progress(self, message: str, fraction: float | None) -> None:
        if self._cancel.is_set():
            raise _Cancelled
        self.progress.emit(message, -1.0 if fraction is None else float(fraction))

    def _weights(self, settings: Settings) -> bool:
        """Makes sure the weights for ``settings`` are on disk; False (and a message) if not."""
        if settings.checkpoint is not None or settings.variant in self._variants_ready:
            return True
        fetch = self._fetch_fn
        if fetch is None:
            from app.matting.weights import fetch
        self.progress.emit(f"Preparing the {settings.variant} weights", -1.0)
        try:
            fetch(settings.variant, progress=self._progress)
        except _Cancelled:
            return False
        except Exception as e:  # WeightsError and anything unexpected: say it, keep the window.
            log.warning("The %s weights could not be fetched: %s", settings.variant, e)
            self.weights_missing.emit(settings.variant, _message(e))
            return False
        self._variants_ready.add(settings.variant)
        return True

    def _start(self, settings: Settings) -> None:
        from app.pipeline import Pipeline, PipelineError

        if not self._weights(settings) or self._cancel.is_set():
            return
        self.progress.emit("Starting the camera and the matting model", -1.0)
        pipeline = None
        try:
            pipeline = Pipeline(
                settings,
                on_frame=self._mailbox.put,
                on_event=self.event.emit,
                vcam_backend=self._vcam_backend,
            )
            pipeline.start()
        except Exception as e:  # PipelineError is the user's; anything else is still shown.
            if not isinstance(e, (PipelineError, SettingsError)):
                log.exception("The pipeline failed to start")
            if pipeline is not None:
                pipeline.stop()
            self.failed.emit(*_problem(e))
            return
        if self._cancel.is_set():
            pipeline.stop()
            return
        self._pipeline = pipeline
        self.started.emit(pipeline)

    @Slot(object)
    def apply(self, settings: Settings) -> None:
        """Starts the pipeline with ``settings``, or applies them to the running one."""
        if self._cancel.is_set():
            return
        pipeline = self._pipeline
        if pipeline is not None and not pipeline.running:
            pipeline.stop()  # It ended (end of a file, or it failed): start afresh.
            self._pipeline = pipeline = None
        if pipeline is None:
            self._start(settings)
            return
        current = pipeline.settings
        if settings.variant != current.variant and not self._weights(settings):
            settings = self._revert(settings, current, ("variant",))
        hardware = ("device", "precision")
        if any(getattr(settings, f) != getattr(current, f) for f in hardware):
            problem = _hardware_problem(settings)
            if problem is not None:
                self.failed.emit(*problem)
                settings = self._revert(settings, current, hardware)
        try:
            pipeline.update(settings)
        except Exception as e:
            log.exception("Applying settings failed")
            self.failed.emit(*_problem(e))

    def _revert(self, settings: Settings, current: Settings, fields: tuple[str, ...]) -> Settings:
        """``settings`` with ``fields`` put back to the running ones; tells the window."""
        back = {f: getattr(current, f) for f in fields}
        self.reverted.emit(back)
        return settings.replace(**back)

    @Slot()
    def reset_state(self) -> None:
        """Resets the network's recurrent state."""
        if self._pipeline is not None:
            self._pipeline.reset_state()

    @Slot()
    def shutdown(self) -> None:
        """Stops the pipeline and ends this worker's thread."""
        self._cancel.set()
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            try:
                pipeline.stop()
            except Exception:
                log.exception("Stopping the pipeline failed")
        self.stopped.emit()
        QThread.currentThread().quit()
