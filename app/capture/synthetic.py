"""A generated stream: a person-like figure moving over a colourful textured room.

Frames are a pure function of (seed, size, fps, index), so tests and benchmarks get the same
pictures everywhere without a camera or a data file. :meth:`SyntheticSource.alpha` gives the
figure's exact matte for any frame. :func:`make_clip` and :func:`make_frames` make whole clips at
once for the network's tests and benchmarks.
"""

from __future__ import annotations

import math
import re

import cv2
import numpy as np

from app.capture.base import FrameSource, Requested, SourceError, check_resolution
from app.capture.kinds import register_source
from app.capture.pacing import IndexedSource

DEFAULT_SIZE = (640, 480)
DEFAULT_FPS = 30.0
_SPEC = re.compile(r"(?:(\d+)\s*[xX]\s*(\d+))?\s*(?:@\s*(\d+(?:\.\d*)?))?")


def parse_synthetic_spec(text: str) -> tuple[tuple[int, int] | None, float | None]:
    """Parses the part after ``synthetic:``: ``WxH``, ``WxH@FPS``, ``@FPS`` or nothing.

    Raises:
        SourceError: the text has another form.
    """
    m = _SPEC.fullmatch(text.strip())
    if not m:
        raise SourceError(
            f"Synthetic source 'synthetic:{text}' is not of the form synthetic:WIDTHxHEIGHT@FPS, "
            "e.g. synthetic:1280x720@30."
        )
    size = (int(m.group(1)), int(m.group(2))) if m.group(1) else None
    fps = float(m.group(3)) if m.group(3) else None
    return size, fps


def _hue_rgb(hue: float, sat: int = 200, val: int = 230) -> tuple[int, int, int]:
    """An RGB colour for a hue in [0, 1)."""
    hsv = np.array([[[int(hue * 180) % 180, sat, val]]], dtype=np.uint8)
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


