"""Typed settings: the one source of truth that the window edits and the command line parses into.

Nothing here imports Qt or torch. Every parser raises :class:`SettingsError` with a sentence a user
can act on; the CLI prints it and exits with code 2, the window shows it.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from app.matting.registry import DEVICE_PATTERN, PRECISIONS, VARIANTS
from app.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES

BACKENDS = ("torch", "onnxruntime")
PACES = ("realtime", "none")
SYNC_MODES = ("aligned", "smooth", "exact")
#: Virtual camera routes (``--vcam-backend``); ``auto`` picks the best one this machine has.
VCAM_BACKENDS = ("auto", "pipewire", "v4l2", "obs")
VIEWS = ("result", "alpha", "side-by-side")

MIN_FPS = 1.0
MAX_FPS = 240.0
GREEN_SCREEN = (0, 177, 64)
DEFAULT_BLUR = 12.0


class SettingsError(ValueError):
    """A setting a user gave is not usable; the message says why and what to give instead."""


def parse_color(text: str) -> tuple[int, int, int]:
    """Parses ``#RRGGBB`` (the ``#`` optional) into an RGB triple."""
    m = re.fullmatch(r"#?([0-9a-fA-F]{6})", text.strip())
    if not m:
        raise SettingsError(f"Colour '{text}' is not of the form #RRGGBB (for example #1e90ff).")
    h = m.group(1)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def format_color(rgb: tuple[int, int, int]) -> str:
    """Formats an RGB triple as ``#rrggbb``."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@dataclass(frozen=True)
class Background:
    """What replaces the background.

    Attributes:
        kind: one of none, blur, color, green, image, video, transparent.
        strength: blur strength (Gaussian sigma in pixels at 720p), for ``blur``.
        color: RGB triple, for ``color`` and ``green``.
        path: file, for ``image`` and ``video``.
    """

    kind: str = "blur"
    strength: float = DEFAULT_BLUR
    color: tuple[int, int, int] = GREEN_SCREEN
    path: str | None = None

    @classmethod
    def parse(cls, spec: str) -> Background:
        """Parses a command-line background: ``none``, ``blur[:S]``, ``color:#RRGGBB``, ``green``,
        ``transparent`` or an image or video file."""
        text = spec.strip()
        low = text.lower()
        if low in ("none", "green", "transparent"):
            return cls(kind=low)
        if low == "blur" or low.startswith("blur:"):
            if low == "blur":
                return cls(kind="blur")
            try:
                strength = float(low.split(":", 1)[1])
            except ValueError:
                strength = -1.0
            if not 0 < strength <= 100:
                raise SettingsError(
                    f"Blur strength in '{spec}' must be a number between 0 and 100, e.g. blur:12."
                )
            return cls(kind="blur", strength=strength)
        if low.startswith(("color:", "colour:")):
            return cls(kind="color", color=parse_color(text.split(":", 1)[1]))
        path = Path(text).expanduser()
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES:
            if not path.is_file():
                raise SettingsError(f"Background file '{spec}' does not exist.")
            kind = "image" if suffix in IMAGE_SUFFIXES else "video"
            return cls(kind=kind, path=str(path))
        raise SettingsError(
            f"Unknown background '{spec}': use none, blur, blur:STRENGTH, color:#RRGGBB, green, "
            "transparent, or an image or video file."
        )

    def spec(self) -> str:
        """The command-line form of this background (inverse of :meth:`parse`)."""
        if self.kind == "blur":
            return "blur" if self.strength == DEFAULT_BLUR else f"blur:{self.strength:g}"
        if self.kind == "color":
            return "color:" + format_color(self.color)
        if self.kind in ("image", "video"):
            return str(self.path)
        return self.kind

    @property
    def has_alpha(self) -> bool:
        """Whether frames with this background carry an alpha channel (RGBA)."""
        return self.kind == "transparent"


def parse_resolution(text: str) -> tuple[int, int]:
    """Parses ``WxH`` into (width, height)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", text)
    if not m:
        raise SettingsError(f"Resolution '{text}' is not of the form WIDTHxHEIGHT, e.g. 1280x720.")
    w, h = int(m.group(1)), int(m.group(2))
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        raise SettingsError(f"Resolution {w}x{h} is impossible: use 16x16 up to 7680x4320.")
    return w, h


def parse_ratio(text: str | float | None) -> float | None:
    """Parses a downsample ratio: ``auto`` (None) or a number in (0, 1]."""
    if text is None or (isinstance(text, str) and text.strip().lower() == "auto"):
        return None
    try:
        value = float(text)
    except ValueError:
        msg = f"Downsample ratio '{text}' must be 'auto' or a number in (0, 1]."
        raise SettingsError(msg) from None
    if not 0 < value <= 1:
        raise SettingsError(f"Downsample ratio {value:g} must be in (0, 1], e.g. 0.375 for 720p.")
    return value


