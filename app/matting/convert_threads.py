"""The threads of a conversion: a reader, the network on the calling thread, one writer per output.

The reader fills a bounded queue with chunks of ``seq_chunk`` frames; :func:`run_network` runs the
network on them, carrying the recurrent state from chunk to chunk, and hands each output's frames
to that output's writer, which encodes from its own bounded queue. Used by
:func:`app.matting.convert.convert_video`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from app.media import reason
from app.media.video import FrameReader

from .convert_io import ConvertError, Output

GREEN = (0.47, 1.0, 0.6)
QUEUE_CHUNKS = 4
POLL_S = 0.1


class Worker(threading.Thread):
    """A thread that records the exception that ended it."""

    def __init__(self, name: str, stop: threading.Event):
        super().__init__(name=name, daemon=True)
        self.stop = stop
        self.error: BaseException | None = None

    def put(self, q: queue.Queue[Any], item: Any, alive: Callable[[], bool]) -> bool:
        """Puts ``item`` once there is room; False if stopped or ``alive`` turned false first."""
        while not self.stop.is_set() and alive():
            try:
                q.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False


class Reader(Worker):
    """Decodes chunks of ``seq_chunk`` frames into ``chunks``; ``None`` marks the end."""

    def __init__(self, source: FrameReader, seq_chunk: int, stop: threading.Event):
        super().__init__("convert-reader", stop)
        self.source = source
        self.seq_chunk = seq_chunk
        self.chunks: queue.Queue[np.ndarray | None] = queue.Queue(QUEUE_CHUNKS)

    def run(self) -> None:
        try:
            batch: list[np.ndarray] = []
            for frame in self.source.frames(self.stop):
                batch.append(frame)
                if len(batch) == self.seq_chunk:
                    if not self.put(self.chunks, np.stack(batch), lambda: True):
                        return
                    batch = []
            if batch and not self.put(self.chunks, np.stack(batch), lambda: True):
                return
        except BaseException as e:  # handed to the converting thread
            self.error = e
        finally:
            self.source.close()
        self.put(self.chunks, None, lambda: True)


class Writer(Worker):
    """Writes the frame chunks of one output; ``None`` in the queue marks the end."""

    def __init__(self, sink: Output, stop: threading.Event):
        super().__init__(f"convert-writer-{sink.dest.name}", stop)
        self.sink = sink
        self.chunks: queue.Queue[np.ndarray | None] = queue.Queue(QUEUE_CHUNKS)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    frames = self.chunks.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if frames is None:
                    return
                self.sink.write(frames)
        except BaseException as e:  # handed to the converting thread
            self.error = e


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``[1, T, C, H, W]`` in 0..1 -> ``[T, H, W, C]`` uint8 on the CPU."""
    x = x[0].float().mul(255).round_().clamp_(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def frames_out(
    kind: str, output_type: str, fgr: torch.Tensor, pha: torch.Tensor, green: torch.Tensor
) -> np.ndarray:
    if kind == "composition":
        if output_type == "png_sequence":
            return to_uint8(torch.cat([fgr, pha], dim=2))
        return to_uint8(fgr * pha + green * (1 - pha))
    if kind == "alpha":
        return to_uint8(pha.expand(-1, -1, 3, -1, -1) if output_type == "video" else pha)
    return to_uint8(fgr)


def write_error(writer: Writer) -> ConvertError:
    return ConvertError(f"Could not write {writer.sink.dest} ({reason(writer.error)}).")


def run_network(
    model: torch.nn.Module,
    reader: Reader,
    writers: dict[str, Writer],
    output_type: str,
    ratio: float,
    device: torch.device,
    dtype: torch.dtype,
    bar: tqdm,
) -> None:
    """Feeds the reader's chunks through ``model`` and hands the results to the writers."""
    green = torch.tensor(GREEN, device=device, dtype=dtype).view(1, 1, 3, 1, 1)
    rec: list[torch.Tensor | None] = [None, None, None, None]
    done = 0
    with torch.inference_mode():
        while True:
            try:
                chunk = reader.chunks.get(timeout=POLL_S)
            except queue.Empty:
                check_writers(writers)
                if not reader.is_alive() and reader.chunks.empty():
                    break
                continue
            if chunk is None:
                break
            src = torch.from_numpy(chunk).to(device, non_blocking=True)
            src = src.permute(0, 3, 1, 2).unsqueeze(0).to(dtype).div_(255)
            fgr, pha, *rec = model(src, *rec, float(ratio))
            for kind, writer in writers.items():
                frames = frames_out(kind, output_type, fgr, pha, green)
                if not writer.put(writer.chunks, frames, writer.is_alive):
                    raise write_error(writer)
            bar.update(chunk.shape[0])
            done += chunk.shape[0]
        if reader.error is not None:
            if isinstance(reader.error, ConvertError):
                raise reader.error
            raise ConvertError(
                f"Could not read {reader.source.path} ({reason(reader.error)})."
            ) from reader.error
        if done == 0:
            raise ConvertError(f"Input {reader.source.path} has no frames.")
        for writer in writers.values():
            if not writer.put(writer.chunks, None, writer.is_alive):
                raise write_error(writer)


def check_writers(writers: dict[str, Writer]) -> None:
    for writer in writers.values():
        if not writer.is_alive() and writer.error is not None:
            raise write_error(writer)
