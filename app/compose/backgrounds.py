"""Background layers: what shows through where the matte says "not the person".

Every layer renders a ``[1, 3, H, W]`` tensor on the source frame's device and dtype. The layers
made from files (an image, a video) are in :mod:`app.compose.file_layers`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path

import torch
import torch.nn.functional as F

from app.resize import downsample_area, upsample_bilinear
from app.settings import GREEN_SCREEN, Background

__all__ = [
    "BackgroundError",
    "BackgroundLayer",
    "BlurBackground",
    "ColorBackground",
    "PassthroughBackground",
    "TransparentBackground",
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
        from app.compose.file_layers import ImageBackground, VideoBackground

        return ImageBackground(bg.path) if kind == "image" else VideoBackground(bg.path)
    raise BackgroundError(
        f"Unknown background kind '{kind}': use none, blur, color, green, image, video or "
        "transparent."
    )
