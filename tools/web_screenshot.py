"""Takes ``docs/web.png``: mattecam's web page in headless Chromium with a video as its camera.

Steps: decode the first ``--frames`` frames of the video (``$MATTECAM_DEMO_VIDEO``, else the doctor
clip from the shared footage beside the project), write them as a Y4M file, serve ``web/`` with a
TF.js export (``--model``, default ``web/model`` as ``make web`` makes it) on 127.0.0.1, open the
page in Chromium with that file as the camera (``web/test/browser.mjs``), wait until it has matted
``--wait`` frames, and save the page. Needs ``.venv-tf`` (or any Python with PyAV and OpenCV),
Node with web/'s packages (``make web-deps``) and Chromium.

The helpers :func:`write_y4m` and :func:`serve_web` also serve the browser test.

Usage::

    .venv-tf/bin/python tools/web_screenshot.py [--video FILE] [--background backgrounds/office.jpg]
        [--backend wasm] [--out docs/web.png]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
SHARED_VIDEO = ROOT.parent / "shared" / "data" / "footage" / "volcomix_pixabay_doctor-26732.mp4"


def write_y4m(path: Path, frames: np.ndarray, fps: int = 30) -> Path:
    """Writes RGB frames ``[N, H, W, 3]`` uint8 as a YUV4MPEG2 (4:2:0) file, Chromium's fake camera.

    Args:
        path: destination.
        frames: the frames; height and width must be even.
        fps: the frame rate written in the header (Chromium plays the file at it, looping).
    """
    _, height, width, _ = frames.shape
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


class _Handler(SimpleHTTPRequestHandler):
    """Serves web/, with ``/model/`` taken from another folder."""

    model: Path

    def translate_path(self, path: str) -> str:
        path = path.split("?")[0]
        if path.startswith("/model/"):
            return str(self.model / path.removeprefix("/model/"))
        return super().translate_path(path)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_web(model: Path) -> Iterator[str]:
    """Serves web/ on 127.0.0.1 (a free port) with the TF.js export ``model`` as its model.

    Yields:
        The address, e.g. ``http://127.0.0.1:41234``.
    """
    handler = type("Handler", (_Handler,), {"model": Path(model)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(WEB)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def open_page(url: str, clip: Path, frames: int, folder: Path, timeout_s: int = 300) -> dict:
    """Opens ``url`` in headless Chromium with ``clip`` as the camera until ``frames`` are matted.

    Returns:
        The page's report (``web/test/browser.mjs``); ``folder / "page.png"`` is its picture.

    Raises:
        RuntimeError: Chromium or Node is missing, or the driver failed.
    """
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    node = shutil.which("node")
    if chromium is None or node is None:
        raise RuntimeError("This needs Chromium and Node.js: apt-get install chromium nodejs npm.")
    job = {
        "chromium": chromium,
        "url": url,
        "clip": str(clip),
        "frames": frames,
        "timeout_s": timeout_s,
        "screenshot": str(folder / "page.png"),
        "output": str(folder / "page.json"),
    }
    (folder / "job.json").write_text(json.dumps(job))
    proc = subprocess.run(
        [node, str(WEB / "test" / "browser.mjs"), str(folder / "job.json")],
        capture_output=True,
        text=True,
        timeout=timeout_s + 120,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"The browser driver failed:\n{proc.stderr[-3000:]}")
    return json.loads((folder / "page.json").read_text())


def _read_video(path: Path, count: int) -> np.ndarray:
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return np.stack(frames)


def main(argv: list[str] | None = None) -> int:
    """Takes the picture; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--video", type=Path, default=os.environ.get("MATTECAM_DEMO_VIDEO", SHARED_VIDEO)
    )
    p.add_argument("--model", type=Path, default=WEB / "model")
    p.add_argument("--background", default="backgrounds/office.jpg")
    p.add_argument("--backend", default="wasm", choices=("webgl", "wasm", "cpu"))
    p.add_argument("--frames", type=int, default=90, help="frames of the video to play")
    p.add_argument("--wait", type=int, default=12, help="matted frames before the picture")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "web.png")
    args = p.parse_args(argv)
    if not Path(args.video).is_file():
        print(f"error: no video at {args.video}; give --video FILE.", file=sys.stderr)
        return 2
    if not (args.model / "model.json").is_file():
        print(
            f"error: no TF.js model in {args.model}; run `make web` or give --model.",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = write_y4m(folder / "clip.y4m", _read_video(Path(args.video), args.frames))
        with serve_web(args.model) as base:
            url = f"{base}/index.html?backend={args.backend}&bg={args.background}"
            report = open_page(url, clip, args.wait, folder)
        if report["error"] or report["timedOut"]:
            print(
                f"error: the page did not run: {report['error'] or report['message']}",
                file=sys.stderr,
            )
            return 1
        shutil.copyfile(folder / "page.png", args.out)
    print(f"{args.out}: {report['stats']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
