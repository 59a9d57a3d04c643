"""The automatic downsample ratios: the live one and the conversion one, side by side.

The network runs at ``downsample_ratio`` times the frame size and the refiner brings the matte back
to full size. Two policies pick that ratio when the user does not, and they differ on purpose:

- :func:`live_ratio` (the engine, the window, the virtual camera) follows the ratio table of the RVM
  documentation: frames up to 512 px on their long side at full size, larger ones brought to a long
  side of 480 px (upper body) or 768 px (full body). A webcam frame has to be matted within one
  frame interval, so 720p runs at 0.375, not at the 0.4 of the other policy. When matting falls
  behind the camera the ratio may drop further, down to :func:`lowest_live_ratio`.
- :func:`conversion_ratio` (``convert_video`` and its command line) is the automatic ratio of RVM's
  own ``convert_video``: the long side at most 512 px. A conversion has no clock to keep, and the
  same call gives the same numbers as the original API.
"""

from __future__ import annotations

import math

PORTRAIT_LONG_SIDE = 480  # 1280x720 -> 0.375, 1920x1080 -> 0.25, 3840x2160 -> 0.125
FULL_BODY_LONG_SIDE = 768  # 1280x720 -> 0.6, 1920x1080 -> 0.4, 3840x2160 -> 0.2
FULL_SIZE_LONG_SIDE = 512
MIN_LONG_SIDE = 256
MIN_SHORT_SIDE = 16  # below this the network sees too little to matte anything


class RatioError(ValueError):
    """A downsample ratio leaves the network too small a picture; the message names the least
    ratio that works."""


def live_ratio(height: int, width: int, full_body: bool = False) -> float:
    """The live engine's ratio for a frame size: RVM's documented table.

    Args:
        height: frame height.
        width: frame width.
        full_body: use the full-body column (more detail for a whole person in the frame).

    Returns:
        1 up to a 512 px long side; else the ratio that brings the long side to 480 px (768 px
        for full body): 720p 0.375 / 0.6, 1080p 0.25 / 0.4, 4K 0.125 / 0.2.
    """
    long_side = max(height, width)
    if long_side <= FULL_SIZE_LONG_SIDE:
        return 1.0
    target = FULL_BODY_LONG_SIDE if full_body else PORTRAIT_LONG_SIDE
    return max(min(1.0, target / long_side), ratio_floor(height, width))


def lowest_live_ratio(height: int, width: int) -> float:
    """The smallest ratio the live engine lowers to when it cannot keep up: a 256 px long side."""
    return max(min(1.0, MIN_LONG_SIDE / max(height, width)), ratio_floor(height, width))


def conversion_ratio(height: int, width: int) -> float:
    """The conversion's ratio for a frame size: RVM ``convert_video``'s, long side up to 512 px
    (raised to :func:`ratio_floor` for a frame so long and thin that RVM's would leave nothing)."""
    return max(min(FULL_SIZE_LONG_SIDE / max(height, width), 1.0), ratio_floor(height, width))


def ratio_floor(height: int, width: int) -> float:
    """The smallest ratio that leaves the network :data:`MIN_SHORT_SIDE` pixels on the short side
    (the whole short side of a frame narrower than that)."""
    short_side = min(height, width)
    return min(1.0, MIN_SHORT_SIDE / short_side) if short_side > 0 else 1.0


def check_ratio(height: int, width: int, ratio: float) -> float:
    """Checks that a ratio the user chose leaves the network a picture to work on.

    Args:
        height: frame height.
        width: frame width.
        ratio: the chosen downsample ratio.

    Returns:
        ``ratio``.

    Raises:
        RatioError: the network would see the frames smaller than :func:`ratio_floor` allows.
    """
    floor = ratio_floor(height, width)
    if ratio >= floor - 1e-9:
        return ratio
    seen = f"{int(width * ratio)}x{int(height * ratio)}"
    need = math.ceil(floor * 1e4) / 1e4
    raise RatioError(
        f"Downsample ratio {ratio:g} leaves the network {seen} pixels of the {width}x{height} "
        f"frames: give at least {need:g} ({min(MIN_SHORT_SIDE, height, width)} px on the short "
        "side), or auto."
    )
