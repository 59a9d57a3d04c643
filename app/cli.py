"""Command line: ``python main.py`` opens the window; ``--headless`` runs the pipeline without one.

Every user error ends in one line on stderr and exit code 2; Ctrl-C stops cleanly and finalises the
recording.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from app import __version__
from app.events import Event, EventKind, Field, SourceState
from app.media import atomic_write
from app.settings import (
    BACKENDS,
    PACES,
    PRECISIONS,
    SYNC_MODES,
    VARIANTS,
    VCAM_BACKENDS,
    Background,
    Settings,
    SettingsError,
    parse_device,
    parse_fps,
    parse_ratio,
    parse_resolution,
)

EXIT_USAGE = 2
#: Signals that end a run the way Ctrl-C does, finalising the recording: SIGTERM (kill, a service
#: stop, logging out) and SIGHUP (the terminal closed) as well as SIGINT.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        self.exit(EXIT_USAGE, f"mattecam: {message} (see --help)\n")


def _typed(parse):
    def convert(text: str):
        try:
            return parse(text)
        except SettingsError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"'{text}' is not a whole number.") from None
    if value < 1:
        raise SettingsError(f"{value} must be at least 1.")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``main.py`` argument parser; options left out keep their saved or default values."""
    p = _Parser(
        prog="mattecam",
        description="Real-time webcam background replacement with Robust Video Matting.",
        epilog="The window starts with the values it last used where an option is left out; "
        "--headless starts with the defaults shown.",
        argument_default=argparse.SUPPRESS,
    )
    d = Settings()
    add = p.add_argument
    add(
        "--source",
        help="camera index, /dev/videoN, video file, image folder or 'synthetic' "
        f"(default: {d.source})",
    )
    add(
        "--background",
        type=_typed(Background.parse),
        help="none | blur | blur:STRENGTH | color:#RRGGBB | green | transparent | FILE "
        f"(default: {d.background.spec()})",
    )
    add("--variant", choices=VARIANTS, help=f"network variant (default: {d.variant})")
    add(
        "--checkpoint",
        help="weights file, .pth or the official .onnx (default: the official weights)",
    )
    add(
        "--device",
        type=_typed(parse_device),
        help=f"auto, cpu, cuda, cuda:N or mps (default: {d.device})",
    )
    add("--precision", choices=PRECISIONS, help=f"network precision (default: {d.precision})")
    add("--backend", choices=BACKENDS, help=f"inference backend (default: {d.backend})")
    add(
        "--downsample-ratio",
        dest="downsample_ratio",
        type=_typed(parse_ratio),
        help="auto or a number in (0, 1] (default: auto)",
    )
    add(
        "--full-body",
        dest="full_body",
        action="store_true",
        help="with an automatic ratio, keep more detail for full-body shots",
    )
    add(
        "--resolution",
        type=_typed(parse_resolution),
        help="capture size WxH (default: the source's own)",
    )
    add("--fps", type=_typed(parse_fps), help="capture frame rate (default: the source's own)")
    add(
        "--virtual-cam",
        dest="virtual_cam",
        action="store_true",
        help="send the result to the virtual camera",
    )
    add(
        "--vcam-device",
        dest="vcam_device",
        help="virtual camera device, e.g. /dev/video10 (default: the driver's first)",
    )
    add(
        "--vcam-backend",
        dest="vcam_backend",
        choices=VCAM_BACKENDS,
        help="virtual camera route (default auto: PipeWire where a PipeWire daemon answers, "
        "else v4l2loopback on Linux; the OBS Virtual Camera elsewhere)",
    )
    add("--mirror", action="store_true", help="mirror the output")
    add(
        "--raw-foreground",
        dest="use_fgr",
        action="store_false",
        help="composite the camera pixels instead of the predicted foreground",
    )
    add(
        "--sync",
        choices=SYNC_MODES,
        help="aligned: every camera frame, a matting interval late, with the mattes before and "
        "after it carried to it; smooth: every camera frame at once with the newest matte; "
        f"exact: only matted frames (default: {d.sync})",
    )
    add(
        "--hold-fps",
        dest="hold_fps",
        action=argparse.BooleanOptionalAction,
        help="lower the internal resolution when matting cannot keep up; aligned sync holds "
        "only as many mattes as the person's motion needs (default: on)",
    )
    add("--headless", action="store_true", help="run without a window")
    add("--output", help="record to a .mp4/.mkv/.mov file or a folder of PNG frames")
    add("--overwrite", action="store_true", help="replace the --output file if it exists")
    add(
        "--output-mbps",
        dest="output_mbps",
        type=float,
        help=f"recording bit rate (default: {d.output_mbps:g})",
    )
    add(
        "--max-frames",
        dest="max_frames",
        type=_typed(_positive_int),
        help="stop after N frames (default: no limit)",
    )
    add("--stats-json", dest="stats_json", help="write the run's statistics to this JSON file")
    add(
        "--pace",
        choices=PACES,
        help=f"realtime: files play like a camera; none: every frame (default: {d.pace})",
    )
    add("--loop", action="store_true", help="loop a file source")
    add("--version", action="version", version=f"mattecam {__version__}")
    return p


