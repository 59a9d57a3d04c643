"""Rewords the command-line advice in the pipeline's messages for the window.

The pipeline, the capture and the engine write their messages for both front ends; where one tells
the user to pass a flag (``--source N``), the window names the control that does the same.
"""

from __future__ import annotations

import re

#: (pattern, replacement) pairs, tried in order.
_REWORDINGS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"pick another with --source N", "pick another camera in Source"),
        (r"use a video file: --source FILE", "open a video file in Source"),
        (r"use --device cpu or auto", "choose CPU or Automatic as the device in Quality"),
        (r"use --device cpu", "choose CPU as the device in Quality"),
        (r"use --precision fp32 or auto", "choose FP32 or Automatic as the precision in Quality"),
        (r"use --precision fp32", "choose FP32 as the precision in Quality"),
        (r"use --variant (\w+)", r"choose \1 as the network in Quality"),
    )
)


def for_window(message: str) -> str:
    """``message`` with command-line advice replaced by the window's controls.

    Args:
        message: one or two sentences from the pipeline or the worker.

    Returns:
        The message as the window shows it; unchanged when it gives no command-line advice.
    """
    for pattern, replacement in _REWORDINGS:
        message = pattern.sub(replacement, message)
    return message
