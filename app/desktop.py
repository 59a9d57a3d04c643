"""Whether the window can start on this Linux desktop: the system libraries Qt's X11 (xcb)
platform plugin loads, checked before Qt is started.

The PySide6 wheels bundle Qt but not the X11 libraries under it; without them Qt aborts the process
while creating the application, with a message that names one library at most. This module finds
every missing one in the system's library cache (``ldconfig -p``) and names the one ``apt install``
line that brings them all. No Qt import happens here.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

#: The shared libraries Qt's xcb platform plugin and the Qt GUI libraries load that the PySide6
#: wheels do not bundle, each with the Debian/Ubuntu package that provides it.
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}

_CACHE_LINE = re.compile(r"^\s*(\S+)\s+\(([^)]*)\)\s+=>")


def cached_libraries(ldconfig_output: str, machine: str = "x86-64") -> set[str]:
    """The library names in the output of ``ldconfig -p`` built for this machine.

    Args:
        ldconfig_output: what ``ldconfig -p`` printed.
        machine: the architecture tag to keep (``x86-64``; ``AArch64`` on ARM); entries without
            one (32-bit x86) are dropped unless ``machine`` is empty.

    Returns:
        Sonames such as ``libxcb.so.1``.
    """
    names = set()
    for line in ldconfig_output.splitlines():
        match = _CACHE_LINE.match(line)
        if match and (not machine or machine.lower() in match.group(2).lower()):
            names.add(match.group(1))
    return names


def missing_libraries(
    present: Iterable[str],
    bundled: Iterable[str] = (),
    required: Mapping[str, str] = XCB_LIBRARIES,
) -> list[str]:
    """The required sonames that are neither installed nor bundled with Qt, in the given order."""
    have = set(present) | set(bundled)
    return [name for name in required if name not in have]


def apt_line(missing: Iterable[str], required: Mapping[str, str] = XCB_LIBRARIES) -> str:
    """``sudo apt install`` with the packages that provide ``missing`` (each package once)."""
    packages = dict.fromkeys(required.get(name, name) for name in missing)
    return "sudo apt install " + " ".join(packages)


def _machine_tag() -> str:
    return {"x86_64": "x86-64", "aarch64": "AArch64"}.get(os.uname().machine, "")


def _qt_bundled() -> set[str]:
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return set()
    folder = Path(next(iter(spec.submodule_search_locations))) / "Qt" / "lib"
    return {p.name for p in folder.glob("*.so*")} if folder.is_dir() else set()


def _ldconfig_output() -> str | None:
    tool = shutil.which("ldconfig") or next(
        (p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if os.access(p, os.X_OK)), None
    )
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, "-p"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def uses_xcb(environ: Mapping[str, str]) -> bool:
    """Whether Qt will start on X11 (xcb) under this environment."""
    platform = environ.get("QT_QPA_PLATFORM", "").strip().lower()
    if platform:
        return platform.split(":")[0].split(";")[0] == "xcb"
    on_wayland = environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY")
    return not on_wayland


def desktop_problem(
    environ: Mapping[str, str] | None = None, ldconfig_output: str | None = None
) -> str | None:
    """One sentence saying which system libraries the window lacks and how to install them.

    Args:
        environ: the environment (``os.environ`` when None).
        ldconfig_output: what ``ldconfig -p`` prints; read from the system when None.

    Returns:
        None when the window can start (or when this cannot be told: not Linux, Qt not on X11,
        no library cache to read), else the message.
    """
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or not uses_xcb(environ):
        return None
    output = _ldconfig_output() if ldconfig_output is None else ldconfig_output
    if output is None:
        return None
    missing = missing_libraries(cached_libraries(output, _machine_tag()), _qt_bundled())
    if not missing:
        return None
    return (
        f"the window needs system libraries that are missing ({', '.join(missing)}); install "
        f"them with: {apt_line(missing)}   (or run without a window: --headless)"
    )
