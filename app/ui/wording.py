"""Words the advice that comes with a problem (:class:`~app.events.Advice`) for the window.

The pipeline, the capture and the engine say what is wrong and which setting to change; the command
line names the flag (``use --device cpu``), the window names the control that does the same.
"""

from __future__ import annotations

from app.events import Advice

#: The window's name of each setting an advice can name, and the tab holding its control.
_CONTROLS = {
    "device": ("the device", "Quality"),
    "precision": ("the precision", "Quality"),
    "variant": ("the network", "Quality"),
}
#: How the controls label the values.
_LABELS = {"cpu": "CPU", "cuda": "CUDA", "mps": "Apple MPS", "auto": "Automatic", "fp32": "FP32"}


def advice_words(advice: Advice) -> str:
    """The advice as the window says it, e.g. ``choose CPU as the device in Quality``.

    A setting without a control in the window keeps its command-line words.
    """
    if advice.field == "source":
        return "pick another camera in Source, or open a video file in Source"
    control = _CONTROLS.get(advice.field)
    if control is None or not advice.values:
        return advice.for_command_line()
    values = " or ".join(_LABELS.get(v, v) for v in advice.values)
    return f"choose {values} as {control[0]} in {control[1]}"


def for_window(message: str, advice: Advice | None = None) -> str:
    """A problem as the window shows it: the message, then the advice in the window's words."""
    return f"{message}; {advice_words(advice)}." if advice is not None else message
