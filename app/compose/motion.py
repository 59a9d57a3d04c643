"""Carrying a matte to a camera frame it was not made for, along the motion between the two.

When matting runs slower than the camera, most frames go out with a matte made for another frame.
Pasted as it is, that matte trails every moving hand or head by the matting interval: the room
shows through behind the motion and the moving edge is cut off. Here the matte is moved with the
picture instead: dense optical flow (OpenCV's DIS) between small grey thumbnails of the two frames
tells, for every pixel of the frame to composite, where that pixel was in the matted frame. What
is resampled from there is the network's deep guided filter at low resolution (its coefficients
``A`` and ``b``), which is then applied to the frame's own pixels, so the edge follows the frame's
picture; mattes without coefficients have their alpha and foreground offset resampled instead.

DIS runs down to the thumbnail's full resolution (its ultrafast preset stops at a quarter and
measures a 9 px motion as 7.7 px; stopping at half still missed enough of a moving edge to show as
flicker when the next matte corrects it). In front of a plain wall the carried edge lands where the
person's edge is; in front of a textured room the flow is smoothed across the edge (the room
just uncovered behind a moving hand has no match), and the edge moves about half as far.
Spreading the person's own motion outwards over that edge fixes a moving disc but made real
footage worse (hands move unlike the body next to them), so it is not done; the matte from the
other side of the frame in time makes up for most of it.

Between two matted frames (``before`` and ``after``) a frame is given both mattes carried to it,
blended by how near it is to each in time: what one of them cannot see (a region uncovered by the
motion) the other usually can. A frame within a fifth of the interval of one of them gets that one
alone: on footage A with a matte on every 7th frame the alpha's edge error stays the same (4.37
against 4.42 levels) for 3% more flicker and a fifth less time. The matte is made only over the
box the person can have reached (the matte's extent widened by the longest flow step): the empty
room costs nothing. The flow itself is estimated only over the people's extents widened by 0.15
of the thumbnail's width and by how far frames carried onward have moved since the matte: on
footage A a tenth less carrying time for the same edge error (replayed with a matte every 4th
frame: 12.97 against 13.00). Everything is OpenCV work, about 8 ms per carried 960x720 frame on
an idle core of a 2-core Zen 4 EPYC (thumbnail, flow, resampling, the guided step), 17-21 ms
there beside the network and an encoder.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from app.compose.host import Box, Coefficients, HostMatte, fitted

__all__ = ["THUMB_WIDTH", "MotionCarrier", "thumbnail"]

THUMB_WIDTH = 240  # flow is estimated on thumbnails this wide (240x180 for a 4:3 camera)
FINEST_SCALE = 0  # DIS refines down to the thumbnail's own pixels (ultrafast stops at a quarter)
PATCH_STRIDE = 6  # px between DIS patches (ultrafast: 4): half the time, 1-3% more edge error
# Gradient descent steps per patch (ultrafast: 12): ideal mattes on every 4th frame of footage A
# carried forward, alpha edge error 8.13 -> 8.03 levels, flicker 6.75 -> 6.65, no slower.
DESCENT_STEPS = 16
# A frame this near one of its two mattes (as a fraction of the time between them) is given that
# matte alone when following the motion: the farther one adds little there and costs a flow.
LEAST_WEIGHT = 0.2
# Flow is estimated only over the part of the thumbnail the person can be in: the extents of the
# mattes carried, widened by this fraction of the thumbnail's width each way (snapped to SNAP px).
REGION_MARGIN = 0.15
SNAP = 8


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
    # Grey first: averaging one plane instead of three takes half the time (0.6 against 1.3 ms
    # for a 960x720 frame), within a level of the other order.
    return cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)


class MotionCarrier:
    """Moves prepared mattes (:class:`~app.compose.host.HostMatte`) onto other frames.

    Not for concurrent use: one carrier serves one compositing thread.

    Attributes:
        region_margin: flow is estimated over the people's extents widened by this fraction of
            the thumbnail's width (None: over the whole thumbnail).
    """

    region_margin: float | None = REGION_MARGIN

    def __init__(self) -> None:
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self._dis.setFinestScale(FINEST_SCALE)
        self._dis.setPatchStride(PATCH_STRIDE)
        self._dis.setGradientDescentIterations(DESCENT_STEPS)
        self._grid: tuple[tuple[tuple[int, int], tuple[int, int]], np.ndarray] | None = None
        self._pixels: np.ndarray | None = None  # x, y of each thumbnail pixel (h x w x 2)
        # The last frame carried from the earlier matte: (matte's thumbnail, frame's thumbnail,
        # flow from the frame to the matte), to follow the motion from there (see ``_onward``).
        self._last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def flow(self, target: np.ndarray, source: np.ndarray, region: Box | None = None) -> np.ndarray:
        """Per pixel of the ``target`` thumbnail, where it was in the ``source`` thumbnail.

        Args:
            target: thumbnail of the frame to composite.
            source: thumbnail of the matted frame (same size).
            region: the part of the thumbnails to estimate it over (thumbnail pixels); outside
                it the flow is 0. None: all of it.

        Returns:
            ``h x w x 2`` float32 displacement in thumbnail pixels.
        """
        if target.shape != source.shape:
            raise ValueError("The two thumbnails must have the same size.")
        if region is None or region == (0, target.shape[0], 0, target.shape[1]):
            return self._dis.calc(target, source, None)
        top, bottom, left, right = region
        out = np.zeros((*target.shape, 2), np.float32)
        out[top:bottom, left:right] = self._dis.calc(
            np.ascontiguousarray(target[top:bottom, left:right]),
            np.ascontiguousarray(source[top:bottom, left:right]),
            None,
        )
        return out

    def _region(
        self, mattes: list[HostMatte], shape: tuple[int, ...], travelled: float = 0.0
    ) -> Box | None:
        """The part of a thumbnail of ``shape`` the people of ``mattes`` can be in: their extents
        widened by :attr:`region_margin` and by how far the motion carried them already
        (``travelled``, thumbnail pixels), or None for the whole thumbnail."""
        if self.region_margin is None:
            return None
        extents = [e for e in (m.extent() for m in mattes) if e[1] > e[0]]
        if not extents:
            return None
        height, width = shape[:2]
        size = mattes[0].size
        top, bottom, left, right = _union(extents, size)
        sy, sx = height / size[0], width / size[1]
        margin = self.region_margin * width + travelled
        return (
            max(0, math.floor((top * sy - margin) / SNAP) * SNAP),
            min(height, math.ceil((bottom * sy + margin) / SNAP) * SNAP),
            max(0, math.floor((left * sx - margin) / SNAP) * SNAP),
            min(width, math.ceil((right * sx + margin) / SNAP) * SNAP),
        )

    def _travelled(self, source: np.ndarray) -> float:
        """How far (thumbnail pixels, longest step) the frames carried onward from the matted
        frame of thumbnail ``source`` have moved since it (see :meth:`_onward`); 0 for none."""
        last = self._last
        return max(_steps(last[2])) if last is not None and last[0] is source else 0.0

    def _onward(
        self, target: np.ndarray, source: np.ndarray, region: Box | None = None
    ) -> np.ndarray:
        """:meth:`flow` from ``target`` to an earlier matted frame, through the last frame carried
        from that matte: the motion from that frame to ``target`` (a frame or a few) is measured
        and the flow that frame already had is followed from where each pixel was.

        DIS finds a short motion more surely than one over a whole matting interval: replayed on
        footage A with a matte every 6th frame, edge error 16.33 -> 16.11 and stability 9.42 ->
        8.69 (every 3rd frame 12.59 -> 12.36, 7.72 -> 7.30) for one small resampling more.
        """
        last = self._last
        if last is None or last[0] is not source or last[1].shape != target.shape:
            flow = self.flow(target, source, region)
        elif last[1] is target:
            flow = last[2]
        else:
            step = self.flow(target, last[1], region)
            if self._pixels is None or self._pixels.shape[:2] != target.shape:
                ys, xs = np.indices(target.shape, dtype=np.float32)
                self._pixels = np.dstack([xs, ys])
            where = step + self._pixels  # where each pixel of ``target`` was in that frame
            behind = cv2.remap(
                last[2], where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            flow = step + behind
        self._last = (source, target, flow)
        return flow

    def _map(
        self, flow: np.ndarray, size: tuple[int, int], origin: tuple[int, int] = (0, 0)
    ) -> np.ndarray:
        """The full-size sampling map (``H x W x 2`` float32) for :func:`cv2.remap` from a
        thumbnail flow, in pixels from ``origin`` (x, y) of the frame.

        The map is made at the thumbnail's size (each thumbnail pixel's centre in full-size
        pixels, plus its flow scaled up) and resized once: resizing linearly keeps a linear grid
        exact, except in the outermost half thumbnail pixel, where it is clamped (at most 1.5 px
        off for a 960 px frame, at the border the remap replicates anyway). Float maps: with this
        OpenCV, remapping float planes through fixed-point maps is slower.
        """
        height, width = size
        small = flow.shape[:2]
        scale = np.float32([width / small[1], height / small[0]])
        if self._grid is None or self._grid[0] != (small, size):
            xs = (np.arange(small[1], dtype=np.float32) + 0.5) * scale[0] - 0.5
            ys = (np.arange(small[0], dtype=np.float32) + 0.5) * scale[1] - 0.5
            self._grid = ((small, size), np.dstack(np.meshgrid(xs, ys)))
        small_map = flow * scale + (self._grid[1] - np.float32(origin))
        return cv2.resize(small_map, (width, height), interpolation=cv2.INTER_LINEAR)

    def _coefficients(self, coeffs: Coefficients, flow: np.ndarray) -> Coefficients:
        """Low-resolution coefficients (:attr:`~app.compose.host.HostMatte.coeffs`) resampled
        along a thumbnail ``flow``, at their own size."""
        where = self._map(flow, coeffs[0].shape[:2])
        a, b = (
            cv2.remap(x, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for x in coeffs
        )
        return a, b

    def carry(self, matte: HostMatte, flow: np.ndarray) -> HostMatte:
        """The matte (its alpha and its foreground offset) resampled along ``flow`` (from
        :meth:`flow`, target to the matte's frame)."""
        box = _reach(matte, flow)
        return HostMatte.from_stack(self._resample(matte, flow, box), matte.size, box)

    def _resample(self, matte: HostMatte, flow: np.ndarray, box: Box) -> np.ndarray:
        """The matte's stack (:meth:`HostMatte.stack`) resampled along ``flow`` over ``box``."""
        stack, (origin_y, _, origin_x, _) = matte.stack()
        where = self._map(flow, matte.size, (origin_x, origin_y))
        top, bottom, left, right = box
        # Beyond the stack's box the border replicates: the alpha's 0 around the person, or the
        # frame's own edge where the person reaches it.
        return cv2.remap(
            stack,
            where[top:bottom, left:right],
            None,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )

    def between(
        self,
        target: np.ndarray | None,
        before: tuple[HostMatte, np.ndarray] | None,
        after: tuple[HostMatte, np.ndarray] | None,
        weight: float,
        frame: np.ndarray | None = None,
    ) -> HostMatte:
        """The matte for a frame from the mattes of frames on either side of it.

        Mattes that keep the guided filter's low-resolution coefficients (and a ``frame`` to
        apply them to) are carried as those: the coefficients are resampled along the motion at
        their own size, blended, and applied to the frame's pixels
        (:meth:`~app.compose.host.HostMatte.guided`), so that the edge follows the frame's own
        picture where the flow falls short of it. Replayed on footage A with a matte on every
        4th frame (256 px) carried forward, edge error 13.73 -> 12.99, stability 7.86 -> 6.62; on
        footage B (346 px) 28.24 -> 27.38 and 9.04 -> 7.76. Other mattes are carried as planes:

        the alphas and the foreground offsets are resampled along the motion and blended. The
        offset (``fgr - src``, the colour that takes the room's spill off the person's edge) has
        to move with the edge as much as the alpha does: left in place it tints the room where
        the edge was and leaves the new edge uncorrected.

        Args:
            target: thumbnail of the frame to composite; None blends the two mattes as they are,
                without following the motion (cheaper, good when they are a frame or two apart).
            before: the matte of an earlier frame and that frame's thumbnail, or None.
            after: the matte of a later frame and its thumbnail, or None.
            weight: how far the frame lies from ``before`` towards ``after`` (0..1); the blend
                gives ``after`` this weight.
            frame: the frame to composite, ``H x W x 3`` uint8 RGB (the guided filter's guide).

        Raises:
            ValueError: neither matte given.
        """
        sides = [(item, w) for item, w in ((before, 1.0 - weight), (after, weight)) if item]
        if not sides:
            raise ValueError("A matte from at least one side is needed.")
        size = sides[0][0][0].size
        if target is not None:
            if len(sides) == 2 and min(weight, 1.0 - weight) < LEAST_WEIGHT:
                sides = [max(sides, key=lambda side: side[1])]
            onward = any(side is before for side, _ in sides)
            travelled = self._travelled(before[1]) if onward else 0.0
            region = self._region([side[0] for side, _ in sides], target.shape, travelled)
            flows = [
                (side[0], (self._onward if side is before else self.flow)(target, side[1], region))
                for side, _ in sides
            ]
            box = _union([_reach(m, flow) for m, flow in flows], size)
            weights = [w for _, w in sides]
            low = {None if m.coeffs is None else m.coeffs[0].shape for m, _ in flows}
            if frame is not None and len(low) == 1 and None not in low:
                carried = [self._coefficients(m.coeffs, flow) for m, flow in flows]
                a, b = (_blended([c[i] for c in carried], weights) for i in (0, 1))
                return HostMatte.guided(frame, (a, b), box)
            stacks = [self._resample(m, flow, box) for m, flow in flows]
            return HostMatte.from_stack(_blended(stacks, weights), size, box)
        if len(sides) == 1:
            return sides[0][0][0]
        ((a, _), wa), ((b, _), wb) = sides
        pha = cv2.addWeighted(a.pha, wa, b.pha, wb, 0.0)
        offset = cv2.addWeighted(a.offset, wa, b.offset, wb, 0.0)
        return HostMatte.from_planes(pha, offset)


def _blended(arrays: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """One array, or two blended with their weights."""
    if len(arrays) == 1:
        return arrays[0]
    (a, b), (wa, wb) = arrays, weights
    return cv2.addWeighted(a, wa, b, wb, 0.0)


def _reach(matte: HostMatte, flow: np.ndarray) -> Box:
    """The part of the frame a matte can cover once carried along ``flow``: its extent, widened
    by the flow's longest step (in frame pixels) and a pixel for the interpolation (see
    :func:`~app.compose.host.fitted` for an empty or tiny one)."""
    top, bottom, left, right = matte.extent()
    if bottom <= top:
        return fitted((0, 0, 0, 0), matte.size)
    height, width = matte.size
    step_x, step_y = _steps(flow)
    reach_x = int(np.ceil(step_x * width / flow.shape[1])) + 2
    reach_y = int(np.ceil(step_y * height / flow.shape[0])) + 2
    return fitted((top - reach_y, bottom + reach_y, left - reach_x, right + reach_x), matte.size)


def _steps(flow: np.ndarray) -> tuple[float, float]:
    """The longest step of ``flow`` along x and along y."""
    return tuple(max(-low, high) for low, high, *_ in map(cv2.minMaxLoc, cv2.split(flow)))


def _union(boxes: list[Box], size: tuple[int, int]) -> Box:
    """The smallest box holding all ``boxes``."""
    return fitted(
        (
            min(b[0] for b in boxes),
            max(b[1] for b in boxes),
            min(b[2] for b in boxes),
            max(b[3] for b in boxes),
        ),
        size,
    )
