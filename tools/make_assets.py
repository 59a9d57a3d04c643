"""Generates the bundled backgrounds (``assets/backgrounds/``) and the app icons (``assets/``).

Every picture is drawn from simple shapes, gradients and blur with a fixed seed, so running this
again gives the same files. Backgrounds are 1920x1080 JPEG (quality 85); the icon is a 256x256 PNG
plus a scalable SVG.

Usage::

    python tools/make_assets.py [--out assets]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

W, H = 1920, 1080
JPEG_QUALITY = 85
SEED = 20240611

Image = np.ndarray  # H x W x 3 float32 RGB in 0..1


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Normalised pixel coordinates: x in 0..1 across, y in 0..1 down."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    return x / (W - 1), y / (H - 1)


def _rgb(hex_color: str) -> np.ndarray:
    h = hex_color.lstrip("#")
    return np.array([int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4)], np.float32)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Linear mix of two colours (or images) by a weight map ``t``."""
    t = t[..., None] if t.ndim == 2 else t
    return a * (1.0 - t) + b * t


def _smooth(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _ramp(t: np.ndarray, stops: list[tuple[float, str]]) -> Image:
    """Maps a 0..1 map through colour stops ``[(position, '#rrggbb'), ...]``."""
    out = np.zeros((*t.shape, 3), np.float32)
    out[:] = _rgb(stops[0][1])
    for (p0, c0), (p1, c1) in itertools.pairwise(stops):
        w = _smooth((t - p0) / max(p1 - p0, 1e-6))
        inside = (t >= p0)[..., None]
        out = np.where(inside, _mix(_rgb(c0), _rgb(c1), w), out)
    return out


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma)


def _glow(x: np.ndarray, y: np.ndarray, cx: float, cy: float, radius: float) -> np.ndarray:
    """A soft round light: 1 at the centre, falling off smoothly (aspect-corrected)."""
    d2 = ((x - cx) * (W / H)) ** 2 + (y - cy) ** 2
    return np.exp(-d2 / (2.0 * radius**2)).astype(np.float32)


def _vignette(x: np.ndarray, y: np.ndarray, strength: float, cx: float = 0.5, cy: float = 0.5):
    d = np.sqrt(((x - cx) * 1.1) ** 2 + ((y - cy) * 1.25) ** 2)
    return (1.0 - strength * _smooth((d - 0.25) / 0.55))[..., None]


