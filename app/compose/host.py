"""Compositing on the host in uint8, for a live pipeline whose network runs on the CPU.

A matte is prepared once (:class:`HostMatte`: the foreground offset ``fgr - src`` as int16, the
alpha and its complement as float planes) and every camera frame composited with it is then two
OpenCV passes over uint8 pixels: the offset added with saturation, and ``cv2.blendLinear`` with the
background. The float path of :class:`~app.compose.compositor.Compositor` makes about a dozen passes
over float maps for the same frame; the results differ by rounding (at most one level in 255).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

__all__ = ["HostBackground", "HostMatte", "blend"]


def _u8(plane: np.ndarray) -> np.ndarray:
    """A float plane in 0..1 -> uint8, rounded to nearest, in one OpenCV pass."""
    return cv2.convertScaleAbs(plane, alpha=255.0)


def _hwc_u8(x: torch.Tensor) -> np.ndarray:
    """``[1, C, H, W]`` (possibly a broadcast view) in 0..1 -> ``H x W x C`` uint8."""
    planes = x[0].float().contiguous().numpy()
    return cv2.merge([_u8(p) for p in planes])


class HostMatte:
    """One matte, prepared for every camera frame that will be composited with it.

    Args:
        src: the matted frame ``H x W x 3`` uint8 RGB.
        fgr: the predicted foreground ``[1, 3, H, W]`` on the CPU, in 0..1.
        pha: the alpha ``[1, 1, H, W]`` on the CPU, in 0..1.
    """

    def __init__(self, src: np.ndarray, fgr: torch.Tensor, pha: torch.Tensor):
        height, width = src.shape[:2]
        if fgr.shape[-2:] != (height, width) or pha.shape[-2:] != (height, width):
            raise ValueError(f"The matte does not fit a {width}x{height} frame.")
        self.size = (height, width)
        self.offset = cv2.subtract(_hwc_u8(fgr), src, dtype=cv2.CV_16S)
        self.pha = pha[0, 0].float().contiguous().numpy()
        self.inverse = cv2.subtract(1.0, self.pha)
        self.alpha = _u8(self.pha)
        self.alpha.flags.writeable = False  # shared by every frame composited with this matte
        self._mirrored_alpha: np.ndarray | None = None

    @classmethod
    def from_planes(cls, pha: np.ndarray, offset: np.ndarray) -> HostMatte:
        """A matte from planes already on the host (e.g. one carried to another frame).

        Args:
            pha: ``H x W`` float32 alpha in 0..1.
            offset: ``H x W x 3`` int16 foreground offset ``fgr - src`` in levels.
        """
        if pha.shape != offset.shape[:2] or pha.dtype != np.float32 or offset.dtype != np.int16:
            raise ValueError("A matte needs an H x W float32 alpha and an H x W x 3 int16 offset.")
        matte = cls.__new__(cls)
        matte.size = pha.shape
        matte.offset = offset
        matte.pha = pha
        matte.inverse = cv2.subtract(1.0, pha)
        matte.alpha = _u8(pha)
        matte.alpha.flags.writeable = False
        matte._mirrored_alpha = None
        return matte

    def alpha_u8(self, mirror: bool = False) -> np.ndarray:
        """The matte as ``H x W`` uint8, flipped horizontally with ``mirror``; read-only."""
        if not mirror:
            return self.alpha
        if self._mirrored_alpha is None:
            self._mirrored_alpha = cv2.flip(self.alpha, 1)
            self._mirrored_alpha.flags.writeable = False
        return self._mirrored_alpha


class HostBackground:
    """The layer's picture as ``H x W x 3`` uint8, converted again only when the layer changes it.

    Layers hand back the same tensor (or a view of the same memory) for as long as their picture
    stays the same, so one conversion serves many frames; a video layer converts each new frame.
    """

    def __init__(self) -> None:
        self._tensor: torch.Tensor | None = None  # kept alive so its memory is not reused
        self._key: tuple | None = None
        self._image: np.ndarray | None = None

    def get(self, rendered: torch.Tensor) -> np.ndarray:
        """The uint8 picture of a rendered ``[1, 3, H, W]`` background."""
        key = (rendered.data_ptr(), tuple(rendered.shape), rendered.stride())
        if self._image is None or key != self._key:
            self._image = _hwc_u8(rendered)
            self._tensor, self._key = rendered, key
        return self._image


def blend(
    frame: np.ndarray,
    matte: HostMatte,
    background: np.ndarray | None,
    *,
    use_fgr: bool = True,
    mirror: bool = False,
    rgba: bool = False,
) -> np.ndarray:
    """Composites one camera frame with a prepared matte.

    Args:
        frame: ``H x W x 3`` uint8 RGB camera frame, the size of the matte.
        matte: the prepared matte.
        background: ``H x W x 3`` uint8 picture; None with a pass-through layer, whose output
            is the camera frame as it is.
        use_fgr: add the predicted foreground offset (no colour spill) to the frame.
        mirror: flip the result horizontally.
        rgba: return the foreground with the alpha as a fourth channel (transparent background).

    Returns:
        A new ``H x W x 3`` (``x 4`` with ``rgba``) uint8 array.

    Raises:
        ValueError: the frame or background does not fit the matte.
    """
    if frame.shape[:2] != matte.size or (
        background is not None and background.shape != frame.shape
    ):
        raise ValueError("The frame, the matte and the background must have the same size.")
    if background is None and not rgba:
        return cv2.flip(frame, 1) if mirror else frame.copy()
    fg = cv2.add(frame, matte.offset, dtype=cv2.CV_8U) if use_fgr else frame
    if rgba:
        out = np.dstack([fg, matte.alpha])
    else:
        out = cv2.blendLinear(fg, background, matte.pha, matte.inverse)
    return cv2.flip(out, 1) if mirror else out
