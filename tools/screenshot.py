"""Takes ``docs/screenshot.png``: the real app on a virtual X display, playing a demo video; then
the window at 1024x640, 1280x800 and 1920x1080 in each tab of its side panel
(``docs/screenshot-WxH-TAB.png``), to check that nothing is cut off at ordinary sizes.

Steps: make sure ``Xvfb`` exists (installing the ``xvfb`` package with apt-get when it is missing),
start ``Xvfb :99 -screen 0 1920x1200x24``, run ``python main.py --source FILE --background IMAGE``
on it with a throw-away settings folder, let the window save a picture of itself once enough
preview frames were shown (``MATTECAM_SCREENSHOT``), and stop the display again.

The video is ``$MATTECAM_DEMO_VIDEO`` when set, else the doctor clip from the shared footage beside
the project when it exists, else the synthetic test picture. The app runs with its own defaults
(``--sync aligned``: every camera frame goes out about one matting interval late, with the
mattes made before and after it carried to it), so the picture and its
statistics show what a user gets; give other ``main.py`` options after ``--`` (``--sync exact``
pairs every frame with its own matte, at the matting rate). The picture is taken after
``--frames`` preview frames, late enough that the statistics no longer show the start-up.

Usage::

    python tools/screenshot.py [--out docs/screenshot.png] [--background office] [--frames 240]
        [--sizes 1024x640,1280x800,1920x1080] [-- MAIN.PY OPTIONS]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_VIDEO = ROOT.parent / "shared" / "data" / "footage" / "volcomix_pixabay_doctor-26732.mp4"
SYNTHETIC = "synthetic:1280x720@30"
SCREEN = "1920x1200x24"
SIZES = "1024x640,1280x800,1920x1080"
FIRST_DISPLAY = 99
APP_TIMEOUT_S = 300
# Libraries Qt's X11 plugin needs that minimal systems lack.
XCB_PACKAGES = (
    "libxcb-cursor0",
    "libxkbcommon-x11-0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-xinerama0",
    "libxcb-xkb1",
    "libegl1",
    "libgl1",
    "libfontconfig1",
    "libdbus-1-3",
)


def say(message: str) -> None:
    """Reports a step on stderr."""
    print(f"screenshot: {message}", file=sys.stderr, flush=True)


def apt_install(packages: list[str]) -> bool:
    """Installs Debian packages with apt-get; True when it worked."""
    if shutil.which("apt-get") is None:
        return False
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    say(f"running apt-get install -y {' '.join(packages)}")
    cmd = [*prefix, "apt-get", "install", "-y", "--no-install-recommends", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode == 0:
        return True
    say("apt-get install failed; updating the package lists and trying once more")
    subprocess.run([*prefix, "apt-get", "update"], env=env, stdout=subprocess.DEVNULL)
    return subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode == 0


def ensure_xvfb() -> str:
    """The path of Xvfb, installed first when missing."""
    found = shutil.which("Xvfb")
    if found:
        return found
    say("Xvfb is missing: installing it with apt-get install -y xvfb")
    if not apt_install(["xvfb"]) or not shutil.which("Xvfb"):
        raise SystemExit("screenshot: Xvfb could not be installed; install the xvfb package.")
    return str(shutil.which("Xvfb"))


def free_display() -> int:
    """The first display number from :99 that no X server holds."""
    for number in range(FIRST_DISPLAY, FIRST_DISPLAY + 20):
        if (
            not Path(f"/tmp/.X{number}-lock").exists()
            and not Path(f"/tmp/.X11-unix/X{number}").exists()
        ):
            return number
    raise SystemExit("screenshot: no free X display number between :99 and :118.")


def start_xvfb(xvfb: str, number: int) -> subprocess.Popen:
    """Starts Xvfb on ``:number`` and waits until it accepts clients."""
    cmd = [xvfb, f":{number}", "-screen", "0", SCREEN, "-nolisten", "tcp"]
    say(f"starting {' '.join(cmd)}")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socket = Path(f"/tmp/.X11-unix/X{number}")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"screenshot: Xvfb exited at once (code {proc.returncode}).")
        if socket.exists():
            return proc
        time.sleep(0.1)
    stop(proc)
    raise SystemExit("screenshot: Xvfb did not start within 15 s.")


def stop(proc: subprocess.Popen) -> None:
    """Stops a process this script started."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def qt_platform(env: dict[str, str]) -> str:
    """``xcb`` when Qt can open the X display (installing its libraries if needed), else
    ``offscreen`` (the window draws the same picture either way)."""
    probe = [sys.executable, "-c", "from PySide6.QtWidgets import QApplication; QApplication([])"]
    check = {**env, "QT_QPA_PLATFORM": "xcb"}
    if subprocess.run(probe, env=check, capture_output=True).returncode == 0:
        return "xcb"
    say("Qt cannot open the X display yet: installing the X11 libraries it needs")
    apt_install(list(XCB_PACKAGES))
    if subprocess.run(probe, env=check, capture_output=True).returncode == 0:
        return "xcb"
    say("Qt's X11 plugin still does not load; drawing the window off screen instead")
    return "offscreen"


