"""The TensorFlow exports' command line where TensorFlow is not installed (the app's own venv).

The exports themselves are tested in the TensorFlow environment (``tests/tf_env``).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from app.matting import export

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is not None, reason="TensorFlow is installed here"
)


@pytest.mark.parametrize("fmt", ["savedmodel", "tfjs"])
def test_missing_tensorflow_is_one_plain_message(fmt: str, tmp_path: Path, capsys) -> None:
    assert export.main([fmt, "--output", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: This export needs TensorFlow")
    assert "make tf-env" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_module_entry_point_reports_it_without_traceback(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "app.matting.export", "savedmodel", "--output", str(tmp_path / "m")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "make tf-env" in run.stderr
