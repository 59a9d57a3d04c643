"""Tests of the CoreML and TFLite exports; they run in the export environment (.venv-export).

``make test`` runs them there with ``MATTECAM_EXPORT_ENV=1``, where a missing package is an error.
In an environment without the export packages these files are not collected.
"""

from __future__ import annotations

from tests.optional import files_to_skip

NEEDS = {
    "test_coreml.py": ("coremltools",),
    "test_tflite.py": ("litert_torch", "ai_edge_litert", "ai_edge_quantizer"),
}

collect_ignore = files_to_skip(
    NEEDS, "MATTECAM_EXPORT_ENV", "export environment", "make export-env"
)
