"""Video conversion with the RVM network: the ``convert_video`` API and its command line.

Decoding, the network and encoding overlap: a reader thread fills a bounded queue with chunks of
``seq_chunk`` frames, the calling thread runs the network on them (carrying the recurrent state from
chunk to chunk), and one writer thread per output encodes from its own bounded queue
(:mod:`app.matting.convert_threads`). Every output is written under a temporary name beside its
destination and renamed into place only when the whole clip is done; a failure or an interrupt
deletes it.

Command line (the flags of the original RVM ``inference.py``)::

    python -m app.matting.convert --variant mobilenetv3 --input-source in.mp4 \\
        --output-type video --output-composition com.mp4 --output-alpha pha.mp4
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import torch
from tqdm.auto import tqdm

from app.media import FOLDER_FPS as IMAGE_FOLDER_FPS
from app.media import IMAGE_SUFFIXES, reason
from app.media.destination import DestinationError, check_destination

from .convert_io import (
    VIDEO_CONTAINERS,
    ConvertError,
    Output,
    PngOutput,
    VideoOutput,
    check_output,
    open_input,
)
from .convert_threads import GREEN, Reader, Writer, run_network, write_error
from .factory import EngineError, create_model, resolve_device, resolve_dtype
from .ratio import RatioError, check_ratio, conversion_ratio
from .registry import DEFAULT_VARIANT, DEVICES, PRECISIONS, VARIANTS

__all__ = [
    "GREEN",
    "IMAGE_FOLDER_FPS",
    "IMAGE_SUFFIXES",
    "VIDEO_CONTAINERS",
    "ConvertError",
    "convert_video",
    "main",
]

DEFAULT_MBPS = 1.0
OUTPUT_TYPES = ("video", "png_sequence")
_JOIN_S = 10.0


# --- conversion ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    source: Path
    outputs: dict[str, Path]
    output_type: str
    resize: tuple[int, int] | None
    ratio: float | None
    mbps: float
    seq_chunk: int
    num_workers: int


def _check_request(
    input_source: str | os.PathLike[str],
    input_resize: Sequence[int] | None,
    downsample_ratio: float | None,
    output_type: str,
    output_composition: str | os.PathLike[str] | None,
    output_alpha: str | os.PathLike[str] | None,
    output_foreground: str | os.PathLike[str] | None,
    output_video_mbps: float | None,
    seq_chunk: int,
    num_workers: int,
    overwrite: bool = True,
) -> _Request:
    """Validates every argument that does not need the model; raises ConvertError."""
    if output_type not in OUTPUT_TYPES:
        raise ConvertError(
            f"Output type '{output_type}' is not known; choose one of: {', '.join(OUTPUT_TYPES)}."
        )
    named = {
        "composition": output_composition,
        "alpha": output_alpha,
        "foreground": output_foreground,
    }
    outputs = {k: Path(v) for k, v in named.items() if v is not None and str(v) != ""}
    if not outputs:
        raise ConvertError("No output was given; give a composition, alpha or foreground output.")
    resolved = [p.resolve() for p in outputs.values()]
    if len(set(resolved)) != len(resolved):
        raise ConvertError("Two outputs have the same path; give each output its own path.")
    resize = None
    if input_resize is not None:
        if len(input_resize) != 2 or any(int(v) != v or v <= 0 for v in input_resize):
            raise ConvertError(
                f"Input resize {list(input_resize)} is not two positive whole numbers W H."
            )
        resize = (int(input_resize[0]), int(input_resize[1]))
    if downsample_ratio is not None and not 0 < downsample_ratio <= 1:
        raise ConvertError(
            f"Downsample ratio {downsample_ratio} is out of range; give a number in (0, 1] "
            "or leave it out to choose automatically."
        )
    mbps = DEFAULT_MBPS if output_video_mbps is None else float(output_video_mbps)
    if not (mbps > 0 and math.isfinite(mbps)):
        raise ConvertError(f"Video bit rate {output_video_mbps} Mb/s must be a number above 0.")
    if int(seq_chunk) != seq_chunk or seq_chunk < 1:
        raise ConvertError(f"Sequence chunk {seq_chunk} must be a whole number of at least 1.")
    if int(num_workers) != num_workers or num_workers < 0:
        raise ConvertError(f"Number of workers {num_workers} must be a whole number of 0 or more.")
    source = Path(input_source)
    if not source.exists():
        raise ConvertError(
            f"Input {source} does not exist; give a video file or a folder of images."
        )
    for kind, path in outputs.items():
        try:
            check_destination(path, [source], overwrite=overwrite, label=f"The {kind} output")
        except DestinationError as e:
            raise ConvertError(str(e)) from None
        check_output(path, output_type)
    return _Request(
        source=source,
        outputs=outputs,
        output_type=output_type,
        resize=resize,
        ratio=downsample_ratio,
        mbps=mbps,
        seq_chunk=int(seq_chunk),
        num_workers=int(num_workers),
    )


def _device_dtype(
    model: torch.nn.Module, device: torch.device | str | None, dtype: torch.dtype | None
) -> tuple[torch.device, torch.dtype]:
    if device is not None and dtype is not None:
        return torch.device(device), dtype
    param = next(iter(model.parameters()), None)
    if param is None:
        raise ConvertError(
            "The model has no parameters to take the device and dtype from (a frozen TorchScript "
            "model?); pass device and dtype to convert_video."
        )
    return torch.device(device or param.device), dtype or param.dtype


def convert_video(
    model: torch.nn.Module,
    input_source: str | os.PathLike[str],
    input_resize: Sequence[int] | None = None,
    downsample_ratio: float | None = None,
    output_type: str = "video",
    output_composition: str | os.PathLike[str] | None = None,
    output_alpha: str | os.PathLike[str] | None = None,
    output_foreground: str | os.PathLike[str] | None = None,
    output_video_mbps: float | None = None,
    seq_chunk: int = 1,
    num_workers: int = 0,
    progress: bool = True,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    overwrite: bool = True,
) -> None:
    """Mattes a video file or a folder of images with ``model`` and writes the chosen outputs.

    Args:
        model: the network (eager, scripted or frozen TorchScript), in eval mode.
        input_source: a video file or a folder of images (taken in name order, at 30 fps).
        input_resize: ``(W, H)`` to resize every input frame to.
        downsample_ratio: the network's internal scale; None picks
            :func:`~app.matting.ratio.conversion_ratio` (``min(512 / max(H, W), 1)``).
        output_type: ``video`` (H.264 at the input's fps) or ``png_sequence`` (folders of
            ``0000.png``...).
        output_composition: the foreground over green (video) or as RGBA (PNG).
        output_alpha: the alpha matte.
        output_foreground: the foreground colours.
        output_video_mbps: video bit rate in Mb/s; 1 when None.
        seq_chunk: frames that go through the network at once.
        num_workers: decoding threads; 0 leaves the choice to the decoder.
        progress: show a progress bar on stderr.
        device: where the network runs; taken from the model's parameters when None.
        dtype: input dtype of the network; taken from the model's parameters when None.
        overwrite: outputs that exist may be replaced (the command line asks for
            ``--overwrite``); an output that is the input is refused either way.

    Raises:
        ConvertError: an argument is invalid, the input cannot be read, an output cannot be written,
            or device and dtype are missing for a model without parameters. Nothing is left behind
            at any of the output paths then.
    """
    req = _check_request(
        input_source,
        input_resize,
        downsample_ratio,
        output_type,
        output_composition,
        output_alpha,
        output_foreground,
        output_video_mbps,
        seq_chunk,
        num_workers,
        overwrite,
    )
    device, dtype = _device_dtype(model, device, dtype)
    source = open_input(req.source, req.resize, req.num_workers)
    if req.ratio is None:
        ratio = conversion_ratio(source.height, source.width)
    else:
        try:
            ratio = check_ratio(source.height, source.width, req.ratio)
        except RatioError as e:
            source.close()
            raise ConvertError(str(e)) from None
    stop = threading.Event()
    sinks: list[Output] = []
    writers: dict[str, Writer] = {}
    reader = Reader(source, req.seq_chunk, stop)
    bar = tqdm(total=source.count, disable=not progress, unit="frame", dynamic_ncols=True)
    try:
        for kind, path in req.outputs.items():
            sink: Output
            try:
                if req.output_type == "video":
                    sink = VideoOutput(path, source.width, source.height, source.fps, req.mbps)
                else:
                    sink = PngOutput(path)
            except DestinationError as e:  # another run is writing it
                raise ConvertError(str(e)) from None
            except OSError as e:
                raise ConvertError(f"Cannot write {path} ({reason(e)}).") from None
            sinks.append(sink)
            writers[kind] = Writer(sink, stop)
        for writer in writers.values():
            writer.start()
        reader.start()
        run_network(model, reader, writers, req.output_type, ratio, device, dtype, bar)
        for writer in writers.values():
            writer.join()
            if writer.error is not None:
                raise write_error(writer)
        for sink in sinks:
            sink.commit()
    except ConvertError:
        raise
    except (OSError, av.FFmpegError) as e:
        raise ConvertError(f"Could not write the outputs ({reason(e)}).") from None
    finally:
        stop.set()
        bar.close()
        for thread in (reader, *writers.values()):
            if thread.is_alive():
                thread.join(_JOIN_S)
        if reader.ident is None:
            source.close()
        for sink in sinks:
            if not sink.committed:
                sink.abort()


# --- command line --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Argument parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> Any:
        self.exit(2, f"error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m app.matting.convert",
        description="Matte a video file or a folder of images with Robust Video Matting.",
    )
    p.add_argument("--variant", default=DEFAULT_VARIANT, choices=VARIANTS)
    p.add_argument("--checkpoint", help="weights file (.pth or the official .onnx)")
    p.add_argument("--device", default="auto", help=f"{', '.join(DEVICES)} or cuda:N")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS)
    p.add_argument("--input-source", required=True, help="video file or folder of images")
    p.add_argument("--input-resize", type=int, nargs=2, metavar=("W", "H"))
    p.add_argument("--downsample-ratio", type=float, help="in (0, 1]; automatic when left out")
    p.add_argument("--output-type", default="video", choices=OUTPUT_TYPES)
    p.add_argument("--output-composition")
    p.add_argument("--output-alpha")
    p.add_argument("--output-foreground")
    p.add_argument("--output-video-mbps", type=float, help=f"default {DEFAULT_MBPS:g}")
    p.add_argument("--seq-chunk", type=int, default=1)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--disable-progress", action="store_true")
    p.add_argument("--overwrite", action="store_true", help="replace outputs that exist")
    return p


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Runs the conversion command line; returns the exit status.

    SIGTERM ends a conversion as Ctrl-C does: unfinished outputs are deleted.
    """
    args = _parser().parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    from app.matting.weights import WeightsError

    try:
        _check_request(
            args.input_source,
            args.input_resize,
            args.downsample_ratio,
            args.output_type,
            args.output_composition,
            args.output_alpha,
            args.output_foreground,
            args.output_video_mbps,
            args.seq_chunk,
            args.num_workers,
            args.overwrite,
        )
        device = resolve_device(args.device)
        dtype = resolve_dtype(args.precision, device)
        with warnings.catch_warnings():
            # torch warns about damaged files before the loader reports them in one line.
            warnings.simplefilter("ignore")
            # The fast path on the CPU in fp32: same numbers, about 1.3x faster.
            model = create_model(
                args.variant,
                checkpoint=args.checkpoint,
                device=device,
                precision=dtype,
                fast=True,
            )
        convert_video(
            model,
            input_source=args.input_source,
            input_resize=args.input_resize,
            downsample_ratio=args.downsample_ratio,
            output_type=args.output_type,
            output_composition=args.output_composition,
            output_alpha=args.output_alpha,
            output_foreground=args.output_foreground,
            output_video_mbps=args.output_video_mbps,
            overwrite=args.overwrite,
            seq_chunk=args.seq_chunk,
            num_workers=args.num_workers,
            progress=not args.disable_progress,
            device=device,
            dtype=dtype,
        )
    except (ConvertError, EngineError, WeightsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; unfinished outputs were deleted.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