def _finish(img: Image, rng: np.random.Generator, grain: float = 0.6) -> np.ndarray:
    """Adds a faint grain (hides gradient banding) and converts to uint8 RGB."""
    noise = rng.normal(0.0, grain / 255.0, (H, W, 1)).astype(np.float32)
    return (np.clip(img + noise, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# --- backgrounds ---------------------------------------------------------------------------------


def soft_gradient(rng: np.random.Generator) -> np.ndarray:
    """Peach to lilac to teal, with large soft colour clouds."""
    x, y = _grid()
    t = np.clip(0.62 * x + 0.38 * y, 0, 1)
    img = _ramp(t, [(0.0, "#f6c7a8"), (0.45, "#d7b8e6"), (1.0, "#8fc9d4")])
    for cx, cy, r, col, a in [
        (0.15, 0.8, 0.35, "#ffd9b0", 0.55),
        (0.8, 0.2, 0.3, "#c6b5f2", 0.45),
        (0.6, 0.85, 0.28, "#9ee0d6", 0.4),
    ]:
        img = _mix(img, _rgb(col), a * _glow(x, y, cx, cy, r))
    return _finish(img * _vignette(x, y, 0.12), rng)


def studio_backdrop(rng: np.random.Generator) -> np.ndarray:
    """A grey-blue seamless paper backdrop, lit from behind the subject, with a vignette."""
    x, y = _grid()
    base = _ramp(y, [(0.0, "#39424d"), (0.55, "#5d6b79"), (0.78, "#56626e"), (1.0, "#3a424b")])
    light = _glow(x, y, 0.5, 0.42, 0.32)
    img = base + 0.32 * light[..., None] * _rgb("#cfe0f0")
    # The floor sweep: a slightly darker band where the paper curves towards the camera.
    sweep = _smooth((y - 0.74) / 0.12) * (1 - _smooth((y - 0.95) / 0.05))
    img = img * (1.0 - 0.08 * sweep[..., None])
    return _finish(img * _vignette(x, y, 0.55), rng, grain=1.2)


def bokeh_lights(rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus city lights at dusk: warm and cool discs on a deep blue."""
    x, y = _grid()
    img = _ramp(y, [(0.0, "#0b1430"), (0.6, "#1a1c3c"), (1.0, "#2a1a2c")])
    lights = np.zeros((H, W, 3), np.float32)
    palette = ["#ff9d3c", "#ffc86b", "#ff6a4d", "#5aa2ff", "#b77dff", "#ffe7b0"]
    for layer, (count, r_min, r_max, gain) in enumerate(
        [(40, 14, 34, 0.55), (26, 36, 70, 0.4), (12, 80, 130, 0.22)]
    ):
        disc = np.zeros((H, W, 3), np.float32)
        for _ in range(count):
            cx = int(rng.uniform(-0.05, 1.05) * W)
            cy = int((0.12 + 0.8 * rng.beta(2.0, 2.0)) * H)
            r = int(rng.uniform(r_min, r_max))
            col = _rgb(palette[int(rng.integers(len(palette)))]) * rng.uniform(0.45, 1.0) * gain
            overlay = np.zeros_like(disc)
            cv2.circle(overlay, (cx, cy), r, col.tolist(), -1, cv2.LINE_AA)
            # A brighter rim, as real lens bokeh has.
            cv2.circle(overlay, (cx, cy), r, (col * 1.35).tolist(), max(2, r // 9), cv2.LINE_AA)
            disc = np.maximum(disc, overlay) + 0.35 * overlay
        lights += _blur(disc, 2 + 4 * layer)
    img = img + lights
    img = img / (1.0 + 0.3 * img)  # gentle tone curve so overlapping lights do not clip
    return _finish(img * _vignette(x, y, 0.35), rng)


def _blob(
    canvas: np.ndarray, rng: np.random.Generator, cx: int, cy: int, size: int, colors
) -> None:
    """A leafy cluster of overlapping ellipses around (cx, cy)."""
    for _ in range(14):
        dx, dy = rng.normal(0, size * 0.45, 2)
        axes = (int(rng.uniform(0.35, 0.7) * size), int(rng.uniform(0.3, 0.6) * size))
        col = tuple(int(c) for c in colors[int(rng.integers(len(colors)))])
        center = (int(cx + dx), int(cy + dy))
        cv2.ellipse(canvas, center, axes, float(rng.uniform(0, 180)), 0, 360, col, -1, cv2.LINE_AA)


def office(rng: np.random.Generator) -> np.ndarray:
    """A bright office out of focus: a window on the left, shelves on the right, a plant."""
    x, y = _grid()
    canvas = (_ramp(x, [(0.0, "#ddd7cc"), (1.0, "#b9b0a3")]) * 255).astype(np.uint8)
    # Window: sky, far trees, frame bars.
    wx0, wy0, wx1, wy1 = 140, 110, 760, 790
    sky = _ramp(
        np.linspace(0, 1, wy1 - wy0, dtype=np.float32)[:, None].repeat(wx1 - wx0, 1),
        [(0.0, "#cfe4f6"), (1.0, "#f4f7f6")],
    )
    view = (sky * 255).astype(np.uint8)
    trees = [(120, 150, 110), (140, 172, 120), (104, 138, 98)]
    for cx in range(40, wx1 - wx0, 130):
        _blob(view, rng, cx + int(rng.integers(-30, 30)), 580, 95, trees)
    canvas[wy0:wy1, wx0:wx1] = view
    frame = (214, 208, 198)
    cv2.rectangle(canvas, (wx0, wy0), (wx1, wy1), frame, 16)
    cv2.line(canvas, ((wx0 + wx1) // 2, wy0), ((wx0 + wx1) // 2, wy1), frame, 12)
    cv2.line(canvas, (wx0, 450), (wx1, 450), frame, 12)
    cv2.rectangle(canvas, (wx0 - 30, wy1), (wx1 + 30, wy1 + 22), (226, 221, 212), -1)  # sill
    # Shelves with books.
    book_colors = [(70, 90, 120), (160, 80, 60), (200, 170, 110), (90, 120, 90), (230, 225, 210)]
    for row in range(3):
        top = 230 + row * 200
        bx = 1300
        while bx < 1800:
            bw = int(rng.integers(18, 42))
            bh = int(rng.integers(90, 145))
            col = tuple(int(c) for c in book_colors[int(rng.integers(len(book_colors)))])
            cv2.rectangle(canvas, (bx, top + 150 - bh), (bx + bw, top + 150), col, -1)
            bx += bw + int(rng.integers(2, 8))
            if rng.random() < 0.12:
                bx += 60
        cv2.rectangle(canvas, (1280, top + 150), (1840, top + 168), (110, 82, 60), -1)
    # Sideboard with a potted plant, and the desk edge.
    cv2.rectangle(canvas, (860, 800), (1180, 1080), (150, 122, 98), -1)
    cv2.rectangle(canvas, (850, 790), (1190, 812), (126, 98, 76), -1)
    leaves = [(58, 118, 68), (80, 148, 84), (44, 98, 58), (96, 160, 90)]
    for _ in range(30):
        ang = rng.uniform(-2.7, -0.45)
        length = rng.uniform(110, 250)
        end = np.array([1020 + np.cos(ang) * length, 690 + np.sin(ang) * length])
        mid = ((np.array([1020, 690]) + end) / 2).astype(int)
        col = tuple(int(c) for c in leaves[int(rng.integers(len(leaves)))])
        axes = (int(length / 2), int(rng.uniform(16, 26)))
        cv2.ellipse(canvas, tuple(mid), axes, float(np.degrees(ang)), 0, 360, col, -1, cv2.LINE_AA)
    cv2.rectangle(canvas, (960, 680), (1080, 790), (176, 98, 70), -1)  # terracotta pot
    cv2.rectangle(canvas, (0, 960), (W, H), (132, 104, 82), -1)
    img = canvas.astype(np.float32) / 255.0
    img = _blur(img, 16)  # Depth of field: the room is behind the person.
    img = img + 0.16 * _glow(x, y, 0.23, 0.42, 0.35)[..., None] * _rgb("#fff6e8")
    return _finish(img * _vignette(x, y, 0.22), rng)


def _ridge(rng: np.random.Generator, base: float, amp: float, freq: float) -> np.ndarray:
    """A smooth hill line: height (0..1 from the top) for each column."""
    xs = np.linspace(0, 1, W, dtype=np.float32)
    line = np.full(W, base, np.float32)
    for k in range(1, 5):
        phase = rng.uniform(0, 2 * np.pi)
        line += (amp / k) * np.sin(2 * np.pi * freq * k * xs + phase)
    return line


def hills(rng: np.random.Generator) -> np.ndarray:
    """Late-afternoon sky over layered green hills that fade into the haze."""
    x, y = _grid()
    img = _ramp(y, [(0.0, "#5d93cf"), (0.45, "#a9cbe8"), (0.62, "#f3dcc0")])
    img = img + 0.35 * _glow(x, y, 0.72, 0.5, 0.16)[..., None] * _rgb("#fff0c8")
    layers = [
        (0.58, 0.035, 0.9, "#8fae9c"),
        (0.66, 0.045, 1.3, "#6f9a76"),
        (0.76, 0.05, 0.8, "#4f7f52"),
        (0.88, 0.04, 1.1, "#37603d"),
    ]
    for base, amp, freq, col in layers:
        line = _ridge(rng, base, amp, freq)[None, :]
        mask = _smooth((y - line) / 0.004)
        shade = _rgb(col) * (1.0 - 0.25 * _smooth((y - line) / 0.25))[..., None]
        img = _mix(img, shade, mask)
    img = _blur(img, 2.5)
    return _finish(img * _vignette(x, y, 0.15), rng)


def dark_elegant(rng: np.random.Generator) -> np.ndarray:
    """Charcoal and deep navy with a warm golden light sweeping across."""
    x, y = _grid()
    img = _ramp(x * 0.7 + y * 0.3, [(0.0, "#14161c"), (0.6, "#1b2233"), (1.0, "#11131a")])
    d = x * 0.8 - y * 0.6  # Diagonal bands of light.
    for offset, width, gain in [(0.05, 0.05, 0.22), (0.22, 0.025, 0.14), (0.33, 0.08, 0.08)]:
        band = np.exp(-((d - offset) ** 2) / (2 * width**2))
        img = img + gain * band[..., None] * _rgb("#d6a75e")
    img = img + 0.12 * _glow(x, y, 0.78, 0.3, 0.25)[..., None] * _rgb("#5f7bb8")
    return _finish(img * _vignette(x, y, 0.6), rng, grain=1.0)


BACKGROUNDS: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "soft-gradient": soft_gradient,
    "studio": studio_backdrop,
    "bokeh-lights": bokeh_lights,
    "office": office,
    "hills": hills,
    "dark-elegant": dark_elegant,
}


# --- icon ----------------------------------------------------------------------------------------

ICON_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
  <defs>
    <linearGradient id="bg" x1="0" y1="0" x2="1" y2="1">
      <stop offset="0" stop-color="#3d7bf2"/>
      <stop offset="1" stop-color="#8a4fe0"/>
    </linearGradient>
  </defs>
  <rect x="2" y="2" width="60" height="60" rx="14" fill="url(#bg)"/>
  <circle cx="48" cy="16" r="5" fill="#ffd38a" opacity="0.9"/>
  <circle cx="32" cy="26" r="10" fill="#ffffff"/>
  <path d="M12 58 C12 44 20 38 32 38 C44 38 52 44 52 58 Z" fill="#ffffff"/>
</svg>
"""


def icon(size: int = 256) -> np.ndarray:
    """The app icon, as ``size`` x ``size`` RGBA: a person in front of a gradient tile."""
    s = 4 * size  # Draw large, shrink: smooth edges.
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / (s - 1)
    grad = _mix(_rgb("#3d7bf2"), _rgb("#8a4fe0"), np.clip(0.5 * (xx + yy), 0, 1))
    rgb = (grad * 255).astype(np.uint8).copy()
    alpha = np.zeros((s, s), np.uint8)
    r, m = int(0.22 * s), int(0.03 * s)
    cv2.rectangle(alpha, (m + r, m), (s - m - r, s - m), 255, -1)
    cv2.rectangle(alpha, (m, m + r), (s - m, s - m - r), 255, -1)
    for cx, cy in [(m + r, m + r), (s - m - r, m + r), (m + r, s - m - r), (s - m - r, s - m - r)]:
        cv2.circle(alpha, (cx, cy), r, 255, -1, cv2.LINE_AA)
    sun = (255, 211, 138)
    cv2.circle(rgb, (int(0.75 * s), int(0.25 * s)), int(0.08 * s), sun, -1, cv2.LINE_AA)
    white = (255, 255, 255)
    cv2.circle(rgb, (s // 2, int(0.41 * s)), int(0.16 * s), white, -1, cv2.LINE_AA)
    body = np.zeros((s, s), np.uint8)
    cv2.ellipse(body, (s // 2, int(0.93 * s)), (int(0.31 * s), int(0.33 * s)), 0, 180, 360, 255, -1)
    body[int(0.93 * s) :, :] = 0
    body[int(0.93 * s) : s - m, int(0.19 * s) : int(0.81 * s)] = 255
    rgb[body > 0] = white
    rgba = np.dstack([rgb, alpha])
    return cv2.resize(rgba, (size, size), interpolation=cv2.INTER_AREA)


# --- writing -------------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _encode(rgb: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    if rgb.shape[2] == 4:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA)
    else:
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, bgr, params or [])
    if not ok:
        raise RuntimeError(f"Could not encode an image as {ext}.")
    return buf.tobytes()


def make_all(out: Path) -> list[Path]:
    """Writes every background and icon under ``out``; returns the written paths."""
    written = []
    for index, (name, draw) in enumerate(BACKGROUNDS.items()):
        rng = np.random.default_rng(SEED + index)
        pixels = draw(rng)
        assert pixels.shape == (H, W, 3), name
        path = out / "backgrounds" / f"{name}.jpg"
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY, cv2.IMWRITE_JPEG_OPTIMIZE, 1]
        _write_atomic(path, _encode(pixels, ".jpg", params))
        written.append(path)
    _write_atomic(out / "icon.png", _encode(icon(256), ".png", [cv2.IMWRITE_PNG_COMPRESSION, 9]))
    _write_atomic(out / "icon.svg", ICON_SVG.encode())
    written += [out / "icon.png", out / "icon.svg"]
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: generates the assets and prints each file with its size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parent.parent / "assets"
    parser.add_argument(
        "--out", type=Path, default=default, help="assets folder (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    for path in make_all(args.out):
        print(f"{path}  {path.stat().st_size / 1000:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
