"""The live matting engine: one network, one stream, the recurrent state kept between frames.

The engine owns what the stateless network does not: the device and precision, the recurrent
state ``rec``, and the downsample ratio. It resets the state when the stream changes under it (new
frame size or ratio, a long gap, a scene cut) and feeds the first frame after a reset a few times so
the first visible mattes are already settled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from app.events import Advice

from .factory import EngineError, create_model, precision_name, resolve_device, resolve_dtype
from .ratio import check_ratio, live_ratio

Runner = Callable[[torch.Tensor, list, float], tuple[torch.Tensor, torch.Tensor, list]]


@dataclass
class Matte:
    """One frame's result on the engine's device.

    Attributes:
        src: the frame ``[1, 3, H, W]`` in 0..1.
        fgr: predicted foreground ``[1, 3, H, W]``.
        pha: alpha ``[1, 1, H, W]``.
        ratio: downsample ratio used.
        coeffs: the deep guided filter's low-resolution coefficients ``[1, 8, h, w]`` (``A`` with
            the foreground's residual folded in, then ``b``: ``fgr = A * src + b``, ``pha = A *
            mean(src) + b``), when the runner gives them and the ratio is below 1; else None.
    """

    src: torch.Tensor
    fgr: torch.Tensor
    pha: torch.Tensor
    ratio: float
    coeffs: torch.Tensor | None = None

    def __iter__(self) -> Iterator[torch.Tensor]:
        """Unpacks as ``fgr, pha``: ``fgr, pha = engine.step(frame)``."""
        return iter((self.fgr, self.pha))


def torch_runner(model: torch.nn.Module) -> Runner:
    """Wraps a network (eager, scripted or frozen) as ``(src, rec, ratio) -> fgr, pha, rec``."""

    def run(src: torch.Tensor, rec: list, ratio: float) -> tuple[torch.Tensor, torch.Tensor, list]:
        fgr, pha, *new_rec = model(src, *rec, downsample_ratio=ratio)
        return fgr, pha, new_rec

    return run


class MattingEngine:
    """Runs the network frame by frame and keeps its recurrent state.

    Args:
        runner: ``(src, rec, ratio) -> (fgr, pha, rec)`` on ``device``, e.g. :func:`torch_runner`.
        device: where frames are processed.
        dtype: precision of the frames fed to the runner.
        ratio: fixed downsample ratio, or None to pick it from the frame size.
        full_body: with an automatic ratio, use the full-body column.
        warmup: times the first frame after a reset is fed, so the state settles.
        gap_reset_s: a pause between frames longer than this resets the state.
        scene_cut: mean absolute change of a small grey thumbnail (0..1) above which a frame counts
            as a new scene and resets the state; None disables the check.
        name: describes the backend in the statistics.
    """

    def __init__(
        self,
        runner: Runner,
        device: torch.device,
        dtype: torch.dtype,
        *,
        ratio: float | None = None,
        full_body: bool = False,
        warmup: int = 3,
        gap_reset_s: float = 2.0,
        scene_cut: float | None = 0.15,
        name: str = "torch",
    ):
        self.runner = runner
        self.device = device
        self.dtype = dtype
        self.name = name
        self.warmup = warmup
        self.gap_reset_s = gap_reset_s
        self.scene_cut = scene_cut
        self._fixed_ratio = ratio
        self._full_body = full_body
        self._rec: list = [None] * 4
        self._size: tuple[int, int] | None = None
        self._ratio: float | None = None
        self._last_t: float | None = None
        self._thumb: torch.Tensor | None = None
        self.resets = 0
        self.last_reset_reason = ""

    @property
    def ratio(self) -> float | None:
        """The ratio of the last frame (None before the first)."""
        return self._ratio

    @property
    def frame_size(self) -> tuple[int, int] | None:
        """(height, width) of the last frame (None before the first)."""
        return self._size

    @property
    def internal_resolution(self) -> tuple[int, int] | None:
        """(width, height) the network ran at for the last frame."""
        if self._size is None or self._ratio is None:
            return None
        h, w = self._size
        return int(w * self._ratio), int(h * self._ratio)

    @property
    def precision(self) -> str:
        """``fp32``, ``fp16`` or ``bf16``."""
        return precision_name(self.dtype)

    def set_ratio(self, ratio: float | None, full_body: bool | None = None) -> None:
        """Fixes the ratio (None: automatic); the state is reset at the next frame if it changes."""
        self._fixed_ratio = ratio
        if full_body is not None:
            self._full_body = full_body

    def reset(self, reason: str = "asked") -> None:
        """Forgets the recurrent state; the next frame starts a fresh sequence."""
        self._rec = [None] * 4
        self._thumb = None
        self.resets += 1
        self.last_reset_reason = reason

    def resize_state(self, ratio: float) -> None:
        """Switches to ``ratio`` keeping the state, resampled to the new internal size.

        Used when quality is lowered or raised to hold the frame rate: a reset would make the matte
        flicker, a resampled state carries on smoothly.
        """
        if self._size is None or self._rec[0] is None:
            self._fixed_ratio = ratio
            return
        h, w = self._size
        sh, sw = int(h * ratio), int(w * ratio)
        new_rec = []
        for i, r in enumerate(self._rec):
            scale = 2 ** (i + 1)
            size = (-(-sh // scale), -(-sw // scale))
            new_rec.append(F.interpolate(r, size=size, mode="bilinear", align_corners=False))
        self._rec = new_rec
        self._fixed_ratio = ratio
        self._ratio = ratio

    def upload(self, frame: np.ndarray) -> torch.Tensor:
        """``H x W x 3`` uint8 RGB -> ``[1, 3, H, W]`` in 0..1 on the device and dtype."""
        t = torch.from_numpy(np.ascontiguousarray(frame)).to(self.device, non_blocking=True)
        return t.permute(2, 0, 1).unsqueeze(0).to(self.dtype).div_(255)

    def _is_scene_cut(self, src: torch.Tensor) -> bool:
        if self.scene_cut is None:
            return False
        step = max(1, src.shape[-2] // 144)  # every few pixels suffice for an 18x32 thumbnail
        sample = src[..., ::step, ::step]
        thumb = F.adaptive_avg_pool2d(sample.mean(dim=1, keepdim=True).float(), (18, 32))
        cut = self._thumb is not None and float((thumb - self._thumb).abs().mean()) > self.scene_cut
        self._thumb = thumb
        return cut

    @torch.inference_mode()
    def step(self, frame: np.ndarray | torch.Tensor, t: float | None = None) -> Matte:
        """Mattes one frame, carrying the state from the previous one.

        Args:
            frame: ``H x W x 3`` uint8 RGB, or ``[1, 3, H, W]`` in 0..1 on the device.
            t: capture time (``time.monotonic()``), for the long-gap reset.
        """
        src = self.upload(frame) if isinstance(frame, np.ndarray) else frame.to(self.dtype)
        h, w = src.shape[-2:]
        if self._fixed_ratio is None:
            ratio = live_ratio(h, w, self._full_body)
        else:
            ratio = check_ratio(h, w, self._fixed_ratio)
        t = time.monotonic() if t is None else t
        if self._size != (h, w):
            self.reset("frame size changed")
        elif self._ratio != ratio:
            self.reset("downsample ratio changed")
        elif self._last_t is not None and t - self._last_t > self.gap_reset_s:
            self.reset("long pause between frames")
        if self._is_scene_cut(src) and self._rec[0] is not None:
            self.reset("scene cut")
            self._is_scene_cut(src)
        self._size, self._ratio, self._last_t = (h, w), ratio, t
        repeats = self.warmup if self._rec[0] is None else 1
        for _ in range(max(1, repeats)):
            fgr, pha, self._rec = self.runner(src, self._rec, ratio)
        coeffs = getattr(self.runner, "coefficients", None) if ratio < 1 else None
        return Matte(src=src, fgr=fgr, pha=pha, ratio=ratio, coeffs=coeffs)


def build_engine(
    variant: str = "mobilenetv3",
    checkpoint: str | None = None,
    device: str = "auto",
    precision: str = "auto",
    backend: str = "torch",
    optimize: bool = True,
    **kwargs: object,
) -> MattingEngine:
    """Loads the weights and returns a ready engine.

    On the CPU in fp32 the torch backend runs the optimised copy of the network from
    :mod:`app.matting.fast` (engine name ``torch-fast``): same numbers, fewer passes, thread count
    tuned while it runs.

    Args:
        variant: network variant.
        checkpoint: weights file, or None for the cached official weights.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: ``auto``, ``fp32`` or ``fp16``.
        backend: ``torch`` or ``onnxruntime`` (the official ONNX export; mobilenetv3 only).
        optimize: use the CPU fast path where it applies; False runs the network as it is.
        **kwargs: passed to :class:`MattingEngine`.

    Raises:
        EngineError: device, precision or backend unusable here.
        app.matting.weights.WeightsError: weights missing or unusable.
    """
    dev = resolve_device(device)
    dtype = resolve_dtype(precision, dev)
    if backend == "onnxruntime":
        return _ort_engine(variant, checkpoint, dev, dtype, **kwargs)
    if backend != "torch":
        raise EngineError(f"Unknown backend '{backend}': use torch or onnxruntime.")
    from .fast import FastMattingNetwork, FastRunner

    model = create_model(variant, checkpoint=checkpoint, device=dev, precision=dtype, fast=optimize)
    if isinstance(model, FastMattingNetwork):
        runner = FastRunner(model)
        return MattingEngine(runner, dev, dtype, name=runner.name, **kwargs)
    return MattingEngine(torch_runner(model), dev, dtype, name="torch", **kwargs)


def _ort_engine(
    variant: str, checkpoint: str | None, dev: torch.device, dtype: torch.dtype, **kwargs: object
) -> MattingEngine:
    try:
        from .ort_backend import OrtBackendError, OrtRunner
    except ImportError as exc:
        raise EngineError(
            "The onnxruntime backend needs the onnxruntime package: pip install onnxruntime."
        ) from exc
    if variant != "mobilenetv3":
        raise EngineError(
            "The onnxruntime backend runs mobilenetv3 only", Advice("backend", ("torch",))
        )
    if dtype != torch.float32:
        raise EngineError(
            "The onnxruntime backend runs the fp32 export", Advice("precision", ("fp32",))
        )
    from .weights import fetch_onnx

    path = checkpoint if checkpoint and str(checkpoint).endswith(".onnx") else fetch_onnx()
    try:
        runner = OrtRunner(str(path), device=str(dev))
    except OrtBackendError as exc:
        raise EngineError(str(exc)) from None
    return MattingEngine(runner, dev, dtype, name=runner.name, **kwargs)