def parse_fps(value: str | float) -> float:
    """Parses a frame rate: a number from 1 to 240."""
    try:
        fps = float(value)
    except (TypeError, ValueError):
        fps = float("nan")
    if isinstance(value, bool) or fps != fps:
        raise SettingsError(f"Frame rate {value!r} is not a number: use 1 to 240.")
    if not MIN_FPS <= fps <= MAX_FPS:
        raise SettingsError(f"Frame rate {fps:g} is impossible: use 1 to 240.")
    return fps


def parse_device(text: str) -> str:
    """Checks a device name: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    if not re.fullmatch(DEVICE_PATTERN, text):
        raise SettingsError(f"Unknown device '{text}': choose one of auto, cpu, cuda, cuda:N, mps.")
    return text


def _choice(name: str, value: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise SettingsError(f"Unknown {name} '{value}': choose one of {', '.join(options)}.")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything that decides what the app does; the pipeline reads nothing else.

    Attributes:
        source: camera index (``"0"``), device path, video file, image folder or ``synthetic``.
        resolution: requested capture size (width, height); None keeps the source's own.
        fps: requested capture rate; None keeps the source's own.
        pace: ``realtime`` (a file behaves like a camera) or ``none`` (every frame, in order).
        loop: loop a file source.
        background: what replaces the background.
        use_fgr: composite the predicted foreground (no colour spill) instead of raw pixels.
        mirror: mirror the output horizontally.
        variant: network variant.
        checkpoint: weights file; None uses the cached official weights.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: ``auto``, ``fp32`` or ``fp16``.
        backend: ``torch`` or ``onnxruntime``.
        downsample_ratio: None picks it from the frame size.
        full_body: with an automatic ratio, use the full-body column of the ratio table.
        sync: ``aligned`` (every camera frame goes out about one matting interval late, with the
            mattes of the frames before and after it carried to it along the motion), ``smooth``
            (every camera frame goes out at once, with the newest matte) or ``exact`` (only
            frames whose own matte is ready go out).
        hold_fps: lower the internal resolution when matting cannot keep up with the camera (on by
            default: a matte that trails the camera by a fraction of a second shows as a halo);
            aligned sync, which carries mattes to the frames between them, holds only as many
            mattes as the person's motion needs (:mod:`app.matting.hold`).
        virtual_cam: send frames to the virtual camera.
        vcam_device: virtual camera device (e.g. /dev/video10); None lets the backend choose.
        vcam_backend: virtual camera route: ``auto`` (PipeWire where a PipeWire daemon answers,
            else v4l2loopback on Linux; the OBS Virtual Camera elsewhere), ``pipewire``, ``v4l2``
            or ``obs``.
        output: record to this file (.mp4) or folder (PNG sequence).
        output_mbps: recording bitrate.
        max_frames: stop after this many output frames.
        stats_json: write the live statistics here when the run ends.
    """

    source: str = "0"
    resolution: tuple[int, int] | None = None
    fps: float | None = None
    pace: str = "realtime"
    loop: bool = False
    background: Background = field(default_factory=Background)
    use_fgr: bool = True
    mirror: bool = False
    variant: str = "mobilenetv3"
    checkpoint: str | None = None
    device: str = "auto"
    precision: str = "auto"
    backend: str = "torch"
    downsample_ratio: float | None = None
    full_body: bool = False
    sync: str = "aligned"
    hold_fps: bool = True
    virtual_cam: bool = False
    vcam_device: str | None = None
    vcam_backend: str = "auto"
    output: str | None = None
    output_mbps: float = 6.0
    max_frames: int | None = None
    stats_json: str | None = None

    def validate(self) -> Settings:
        """Checks every field; returns self or raises :class:`SettingsError`."""
        _choice("variant", self.variant, VARIANTS)
        parse_device(self.device)
        _choice("precision", self.precision, PRECISIONS)
        _choice("backend", self.backend, BACKENDS)
        _choice("pace", self.pace, PACES)
        _choice("sync mode", self.sync, SYNC_MODES)
        _choice("virtual camera backend", self.vcam_backend, VCAM_BACKENDS)
        if self.fps is not None:
            parse_fps(self.fps)
        if self.downsample_ratio is not None:
            parse_ratio(self.downsample_ratio)
        if self.max_frames is not None and self.max_frames < 1:
            raise SettingsError("--max-frames must be at least 1.")
        if not 0.1 <= self.output_mbps <= 200:
            raise SettingsError(f"Bitrate {self.output_mbps:g} Mb/s must be between 0.1 and 200.")
        if self.checkpoint is not None and not Path(self.checkpoint).is_file():
            if Path(self.checkpoint).is_dir():
                raise SettingsError(
                    f"Checkpoint '{self.checkpoint}' is a folder: give the weights file in it "
                    "(.pth or .onnx)."
                )
            raise SettingsError(f"Checkpoint '{self.checkpoint}' does not exist.")
        return self

    def replace(self, **changes: object) -> Settings:
        """A copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes).validate()