def demo_source() -> str:
    """The video to show: $MATTECAM_DEMO_VIDEO, the shared doctor clip, or the test picture."""
    given = os.environ.get("MATTECAM_DEMO_VIDEO", "").strip()
    if given:
        if not Path(given).is_file():
            raise SystemExit(f"screenshot: MATTECAM_DEMO_VIDEO '{given}' does not exist.")
        return given
    if SHARED_VIDEO.is_file():
        return str(SHARED_VIDEO)
    say("no demo video found: using the synthetic test picture")
    return SYNTHETIC


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument(
        "--background", default="office", help="a bundled background (file name without .jpg)"
    )
    parser.add_argument("--frames", type=int, default=240, help="preview frames before the shot")
    parser.add_argument(
        "--sizes", default=SIZES, help="window sizes for the series in each tab ('' for none)"
    )
    parser.add_argument("app_args", nargs="*", help="more main.py options, after --")
    args = parser.parse_args(argv)
    app_args = list(args.app_args)

    background = ROOT / "assets" / "backgrounds" / f"{args.background}.jpg"
    if not background.is_file():
        raise SystemExit(f"screenshot: no bundled background '{background.name}'.")
    source = demo_source()
    xvfb = ensure_xvfb()
    display = start_xvfb(xvfb, free_display())
    number = display.args[1]
    try:
        with tempfile.TemporaryDirectory(prefix="mattecam-shot-") as tmp:
            shot = Path(tmp) / "screenshot.png"
            env = {
                **os.environ,
                "DISPLAY": number,
                "MATTECAM_SCREENSHOT": str(shot),
                "MATTECAM_SCREENSHOT_FRAMES": str(args.frames),
                "MATTECAM_SCREENSHOT_SIZES": args.sizes,
                "MATTECAM_SETTINGS_DIR": str(Path(tmp) / "settings"),
                "XDG_RUNTIME_DIR": tmp,
            }
            env["QT_QPA_PLATFORM"] = qt_platform(env)
            cmd = [
                sys.executable,
                str(ROOT / "main.py"),
                "--source",
                source,
                "--background",
                str(background),
                *app_args,
            ]
            say(f"running {' '.join(cmd)} on {number} ({env['QT_QPA_PLATFORM']})")
            try:
                done = subprocess.run(cmd, env=env, cwd=ROOT, timeout=APP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise SystemExit(
                    f"screenshot: the app did not finish in {APP_TIMEOUT_S} s."
                ) from None
            if done.returncode != 0 or not shot.is_file():
                raise SystemExit(f"screenshot: the app ended with code {done.returncode}.")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            for taken in sorted(Path(tmp).glob(f"{shot.stem}*{shot.suffix}")):
                target = args.out.with_name(taken.name.replace(shot.stem, args.out.stem, 1))
                partial = target.with_name(f".{target.name}.part")
                shutil.copyfile(taken, partial)
                os.replace(partial, target)
                say(f"saved {target} ({target.stat().st_size / 1000:.0f} KB)")
    finally:
        stop(display)
    return 0


if __name__ == "__main__":
    sys.exit(main())
