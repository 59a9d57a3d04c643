"""Real footage for the live-quality benchmark, its ideal mattes, and the edge-band error.

Two kinds of footage from ``../shared/data/footage``:

- ``A``: the ASL clips (a person signing, hand motion) joined into one 640x480 lossless video,
  played at 960x720;
- ``B``: the doctor clip (a seated person typing, fine detail, little motion), 960x540.

The *ideal* is the network run offline on every frame at RVM's ratio, composited on a colour;
what a live run sends out is compared with it frame by frame, in the band 12 px either side of
the ideal matte's 0.5 contour. Decoded frames and ideals are cached (they take minutes to make).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import platformdirs

from app.capture.files import VideoFileSource
from app.compose.host import HostMatte, blend
from app.matting.engine import build_engine

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "footage"
BACKGROUND = (60, 120, 216)  # the colour the composites are made on (#3c78d8)
BAND_PX = 12
JOIN_MARGIN = 20


@dataclass
class Footage:
    """One kind of footage, decoded as the live source delivers it.

    Attributes:
        name: ``A`` or ``B``.
        path: the video the live run plays.
        size: delivered (width, height).
        frames: ``N x H x W x 3`` uint8 RGB.
        joins: frame indices where one clip ends and the next begins (0 and N included).
    """

    name: str
    path: Path
    size: tuple[int, int]
    frames: np.ndarray
    joins: list[int]

    def scored(self) -> np.ndarray:
        """Boolean per frame: further than :data:`JOIN_MARGIN` frames from every clip join."""
        idx = np.arange(len(self.frames))
        far = np.ones(len(self.frames), bool)
        for j in self.joins:
            far &= np.abs(idx - j) > JOIN_MARGIN
        return far


def cache_dir() -> Path:
    """Where decoded footage and ideals are kept between runs."""
    path = Path(platformdirs.user_cache_dir("mattecam")) / "live_quality"
    path.mkdir(parents=True, exist_ok=True)
    return path


def key(image: np.ndarray) -> bytes:
    """A cheap fingerprint of a frame, to tell which source frame an output frame was made from."""
    return hashlib.blake2b(image[::7, ::5].tobytes(), digest_size=16).digest()


def _join_asl(out: Path) -> list[int]:
    """Writes the ASL clips one after the other into a lossless video; returns the joins."""
    clips = sorted(DATA.glob("asl_*.mkv"))
    if not clips:
        raise FileNotFoundError(f"No ASL clips in {DATA}.")
    joins, count = [0], 0
    tmp = out.with_suffix(".tmp.mkv")
    with av.open(str(tmp), "w") as dst:
        stream = dst.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv444p"
        for clip in clips:
            with av.open(str(clip)) as src:
                for frame in src.decode(video=0):
                    rgb = frame.to_ndarray(format="rgb24")
                    if rgb.shape[:2] != (480, 640):
                        rgb = cv2.resize(rgb, (640, 480), interpolation=cv2.INTER_AREA)
                    new = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                    for packet in stream.encode(new):
                        dst.mux(packet)
                    count += 1
            joins.append(count)
        for packet in stream.encode():
            dst.mux(packet)
    tmp.replace(out)
    return joins


def _decode(path: Path, size: tuple[int, int]) -> np.ndarray:
    source = VideoFileSource(path, resolution=size, pace="none").open()
    try:
        frames = []
        while (image := source.read()) is not None:
            frames.append(image)
    finally:
        source.close()
    return np.stack(frames)


def load(name: str) -> Footage:
    """Footage ``A`` or ``B``, decoded through the app's own video source.

    Raises:
        FileNotFoundError: ``../shared/data/footage`` is not there.
    """
    cache = cache_dir()
    if name == "A":
        path, size = cache / "asl_joined.mkv", (960, 720)
        joins_file = cache / "asl_joins.npy"
        if not path.is_file() or not joins_file.is_file():
            np.save(joins_file, np.array(_join_asl(path)))
        joins = [int(j) for j in np.load(joins_file)]
    elif name == "B":
        path, size = DATA / "volcomix_pixabay_doctor-26732.mp4", (960, 540)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing.")
        joins = []
    else:
        raise ValueError(f"unknown footage {name!r}")
    frames_file = cache / f"frames_{name}.npy"
    if not frames_file.is_file():
        np.save(frames_file, _decode(path, size))
    frames = np.load(frames_file, mmap_mode="r")
    if name == "B":
        joins = [0, len(frames)]
    return Footage(name, path, size, frames, joins)


def background(height: int, width: int) -> np.ndarray:
    """The uniform colour picture composites are made on."""
    return np.broadcast_to(np.array(BACKGROUND, np.uint8), (height, width, 3)).copy()


def composite(frame: np.ndarray, fgr, pha) -> np.ndarray:
    """The app's host compositing of one frame with a matte (torch ``[1, C, H, W]`` maps)."""
    h, w = frame.shape[:2]
    return blend(frame, HostMatte(frame, fgr, pha), background(h, w))


@dataclass
class Ideal:
    """The network on every frame at RVM's ratio: alpha (uint8) and composite per frame."""

    pha: np.ndarray
    comp: np.ndarray


def ideal(footage: Footage) -> Ideal:
    """The ideal of ``footage``, made once and cached."""
    cache = cache_dir()
    pha_file = cache / f"ideal_pha_{footage.name}.npy"
    comp_file = cache / f"ideal_comp_{footage.name}.npy"
    if not (pha_file.is_file() and comp_file.is_file()):
        engine = build_engine("mobilenetv3", None, "cpu", "fp32")
        n, h, w = footage.frames.shape[:3]
        pha = np.lib.format.open_memmap(pha_file.with_suffix(".tmp.npy"), "w+", np.uint8, (n, h, w))
        comp = np.lib.format.open_memmap(
            comp_file.with_suffix(".tmp.npy"), "w+", np.uint8, (n, h, w, 3)
        )
        for i in range(n):
            frame = np.ascontiguousarray(footage.frames[i])
            matte = engine.step(frame, t=i / 30)
            pha[i] = HostMatte(frame, matte.fgr, matte.pha).alpha
            comp[i] = composite(frame, matte.fgr, matte.pha)
        pha.flush()
        comp.flush()
        del pha, comp
        pha_file.with_suffix(".tmp.npy").replace(pha_file)
        comp_file.with_suffix(".tmp.npy").replace(comp_file)
    return Ideal(np.load(pha_file, mmap_mode="r"), np.load(comp_file, mmap_mode="r"))


def band(pha: np.ndarray, width: int = BAND_PX) -> np.ndarray:
    """Pixels within ``width`` px of the alpha's 0.5 contour (either side)."""
    inside = (pha >= 128).astype(np.uint8)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    return np.where(inside > 0, d_in, d_out) <= width


def edge_error(out: np.ndarray, ideal_comp: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute difference of two composites over ``mask``, x1e3 of full scale."""
    if not mask.any():
        return float("nan")
    diff = cv2.absdiff(out, ideal_comp)[mask]
    return float(diff.mean()) / 255 * 1e3


def stability(
    out: np.ndarray,
    out_prev: np.ndarray,
    ideal_comp: np.ndarray,
    ideal_prev: np.ndarray,
    mask: np.ndarray,
) -> float:
    """Mean over ``mask`` of ``|(out - out_prev) - (ideal - ideal_prev)|``, x1e3 of full scale."""
    if not mask.any():
        return float("nan")
    a = out[mask].astype(np.int16) - out_prev[mask]
    b = ideal_comp[mask].astype(np.int16) - ideal_prev[mask]
    return float(np.abs(a - b).mean()) / 255 * 1e3
