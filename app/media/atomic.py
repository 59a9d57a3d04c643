"""Files and folders written under a hidden temporary name and renamed into place when complete.

A reader never sees a half-written output: until :meth:`AtomicPath.commit` the destination keeps
what it held before (or stays absent), and a failure removes the temporary file. The temporary file
is claimed exclusively (:func:`app.media.destination.claim`): a second writer to the same
destination is refused while the first one writes, and partial files of earlier runs that ended
without finishing are found on the way (:attr:`AtomicPath.stale`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from app.media.destination import claim


class AtomicPath:
    """A temporary file or folder beside ``dest`` that becomes ``dest`` on :meth:`commit`.

    The temporary name is hidden (``.NAME.XXXX.part`` plus the destination's suffix, so encoders
    that pick a format by suffix still see it) and gets the permissions a new file would get (see
    :func:`~app.media.destination.claim`). As a context manager it commits when the block
    completes and discards when it raises.

    Args:
        dest: the final path; its folder must exist.
        folder: True creates a folder (a PNG sequence), False a file; None creates neither: the
            writer makes a file or a folder at :attr:`temp` (for tools that choose, such as a
            model package), inside a hidden folder of its own.

    Raises:
        OSError: the temporary file cannot be created.
        app.media.destination.DestinationError: another writer is writing ``dest`` now.
    """

    def __init__(self, dest: str | os.PathLike[str], *, folder: bool | None = False) -> None:
        self.dest = Path(dest)
        self.folder = folder
        self.committed = False
        self._claim = claim(self.dest, folder=folder is not False)
        self.stale = self._claim.stale
        self._work: Path | None = None
        if folder is None:
            self._work = self._claim.temp
            self.temp = self._work / self.dest.name
        else:
            self.temp = self._claim.temp

    def stale_note(self) -> str:
        """One sentence on partial files of earlier runs beside the destination, else empty."""
        return self._claim.stale_note()

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
        self._claim.release()

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
        self._claim.release()

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
