"""What the fixed-size exports (CoreML, TFLite) share: frame size, ratio, graph, optional imports.

A fixed-size file has the frame size and the downsample ratio built in. Its inputs are ``src``
and the recurrent state ``r1i``..``r4i`` at their full shapes for that size (zeros on the first
frame); its outputs are ``fgr``, ``pha`` and ``r1o``..``r4o``, the next frame's state.

The graph resizes the frame with plain bilinear interpolation. The network's precise resize for
ratios that are not a power of two (sample positions in float64, gathered with ``index_select``)
does not convert to CoreML; plain interpolation does, and differs from it only by float32
rounding of the sample positions (about 1e-4 of a pixel at 1280 px).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from torch import Tensor, nn

from app.media import AtomicPath
from app.resize import downsample

from . import architecture, fusion
from .export import ExportError
from .model import MattingNetwork
from .registry import DEFAULT_VARIANT, VARIANTS

# The interface of a fixed-size file: the state at its full shapes, no ratio input.
STATE_INPUTS = architecture.STATE_INPUTS
OUTPUTS = architecture.OUTPUT_NAMES
# The encoder's last stage works at 1/16 of the downsampled frame: one cell needs 16 px.
MIN_SMALL_SIDE = 16
MAX_SIDE = 8192


@dataclass(frozen=True)
class FixedShape:
    """A frame size and the downsample ratio built into a fixed-size export.

    Attributes:
        width: frame width in pixels.
        height: frame height in pixels.
        ratio: downsample ratio in (0, 1].
    """

    width: int
    height: int
    ratio: float

    @classmethod
    def parse(cls, size: str, ratio: float) -> FixedShape:
        """Reads ``WIDTHxHEIGHT`` and checks it with ``ratio`` (see :meth:`check`).

        Raises:
            ExportError: the size is not ``WIDTHxHEIGHT`` or the pair cannot be exported.
        """
        parts = size.lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ExportError(f"Size '{size}' is not WIDTHxHEIGHT in pixels, e.g. 1920x1080.")
        shape = cls(int(parts[0]), int(parts[1]), float(ratio))
        shape.check()
        return shape

    @property
    def small(self) -> tuple[int, int]:
        """(height, width) of the downsampled frame the network sees."""
        return int(self.height * self.ratio), int(self.width * self.ratio)

    def check(self) -> None:
        """Raises ExportError when the size or ratio cannot be exported."""
        w, h, r = self.width, self.height, self.ratio
        if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
            raise ExportError(
                f"Size {w}x{h} cannot be exported: each side must be 1 to {MAX_SIDE} pixels."
            )
        if not 0.0 < r <= 1.0:
            raise ExportError(f"Downsample ratio {r:g} is out of range; give a number in (0, 1].")
        sh, sw = self.small
        if min(sh, sw) < MIN_SMALL_SIDE:
            need = MIN_SMALL_SIDE / min(w, h)
            hint = f"give a ratio of at least {need:.3g}" if need <= 1 else "give a larger size"
            raise ExportError(
                f"A ratio of {r:g} shrinks {w}x{h} to {sw}x{sh} pixels; the network needs at "
                f"least {MIN_SMALL_SIDE} on each side: {hint}."
            )

    def state_shapes(self, net: MattingNetwork) -> list[tuple[int, int, int, int]]:
        """Shapes of ``r1``..``r4`` for one frame: 1/2, 1/4, 1/8 and 1/16 of the small frame."""
        dec = net.decoder
        channels = [b.gru.channels for b in (dec.decode1, dec.decode2, dec.decode3, dec.decode4)]
        h, w = self.small
        shapes = []
        for c in channels:
            h, w = -(-h // 2), -(-w // 2)
            shapes.append((1, c, h, w))
        return shapes


class FixedNetwork(MattingNetwork):
    """The network as the fixed-size exports convert it: plain bilinear downsampling (see the
    module docstring), always refining. Made by :func:`fold_batchnorm`.

    Attributes:
        resize: module that downsamples the frame in place of bilinear interpolation, or None.
    """

    def __init__(self, variant: str, refiner: str):
        super().__init__(variant, refiner)
        self.resize: nn.Module | None = None

    def downsample(self, x: Tensor, ratio: float) -> Tensor:
        """The frames at the internal size, through ``resize`` or PyTorch's bilinear kernel."""
        if self.resize is not None:
            return self.resize(x)
        return downsample(x, ratio, exact=False)


