"""Tests of the CoreML and TFLite exports; they run in the export environment (.venv-export).

``make test`` runs them there with ``MATTECAM_EXPORT_ENV=1``, where a missing package is an error.
In an environment without the export packages these files are not collected.
"""

from __future__ import annotations

import importlib.util
import os

NEEDS = {
    "test_coreml.py": ("coremltools",),
    "test_tflite.py": ("litert_torch", "ai_edge_litert", "ai_edge_quantizer"),
}

_missing = {
    name: [m for m in modules if importlib.util.find_spec(m) is None]
    for name, modules in NEEDS.items()
}
if os.environ.get("MATTECAM_EXPORT_ENV") == "1":
    _lacking = sorted({m for ms in _missing.values() for m in ms})
    if _lacking:
        raise RuntimeError(
            f"The export environment lacks {', '.join(_lacking)}: run `make export-env` again."
        )
collect_ignore = [name for name, missing in _missing.items() if missing]
