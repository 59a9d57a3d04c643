"""Where an output may be written: never over an input, never over an existing file unless asked,
never by two runs at once; and what unfinished outputs of earlier runs were left beside it.

One set of checks for the live recording (``main.py --output``) and the conversion command:

- :func:`check_destination` refuses an output that is one of the inputs, however it is spelled
  (relative path, symbolic or hard link: compared with :func:`os.path.samefile`), and an existing
  file unless overwriting was asked for;
- :func:`claim` creates the hidden partial file (or folder) an output grows in, exclusively: while
  one run writes to a destination it holds a lock on its partial file, and a second run writing to
  the same destination is refused instead of both "succeeding" with one recording lost. Partial
  files of earlier runs that ended without finishing (a crash, a power cut) are found on the way
  and reported.

Locks are advisory ``flock`` locks (POSIX); elsewhere the partial file is still created exclusively
but a concurrent writer is not detected.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.media.formats import MediaError

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None  # type: ignore[assignment]

PART = ".part"


class DestinationError(MediaError):
    """An output cannot go where it was asked to; the message says why and what to do."""


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two existing paths are the same file or folder (links and spellings resolved)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_destination(
    dest: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str] | None] = (),
    *,
    overwrite: bool = False,
    label: str = "--output",
) -> None:
    """Refuses a destination that is an input, or that exists and may not be replaced.

    Args:
        dest: the output file or folder.
        inputs: the files and folders the run reads (None entries are skipped).
        overwrite: an existing file may be replaced.
        label: how the output is named in messages (the command-line flag).

    Raises:
        DestinationError: the destination is one of the inputs, or exists and ``overwrite`` is
            false (an empty folder for PNG frames is fine).
    """
    path = Path(dest).expanduser()
    for source in inputs:
        if source is not None and str(source) and same_file(path, Path(source).expanduser()):
            raise DestinationError(
                f"{label} '{dest}' is the input '{source}': writing it would destroy the input; "
                "give the output another name."
            )
    if overwrite or not path.exists():
        return
    if path.is_dir():
        if any(path.iterdir()):
            raise DestinationError(
                f"{label} '{dest}' is a folder that already holds files; give a new or empty "
                "folder, or add --overwrite to replace it."
            )
        return
    raise DestinationError(
        f"{label} '{dest}' exists already; give another name, or add --overwrite to replace it."
    )


def partial_name(dest: Path, token: str, folder: bool) -> Path:
    """The hidden name an output grows under: ``.NAME.TOKEN.part`` plus the destination's suffix
    for files (encoders that pick a format by suffix still see it)."""
    suffix = "" if folder else dest.suffix
    return dest.with_name(f".{dest.name}.{token}{PART}{suffix}")


def partials(dest: Path) -> list[Path]:
    """The partial files and folders of ``dest`` that exist now, of this run or others."""
    parent = dest.parent if str(dest.parent) else Path(".")
    prefix = f".{dest.name}."
    try:
        names = [e.name for e in os.scandir(parent) if e.name.startswith(prefix)]
    except OSError:
        return []
    return sorted(
        parent / n
        for n in names
        if n.endswith(PART) or (dest.suffix and n.endswith(f"{PART}{dest.suffix}"))
    )


def _lock(fd: int) -> bool:
    """Takes an exclusive lock without waiting; False when another process holds one."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _open(path: Path) -> int:
    return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return path.stat().st_size


@dataclass
class Claim:
    """A partial file or folder that this run holds until it is renamed into place or deleted.

    Attributes:
        dest: the destination.
        temp: the partial file or folder.
        stale: partial files of earlier runs found beside the destination (not touched).
    """

    dest: Path
    temp: Path
    stale: list[Path] = field(default_factory=list)
    _fd: int | None = None

    def release(self) -> None:
        """Lets the lock go (after the rename or the deletion); safe twice."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def stale_note(self) -> str:
        """One sentence on the partial files of earlier runs, or empty when there are none."""
        if not self.stale:
            return ""
        listed = ", ".join(f"{p.name} ({_size(p) / 1e6:.1f} MB)" for p in self.stale)
        return (
            f"Unfinished output of an earlier run beside '{self.dest.name}': {listed}. "
            "It was left as it was; rename it to keep it (a .mkv or a fragmented .mp4 plays up to "
            "where it stopped), or delete it to free the space."
        )


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Serialises :func:`claim` calls on one folder between processes (a short critical section)."""
    if fcntl is None:
        yield
        return
    try:
        fd = _open(folder)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def claim(dest: str | os.PathLike[str], *, folder: bool = False) -> Claim:
    """Creates and locks the partial file (or folder) ``dest`` grows in.

    Args:
        dest: the destination; its folder must exist.
        folder: the output is a folder (a PNG sequence).

    Returns:
        The claim; call :meth:`Claim.release` once the partial file is renamed or deleted.

    Raises:
        DestinationError: another run is writing to ``dest`` now.
        OSError: the partial file cannot be created.
    """
    dest = Path(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    with _folder_lock(parent):
        stale = []
        for other in partials(dest):
            try:
                fd = _open(other)
            except OSError:
                continue
            try:
                if not _lock(fd):
                    raise DestinationError(
                        f"'{dest}' is being written by another run now (its unfinished file is "
                        f"{other.name}); wait for it to finish, or give another name."
                    )
            finally:
                os.close(fd)  # closing drops the test lock
            stale.append(other)
        temp = partial_name(dest, secrets.token_hex(4), folder)
        if folder:
            temp.mkdir()
        else:
            os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        fd = _open(temp)
        _lock(fd)
    return Claim(dest, temp, stale, fd)
