"""The compositor: foreground over background on the engine's device, one uint8 frame out.

``out = fg * pha + bg * (1 - pha)`` runs as tensor operations where the matte was computed; only the
final ``H x W x 3`` (or ``x 4``) uint8 frame crosses to the host. On CUDA the transfers go through
reusable pinned buffers with non-blocking copies. A compositor belongs to one thread (the matting
worker); changing the background is just passing another layer.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from app.compose.backgrounds import BackgroundLayer

__all__ = ["Compositor", "quantize", "quantize_hwc"]


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Maps 0..1 values to uint8 as ``floor(x * 255 + 0.5)``, clamped to 0..255.

    Args:
        x: tensor of any shape; half precision is widened first so the rounding stays exact.

    Returns:
        uint8 tensor of the same shape and device.
    """
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    # After clamping the values are non-negative, so the truncating cast is the floor.
    return x.mul(255.0).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)


def quantize_hwc(x: torch.Tensor) -> torch.Tensor:
    """Quantizes a ``[1, C, H, W]`` image straight into ``H x W x C`` uint8 (as :func:`quantize`).

    The channel reordering happens in the first arithmetic pass, so no separate transpose copy is
    made.

    Args:
        x: image tensor in 0..1.

    Returns:
        Contiguous ``[H, W, C]`` uint8 tensor on x's device.
    """
    if x.device.type == "cpu":
        # OpenCV interleaves the planes several times faster than a strided copy.
        planes = quantize(x[0]).numpy()
        return torch.from_numpy(cv2.merge(list(planes)).reshape(*planes.shape[1:], -1))
    _, channels, height, width = x.shape
    hwc = torch.empty((height, width, channels), dtype=torch.float32, device=x.device)
    torch.mul(x[0].permute(1, 2, 0), 255.0, out=hwc)
    return hwc.add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)


class _PinnedSlot:
    """A reusable pinned host buffer and the CUDA event that says when it is free again."""

    def __init__(self) -> None:
        self.buffer: torch.Tensor | None = None
        self.event: torch.cuda.Event | None = None

    def get(self, shape: tuple[int, ...]) -> torch.Tensor:
        if self.event is not None:
            self.event.synchronize()  # the previous copy from or into it has finished
        if self.buffer is None or tuple(self.buffer.shape) != shape:
            self.buffer = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
        return self.buffer

    def mark(self) -> None:
        if self.event is None:
            self.event = torch.cuda.Event()
        self.event.record()