def parse_settings(argv: list[str] | None = None) -> tuple[Settings, set[str], argparse.Namespace]:
    """Parses the command line into settings.

    Returns:
        The settings, the names of the fields given on the command line, and the namespace.
    """
    ns = build_parser().parse_args(argv)
    fields = {f for f in Settings.__dataclass_fields__ if hasattr(ns, f)}
    settings = Settings(**{f: getattr(ns, f) for f in fields})
    return settings, fields, ns


def _say(message: str) -> None:
    print(f"mattecam: {message}", file=sys.stderr, flush=True)


def _write_json_atomic(path: str, data: dict) -> None:
    """Writes ``data`` as JSON under a temporary name and renames it into place.

    Raises:
        OSError: the file cannot be written; no temporary file is left behind.
    """
    with atomic_write(Path(path).expanduser(), "w") as fh:
        json.dump(data, fh, indent=2)


def _check_output_paths(settings: Settings, overwrite: bool = False) -> None:
    """Refuses outputs that cannot be written, that are an input, or that exist (the recording,
    unless ``overwrite``).

    Raises:
        SettingsError: the reason, in one sentence.
    """
    from app.media.destination import DestinationError, check_destination

    for label, path in (("--stats-json", settings.stats_json), ("--output", settings.output)):
        if path and not Path(path).expanduser().resolve().parent.is_dir():
            raise SettingsError(f"{label}: the folder of '{path}' does not exist.")
    inputs = [settings.source, settings.background.path, settings.checkpoint]
    try:
        if settings.output:
            check_destination(settings.output, inputs, overwrite=overwrite)
        if settings.stats_json:
            others = [*inputs, settings.output]
            check_destination(settings.stats_json, others, overwrite=True, label="--stats-json")
    except DestinationError as exc:
        raise SettingsError(str(exc)) from None
    if settings.stats_json and Path(settings.stats_json).expanduser().is_dir():
        raise SettingsError(
            f"--stats-json: '{settings.stats_json}' is a folder; give a file name such as "
            "stats.json."
        )


def _catch_stop_signals(stop: threading.Event) -> dict[int, object]:
    """Makes Ctrl-C, SIGTERM and SIGHUP ask the run to stop instead of raising in the middle of it.

    A second Ctrl-C while the recording is being finalised is absorbed too, so it cannot leave a
    half-written file. Outside the main thread nothing is installed (Ctrl-C then raises
    ``KeyboardInterrupt`` as usual).

    Returns:
        The handlers that were replaced, for :func:`_restore_signals`.
    """

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    previous: dict[int, object] = {}
    for sig in STOP_SIGNALS:
        try:
            previous[sig] = signal.signal(sig, request_stop)
        except ValueError:  # not the main thread of the interpreter
            break
    return previous


