"""Still pictures: reading any image file as RGB, listing a folder of frames, writing PNGs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

from app.media.formats import IMAGE_SUFFIXES, MediaError, reason

# Fast zlib level with run-length matching: quicker and smaller than the default strategy on
# camera frames.
_FAST_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads an image file as ``H x W x 3`` uint8 RGB (alpha dropped, grey expanded).

    Raises:
        MediaError: the file is missing, unreadable, damaged or not an image; the message reads
            ``'PATH' cannot be read (...)`` or ``'PATH' cannot be read: it is damaged ...``.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise MediaError(f"'{path}' cannot be read ({reason(exc)})") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.size == 0:
        raise MediaError(
            f"'{path}' cannot be read: it is damaged or not a PNG, JPEG, BMP, WebP or TIFF"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes to (width, height): area averaging to shrink, bilinear to enlarge."""
    width, height = size
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrink = width * height < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def _natural_key(path: Path) -> list[object]:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def image_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files of a folder in natural name order (``2.png`` before ``10.png``)."""
    files = Path(folder).iterdir()
    return sorted(
        (p for p in files if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=_natural_key
    )


def write_image(path: str | os.PathLike[str], image: np.ndarray, *, fast: bool = False) -> None:
    """Writes ``H x W`` grey, RGB or RGBA uint8 pixels to an image file (format by suffix).

    Args:
        path: the file to write.
        image: the pixels.
        fast: quick PNG compression (for frame sequences).

    Raises:
        OSError: the picture cannot be encoded or written.
    """
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    suffix = Path(path).suffix.lower() or ".png"
    params = _FAST_PNG if fast and suffix == ".png" else []
    ok, data = cv2.imencode(suffix, image, params)
    if not ok:
        raise OSError(f"could not encode {Path(path).name}")
    data.tofile(path)
