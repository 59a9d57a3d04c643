"""Remembers the window's settings between runs with QSettings (organisation and application
"mattecam").

Every value is stored as text in the command-line form of :mod:`app.settings`, so a stored value is
checked by the same parsers as a typed one. ``$MATTECAM_SETTINGS_DIR`` moves the store to an INI
file in that folder (the screenshot tool and the tests use it so they never touch the user's).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from app.settings import (
    Background,
    Settings,
    SettingsError,
    parse_fps,
    parse_ratio,
    parse_resolution,
)

ORGANISATION = "mattecam"
APPLICATION = "mattecam"
ENV_SETTINGS_DIR = "MATTECAM_SETTINGS_DIR"

#: The :class:`Settings` fields the window remembers.
PERSISTED_FIELDS = (
    "source",
    "resolution",
    "fps",
    "background",
    "variant",
    "device",
    "precision",
    "downsample_ratio",
    "full_body",
    "hold_fps",
    "sync",
    "virtual_cam",
    "vcam_backend",
)


def open_qsettings(folder: str | Path | None = None) -> QSettings:
    """The QSettings the app uses.

    Args:
        folder: keep the settings in ``folder/mattecam.ini`` instead of the user's store; None
            uses ``$MATTECAM_SETTINGS_DIR`` when set, else the platform's per-user store.
    """
    folder = folder or os.environ.get(ENV_SETTINGS_DIR, "").strip() or None
    if folder is not None:
        path = Path(folder).expanduser() / "mattecam.ini"
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(
        QSettings.defaultFormat(), QSettings.Scope.UserScope, ORGANISATION, APPLICATION
    )


def _encode(field: str, value: object) -> str:
    if value is None:
        return ""
    if field == "background":
        assert isinstance(value, Background)
        return value.spec()
    if field == "resolution":
        width, height = value  # type: ignore[misc]
        return f"{width}x{height}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _decode(field: str, text: str) -> object:
    """Turns stored text back into a field value; raises SettingsError when it is not valid."""
    if field == "background":
        return Background.parse(text)
    if field == "resolution":
        return parse_resolution(text) if text else None
    if field == "fps":
        return parse_fps(text) if text else None
    if field == "downsample_ratio":
        return parse_ratio(text or "auto")
    if field in ("full_body", "hold_fps", "virtual_cam"):
        return text.strip().lower() in ("true", "1", "yes")
    if not text:
        raise SettingsError(f"No value stored for {field}.")
    return text


class Store:
    """Reads and writes the remembered settings and window preferences.

    Args:
        qsettings: where to keep them; None opens :func:`open_qsettings`'s store.
    """

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self._q = qsettings if qsettings is not None else open_qsettings()

    @property
    def qsettings(self) -> QSettings:
        """The underlying QSettings."""
        return self._q

    def load_settings(
        self, base: Settings, overrides: Iterable[str] = ()
    ) -> tuple[Settings, list[str]]:
        """Applies the remembered values on top of ``base``.

        Args:
            base: the settings to start from (command-line values and defaults).
            overrides: field names the user gave for this run; their remembered values are ignored.

        Returns:
            The merged settings and one sentence for each remembered value that is no longer
            usable (for example a background file that was deleted); those values are skipped.
        """
        skip = set(overrides)
        settings, problems = base, []
        for field in PERSISTED_FIELDS:
            key = f"settings/{field}"
            if field in skip or not self._q.contains(key):
                continue
            text = str(self._q.value(key, ""))
            try:
                settings = settings.replace(**{field: _decode(field, text)})
            except (SettingsError, TypeError, ValueError) as e:
                problems.append(f"The remembered {field.replace('_', ' ')} was skipped: {e}")
        return settings, problems

    def save_settings(self, settings: Settings, fields: Iterable[str] = PERSISTED_FIELDS) -> None:
        """Remembers some fields of ``settings`` (the ones the user changed in the window).

        Args:
            settings: the current settings.
            fields: which fields to write; names outside :data:`PERSISTED_FIELDS` are ignored.
        """
        for field in fields:
            if field in PERSISTED_FIELDS:
                self._q.setValue(f"settings/{field}", _encode(field, getattr(settings, field)))

    def user_backgrounds(self) -> list[str]:
        """The image and video files the user added to the background picker, in order."""
        value = self._q.value("backgrounds/user", [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in value or []]

    def set_user_backgrounds(self, paths: Iterable[str]) -> None:
        """Remembers the user's background files."""
        self._q.setValue("backgrounds/user", list(paths))

    def text(self, key: str, default: str = "") -> str:
        """A window preference stored as text (``ui/<key>``)."""
        return str(self._q.value(f"ui/{key}", default))

    def set_text(self, key: str, value: str) -> None:
        """Stores a window preference as text."""
        self._q.setValue(f"ui/{key}", value)

    def flag(self, key: str, default: bool = False) -> bool:
        """A window preference stored as a yes/no value."""
        return self.text(key, "true" if default else "false").lower() == "true"

    def set_flag(self, key: str, value: bool) -> None:
        """Stores a yes/no window preference."""
        self.set_text(key, "true" if value else "false")

    def geometry(self) -> QByteArray | None:
        """The saved window geometry, or None."""
        value = self._q.value("ui/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, geometry: QByteArray) -> None:
        """Remembers the window geometry."""
        self._q.setValue("ui/geometry", geometry)

    def blob(self, key: str) -> QByteArray | None:
        """A window state saved as bytes (``ui/<key>``, e.g. a splitter's), or None."""
        value = self._q.value(f"ui/{key}")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_blob(self, key: str, value: QByteArray) -> None:
        """Remembers a window state saved as bytes."""
        self._q.setValue(f"ui/{key}", value)

    def sync(self) -> None:
        """Writes pending changes to disk."""
        self._q.sync()