def _restore_signals(previous: dict[int, object]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def run_headless(settings: Settings, vcam_backend: str | None = None) -> int:
    """Runs the pipeline without a window until the source ends, ``--max-frames`` or Ctrl-C.

    Args:
        settings: what to run.
        vcam_backend: virtual camera backend name; None tries the system's.

    Returns:
        0 after a run that ended normally or by Ctrl-C; 2 when the settings cannot run (the
        reason is printed); 1 when the recording or the statistics could not be saved.
    """
    stop = threading.Event()
    previous = _catch_stop_signals(stop)
    try:
        return _run_headless(settings, vcam_backend, stop)
    except KeyboardInterrupt:  # Ctrl-C before the handlers were in place
        _say("interrupted; nothing was recorded.")
        return 0
    finally:
        _restore_signals(previous)


def _run_headless(settings: Settings, vcam_backend: str | None, stop: threading.Event) -> int:
    from app.pipeline import Pipeline, PipelineError

    if stop.is_set():
        _say("interrupted; nothing was recorded.")
        return 0

    cut_short = []  # the recording stopped before the run did (a full disk)

    def on_event(event: Event) -> None:
        if event.kind is not EventKind.PROGRESS:  # state: what the source delivers, when it ends
            _say(event.text())
        if event.kind is EventKind.ERROR and event.field is Field.OUTPUT:
            cut_short.append(event.message)

    t_start = time.time()
    pipeline = Pipeline(settings, on_event=on_event, vcam_backend=vcam_backend)
    try:
        pipeline.start()
    except PipelineError as exc:
        _say(str(exc))
        return EXIT_USAGE
    last = time.monotonic()
    progress = False
    vcam_problem = ""
    try:
        while not pipeline.wait(0.25):
            if stop.is_set():
                break
            vcam_problem = _report_vcam_problem(pipeline.stats().vcam_problem, vcam_problem)
            if sys.stderr.isatty() and time.monotonic() - last > 2:
                last, progress = time.monotonic(), True
                st = pipeline.stats()
                print(
                    f"\rcapture {st.capture_fps:5.1f} fps  matting {st.matting_fps:5.1f} fps  "
                    f"output {st.output_fps:5.1f} fps  latency p95 {st.latency_ms_p95:6.1f} ms",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
        if progress:
            print(file=sys.stderr)
        if stop.is_set():
            _say("stopping…")
    except KeyboardInterrupt:  # handlers could not be installed (not the main thread)
        _say("stopping…")
    finally:
        pipeline.stop()
    stats = pipeline.stats()
    code = 0
    if settings.stats_json:
        try:
            _write_json_atomic(settings.stats_json, stats.to_dict())
        except OSError as exc:
            _say(f"cannot write the statistics to '{settings.stats_json}' ({exc.strerror or exc}).")
            code = 1
    if stats.source_state is SourceState.ERROR:
        code = EXIT_USAGE  # the input could not be read to the end; the reason was printed
    if settings.output:
        out = Path(settings.output).expanduser()
        if cut_short:
            code = max(code, 1)  # the recording stopped early; its message said what was kept
        elif out.exists() and out.stat().st_mtime >= t_start - 1:
            _say(f"wrote {settings.output} ({stats.frames_out} frames)")
        elif stats.frames_out == 0:
            _say(f"nothing was recorded to {settings.output}: no frame came out.")
        else:
            _say(f"the recording {settings.output} was not saved (see the error above).")
            code = 1
    return code


def _report_vcam_problem(problem: str, before: str) -> str:
    """Says when the virtual camera stops reaching apps (its backend retries) and when it is back.

    Returns:
        ``problem``, to pass as ``before`` next time.
    """
    if problem and problem != before:
        _say(problem)
    elif before and not problem:
        _say("the virtual camera reaches apps again.")
    return problem


def _vcam_refusal(settings: Settings) -> str | None:
    """Why the virtual camera route asked for with ``--vcam-backend`` cannot run here, or None."""
    if settings.vcam_backend == "auto":
        return None
    from app.output.virtualcam import VcamBackend, backend_problem

    return backend_problem(VcamBackend(settings.vcam_backend).registry_name)


def _has_display() -> bool:
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``main.py`` and the ``mattecam`` command."""
    try:
        settings, given, ns = parse_settings(argv)
    except SystemExit as exc:  # --help, --version, or a bad flag already reported
        return int(exc.code or 0)
    try:
        settings.validate()
        _check_output_paths(settings, getattr(ns, "overwrite", False))
    except SettingsError as exc:
        _say(str(exc))
        return EXIT_USAGE
    refusal = _vcam_refusal(settings)
    if refusal is not None:
        _say(refusal)
        return EXIT_USAGE
    if getattr(ns, "headless", False):
        if "source" not in given:
            settings = settings.replace(source="0")
        return run_headless(settings)
    if not _has_display():
        _say(
            "no display found (DISPLAY is not set). Run without a window: "
            "python main.py --headless --source FILE|CAMERA --virtual-cam, or start a desktop."
        )
        return EXIT_USAGE
    from app.desktop import desktop_problem

    problem = desktop_problem()
    if problem:  # Qt would abort the process while starting, naming one library at most
        _say(problem)
        return EXIT_USAGE
    from app.ui.app import run_gui

    return run_gui(settings, given)
