"""A first start: the X11 libraries the window needs (checked against fake and real library
caches), what `make run` installs, and the defaults `--help` shows."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from app import desktop
from app.cli import main
from app.desktop import XCB_LIBRARIES, cached_libraries, desktop_problem

X11 = {"DISPLAY": ":0"}


def ldconfig_listing(names, arch: str = "libc6,x86-64") -> str:
    lines = [f"{len(names)} libs found in cache `/etc/ld.so.cache'"]
    lines += [f"\t{n} ({arch}) => /lib/x86_64-linux-gnu/{n}" for n in names]
    return "\n".join(lines) + "\n"


@pytest.fixture
def on_x86(monkeypatch):
    monkeypatch.setattr(desktop, "_machine_tag", lambda: "x86-64")
    monkeypatch.setattr(desktop, "_qt_bundled", lambda: {"libQt6Core.so.6"})
    monkeypatch.setattr(desktop.sys, "platform", "linux")


def test_a_fresh_desktop_gets_one_apt_line_naming_every_missing_package(on_x86) -> None:
    fresh = [
        n for n in XCB_LIBRARIES if "icccm" not in n and "keysyms" not in n and "cursor" not in n
    ]
    message = desktop_problem(X11, ldconfig_listing(fresh))
    assert message is not None and "\n" not in message
    assert "libxcb-icccm.so.4" in message and "libxcb-keysyms.so.1" in message
    assert "sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 " in message + " "


def test_nothing_is_said_when_everything_is_there(on_x86) -> None:
    assert desktop_problem(X11, ldconfig_listing(list(XCB_LIBRARIES))) is None


def test_32_bit_copies_do_not_count(on_x86) -> None:
    listing = ldconfig_listing(list(XCB_LIBRARIES), arch="libc6")
    message = desktop_problem(X11, listing)
    assert message is not None and "libxcb1" in message


def test_a_package_is_named_once_for_two_of_its_libraries(on_x86) -> None:
    have = [n for n in XCB_LIBRARIES if "glib" not in n and "gthread" not in n]
    message = desktop_problem(X11, ldconfig_listing(have))
    assert message.count("libglib2.0-0") == 1


@pytest.mark.parametrize(
    "environ",
    [
        {"QT_QPA_PLATFORM": "offscreen"},
        {"QT_QPA_PLATFORM": "wayland"},
        {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"},
    ],
)
def test_other_platforms_are_not_checked(on_x86, environ) -> None:
    assert desktop_problem(environ, ldconfig_listing([])) is None


def test_xcb_asked_for_is_checked(on_x86) -> None:
    assert desktop_problem({"QT_QPA_PLATFORM": "xcb"}, ldconfig_listing([])) is not None


def test_the_real_cache_parses() -> None:
    out = desktop._ldconfig_output()
    if out is None:
        pytest.skip("no ldconfig here")
    assert "libc.so.6" in cached_libraries(out, "")


def test_the_window_is_not_started_without_them(on_x86, monkeypatch, capsys) -> None:
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(desktop, "_ldconfig_output", lambda: ldconfig_listing(["libxcb.so.1"]))
    assert main(["--source", "synthetic"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mattecam: the window needs system libraries")
    assert "sudo apt install" in err[0]


ROOT = Path(__file__).resolve().parent.parent


def planned(target: str, tmp_path: Path) -> str:
    """The commands ``make TARGET`` would run for a fresh environment, without running them."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_make_run_installs_the_app_without_the_test_tools(tmp_path: Path) -> None:
    run = planned("run", tmp_path)
    installs = [line for line in run.splitlines() if "pip install" in line and " -e " in line]
    assert installs and all("[dev]" not in line for line in installs)
    assert "main.py" in run


def test_make_test_adds_the_test_tools(tmp_path: Path) -> None:
    test = planned("test", tmp_path)
    assert "-e '.[dev]'" in test and "pytest" in test


def test_help_shows_the_defaults(capsys) -> None:
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for text in ("(default: 0)", "(default: blur)", "(default: auto)", "(default: aligned)"):
        assert text in out, text
