"""Background layers: what shows through where the matte says "not the person".

Every layer renders a ``[1, 3, H, W]`` tensor on the source frame's device and dtype. Files are read
once (images) or on a thread of their own (videos), so rendering on the hot path is only tensor work
or, for a new video frame, one upload.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from abc import ABC, abstractmethod
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from app.matting.resize import downsample_area, upsample_bilinear
from app.settings import GREEN_SCREEN, Background

__all__ = [
    "BackgroundError",
    "BackgroundLayer",
    "BlurBackground",
    "ColorBackground",
    "ImageBackground",
    "PassthroughBackground",
    "TransparentBackground",
    "VideoBackground",
    "cover_fit",
    "make_background",
]


class BackgroundError(ValueError):
    """A background file cannot be used; the message names the file and says what to do."""


class BackgroundLayer(ABC):
    """One kind of background, rendered per frame on the engine's device.

    Attributes:
        passthrough: the camera frame goes out as is; no matte is needed.
        rgba: the output carries alpha (the background is transparent).
        from_camera: the picture is made from the camera frame itself (blur), so a live pipeline
            may render it once per matte and reuse it for the camera frames in between.
    """

    passthrough: bool = False
    rgba: bool = False
    from_camera: bool = False

    @abstractmethod
    def render(
        self, src: torch.Tensor, height: int, width: int, pha: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Renders the background for one frame.

        Args:
            src: the camera frame ``[1, 3, H, W]`` in 0..1; its device and dtype are used.
            height: output height.
            width: output width.
            pha: the frame's alpha ``[1, 1, H, W]``, for layers that look at the background only.

        Returns:
            ``[1, 3, height, width]`` tensor in 0..1 on src's device and dtype (may be a broadcast
            view; do not write into it).
        """

    def close(self) -> None:  # noqa: B027 - most layers hold nothing to release
        """Releases files and threads; safe to call twice."""

    def __enter__(self) -> BackgroundLayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PassthroughBackground(BackgroundLayer):
    """``none``: the camera frame as it is."""

    passthrough = True

    def render(
        self, src: torch.Tensor, height: int, width: int, pha: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Returns the source frame itself."""
        return src


class TransparentBackground(BackgroundLayer):
    """``transparent``: the output is RGBA, foreground colours with the matte as alpha."""

    rgba = True

    def render(
        self, src: torch.Tensor, height: int, width: int, pha: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Returns black; RGBA consumers use the alpha channel instead."""
        return src.new_zeros(1, 3, 1, 1).expand(1, 3, height, width)


class ColorBackground(BackgroundLayer):
    """A solid colour (``color`` and ``green``)."""

    def __init__(self, rgb: tuple[int, int, int]) -> None:
        """Creates the layer.

        Args:
            rgb: the colour, each channel 0..255.
        """
        self.rgb = tuple(int(c) for c in rgb)
        self._cache: torch.Tensor | None = None

    def render(
        self, src: torch.Tensor, height: int, width: int, pha: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Returns the colour as a broadcast view of one pixel."""
        pixel = self._cache
        if pixel is None or pixel.device != src.device or pixel.dtype != src.dtype:
            values = torch.tensor(self.rgb, dtype=torch.float32) / 255.0
            pixel = values.view(1, 3, 1, 1).to(device=src.device, dtype=src.dtype)
            self._cache = pixel
        return pixel.expand(1, 3, height, width)


def _gaussian_kernel(sigma: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, math.ceil(3.0 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(device=device, dtype=dtype)


class BlurBackground(BackgroundLayer):
    """The camera's own background, Gaussian-blurred, with the person kept out of the blur.

    The blur runs on a downscaled copy (a blurred image has no fine detail to lose) and is upsampled
    bilinearly. With a matte, the colours are weighted by ``1 - alpha`` and normalised by the
    blurred weight, so the person's colours do not bleed into the background around them.
    """

    from_camera = True

    def __init__(self, strength: float) -> None:
        """Creates the layer.

        Args:
            strength: Gaussian sigma in pixels at 720p; scaled with the frame height.
        """
        if not strength > 0:
            raise BackgroundError(f"Blur strength {strength:g} must be above 0, e.g. 12.")
        self.strength = float(strength)
        self._kernels: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def plan(self, height: int) -> tuple[int, float]:
        """The downscale factor and the sigma (in downscaled pixels) used for a frame height.

        Args:
            height: frame height.

        Returns:
            (factor, sigma) where the blur runs at ``1/factor`` of the size with ``sigma``.
        """
        sigma = self.strength * height / 720.0
        factor = int(min(8, max(1, sigma // 2.5)))
        return factor, sigma / factor

    def _kernels_for(
        self, sigma: float, channels: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Horizontal and vertical depthwise weights, contiguous (much faster than expanded)."""
        key = (round(sigma, 4), channels, device, dtype)
        pair = self._kernels.get(key)
        if pair is None:
            kernel = _gaussian_kernel(sigma, device, dtype)
            horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
            vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
            pair = (horizontal, vertical)
            self._kernels[key] = pair
        return pair

    def _blur(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """Separable Gaussian with edge replication; x is ``[1, C, h, w]``."""
        channels = x.shape[1]
        horizontal, vertical = self._kernels_for(sigma, channels, x.device, x.dtype)
        radius = horizontal.shape[-1] // 2
        x = F.pad(x, (radius, radius, 0, 0), mode="replicate")
        x = F.conv2d(x, horizontal, groups=channels)
        x = F.pad(x, (0, 0, radius, radius), mode="replicate")
        return F.conv2d(x, vertical, groups=channels)

    def render(
        self, src: torch.Tensor, height: int, width: int, pha: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Blurs src (weighted by ``1 - pha`` when given) and returns it at the output size."""
        factor, sigma = self.plan(src.shape[-2])
        h, w = src.shape[-2:]
        small_size = (max(1, round(h / factor)), max(1, round(w / factor)))

        def shrink(x: torch.Tensor) -> torch.Tensor:
            return downsample_area(x, small_size) if factor > 1 else x

        if pha is None:
            blurred = self._blur(shrink(src), sigma)
        else:
            inverse = 1.0 - pha
            weight = shrink(inverse)
            weighted = shrink(src * inverse)
            blurred = self._blur(torch.cat([weighted, weight], dim=1), sigma)
            # Where the person covers everything within reach, fall back to the frame's mean
            # background colour instead of dividing by (almost) zero.
            eps = 1e-3
            mean_bg = weighted.sum(dim=(2, 3), keepdim=True) / weight.sum().clamp_min(eps)
            blurred = (blurred[:, :3] + eps * mean_bg) / (blurred[:, 3:] + eps)
        blurred = blurred.clamp_(0.0, 1.0)  # bilinear upsampling stays within the range
        if blurred.shape[-2:] != (height, width):
            blurred = upsample_bilinear(blurred, (height, width))
        return blurred


def cover_fit(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scales an image to cover ``height x width`` and crops the centre.

    Args:
        image: ``h x w x C`` uint8.
        height: target height.
        width: target width.

    Returns:
        ``height x width x C`` uint8, contiguous.
    """
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return np.ascontiguousarray(image)
    scale = max(width / w, height / h)
    new_w = max(width, math.ceil(w * scale - 1e-6))
    new_h = max(height, math.ceil(h * scale - 1e-6))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top = (new_h - height) // 2
    left = (new_w - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def _upload(rgb: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``H x W x 3`` uint8 -> ``[1, 3, H, W]`` in 0..1 on device and dtype."""
    tensor = torch.from_numpy(np.ascontiguousarray(rgb)).to(device, non_blocking=False)
    return tensor.permute(2, 0, 1).unsqueeze(0).to(dtype).div_(255.0)


def _read_image(path: str) -> np.ndarray:
    """Reads an image file into ``H x W x 3`` RGB uint8, or raises :class:`BackgroundError`."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        reason = exc.strerror or "it cannot be read"
        raise BackgroundError(
            f"Background image '{path}' cannot be opened ({reason}); pick another file."
        ) from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.size == 0:
        raise BackgroundError(
            f"Background image '{path}' is not a readable image; pick a PNG or JPEG file."
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class ImageBackground(BackgroundLayer):
    """A still picture, cover-fitted to the output size once and kept on the device."""

    def __init__(self, path: str) -> None:
        """Loads the picture.

        Args:
            path: image file.

        Raises:
            BackgroundError: the file is missing or not a readable image.
        """
        self.path = str(path)
        self.image = _read_image(self.path)
        self._cache: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}

    def render(
        self, src: torch.Tensor, height: int, width: int, pha: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Returns the cover-fitted picture, prepared on first use of each size."""
        key = (height, width, src.device, src.dtype)
        tensor = self._cache.get(key)
        if tensor is None:
            if len(self._cache) >= 4:
                self._cache.clear()
            tensor = _upload(cover_fit(self.image, height, width), src.device, src.dtype)
            self._cache[key] = tensor
        return tensor

    def close(self) -> None:
        """Drops the prepared tensors."""
        self._cache.clear()


def _open_video(path: str):  # -> av container; PyAV is imported lazily (it is slow to import)
    import av

    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise BackgroundError(
            f"Background video '{path}' cannot be opened ({exc.__class__.__name__}); "
            "pick an MP4, MKV, WebM or GIF file."
        ) from None
    if not container.streams.video:
        container.close()
        raise BackgroundError(f"Background video '{path}' holds no video; pick another file.")
    return container


class VideoBackground(BackgroundLayer):
    """A looping video, decoded on its own daemon thread at the file's frame rate.

    The thread keeps only the newest frame, already cover-fitted to the last requested size, so
    rendering costs at most one upload. The first frame is decoded before the constructor returns.
    """

    def __init__(self, path: str, *, first_frame_timeout: float = 5.0) -> None:
        """Opens the video and starts decoding.

        Args:
            path: video file (anything FFmpeg reads; GIF included).
            first_frame_timeout: seconds to wait for the first decoded frame.

        Raises:
            BackgroundError: the file is missing, unreadable or holds no decodable frame.
        """
        self.path = str(path)
        self._container = _open_video(self.path)
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._first = threading.Event()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._size: tuple[int, int] | None = None
        self._error: str | None = None
        self.frames_decoded = 0
        self._uploaded: tuple[int, tuple[int, int], torch.device, torch.dtype] | None = None
        self._tensor: torch.Tensor | None = None
        self._thread = threading.Thread(target=self._run, name="video-background", daemon=True)
        self._thread.start()
        self._first.wait(first_frame_timeout)
        if self._frame is None:
            self.close()
            raise BackgroundError(
                f"Background video '{self.path}' has no frame that can be decoded; "
                "pick another file."
            )

    @property
    def alive(self) -> bool:
        """Whether the decoding thread is running."""
        return self._thread.is_alive()

    def _frames(self):
        """Yields decoded RGB frames forever, reopening the file at its end."""
        container = self._container
        while not self._stop.is_set():
            produced = False
            try:
                for frame in container.decode(video=0):
                    produced = True
                    yield frame.to_ndarray(format="rgb24")
                    if self._stop.is_set():
                        return
            except Exception as exc:  # a damaged packet ends this pass; looping starts over
                self._error = str(exc)
            container.close()
            if not produced or self._stop.is_set():
                return
            container = self._container = _open_video(self.path)

    def _run(self) -> None:
        period = 1.0 / self.fps
        due = time.perf_counter()
        try:
            for rgb in self._frames():
                with self._lock:
                    size = self._size
                if size is not None:
                    rgb = cover_fit(rgb, *size)
                with self._lock:
                    self._frame = rgb
                    self._seq += 1
                self.frames_decoded += 1
                self._first.set()
                due += period
                delay = due - time.perf_counter()
                if delay < -period:  # fell behind (slow machine): do not try to catch up
                    due = time.perf_counter()
                elif delay > 0 and self._stop.wait(delay):
                    break
        except Exception as exc:  # the file changed under us: keep showing the last frame
            self._error = str(exc)
        finally:
            self._first.set()
            with contextlib.suppress(Exception):
                self._container.close()

    def render(
        self, src: torch.Tensor, height: int, width: int, pha: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Returns the newest decoded frame (uploaded once per new frame)."""
        with self._lock:
            self._size = (height, width)
            frame, seq = self._frame, self._seq
        key = (seq, (height, width), src.device, src.dtype)
        if self._tensor is not None and self._uploaded == key:
            return self._tensor
        assert frame is not None
        if frame.shape[:2] != (height, width):  # size just changed; the thread catches up
            frame = cover_fit(frame, height, width)
        self._tensor = _upload(frame, src.device, src.dtype)
        self._uploaded = key
        return self._tensor

    def close(self) -> None:
        """Stops the decoding thread and closes the file."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._tensor = None


def make_background(
    bg: Background, device: torch.device | str, dtype: torch.dtype
) -> BackgroundLayer:
    """Builds the layer for a :class:`~app.settings.Background`.

    Args:
        bg: what the settings ask for.
        device: the engine's device (layers follow the frame's device; this is for preparation).
        dtype: the engine's dtype.

    Returns:
        A layer ready to render; call ``close()`` when it is replaced.

    Raises:
        BackgroundError: the kind is unknown, or its file cannot be used.
    """
    del device, dtype  # layers prepare lazily on the device and dtype of the frames they see
    kind = bg.kind
    if kind == "none":
        return PassthroughBackground()
    if kind == "blur":
        return BlurBackground(bg.strength)
    if kind == "color":
        return ColorBackground(bg.color)
    if kind == "green":
        return ColorBackground(GREEN_SCREEN)
    if kind == "transparent":
        return TransparentBackground()
    if kind in ("image", "video"):
        if not bg.path:
            raise BackgroundError(f"The {kind} background needs a file; choose one.")
        if not Path(bg.path).is_file():
            raise BackgroundError(f"Background file '{bg.path}' does not exist; choose another.")
        return ImageBackground(bg.path) if kind == "image" else VideoBackground(bg.path)
    raise BackgroundError(
        f"Unknown background kind '{kind}': use none, blur, color, green, image, video or "
        "transparent."
    )
