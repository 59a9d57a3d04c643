"""TorchHub entry points loaded from the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.matting import weights
from app.matting.convert import convert_video
from app.matting.model import MattingNetwork
from app.matting.weights import Checkpoint, Source, WeightsError

pytestmark = pytest.mark.slow  # runs the official network

ROOT = Path(__file__).resolve().parents[1]


def _hub(name: str, **kw: object) -> object:
    return torch.hub.load(str(ROOT), name, source="local", trust_repo=True, **kw)


def test_mobilenetv3_pretrained(weights_model: MattingNetwork) -> None:
    model = _hub("mobilenetv3")
    assert isinstance(model, MattingNetwork) and not model.training
    want = weights_model.state_dict()
    got = model.state_dict()
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(model(x)[1], weights_model(x)[1])


def test_fresh_networks_and_converter() -> None:
    fresh = _hub("mobilenetv3", pretrained=False)
    assert isinstance(fresh, MattingNetwork) and fresh.variant == "mobilenetv3"
    resnet = _hub("resnet50", pretrained=False, refiner="fast_guided_filter")
    assert resnet.variant == "resnet50"
    assert resnet.state_dict()["backbone.conv1.weight"].shape == (64, 3, 7, 7)
    assert _hub("converter") is convert_video


def test_resnet50_pretrained_unreachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # An empty cache and a release address that refuses connections, as on a machine offline.
    monkeypatch.setenv(weights.ENV_WEIGHTS_DIR, str(tmp_path))
    source = Source(
        "url", "http://127.0.0.1:9/rvm_resnet50.pth", "rvm_resnet50.pth", None, None, ""
    )
    monkeypatch.setitem(weights.REGISTRY, "resnet50", Checkpoint("resnet50", (source,), "test"))
    with pytest.raises(WeightsError, match="--checkpoint"):
        _hub("resnet50")
    assert list(tmp_path.iterdir()) == []
