"""The typed vocabulary between the live pipeline and whoever shows it (the window, the CLI).

An :class:`Event` says what happened (:class:`EventKind`), which part of the run it concerns and
which setting to change (:class:`Advice`), so a front end words and places it without parsing the
message. Errors a user can fix carry the same advice (:class:`UserError`). The source's
and the virtual camera's states are enums too. Nothing here imports Qt or torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class EventKind(str, Enum):
    """How an event is meant to be shown."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    PROGRESS = "progress"
    STATE = "state"


class SourceState(str, Enum):
    """Where the capture thread is."""

    STARTING = "starting"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    STOPPED = "stopped"
    ERROR = "error"


class VcamState(str, Enum):
    """The virtual camera: off, sending, or asked for but not available (no driver)."""

    OFF = "off"
    ON = "on"
    UNAVAILABLE = "unavailable"


class Field(str, Enum):
    """The setting an event concerns, so a front end can point at it."""

    NONE = ""
    SOURCE = "source"
    BACKGROUND = "background"
    ENGINE = "engine"
    VIRTUAL_CAM = "virtual_cam"
    OUTPUT = "output"
    MATTING = "matting"


#: How the command line names a setting whose advice gives no value ("another one").
_ANOTHER = {"source": "pick another camera with --source N or a video file with --source FILE"}


@dataclass(frozen=True)
class Advice:
    """A setting to change to get past a problem; each front end words it for its own controls.

    Attributes:
        field: the setting, as named in :class:`~app.settings.Settings` (``device``, ``source``...).
        values: values that work, best first; empty when any other one will do.
    """

    field: str
    values: tuple[str, ...] = ()

    def for_command_line(self) -> str:
        """The advice in command-line words, e.g. ``use --device cpu or auto``."""
        flag = "--" + self.field.replace("_", "-")
        if not self.values:
            return _ANOTHER.get(self.field, f"give another {flag}")
        return f"use {flag} {' or '.join(self.values)}"


class UserError(Exception):
    """A problem the user can fix: :attr:`reason` says what is wrong, :attr:`advice` what to change.

    ``str()`` gives both, the advice in command-line words, so the command line prints it as it
    is; the window words the advice for its own controls.

    Args:
        reason: one sentence without a final full stop, or a complete message without advice.
        advice: the setting to change, if one helps.
    """

    def __init__(self, reason: str, advice: Advice | None = None) -> None:
        self.reason = reason
        self.advice = advice
        super().__init__(f"{reason}; {advice.for_command_line()}." if advice else reason)


def explain(exc: BaseException) -> tuple[str, Advice | None]:
    """The reason and advice of an error (a plain error is all reason)."""
    if isinstance(exc, UserError):
        return exc.reason, exc.advice
    return str(exc), None


@dataclass(frozen=True)
class Event:
    """Something a user should know.

    Attributes:
        kind: how to show it.
        message: one or two sentences, complete without the other fields (the CLI prints it).
        fraction: how far a ``progress`` step is (None when unknown).
        source_state: for news from the capture thread, its state; None otherwise.
        field: the part of the run concerned.
        advice: the setting to change, if one helps; :meth:`text` words it for the command line.
        path: the file concerned (a recording), empty when none.
        detail: a sentence a front end may show in its own words (why the chosen virtual camera
            route did not open), empty when none.
    """

    kind: EventKind
    message: str
    fraction: float | None = None
    source_state: SourceState | None = None
    field: Field = Field.NONE
    advice: Advice | None = None
    path: str = ""
    detail: str = ""

    @classmethod
    def error(cls, exc: BaseException, field: Field, kind: EventKind = EventKind.ERROR) -> Event:
        """The event that reports ``exc`` (its advice kept apart from its message)."""
        message, advice = explain(exc)
        return cls(kind, message, field=field, advice=advice)

    def text(self) -> str:
        """The message with its advice in command-line words."""
        if self.advice is None:
            return self.message
        return f"{self.message}; {self.advice.for_command_line()}."


Emit = Callable[[Event], None]
