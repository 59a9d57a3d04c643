"""Peer rows for the live-quality table, made offline on every frame of the footage.

- RVM at 320x192 the way the OBS background-removal plugin runs it: the camera frame squeezed to
  320x192, the network at ratio 1 with its recurrent state, the alpha stretched back to the frame
  and the camera pixels composited with it (no predicted foreground).
- MediaPipe selfie segmentation (``../shared/data/peers/selfie_segmentation.onnx``, 256x256) on
  every frame, its mask stretched back, camera pixels composited.

The results (edge error mean, p95, stability, frames) are cached beside the footage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from bench import footage as fo
from bench.common import percentile

PEERS = fo.DATA.parent / "peers"


def _composite(frame: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.float32)[..., None]
    bg = np.array(fo.BACKGROUND, np.float32)
    return np.clip(frame * a + bg * (1 - a) + 0.5, 0, 255).astype(np.uint8)


def _rvm_320x192() -> Callable[[np.ndarray], np.ndarray]:
    from app.matting.engine import build_engine

    engine = build_engine("mobilenetv3", None, "cpu", "fp32", ratio=1.0)
    clock = iter(range(10**9))

    def alpha(frame: np.ndarray) -> np.ndarray:
        small = cv2.resize(frame, (320, 192), interpolation=cv2.INTER_LINEAR)
        pha = engine.step(small, t=next(clock) / 30).pha[0, 0].numpy()
        return cv2.resize(pha, frame.shape[1::-1], interpolation=cv2.INTER_LINEAR)

    return alpha


def _mediapipe() -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(PEERS / "selfie_segmentation.onnx"), providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name

    def alpha(frame: np.ndarray) -> np.ndarray:
        small = cv2.resize(frame, (256, 256), interpolation=cv2.INTER_AREA)
        mask = session.run(None, {name: small[None].astype(np.float32) / 255})[0][0, :, :, 0]
        return cv2.resize(mask, frame.shape[1::-1], interpolation=cv2.INTER_LINEAR)

    return alpha


PEER_MAKERS = {
    "peer: RVM on every frame at 320x192, camera pixels (OBS plugin's way)": _rvm_320x192,
    "peer: MediaPipe selfie segmentation on every frame": _mediapipe,
}


def _outputs(
    footage: fo.Footage, alpha: Callable[[np.ndarray], np.ndarray]
) -> Iterator[tuple[int, np.ndarray]]:
    for i in range(len(footage.frames)):
        frame = np.array(footage.frames[i])
        yield i, _composite(frame, alpha(frame))


def run_all(footage: fo.Footage, ideal: fo.Ideal) -> dict[str, tuple[float, float, float, int]]:
    """Each peer's (edge error mean, p95, stability, frames scored) on ``footage``; cached."""
    from bench.live_quality import score

    cache = fo.cache_dir() / f"peers_{footage.name}.json"
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    for label, make in PEER_MAKERS.items():
        if label in known:
            continue
        try:
            errors, flicker = score(_outputs(footage, make()), footage, ideal)
        except (ImportError, FileNotFoundError, OSError) as exc:
            print(f"  {label}: not measured ({exc})")
            continue
        known[label] = [
            float(np.mean(errors)),
            percentile(errors, 95),
            float(np.mean(flicker)),
            len(errors),
        ]
        cache.write_text(json.dumps(known, indent=1))
    return {k: tuple(v) for k, v in known.items()}
