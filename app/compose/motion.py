"""Carrying a matte to a camera frame it was not made for, along the motion between the two.

When matting runs slower than the camera, most frames go out with a matte made for another frame.
Pasted as it is, that matte trails every moving hand or head by the matting interval: the room
shows through behind the motion and the moving edge is cut off. Here the matte is moved with the
picture instead: dense optical flow (OpenCV's DIS) between small grey thumbnails of the two frames
tells, for every pixel of the frame to composite, where that pixel was in the matted frame; the
alpha and the foreground offset are resampled from there.

DIS runs down to half the thumbnail's resolution (its ultrafast preset stops at a quarter and
measures a 9 px motion as 7.7 px). In front of a plain wall the carried edge lands where the
person's edge is; in front of a textured room the flow is smoothed across the edge (the room
just uncovered behind a moving hand has no match), and the edge moves about half as far.
Spreading the person's own motion outwards over that edge fixes a moving disc but made real
footage worse (hands move unlike the body next to them), so it is not done; the matte from the
other side of the frame in time makes up for most of it.

Between two matted frames (``before`` and ``after``) a frame is given both mattes carried to it,
blended by how near it is to each in time: what one of them cannot see (a region uncovered by the
motion) the other usually can. Everything is uint8/int16/float32 work through OpenCV, a few
milliseconds per 960x720 frame on one core.
"""

from __future__ import annotations

import cv2
import numpy as np

from app.compose.host import HostMatte

__all__ = ["THUMB_WIDTH", "MotionCarrier", "thumbnail"]

THUMB_WIDTH = 240  # flow is estimated on thumbnails this wide (240x180 for a 4:3 camera)
FINEST_SCALE = 1  # DIS stops at half the thumbnail's resolution (ultrafast stops at a quarter)


def thumbnail(frame: np.ndarray, width: int = THUMB_WIDTH) -> np.ndarray:
    """The grey thumbnail the flow is estimated on.

    Args:
        frame: ``H x W x 3`` uint8 RGB.
        width: thumbnail width in pixels (at most the frame's).

    Returns:
        ``h x width`` uint8 grey, ``h`` keeping the frame's aspect.
    """
    height, full = frame.shape[:2]
    width = min(width, full)
    size = (width, max(1, round(height * width / full)))
    small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)


class MotionCarrier:
    """Moves prepared mattes (:class:`~app.compose.host.HostMatte`) onto other frames.

    Not for concurrent use: one carrier serves one compositing thread.
    """

    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._dis.setFinestScale(FINEST_SCALE)
        self._grid: tuple[tuple[int, int], np.ndarray, np.ndarray] | None = None

    def flow(self, target: np.ndarray, source: np.ndarray) -> np.ndarray:
        """Per pixel of the ``target`` thumbnail, where it was in the ``source`` thumbnail.

        Args:
            target: thumbnail of the frame to composite.
            source: thumbnail of the matted frame (same size).

        Returns:
            ``h x w x 2`` float32 displacement in thumbnail pixels.
        """
        if target.shape != source.shape:
            raise ValueError("The two thumbnails must have the same size.")
        return self._dis.calc(target, source, None)

    def _maps(self, flow: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Full-size sampling maps for :func:`cv2.remap` from a thumbnail flow.

        Float maps: with this OpenCV, remapping float planes through fixed-point maps is slower.
        """
        height, width = size
        if self._grid is None or self._grid[0] != size:
            xs = np.broadcast_to(np.arange(width, dtype=np.float32)[None, :], size).copy()
            ys = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None], size).copy()
            self._grid = (size, xs, ys)
        _, xs, ys = self._grid
        scale_x, scale_y = width / flow.shape[1], height / flow.shape[0]
        big = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
        fx, fy = cv2.split(big)
        return cv2.scaleAdd(fx, scale_x, xs), cv2.scaleAdd(fy, scale_y, ys)

    def carry(self, matte: HostMatte, flow: np.ndarray) -> np.ndarray:
        """The matte's alpha resampled along ``flow`` (from :meth:`flow`, target to the matte's
        frame)."""
        map_x, map_y = self._maps(flow, matte.size)
        return cv2.remap(matte.pha, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def between(
        self,
        target: np.ndarray | None,
        before: tuple[HostMatte, np.ndarray] | None,
        after: tuple[HostMatte, np.ndarray] | None,
        weight: float,
    ) -> HostMatte:
        """The matte for a frame from the mattes of frames on either side of it.

        The alphas are carried along the motion and blended; the foreground offsets (a colour
        correction that changes slowly across the picture) are blended where they are: carrying
        them too cost three times the work for 3% of the edge error on the signing footage.

        Args:
            target: thumbnail of the frame to composite; None blends the two mattes as they are,
                without following the motion (cheaper, good when they are a frame or two apart).
            before: the matte of an earlier frame and that frame's thumbnail, or None.
            after: the matte of a later frame and its thumbnail, or None.
            weight: how far the frame lies from ``before`` towards ``after`` (0..1); the blend
                gives ``after`` this weight.

        Raises:
            ValueError: neither matte given.
        """
        sides = [(item, w) for item, w in ((before, 1.0 - weight), (after, weight)) if item]
        if not sides:
            raise ValueError("A matte from at least one side is needed.")
        if target is None:
            phas = [(m.pha, w) for (m, _), w in sides]
        else:
            phas = [(self.carry(m, self.flow(target, thumb)), w) for (m, thumb), w in sides]
        if len(sides) == 1:
            if target is None:
                return sides[0][0][0]
            return HostMatte.from_planes(phas[0][0], sides[0][0][0].offset)
        (pa, wa), (pb, wb) = phas
        (a, _), (b, _) = (item for item, _ in sides)
        pha = cv2.addWeighted(pa, wa, pb, wb, 0.0)
        offset = cv2.addWeighted(a.offset, wa, b.offset, wb, 0.0)
        return HostMatte.from_planes(pha, offset)