@register_source("synthetic")
class SyntheticSource(IndexedSource):
    """Generated frames of any size and rate, deterministic from a seed.

    Args:
        resolution: (width, height); None means 640x480.
        fps: frame rate; None means 30.
        pace: ``realtime`` (frames at the frame rate) or ``none`` (as fast as asked).
        frames: end the stream after this many frames; None never ends.
        seed: picks the room's colours and layout and the figure's clothes.

    Raises:
        SourceError: a request is out of range.
    """

    def __init__(
        self,
        *,
        resolution: tuple[int, int] | None = None,
        fps: float | None = None,
        pace: str = "realtime",
        frames: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(resolution=resolution, fps=fps, pace=pace)
        if frames is not None and (isinstance(frames, bool) or int(frames) != frames or frames < 1):
            raise SourceError(f"A synthetic stream needs at least 1 frame, got {frames!r}.")
        self._frames = None if frames is None else int(frames)
        self._seed = int(seed)
        self._background: np.ndarray | None = None
        self._shirt: np.ndarray | None = None
        self._colors: dict[str, tuple[int, int, int]] = {}

    @classmethod
    def from_spec(cls, target: str, request: Requested) -> FrameSource:
        """Builds the source from ``WxH@FPS`` (or less); explicit requests take precedence."""
        size, rate = parse_synthetic_spec(target)
        resolution = request.resolution or check_resolution(size)
        return cls(resolution=resolution, fps=request.fps or rate, pace=request.pace)

    @property
    def name(self) -> str:
        """``Synthetic WxH@FPS``."""
        width, height = self._requested.resolution or DEFAULT_SIZE
        return f"Synthetic {width}x{height}@{self._requested.fps or DEFAULT_FPS:g}"

    @property
    def frame_count(self) -> int | None:
        """The frame limit, or None for an endless stream."""
        return self._frames

    @property
    def seed(self) -> int:
        """The seed the pictures derive from."""
        return self._seed

    # Drawing --------------------------------------------------------------------------------

    def _open(self) -> None:
        width, height = self._requested.resolution or DEFAULT_SIZE
        rng = np.random.default_rng(self._seed)
        self._background = self._make_room(rng, width, height)
        self._shirt = self._make_shirt(rng, width, height)
        self._colors = {
            "skin": _hue_rgb(0.06 + 0.03 * rng.random(), 110, 120 + int(120 * rng.random())),
            "hair": _hue_rgb(0.08 * rng.random(), 150, 40 + int(60 * rng.random())),
        }
        self._start((width, height), self._requested.fps or DEFAULT_FPS)

    @staticmethod
    def _make_room(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
        """A smooth colour field with furniture-like blocks, stripes and fine grain."""
        grid = rng.integers(30, 256, size=(3, 4, 3), dtype=np.uint8)
        room = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        for _ in range(6):
            x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
            x1 = x0 + int(rng.integers(width // 12, width // 3))
            y1 = y0 + int(rng.integers(height // 12, height // 2))
            color = tuple(int(c) for c in rng.integers(0, 256, size=3))
            cv2.rectangle(room, (x0, y0), (x1, y1), color, -1)
            cv2.rectangle(room, (x0, y0), (x1, y1), (20, 20, 20), max(1, width // 320))
        ys, xs = np.mgrid[0:height, 0:width]
        stripes = (np.sin((xs + 2 * ys) * (2 * math.pi / max(8, width // 40))) > 0.6) * 28
        grain = rng.integers(-14, 15, size=(height, width, 1))
        out = room.astype(np.int16) - stripes[..., None].astype(np.int16) + grain
        return np.clip(out, 0, 255).astype(np.uint8)

    @staticmethod
    def _make_shirt(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
        """Plaid cloth twice the frame width, so the figure can carry it as it moves."""
        colors = np.array(
            [_hue_rgb(rng.random()), _hue_rgb(rng.random(), 160, 140), _hue_rgb(rng.random())],
            dtype=np.uint8,
        )
        period = max(4, height // 24)
        rows = (np.arange(height)[:, None] // period) % 2
        cols = (np.arange(2 * width)[None, :] // period) % 2
        return np.ascontiguousarray(colors[rows + cols])

    def _pose(self, index: int) -> tuple[int, int, float]:
        """Figure centre x, head centre y and sway angle for a frame."""
        width, height = self.width, self.height
        t = index / self.fps
        cx = width / 2 + 0.22 * width * math.sin(2 * math.pi * t / 5.0)
        cy = 0.40 * height + 0.03 * height * math.sin(2 * math.pi * t / 1.7)
        tilt = 8.0 * math.sin(2 * math.pi * t / 3.1)
        return round(cx), round(cy), tilt

    def _draw_figure(self, index: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
        """Draws the figure within its box.

        Returns:
            The picture and the matte (uint8, 255 inside) of the box, and the box
            (x0, y0, x1, y1) in frame coordinates.
        """
        width, height = self.width, self.height
        cx, cy, tilt = self._pose(index)
        r = max(3, int(0.13 * height))
        axes = (int(0.42 * height), int(0.45 * height))
        reach = max(axes[0], r) + 2
        x0, y0 = max(0, cx - reach), max(0, cy - r - 2)
        x1, y1 = min(width, cx + reach + 1), height
        offset = int(np.clip(width - cx, 0, width))
        figure = self._shirt[y0:y1, offset + x0 : offset + x1].copy()
        alpha = np.zeros((y1 - y0, x1 - x0), np.uint8)
        head = (cx - x0, cy - y0)
        head_axes = (int(0.82 * r), r)
        neck = ((cx - r // 3 - x0, cy + r // 2 - y0), (cx + r // 3 - x0, int(0.64 * height) - y0))
        cv2.ellipse(
            alpha, (cx - x0, int(1.05 * height) - y0), axes, 0, 0, 360, 255, -1, cv2.LINE_AA
        )
        cv2.rectangle(alpha, *neck, 255, -1)
        cv2.ellipse(alpha, head, head_axes, tilt, 0, 360, 255, -1, cv2.LINE_AA)
        skin, hair = self._colors["skin"], self._colors["hair"]
        cv2.rectangle(figure, *neck, skin, -1)
        cv2.ellipse(figure, head, head_axes, tilt, 0, 360, skin, -1, cv2.LINE_AA)
        cv2.ellipse(figure, head, (int(0.86 * r), int(1.03 * r)), tilt, 180, 360, hair, -1)
        eye = max(1, r // 9)
        for side in (-1, 1):
            cv2.circle(figure, (head[0] + side * r // 3, head[1] + r // 8), eye, (30, 30, 30), -1)
        return figure, alpha, (x0, y0, x1, y1)

    def alpha(self, index: int) -> np.ndarray:
        """The figure's exact matte for frame ``index`` (``H x W`` uint8, 255 = figure).

        Raises:
            RuntimeError: the source is not open.
        """
        if self._background is None:
            raise RuntimeError(f"{self.name} is not open: call open() first.")
        _, local, (x0, y0, x1, y1) = self._draw_figure(index)
        alpha = np.zeros((self.height, self.width), np.uint8)
        alpha[y0:y1, x0:x1] = local
        return alpha

    def _frame(self, index: int) -> np.ndarray:
        width, height = self.width, self.height
        frame = self._background.copy()
        t = index / self.fps
        bx = int((0.5 + 0.45 * math.sin(2 * math.pi * t / 2.3)) * width)
        by = int((0.25 + 0.2 * math.cos(2 * math.pi * t / 1.9)) * height)
        color = _hue_rgb((t / 4.0) % 1.0, 230, 250)
        cv2.circle(frame, (bx, by), max(2, height // 14), color, -1, cv2.LINE_AA)
        figure, alpha, (x0, y0, x1, y1) = self._draw_figure(index)
        weight = alpha.astype(np.float32) * (1.0 / 255.0)
        frame[y0:y1, x0:x1] = cv2.blendLinear(figure, frame[y0:y1, x0:x1], weight, 1.0 - weight)
        return frame

    def _close(self) -> None:
        self._background = None
        self._shirt = None


# Whole clips ------------------------------------------------------------------------------


def make_clip(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Returns ``[frames, height, width, 3]`` uint8 RGB: a textured backdrop and moving shapes.

    A head-and-shoulders silhouette drifts across a smooth gradient with stripes, while two soft
    discs orbit; every frame differs, and no region is flat or pure noise.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xx / width, yy / height
    phase = rng.uniform(0, 2 * np.pi, size=6)
    back = np.stack(
        [
            0.5 + 0.3 * np.sin(6 * u + phase[0]) * np.cos(4 * v + phase[1]),
            0.4 + 0.25 * np.sin(9 * v + 3 * u + phase[2]),
            0.6 + 0.2 * np.cos(5 * u - 7 * v + phase[3]),
        ],
        axis=-1,
    )
    back += 0.08 * np.sin(40 * u + 25 * v)[..., None]
    out = np.empty((frames, height, width, 3), np.uint8)
    for i in range(frames):
        t = i / max(frames - 1, 1)
        img = back.copy()
        cx = 0.35 + 0.3 * t
        head = ((u - cx) / 0.11) ** 2 + ((v - 0.38) / 0.16) ** 2
        body = ((u - cx) / 0.28) ** 2 + ((v - 1.0) / 0.42) ** 2
        person = np.clip(1.5 - np.minimum(head, body) * 1.5, 0, 1)[..., None]
        skin = np.array([0.85, 0.62, 0.5], np.float32)
        shirt = np.array([0.15, 0.3, 0.75], np.float32) + 0.05 * np.sin(30 * v)[..., None]
        colour = np.where((v < 0.55)[..., None], skin, shirt)
        img = img * (1 - person) + colour * person
        for k, col in enumerate(([1.0, 0.85, 0.1], [0.1, 0.9, 0.4])):
            ang = 2 * np.pi * t + k * np.pi + phase[4 + k]
            d = ((u - 0.5 - 0.3 * np.cos(ang)) ** 2 + (v - 0.5 - 0.3 * np.sin(ang)) ** 2) / 0.006
            disc = np.clip(1.2 - d, 0, 1)[..., None]
            img = img * (1 - disc) + np.array(col, np.float32) * disc
        out[i] = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return out


def _person(img: np.ndarray, cx: int, s: float) -> None:
    """Draws a cartoon head and shoulders centred at column ``cx`` with scale ``s`` in place."""
    h = img.shape[0]

    def at(fy: float) -> int:
        return int(h * fy)

    def n(x: float) -> int:
        return max(1, int(x * s))

    cv2.ellipse(img, (cx, at(1.05)), (n(95), n(70)), 0, 0, 360, (40, 60, 120), -1)
    cv2.rectangle(img, (cx - n(14), at(0.55)), (cx + n(14), at(0.75)), (200, 150, 120), -1)
    cv2.ellipse(img, (cx, at(0.42)), (n(30), n(40)), 0, 0, 360, (215, 165, 135), -1)
    cv2.ellipse(img, (cx, at(0.36)), (n(33), n(32)), 0, 180, 360, (50, 35, 25), -1)
    for dx in (-11, 11):
        cv2.ellipse(img, (cx + int(dx * s), at(0.43)), (n(5), n(3)), 0, 0, 360, (40, 30, 30), -1)
    cv2.ellipse(img, (cx, at(0.53)), (n(9), n(3)), 0, 0, 360, (150, 60, 60), -1)
    cv2.line(img, (cx, at(0.45)), (cx, at(0.49)), (170, 120, 100), n(2))


def make_frames(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Returns ``[frames, height, width, 3]`` uint8 RGB frames of a person crossing a room.

    The person covers roughly a quarter of the frame; the network's alpha is near 1 there and near
    0 on the backdrop (a gradient wall, a door and a picture, with a little sensor noise).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = xx / width, yy / height
    wall = np.stack([0.75 - 0.2 * v + 0.05 * np.sin(9 * u), 0.72 - 0.15 * u, 0.65 + 0.1 * v], -1)
    room = (wall * 255).astype(np.uint8)
    cv2.rectangle(
        room,
        (int(0.05 * width), int(0.1 * height)),
        (int(0.22 * width), int(0.9 * height)),
        (120, 90, 60),
        -1,
    )
    cv2.rectangle(
        room,
        (int(0.78 * width), int(0.2 * height)),
        (int(0.97 * width), int(0.35 * height)),
        (60, 110, 70),
        -1,
    )
    out = np.empty((frames, height, width, 3), np.uint8)
    for i in range(frames):
        t = i / max(frames - 1, 1)
        img = room.copy()
        _person(img, int((0.42 + 0.16 * t) * width), height / 192)
        img = cv2.GaussianBlur(img, (3, 3), 0.8)
        noisy = img + rng.normal(0, 3, img.shape)
        out[i] = np.clip(noisy, 0, 255).astype(np.uint8)
    return out
