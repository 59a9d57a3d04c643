"""Compositing on the host in uint8, for a live pipeline whose network runs on the CPU.

A matte is prepared once (:class:`HostMatte`: the foreground offset ``fgr - src`` as int16, or
float32 once carried to another frame, the alpha and its complement as float planes) and every
camera frame composited with it is then two OpenCV passes over uint8 pixels: the offset added with
saturation, and ``cv2.blendLinear`` with the background. A carried matte covers only the part of
the frame the person can have reached; the rest of the frame is the background as it is. The
float path of :class:`~app.compose.compositor.Compositor` makes about a dozen passes over float
maps for the same frame; the results differ by rounding (at most one level in 255).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

__all__ = ["Box", "Coefficients", "HostBackground", "HostMatte", "blend", "fitted"]


def _u8(plane: np.ndarray) -> np.ndarray:
    """A float plane in 0..1 -> uint8, rounded to nearest, in one OpenCV pass."""
    return cv2.convertScaleAbs(plane, alpha=255.0)


def _hwc_u8(x: torch.Tensor) -> np.ndarray:
    """``[1, C, H, W]`` (possibly a broadcast view) in 0..1 -> ``H x W x C`` uint8."""
    planes = x[0].float().contiguous().numpy()
    return cv2.merge([_u8(p) for p in planes])


Coefficients = tuple[np.ndarray, np.ndarray]  # the guided filter's A and b, h x w x 4 float32 each


def _levels(coeffs: torch.Tensor) -> Coefficients:
    """``[1, 8, h, w]`` guided-filter coefficients -> ``A`` and ``b`` (``h x w x 4`` float32
    each, read-only) for frames in uint8 levels: ``A * guide + b`` gives the foreground and the
    alpha in levels (``b`` times 255)."""
    planes = coeffs[0].float().permute(1, 2, 0).numpy()
    out = (np.ascontiguousarray(planes[..., :4]), planes[..., 4:] * np.float32(255.0))
    for x in out:
        x.flags.writeable = False
    return out


_GREY = np.float32([[1 / 3, 1 / 3, 1 / 3]])  # the guided filter's grey: the channels' mean
Box = tuple[int, int, int, int]  # top, bottom, left, right (bottom and right excluded)
LEAST_BOX = 8  # pixels each way; OpenCV takes planes of one column and up to 4 rows for scalars


def fitted(box: Box, size: tuple[int, int], least: int = LEAST_BOX) -> Box:
    """``box`` cut to a frame of ``size`` and grown to at least ``least`` pixels each way (as far
    as the frame allows); an empty box becomes the frame's top left corner."""
    top, bottom, left, right = box
    if bottom <= top or right <= left:
        top, bottom, left, right = 0, 0, 0, 0
    height, width = size
    bottom = min(height, max(bottom, top + least))
    top = max(0, min(top, bottom - least))
    right = min(width, max(right, left + least))
    left = max(0, min(left, right - least))
    return (top, bottom, left, right)


