"""What every benchmark shares: result rows, the machine description, percentiles, load average.

A benchmark module exposes ``run(quick: bool) -> Section``. The runner (``python -m bench``)
prints each section and writes them into ``bench/RESULTS.md``.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Row:
    """One measured quantity against its goal.

    Attributes:
        target: what was measured.
        value: the measurement, already formatted (``"83.1 ms"``), or why it was not measured.
        goal: the goal in words (``">= 1.0x"``), empty when there is none.
        ratio: how far the goal is reached, oriented so that 1.0 or more means met; None when
            there is no goal or no measurement.
    """

    target: str
    value: str
    goal: str = ""
    ratio: float | None = None

    @property
    def verdict(self) -> str:
        """``met``, ``missed`` or empty."""
        if self.ratio is None:
            return ""
        return "met" if self.ratio >= 1.0 else "missed"


@dataclass
class Section:
    """The result of one benchmark module.

    Attributes:
        name: module name (``model_step``).
        title: one line for people.
        rows: the goal table.
        details: further markdown tables or lines (per-runner timings, samples).
        notes: short remarks (settings used, load average before and after).
    """

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """The section as markdown: heading, goal table, details, notes."""
        out = [f"## {self.name}: {self.title}", ""]
        if self.rows:
            out += [
                table(["target", "measured", "goal", "ratio", ""], [_cells(r) for r in self.rows])
            ]
            out.append("")
        for block in self.details:
            out += [block, ""]
        out += [f"- {n}" for n in self.notes]
        return "\n".join(out).rstrip() + "\n"


def _cells(row: Row) -> list[str]:
    ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
    return [row.target, row.value, row.goal, ratio, row.verdict]


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table (readable as plain text too: columns are padded)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    """The median; NaN when empty."""
    return statistics.median(values) if values else float("nan")


def load_average() -> str:
    """The 1-minute load average (other work on this machine), ``"?"`` where unknown."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def cpu_model() -> str:
    """The CPU's model name."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    """CPU, cores, library versions, thread settings and the date, for the results header."""
    import numpy as np
    import torch

    try:
        import onnxruntime as ort

        ort_version = ort.__version__
    except ImportError:
        ort_version = "not installed"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none available"
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "cpu capability": torch.backends.cpu.get_cpu_capability(),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch threads": (
            f"{torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op"
        ),
        "onnxruntime": ort_version,
        "numpy": np.__version__,
        "OMP_NUM_THREADS / OMP_WAIT_POLICY": (
            f"{os.environ.get('OMP_NUM_THREADS', 'unset')} / "
            f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}"
        ),
        "os": platform.platform(terse=True),
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    }


def rss_bytes() -> int:
    """This process's resident memory in bytes (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
