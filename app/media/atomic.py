"""Files and folders written under a hidden temporary name and renamed into place when complete.

A reader never sees a half-written output: until :meth:`AtomicPath.commit` the destination keeps
what it held before (or stays absent), and a failure removes the temporary file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _read_umask() -> int:
    """The process umask, read without changing it (``os.umask`` would race with other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


_UMASK = _read_umask()


class AtomicPath:
    """A temporary file or folder beside ``dest`` that becomes ``dest`` on :meth:`commit`.

    The temporary name is hidden (``.NAME.XXXX.part`` plus the destination's suffix, so encoders
    that pick a format by suffix still see it) and gets the permissions a new file would get. As a
    context manager it commits when the block completes and discards when it raises.

    Args:
        dest: the final path; its folder must exist.
        folder: True creates a folder (a PNG sequence), False a file; None creates neither: the
            writer makes a file or a folder at :attr:`temp` (for tools that choose, such as a
            model package), inside a hidden folder of its own.

    Raises:
        OSError: the temporary file cannot be created.
    """

    def __init__(self, dest: str | os.PathLike[str], *, folder: bool | None = False) -> None:
        self.dest = Path(dest)
        self.folder = folder
        self.committed = False
        parent = self.dest.parent
        prefix = f".{self.dest.name}."
        self._work: Path | None = None
        if folder is None:
            self._work = Path(tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=".part"))
            self.temp = self._work / self.dest.name
            return
        if folder:
            self.temp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=".part"))
        else:
            fd, name = tempfile.mkstemp(
                dir=parent, prefix=prefix, suffix=f".part{self.dest.suffix}"
            )
            os.close(fd)
            self.temp = Path(name)
        try:
            os.chmod(self.temp, (0o777 if folder else 0o666) & ~_UMASK)
        except BaseException:
            self.discard()
            raise

    def commit(self) -> None:
        """Renames the temporary file or folder to the destination, replacing what was there.

        Whatever is there already is moved aside first, put back if the rename fails, and deleted
        after it succeeds.

        Raises:
            OSError: the rename failed; the temporary file is kept for :meth:`discard`.
        """
        if self.folder is False:
            os.replace(self.temp, self.dest)
        else:
            parent, prefix = self.dest.parent, f".{self.dest.name}."
            aside = Path(tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=".old"))
            try:
                moved = self.dest.exists() or self.dest.is_symlink()
                if moved:
                    os.rename(self.dest, aside / "previous")
                try:
                    os.rename(self.temp, self.dest)
                except OSError:
                    if moved:
                        os.rename(aside / "previous", self.dest)
                    raise
            finally:
                shutil.rmtree(aside, ignore_errors=True)
        self.committed = True
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)

    def discard(self) -> None:
        """Deletes the temporary file or folder; safe to call twice and after :meth:`commit`."""
        if self.committed:
            return
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)
        elif self.folder:
            shutil.rmtree(self.temp, ignore_errors=True)
        else:
            self.temp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicPath:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self.commit()
            finally:
                self.discard()
        else:
            self.discard()


@contextlib.contextmanager
def atomic_write(dest: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Yields an open temporary file that replaces ``dest`` when the block completes.

    Args:
        dest: the final path; its folder must exist.
        mode: ``wb`` for bytes, ``w`` for text.

    Raises:
        OSError: the file cannot be created or renamed; ``dest`` is left as it was.
    """
    with AtomicPath(dest) as path, open(path.temp, mode) as handle:
        yield handle