class FixedGraph(nn.Module):
    """The network at one frame size and ratio, with the fixed-size exports' interface.

    Args:
        net: the network from :func:`fold_batchnorm` (shared, not copied).
        ratio: the downsample ratio built into the graph.
        scale: factor for ``fgr`` and ``pha`` (255 where they leave as 8-bit images).
        resize: module that downsamples the frame, in place of bilinear interpolation (it
            becomes ``net.resize``).
    """

    def __init__(
        self,
        net: FixedNetwork,
        ratio: float,
        scale: float = 1.0,
        resize: nn.Module | None = None,
    ):
        super().__init__()
        net.resize = resize
        self.net = net
        self.ratio = ratio
        self.scale = scale

    def forward(
        self, src: Tensor, r1i: Tensor, r2i: Tensor, r3i: Tensor, r4i: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Mattes one frame ``[1, 3, H, W]`` (0..1); returns fgr, pha and the new state."""
        fgr, pha, r1, r2, r3, r4 = self.net(src, r1i, r2i, r3i, r4i, self.ratio)
        if self.scale != 1.0:
            fgr, pha = fgr * self.scale, pha * self.scale
        return fgr, pha, r1, r2, r3, r4


def fold_batchnorm(model: MattingNetwork) -> FixedNetwork:
    """A CPU fp32 eval copy of ``model`` for the fixed-size exports, with each BatchNorm folded
    into the convolution before it (:func:`app.matting.fusion.fold_batchnorm`).

    The folded convolutions are the weights an export carries; tests compare the files with them.
    """
    net = FixedNetwork(model.variant, model.refiner_name)
    net.copy_from(model)
    net = net.float().cpu().eval()
    net.refine_full_res = True  # like the official exports
    fusion.fold_batchnorm(net)
    return net


def require(module: str, extra: str, what: str) -> ModuleType:
    """Imports an optional dependency of an export.

    Args:
        module: the module to import.
        extra: the package extra that installs it.
        what: the export that needs it, for the message.

    Raises:
        ExportError: the module is not installed; the message says how to install it.
    """
    try:
        with warnings.catch_warnings():
            # The converters warn about every torch release newer than the one they were tested on.
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError:
        raise ExportError(
            f"The {what} export needs the optional package '{module}', which is not installed: "
            f"pip install -e '.[{extra}]' (or use the export environment made by "
            f"`make export-env`: .venv-export/bin/python -m app.matting.export ...)."
        ) from None


@contextmanager
def quiet(logger: str | None = None) -> Iterator[None]:
    """Keeps a converter's progress lines, warnings and log notes out of the user's terminal.

    Args:
        logger: the converter's logger, held to errors meanwhile; None: the root logger.
    """
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


@contextmanager
def atomic_output(dest: Path) -> Iterator[Path]:
    """Yields a temporary path beside ``dest`` (file or folder); it replaces ``dest`` on success.

    An existing ``dest`` is kept until the new one is complete; on failure nothing is left behind.

    Raises:
        ExportError: the folder of ``dest`` does not exist or is not writable.
    """
    parent = dest.parent
    if not parent.is_dir():
        raise ExportError(f"Cannot write {dest}: the folder {parent} does not exist.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"Cannot write {dest}: the folder {parent} is not writable.")
    with AtomicPath(dest, folder=None) as out:
        yield out.temp
        for p in [out.temp, *out.temp.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)


# --- command line --------------------------------------------------------------------------------

FIXED_FORMATS = {
    # format: (module, default size, default ratio)
    "coreml": ("export_coreml", "1920x1080", 0.25),
    "tflite": ("export_tflite", "1280x720", 0.375),
}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Adds the fixed-size subcommands to the export command line."""
    texts = {
        "coreml": "CoreML ML program (.mlpackage) or neural network (.mlmodel), fixed size",
        "tflite": "TFLite flatbuffer (.tflite), fixed size, channels last",
    }
    for fmt, (_, size, ratio) in FIXED_FORMATS.items():
        s = sub.add_parser(fmt, help=texts[fmt])
        s.add_argument("--variant", default=DEFAULT_VARIANT, choices=VARIANTS)
        s.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"))
        s.add_argument("--output", required=True, help="destination")
        s.add_argument("--checkpoint", help="weights file (.pth or the official .onnx)")
        s.add_argument("--size", default=size, help=f"frame WIDTHxHEIGHT (default {size})")
        s.add_argument("--downsample-ratio", type=float, default=ratio, help=f"(default {ratio:g})")
        if fmt == "coreml":
            s.add_argument(
                "--model-type", default="mlprogram", choices=("mlprogram", "neuralnetwork")
            )


def check_args(args: argparse.Namespace) -> FixedShape:
    """Checks a fixed-size export's options before the weights are loaded; returns its shape.

    Raises:
        ExportError: a bad size, ratio, precision or file name, or a missing optional package.
    """
    shape = FixedShape.parse(args.size, args.downsample_ratio)
    module = importlib.import_module(f".{FIXED_FORMATS[args.format][0]}", __package__)
    module.check_options(Path(args.output), args.precision, getattr(args, "model_type", None))
    module.check_installed()
    return shape


def run(args: argparse.Namespace, model: MattingNetwork, shape: FixedShape) -> Path:
    """Writes the fixed-size export the command line asked for; returns its path."""
    if args.format == "coreml":
        from .export_coreml import export_coreml

        return export_coreml(model, args.output, args.precision, shape, args.model_type)
    from .export_tflite import export_tflite

    return export_tflite(model, args.output, args.precision, shape)
