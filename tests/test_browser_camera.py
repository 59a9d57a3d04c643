"""A real browser opens the PipeWire camera: Chromium, through the desktop portal, as on GNOME.

Chromium reads PipeWire cameras through the xdg-desktop-portal Camera portal. The test runs a
private desktop session (Xvfb, a session bus, pipewire, wireplumber, the portal with its GTK
backend, ``XDG_CURRENT_DESKTOP=gnome``) with the camera permission already granted in the portal's
permission store, publishes a frame of known pixels as the app does, and has a page list the
cameras, open "mattecam" at 1280x720@30 and send back a frame it drew from it.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import platform
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.output.virtualcam import VirtualCameraSink
from tests.pipewire_stack import (
    PipeWireStack,
    block_error,
    block_frame,
    detach_and_die_with_parent,
    private_session,
    skip_or_fail,
    wait_until,
)

pytestmark = pytest.mark.skipif(platform.system() != "Linux", reason="PipeWire runs on Linux")

WIDTH, HEIGHT, FPS = 1280, 720, 30
PORTAL_SERVICE = Path("/usr/share/dbus-1/services/org.freedesktop.portal.Desktop.service")
PROGRAMS = ("chromium", "Xvfb", "dbus-send")

PAGE = """<!doctype html><html><body><script>
async function run() {
  const out = {retries: 0};
  try {
    let devices = [];
    for (let i = 0; i < 60; i++) {  // the portal's cameras show up a moment after start
      try {
        const first = await navigator.mediaDevices.getUserMedia({video: true});
        first.getTracks().forEach(t => t.stop());
        devices = await navigator.mediaDevices.enumerateDevices();
        if (devices.some(d => d.label === 'mattecam')) break;
      } catch (e) { out.retries += 1; out.lastError = String(e); }
      await new Promise(r => setTimeout(r, 250));
    }
    out.labels = devices.filter(d => d.kind === 'videoinput').map(d => d.label);
    const camera = devices.find(d => d.kind === 'videoinput' && d.label === 'mattecam');
    const stream = await navigator.mediaDevices.getUserMedia({video: {
      deviceId: {exact: camera.deviceId}, width: {exact: WIDTH}, height: {exact: HEIGHT}}});
    const video = document.createElement('video');
    video.muted = true;
    video.srcObject = stream;
    await video.play();
    await new Promise(r => video.requestVideoFrameCallback(() => r()));
    out.settings = stream.getVideoTracks()[0].getSettings();
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0);
    out.png = canvas.toDataURL('image/png');
  } catch (e) { out.error = String(e); }
  await fetch('/result', {method: 'POST', body: JSON.stringify(out)});
}
run();
</script></body></html>
""".replace("WIDTH", str(WIDTH)).replace("HEIGHT", str(HEIGHT))


@pytest.fixture
def display() -> Iterator[str]:
    """A virtual X display of its own (the portal's GTK backend needs one)."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    if not PORTAL_SERVICE.exists():
        missing.append("xdg-desktop-portal")
    if missing:
        skip_or_fail(f"needs {', '.join(missing)} (Debian: the packages .ci/run installs)")
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=detach_and_die_with_parent,
    )
    os.close(write)
    with os.fdopen(read) as numbers:
        number = numbers.readline().strip()
    try:
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        os.killpg(xvfb.pid, signal.SIGTERM)
        xvfb.wait(timeout=10)


@pytest.fixture
def desktop(display: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[PipeWireStack]:
    """A GNOME-like session: PipeWire, wireplumber and the portal, camera access granted."""
    with private_session(monkeypatch, DISPLAY=display, XDG_CURRENT_DESKTOP="gnome") as stack:
        # Host apps have the empty app id; "yes" is what the portal stores when a user allows.
        subprocess.run(
            [
                "dbus-send",
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.impl.portal.PermissionStore",
                "/org/freedesktop/impl/portal/PermissionStore",
                "org.freedesktop.impl.portal.PermissionStore.SetPermission",
                "string:devices",
                "boolean:true",
                "string:camera",
                "string:",
                "array:string:yes",
            ],
            env=stack.env,
            capture_output=True,
            timeout=30,
            check=True,
        )
        yield stack


class _PageServer(http.server.ThreadingHTTPServer):
    """Serves :data:`PAGE` on localhost (a secure origin) and keeps what the page posts back."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PageHandler)
        self.result: dict | None = None
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/"


class _PageHandler(http.server.BaseHTTPRequestHandler):
    server: _PageServer

    def do_GET(self) -> None:
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.result = json.loads(self.rfile.read(length))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_chromium_lists_mattecam_and_reads_its_pixels(desktop: PipeWireStack) -> None:
    sent = block_frame(7, WIDTH, HEIGHT)
    server = _PageServer()
    with VirtualCameraSink(WIDTH, HEIGHT, FPS) as sink:  # the automatic choice
        assert sink.backend == "pipewire"
        sink.send(sent)
        desktop.wait_for_node("mattecam")
        with open(desktop.folder / "chromium.log", "wb") as log:
            browser = subprocess.Popen(
                [
                    "chromium",
                    "--headless=new",
                    "--no-sandbox",  # CI runs as root
                    "--disable-gpu",
                    "--no-first-run",
                    f"--user-data-dir={desktop.folder / 'profile'}",
                    "--enable-features=WebRtcPipeWireCamera",
                    "--use-fake-ui-for-media-stream",  # says yes to the page's camera request
                    server.url,
                ],
                env=desktop.env,
                stdout=log,
                stderr=log,
                preexec_fn=detach_and_die_with_parent,
            )
        try:
            wait_until(lambda: server.result is not None, 90, "the page to report")
        finally:
            os.killpg(browser.pid, signal.SIGTERM)
            browser.wait(timeout=20)
            server.shutdown()
    result = server.result
    assert "error" not in result, result
    assert result["labels"] == ["mattecam"]
    settings = result["settings"]
    assert (settings["width"], settings["height"], settings["frameRate"]) == (WIDTH, HEIGHT, FPS)
    png = base64.b64decode(result["png"].split(",", 1)[1])
    got = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert got.shape == (HEIGHT, WIDTH, 3)
    error = block_error(got, sent)
    assert error.max() <= 3 and error.mean() < 1.0
    assert block_error(got, block_frame(8, WIDTH, HEIGHT)).mean() > 20  # tells frames apart