class Compositor:
    """Blends foreground over a background layer and hands back host uint8 frames."""

    def __init__(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        """Creates a compositor.

        Args:
            device: the engine's device; inputs are moved there if they are elsewhere.
            dtype: the engine's floating dtype.
        """
        self.device = torch.device(device)
        self.dtype = dtype
        self._cuda = self.device.type == "cuda"
        self._upload_slot = _PinnedSlot()
        self._download_slot = _PinnedSlot()

    def _prepare(self, t: torch.Tensor | None) -> torch.Tensor | None:
        if t is None:
            return None
        return t.to(device=self.device, dtype=self.dtype)

    def compose(
        self,
        src: torch.Tensor,
        fgr: torch.Tensor | None,
        pha: torch.Tensor | None,
        layer: BackgroundLayer,
        *,
        use_fgr: bool = True,
        mirror: bool = False,
        rgba: bool = False,
        background: torch.Tensor | None = None,
    ) -> np.ndarray:
        """Composites one frame.

        Args:
            src: camera frame ``[1, 3, H, W]`` in 0..1.
            fgr: predicted foreground colours ``[1, 3, H, W]``; may be None when ``use_fgr`` is
                False or the layer passes the camera through.
            pha: alpha ``[1, 1, H, W]``; may be None only for a pass-through layer.
            layer: the background.
            use_fgr: blend the predicted foreground (no colour spill) instead of the raw frame.
            mirror: flip the result horizontally.
            rgba: add the alpha as a fourth channel; implied by a transparent layer, whose colour
                channels are then the foreground itself.
            background: the layer already rendered for this frame (``[1, 3, H, W]``); None
                renders it now.

        Returns:
            ``H x W x 3`` (or ``H x W x 4``) uint8 array on the host, owned by the caller.

        Raises:
            ValueError: the tensors have the wrong shapes or a needed matte is missing.
        """
        if src.dim() != 4 or src.shape[:2] != (1, 3):
            raise ValueError(f"src must be [1, 3, H, W], got {list(src.shape)}.")
        height, width = src.shape[-2:]
        src = self._prepare(src)
        pha = self._prepare(pha)
        want_alpha = rgba or layer.rgba
        if pha is None and not layer.passthrough:
            raise ValueError("An alpha matte is needed for every background except 'none'.")
        if pha is not None and pha.shape != (1, 1, height, width):
            raise ValueError(f"pha must be [1, 1, {height}, {width}], got {list(pha.shape)}.")

        if layer.passthrough:
            rgb = src
        else:
            fg = src
            if use_fgr:
                if fgr is None:
                    raise ValueError("use_fgr needs the predicted foreground (fgr).")
                fg = self._prepare(fgr)
                if fg.shape != src.shape:
                    raise ValueError(f"fgr must be {list(src.shape)}, got {list(fg.shape)}.")
            if layer.rgba:
                rgb = fg
            else:
                bg = background
                if bg is None:
                    bg = layer.render(src, height, width, pha=pha)
                rgb = torch.lerp(bg, fg, pha)  # bg + (fg - bg) * pha: exact at 0 and 1

        if want_alpha:
            alpha = pha if pha is not None else torch.ones_like(src[:, :1])
            rgb = torch.cat([rgb, alpha], dim=1)
        out = quantize_hwc(rgb)
        if mirror:
            out = out.flip(1)
        return self._download(out)

    def alpha_u8(self, pha: torch.Tensor, *, mirror: bool = False) -> np.ndarray:
        """The matte as an ``H x W`` uint8 image (for an alpha view).

        Args:
            pha: alpha ``[1, 1, H, W]`` in 0..1.
            mirror: flip horizontally.

        Returns:
            ``H x W`` uint8 array on the host.
        """
        out = quantize(pha[0, 0])
        if mirror:
            out = out.flip(-1)
        return self._download(out)

    def to_tensor(self, frame_u8: np.ndarray) -> torch.Tensor:
        """Uploads a host frame for the engine.

        Args:
            frame_u8: ``H x W x 3`` uint8 RGB.

        Returns:
            ``[1, 3, H, W]`` tensor in 0..1 on the compositor's device and dtype.

        Raises:
            TypeError: the frame is not a uint8 array.
            ValueError: the frame is not ``H x W x 3``.
        """
        if not isinstance(frame_u8, np.ndarray) or frame_u8.dtype != np.uint8:
            raise TypeError(f"Frames must be uint8 arrays, got {getattr(frame_u8, 'dtype', None)}.")
        if frame_u8.ndim != 3 or frame_u8.shape[2] != 3:
            raise ValueError(f"Frames must be H x W x 3, got {frame_u8.shape}.")
        host = torch.from_numpy(np.ascontiguousarray(frame_u8))
        if self._cuda:
            staging = self._upload_slot.get(tuple(host.shape))
            staging.copy_(host)
            device_u8 = staging.to(self.device, non_blocking=True)
            self._upload_slot.mark()
        else:
            device_u8 = host.to(self.device)
        return device_u8.permute(2, 0, 1).unsqueeze(0).to(self.dtype).div_(255.0)

    def _download(self, t: torch.Tensor) -> np.ndarray:
        """Copies a uint8 device tensor to a new host array."""
        if not self._cuda:
            return t.contiguous().cpu().numpy()
        staging = self._download_slot.get(tuple(t.shape))
        staging.copy_(t, non_blocking=True)
        self._download_slot.mark()
        self._download_slot.event.synchronize()
        return staging.numpy().copy()
