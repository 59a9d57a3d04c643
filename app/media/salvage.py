"""What is left of a video whose writing stopped abruptly (a full disk, a crash): kept playable.

Recordings to ``.mp4`` and ``.mov`` are written as fragmented MP4 (a short header, then one
``moof`` + ``mdat`` pair per second of video), so a file cut anywhere holds every complete fragment
before the cut; :func:`trim_fragments` removes the incomplete tail so players and decoders reach
the end cleanly. Matroska needs no trimming: its clusters are read up to the cut.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

#: Container options that make the MP4 and MOV muxers write a fragment at every keyframe.
FRAGMENTED_MP4 = {"movflags": "+frag_keyframe+empty_moov+delay_moov+default_base_moof"}


def _boxes(data: bytes) -> list[tuple[str, int, int]]:
    """The top-level boxes that lie wholly in ``data``: (type, start, end)."""
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > len(data):
                break
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:  # runs to the end of the file
            size = len(data) - pos
        if size < header or pos + size > len(data):
            break
        boxes.append((kind.decode("latin-1"), pos, pos + size))
        pos += size
    return boxes


def trim_fragments(path: str | os.PathLike[str]) -> int:
    """Cuts a fragmented MP4 after its last complete fragment.

    Args:
        path: the file.

    Returns:
        The number of bytes removed (0 when the file ends cleanly or is not fragmented MP4).
    """
    path = Path(path)
    data = path.read_bytes()
    boxes = _boxes(data)
    if not any(kind == "moof" for kind, _, _ in boxes):
        return 0
    end = 0
    for i, (kind, _start, stop) in enumerate(boxes):
        if kind == "moof":
            following = boxes[i + 1] if i + 1 < len(boxes) else None
            if following is None or following[0] != "mdat":
                break
            continue
        end = stop
    removed = len(data) - end
    if removed:
        with open(path, "r+b") as handle:
            handle.truncate(end)
    return removed
