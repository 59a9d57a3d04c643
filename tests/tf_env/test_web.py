"""mattecam in the browser: the page in headless Chromium with a generated clip as its camera.

Chromium plays a Y4M file as the camera (``--use-file-for-fake-video-capture``); the page runs the
TF.js export (fp32, from this session) and, with ``?record=N``, keeps the first frames it matted:
the camera pixels it read, its matte and the canvas it showed. The test runs our PyTorch network
over the same pixels with the same recurrent state and compares. Driven by
``web/test/browser.mjs`` (puppeteer-core) through :mod:`tools.web_screenshot`.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from app.capture.synthetic import make_frames
from tools.web_screenshot import open_page, serve_web, write_y4m

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
GREEN = (0x2E, 0x7D, 0x32)  # the page's default colour background


@pytest.fixture(scope="session")
def web_address(tf_exports) -> Iterator[str]:
    """A local server for web/ with this session's fp32 TF.js export as its model."""
    missing = []
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        missing.append("Chromium (apt-get install chromium)")
    if shutil.which("node") is None:
        missing.append("Node.js (apt-get install nodejs npm)")
    if not (WEB / "node_modules" / "puppeteer-core").is_dir():
        missing.append("web/'s packages (make web-deps)")
    if missing:
        message = f"The browser test needs {' and '.join(missing)}."
        if os.environ.get("MATTECAM_TF_ENV") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with serve_web(tf_exports("tfjs", "fp32")) as address:
        yield address


def run_page(url: str, clip: Path, frames: int, folder: Path) -> dict:
    """The page's report after ``frames`` matted frames, checked for errors; keeps its picture."""
    report = open_page(url, clip, frames, folder)
    assert not report["timedOut"], report
    assert report["error"] is None, report["error"]
    assert (folder / "page.png").stat().st_size > 10_000
    return report


def _decode(record: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h, w = record["height"], record["width"]
    src = np.frombuffer(base64.b64decode(record["src"]), np.uint8).reshape(h, w, 3)
    pha = np.frombuffer(base64.b64decode(record["pha"]), np.float32).reshape(h, w)
    shown = np.frombuffer(base64.b64decode(record["shown"]), np.uint8).reshape(h, w, 4)
    return src, pha, shown


def compare(model, records: list[dict]) -> tuple[float, float]:
    """Our network over the page's frames, state carried; returns the worst pha and canvas error.

    The canvas must show ``fgr * pha + green * (1 - pha)`` from our network's fgr and pha.
    """
    rec: list = [None] * 4
    worst_pha, worst_shown = 0.0, 0.0
    green = np.array(GREEN, np.float32) / 255
    for record in records:
        src, pha, shown = _decode(record)
        x = torch.from_numpy(src.astype(np.float32) / 255).permute(2, 0, 1)[None]
        with torch.inference_mode():
            fgr_ref, pha_ref, *rec = model(x, *rec, record["ratio"])
        want_pha = pha_ref[0, 0].numpy()
        want_fgr = fgr_ref[0].permute(1, 2, 0).numpy()
        worst_pha = max(worst_pha, float(np.abs(pha - want_pha).max()))
        a = want_pha[..., None]
        want_shown = (want_fgr * a + green * (1 - a)) * 255
        worst_shown = max(worst_shown, float(np.abs(shown[..., :3] - want_shown).max()))
        assert (shown[..., 3] == 255).all()
    assert 0.1 < float(want_pha.mean()) < 0.6, "the clip must give the network a person"
    return worst_pha, worst_shown


def test_page_on_wasm_matches_network(web_address, weights_model, tmp_path: Path) -> None:
    """640x360 camera: the automatic ratio is the desktop app's 0.75; 4 recurrent frames."""
    clip = write_y4m(tmp_path / "clip.y4m", make_frames(8, 360, 640, seed=9))
    url = f"{web_address}/index.html?backend=wasm&bg=color&record=4"
    report = run_page(url, clip, 5, tmp_path)
    assert report["backend"] == "wasm"
    assert report["ratio"] == 0.75
    assert [(r["width"], r["height"], r["ratio"]) for r in report["records"]] == [
        (640, 360, 0.75)
    ] * 4
    assert "fps" in report["stats"] and "640x360" in report["stats"]
    worst_pha, worst_shown = compare(weights_model, report["records"])
    print(f"web wasm 640x360@0.75: pha max {worst_pha:.1e}, canvas max {worst_shown:.1f}/255")
    print(f"web wasm: {report['stats']}")
    assert worst_pha <= 5e-4
    assert worst_shown <= 2.0


def test_page_on_webgl_matches_network(web_address, weights_model, tmp_path: Path) -> None:
    """WebGL (Chromium's software renderer here) at 320x180, ratio 0.5 from the page's menu."""
    clip = write_y4m(tmp_path / "clip.y4m", make_frames(8, 180, 320, seed=9))
    url = f"{web_address}/index.html?backend=webgl&bg=color&ratio=0.5&record=3"
    report = run_page(url, clip, 3, tmp_path)
    assert report["backend"] == "webgl"
    worst_pha, worst_shown = compare(weights_model, report["records"])
    print(f"web webgl 320x180@0.5: pha max {worst_pha:.1e}, canvas max {worst_shown:.1f}/255")
    print(f"web webgl: {report['stats']}")
    assert worst_pha <= 2e-3
    assert worst_shown <= 2.0