class HostMatte:
    """One matte, prepared for every camera frame that will be composited with it.

    The planes (``pha``, ``inverse``, ``alpha``, ``offset``) cover the frame's ``box``: the
    whole frame for a matte made from the network's output; for a matte carried to another frame,
    only the part the person can have reached (outside it the alpha and the offset are 0), so
    that carrying and compositing touch no pixel of the empty room. A matte made on a frame by
    the guided step (:meth:`guided`) serves that frame alone and keeps its foreground itself
    (:attr:`fgr`, uint8 over ``box``); its offset is made only when asked for.

    Args:
        src: the matted frame ``H x W x 3`` uint8 RGB.
        fgr: the predicted foreground ``[1, 3, H, W]`` on the CPU, in 0..1.
        pha: the alpha ``[1, 1, H, W]`` on the CPU, in 0..1.
        coeffs: the guided filter's low-resolution coefficients the matte was made with
            (:attr:`app.matting.engine.Matte.coeffs`), or None; kept as :attr:`coeffs` to carry
            the matte to other frames.
    """

    def __init__(
        self,
        src: np.ndarray,
        fgr: torch.Tensor,
        pha: torch.Tensor,
        coeffs: torch.Tensor | None = None,
    ):
        height, width = src.shape[:2]
        if fgr.shape[-2:] != (height, width) or pha.shape[-2:] != (height, width):
            raise ValueError(f"The matte does not fit a {width}x{height} frame.")
        self._set(
            pha[0, 0].float().contiguous().numpy(),
            cv2.subtract(_hwc_u8(fgr), src, dtype=cv2.CV_16S),
            (height, width),
            (0, height, 0, width),
        )
        if coeffs is not None:
            self.coeffs = _levels(coeffs)

    def _set(
        self,
        pha: np.ndarray,
        offset: np.ndarray | None,
        size: tuple[int, int],
        box: Box,
        alpha: np.ndarray | None = None,
    ) -> None:
        self.size, self.box = size, box
        self.coeffs: Coefficients | None = None
        self.fgr: np.ndarray | None = None
        self._frame: np.ndarray | None = None
        self._offset = offset
        self.pha = pha
        self.inverse = cv2.subtract(1.0, pha)
        self.alpha = _u8(pha) if alpha is None else alpha
        self.alpha.flags.writeable = False  # shared by every frame composited with this matte
        self._alphas: dict[bool, np.ndarray] = {}
        self._stack: tuple[np.ndarray, Box] | None = None
        self._extent: Box | None = None

    @property
    def offset(self) -> np.ndarray:
        """The foreground offset ``fgr - src`` in levels over :attr:`box` (``h x w x 3``; int16
        from the network's output or the guided step, float32 once resampled)."""
        if self._offset is None:  # a guided matte: its foreground less its frame's pixels
            top, bottom, left, right = self.box
            part = self._frame[top:bottom, left:right]
            self._offset = cv2.subtract(self.fgr, part, dtype=cv2.CV_16S)
        return self._offset

    def foreground(self, frame: np.ndarray) -> np.ndarray:
        """The foreground over :attr:`box` for ``frame`` (``H x W x 3`` uint8): the matte's own
        when it was made on that frame by the guided step, else the frame's pixels with the
        offset added (saturated)."""
        if self.fgr is not None and frame is self._frame:
            return self.fgr
        top, bottom, left, right = self.box
        part = frame if self.whole else frame[top:bottom, left:right]
        return cv2.add(part, self.offset, dtype=cv2.CV_8U)

    @classmethod
    def from_planes(
        cls,
        pha: np.ndarray,
        offset: np.ndarray,
        size: tuple[int, int] | None = None,
        box: Box | None = None,
    ) -> HostMatte:
        """A matte from planes already on the host (e.g. one carried to another frame).

        Args:
            pha: ``h x w`` float32 alpha in 0..1.
            offset: ``h x w x 3`` foreground offset ``fgr - src`` in levels, int16 (as made from
                the network's output) or float32 (as resampled).
            size: the frame's ``(height, width)``; None: the planes' own.
            box: the part of the frame the planes cover, ``h x w``; None: all of it.
        """
        if (
            pha.shape != offset.shape[:2]
            or offset.shape[2:] != (3,)
            or pha.dtype != np.float32
            or offset.dtype not in (np.int16, np.float32)
        ):
            raise ValueError(
                "A matte needs an H x W float32 alpha and an H x W x 3 int16 or float32 offset."
            )
        size = pha.shape if size is None else size
        box = (0, size[0], 0, size[1]) if box is None else box
        if (box[1] - box[0], box[3] - box[2]) != pha.shape or box[1] > size[0] or box[3] > size[1]:
            raise ValueError("The planes must cover their box, inside the frame.")
        matte = cls.__new__(cls)
        matte._set(pha, offset, size, box)
        return matte

    @classmethod
    def from_stack(
        cls, stack: np.ndarray, size: tuple[int, int] | None = None, box: Box | None = None
    ) -> HostMatte:
        """A matte from an ``h x w x 4`` float32 stack of the offset and the alpha (see
        :meth:`stack`); ``size`` and ``box`` as for :meth:`from_planes`."""
        # Dropping the fourth channel is what a BGRA -> BGR conversion does, in one pass.
        offset = cv2.cvtColor(stack, cv2.COLOR_BGRA2BGR)
        return cls.from_planes(cv2.extractChannel(stack, 3), offset, size, box)

    @classmethod
    def guided(cls, frame: np.ndarray, coeffs: Coefficients, box: Box | None = None) -> HostMatte:
        """The guided filter's last step on a frame: a matte from low-resolution coefficients
        (:attr:`coeffs`, e.g. another frame's carried along the motion) resized to the frame and
        applied to its own pixels, over ``box`` (None: the whole frame).

        The coefficients are smooth; the alpha's edge comes from the frame's own picture, so it
        lands where the frame shows it even when the coefficients were carried a little short.
        The foreground and the alpha come out in uint8 levels (the alpha's ``pha`` is
        ``alpha / 255``); compositing ``frame`` takes the foreground as it is.

        Args:
            frame: ``H x W x 3`` uint8 RGB.
            coeffs: ``A`` and ``b`` at low resolution, in levels (see :attr:`coeffs`).
            box: the part of the frame the matte covers; outside it the alpha is 0.
        """
        height, width = frame.shape[:2]
        box = (0, height, 0, width) if box is None else box
        top, bottom, left, right = box
        low_h, low_w = coeffs[0].shape[:2]
        sx, sy = low_w / width, low_h / height
        # Bilinear with pixel centres aligned (as the network resizes), from the box's corner.
        where = np.float32([[sx, 0, (left + 0.5) * sx - 0.5], [0, sy, (top + 0.5) * sy - 0.5]])
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        a, b = (
            cv2.warpAffine(
                x, where, (right - left, bottom - top), flags=flags, borderMode=cv2.BORDER_REPLICATE
            )
            for x in coeffs
        )
        src = frame[top:bottom, left:right].astype(np.float32)
        guide = cv2.cvtColor(src, cv2.COLOR_RGB2RGBA)  # the grey goes in the fourth channel
        cv2.insertChannel(cv2.transform(src, _GREY), guide, 3)
        # One pass from the products to uint8 (saturated): the foreground and the alpha in
        # levels. Against float planes and an offset added back when compositing, the guided
        # step and the blend of a 960x720 frame take 3.9 instead of 5.5 ms (within a level).
        out = cv2.add(cv2.multiply(a, guide, dst=a), b, dtype=cv2.CV_8U)
        alpha = cv2.extractChannel(out, 3)
        matte = cls.__new__(cls)
        matte._set(alpha * np.float32(1 / 255), None, (height, width), box, alpha)
        matte.fgr, matte._frame = cv2.cvtColor(out, cv2.COLOR_RGBA2RGB), frame
        return matte

    @property
    def whole(self) -> bool:
        """Whether the planes cover the whole frame."""
        return self.box == (0, self.size[0], 0, self.size[1])

    def stack(self) -> tuple[np.ndarray, Box]:
        """The offset and the alpha as one ``h x w x 4`` float32 array, and the box it covers:
        the matte's extent and a pixel more on each side (inside the frame), so that what lies
        beyond it is the alpha's 0. Made once: resampling four float channels in one pass costs
        less than the int16 offset alone.
        """
        if self._stack is None:
            top, bottom, left, right = self.extent()
            height, width = self.size
            box = (
                max(0, top - 1),
                min(height, bottom + 1),
                max(0, left - 1),
                min(width, right + 1),
            )
            if box[1] <= box[0] or box[3] <= box[2]:
                box = (0, 1, 0, 1)
            rows = slice(box[0] - self.box[0], box[1] - self.box[0])
            cols = slice(box[2] - self.box[2], box[3] - self.box[2])
            stack = cv2.cvtColor(self.offset[rows, cols].astype(np.float32), cv2.COLOR_BGR2BGRA)
            cv2.insertChannel(np.ascontiguousarray(self.pha[rows, cols]), stack, 3)
            stack.flags.writeable = False
            self._stack = (stack, box)
        return self._stack

    def extent(self) -> Box:
        """The smallest box (in frame pixels) outside which the alpha is 0, made once; empty
        (zero height) when the matte holds nobody."""
        if self._extent is None:
            x, y, w, h = cv2.boundingRect(self.alpha)
            top, left = self.box[0] + y, self.box[2] + x
            self._extent = (top, top + h, left, left + w)
        return self._extent

    def alpha_u8(self, mirror: bool = False) -> np.ndarray:
        """The matte as ``H x W`` uint8 over the whole frame, flipped horizontally with
        ``mirror``; read-only."""
        if mirror not in self._alphas:
            alpha = self.alpha
            if not self.whole:
                top, bottom, left, right = self.box
                alpha = np.zeros(self.size, np.uint8)
                alpha[top:bottom, left:right] = self.alpha
            if mirror:
                alpha = cv2.flip(alpha, 1)
            alpha.flags.writeable = False
            self._alphas[mirror] = alpha
        return self._alphas[mirror]


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
    top, bottom, left, right = matte.box
    part = frame if matte.whole else frame[top:bottom, left:right]
    fg = matte.foreground(frame) if use_fgr else part
    if rgba:
        out = np.dstack([fg, matte.alpha])
        if not matte.whole:
            out = _placed(out, np.dstack([frame, np.zeros(matte.size, np.uint8)]), matte.box)
    elif matte.whole:
        out = cv2.blendLinear(fg, background, matte.pha, matte.inverse)
    else:
        inside = background[top:bottom, left:right]
        out = _placed(cv2.blendLinear(fg, inside, matte.pha, matte.inverse), background, matte.box)
    return cv2.flip(out, 1) if mirror else out


def _placed(part: np.ndarray, around: np.ndarray, box: Box) -> np.ndarray:
    """A copy of ``around`` with ``part`` in its ``box``."""
    top, bottom, left, right = box
    out = around.copy()
    out[top:bottom, left:right] = part
    return out
