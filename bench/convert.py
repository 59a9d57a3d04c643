"""Conversion throughput against the network's own speed at the same size.

``convert_video`` overlaps decoding, the network and encoding, so it should run at close to the
speed of the network alone. This bench generates a clip, times the bare network over its frames
(recurrent, ready-made tensors, same ``downsample_ratio`` and ``seq_chunk``), then times a full
conversion of the clip to a composition and an alpha video, and prints the ratio. Both use the
network the command line converts with (:func:`app.matting.factory.create_model` with
``fast=True``: the optimised copy on the CPU in fp32), so the ratio is the command line's.

Run ``python -m bench.convert [--frames N] [--size WxH ...] [--seq-chunk N ...] [--device D]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from app.capture.synthetic import make_frames
from app.matting.convert import convert_video
from app.matting.factory import create_model, resolve_device, resolve_dtype
from app.matting.ratio import conversion_ratio
from app.media.video import write_video

DEFAULT_SIZES = ((640, 480),)
DEFAULT_CHUNKS = (1, 4)
WARMUP_FRAMES = 4


class Passthrough(torch.nn.Module):
    """Stands in for the network with almost no work: foreground = input, alpha = 0.5."""

    def forward(
        self,
        src: torch.Tensor,
        r1: torch.Tensor | None,
        r2: torch.Tensor | None,
        r3: torch.Tensor | None,
        r4: torch.Tensor | None,
        downsample_ratio: float,
    ) -> list[torch.Tensor | None]:
        return [src, src[:, :, :1] * 0 + 0.5, r1, r2, r3, r4]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def network_fps(
    model: torch.nn.Module,
    frames: torch.Tensor,
    ratio: float,
    seq_chunk: int,
    device: torch.device,
    dtype: torch.dtype,
) -> float:
    """Frames per second of the network alone over ``frames`` (``[N, 3, H, W]`` on ``device``)."""
    rec: list[torch.Tensor | None] = [None] * 4
    with torch.inference_mode():
        warm = frames[:WARMUP_FRAMES].to(dtype).unsqueeze(0)
        model(warm[:, :seq_chunk], *rec, ratio)
        _sync(device)
        start = time.perf_counter()
        for i in range(0, frames.shape[0], seq_chunk):
            src = frames[i : i + seq_chunk].to(dtype).unsqueeze(0)
            _, _, *rec = model(src, *rec, ratio)
        _sync(device)
    return frames.shape[0] / (time.perf_counter() - start)


def run(
    frames: int = 120,
    sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES,
    seq_chunks: tuple[int, ...] = DEFAULT_CHUNKS,
    device: str = "auto",
    precision: str = "fp32",
    repeats: int = 2,
) -> list[dict]:
    """Measures the network and the conversion for each size and chunk length.

    Args:
        frames: length of the generated clip.
        sizes: ``(W, H)`` frame sizes.
        seq_chunks: frames per network call.
        device: ``auto``, ``cpu`` or ``cuda``.
        precision: ``fp32`` or ``fp16``.
        repeats: alternating runs of each measurement; the best of each is kept, which damps
            the noise of other work on a shared machine.

    Returns:
        One row per size and chunk: size, seq_chunk, downsample_ratio, network_fps, convert_fps,
        pipeline_fps (decode and encode alone, with a stand-in for the network), ratio (convert
        over network), network (the module's class name), device, precision.
    """
    dev = resolve_device(device)
    dtype = resolve_dtype(precision, dev)
    model = create_model("mobilenetv3", device=dev, precision=dtype, fast=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as tmp:
        folder = Path(tmp)
        for width, height in sizes:
            clip = make_frames(frames, height, width)
            source = write_video(
                folder / f"in_{width}x{height}.mp4",
                clip,
                30,
                crf=4,
                preset="ultrafast",
                pix_fmt="yuv444p",
            )
            tensors = torch.from_numpy(clip).to(dev).permute(0, 3, 1, 2).float().div(255)
            ratio = conversion_ratio(height, width)
            for seq_chunk in seq_chunks:
                net = conv = pipe = 0.0
                for _ in range(repeats):
                    net = max(net, network_fps(model, tensors, ratio, seq_chunk, dev, dtype))
                    args = (source, folder, seq_chunk, frames, dev, dtype)
                    conv = max(conv, _convert_fps(model, *args))
                    pipe = max(pipe, _convert_fps(Passthrough(), *args))
                rows.append(
                    {
                        "size": f"{width}x{height}",
                        "seq_chunk": seq_chunk,
                        "downsample_ratio": round(ratio, 4),
                        "network_fps": round(net, 2),
                        "convert_fps": round(conv, 2),
                        "pipeline_fps": round(pipe, 2),
                        "ratio": round(conv / net, 3),
                        "network": type(model).__name__,
                        "device": dev.type,
                        "precision": precision,
                    }
                )
    return rows


def _convert_fps(
    model: torch.nn.Module,
    source: Path,
    folder: Path,
    seq_chunk: int,
    frames: int,
    device: torch.device,
    dtype: torch.dtype,
) -> float:
    start = time.perf_counter()
    convert_video(
        model,
        source,
        output_composition=folder / "com.mp4",
        output_alpha=folder / "pha.mp4",
        seq_chunk=seq_chunk,
        progress=False,
        device=device,
        dtype=dtype,
    )
    return frames / (time.perf_counter() - start)


def format_table(rows: list[dict]) -> str:
    """Formats the rows of :func:`run` as a plain text table."""
    cols = ["size", "seq_chunk", "downsample_ratio", "network_fps", "convert_fps", "ratio"]
    cols.insert(5, "pipeline_fps")
    cols.append("network")
    cells = [cols] + [[str(r[c]) for c in cols] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(cols))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells
    )


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def main() -> None:
    """Runs the bench from the command line and prints the table."""
    p = argparse.ArgumentParser(prog="python -m bench.convert", description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--size", type=_size, nargs="+", default=list(DEFAULT_SIZES))
    p.add_argument("--seq-chunk", type=int, nargs="+", default=list(DEFAULT_CHUNKS))
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=("fp32", "fp16"))
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    rows = run(
        args.frames,
        tuple(args.size),
        tuple(args.seq_chunk),
        args.device,
        args.precision,
        args.repeats,
    )
    print(f"device: {rows[0]['device']}, precision: {rows[0]['precision']}, {args.frames} frames")
    print(format_table(rows))


if __name__ == "__main__":
    main()
