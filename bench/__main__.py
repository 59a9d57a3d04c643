"""Runs the benchmarks and writes ``bench/RESULTS.md``.

``python -m bench`` runs all of them in one process; ``python -m bench model_step pipeline`` runs
those named; ``--quick`` makes every run short. Each benchmark prints a table per target
(measured value, goal, ratio). ``RESULTS.md`` keeps the sections not run this time and its
hand-written "Levers tried" log.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
from pathlib import Path

from bench.common import Section, machine, table

BENCHMARKS = (
    "model_step",
    "levers",
    "pipeline",
    "memory",
    "convert",
    "soak",
    "pipewire_camera",
    "live_quality",
    "recording",
    "export_tflite",
    "tf_exports",
)
RESULTS = Path(__file__).with_name("RESULTS.md")
LEVERS = "## Levers tried"
_MARK = re.compile(r"<!-- bench:(\w+) -->\n(.*?)<!-- /bench:\1 -->\n", re.S)


def _convert_section(quick: bool) -> Section:
    """The conversion benchmark written for ``app.matting.convert`` (its own table, no goals)."""
    from bench import convert

    rows = convert.run(frames=30 if quick else 120, repeats=1 if quick else 2)
    section = Section("convert", "video conversion against the bare network (bench/convert.py)")
    section.details.append("```\n" + convert.format_table(rows) + "\n```")
    return section


def _run_one(name: str, quick: bool) -> Section:
    if name == "convert":
        return _convert_section(quick)
    module = importlib.import_module(f"bench.{name}")
    return module.run(quick=quick)


def available() -> list[str]:
    """The benchmarks present in this checkout (``convert`` comes from another module)."""
    here = Path(__file__).parent
    return [name for name in BENCHMARKS if (here / f"{name}.py").is_file()]


def write_results(sections: list[Section], quick: bool, path: Path = RESULTS) -> None:
    """Writes the results file: header, the sections run now, older sections, the levers log.

    The file is written to a temporary name and renamed, so it is never left half-written.
    """
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    kept = {m.group(1): m.group(2) for m in _MARK.finditer(old)}
    levers = old[old.index(LEVERS) :] if LEVERS in old else f"{LEVERS}\n\n(none yet)\n"
    stamp = time.strftime("%Y-%m-%d %H:%M")
    for s in sections:
        kept[s.name] = f"_measured {stamp}{' (--quick)' if quick else ''}_\n\n{s.markdown()}"
    info = machine()
    out = [
        "# mattecam benchmarks",
        "",
        "Written by `python -m bench` (`make bench`); sections not run in the latest call are kept",
        "from earlier runs. The machine is shared with other work: look at the load averages.",
        "",
        table(["machine", ""], [[k, v] for k, v in info.items()]),
        "",
    ]
    order = [n for n in BENCHMARKS if n in kept] + [n for n in kept if n not in BENCHMARKS]
    for name in order:
        out += [
            f"<!-- bench:{name} -->",
            kept[name].rstrip() + "\n" + f"<!-- /bench:{name} -->",
            "",
        ]
    out.append(levers.rstrip() + "\n")
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(out), encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m bench [NAME ...] [--quick] [--no-write]``."""
    names = available()
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", metavar="NAME", help="any of: " + ", ".join(names))
    p.add_argument("--quick", action="store_true", help="short runs")
    p.add_argument("--no-write", action="store_true", help=f"do not update {RESULTS.name}")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in names]
    if unknown:
        p.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(names)}")
    chosen = args.names or names
    info = machine()
    print(table(["machine", ""], [[k, v] for k, v in info.items()]), flush=True)
    sections = []
    for name in chosen:
        print(f"\n== {name} ==", flush=True)
        start = time.monotonic()
        section = _run_one(name, args.quick)
        section.notes.append(f"ran {time.monotonic() - start:.0f} s")
        sections.append(section)
        print(section.markdown(), flush=True)
    if not args.no_write:
        write_results(sections, args.quick)
        print(f"results written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
