"""Real-time figures as tables for docs/benchmarks.md: run a benchmark, keep what it printed.

The real-time benchmarks (latency, scale) print one line per figure,
``figure [key=value ...] value unit [ratio=...] (context)``. ``measured_table`` runs one of
them, prints its lines as usual, and turns them into the markdown table the docs carry between
the benchmark's markers, with the machine and commit of the run above it. The figures depend
on the machine, so no test compares them; they are still never typed by hand.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
import io
import os
from pathlib import Path
import platform
import subprocess
import sys

from homeassistant.const import __version__ as ha_version

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    """One line naming the machine, Python, Home Assistant and commit of a run."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1048576:.1f} GiB"
                break
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except OSError, subprocess.CalledProcessError:
        commit = "unknown"
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {ram} RAM, load {load} at the start; "
        f"Python {platform.python_version()}, Home Assistant {ha_version}, "
        f"kernel {platform.release()}, commit {commit}"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def parse(line: str) -> tuple[str, str, str, str] | None:
    """(figure, value, ratio, context) of one figure line; None for a wall-time line."""
    tokens = line.split()
    if len(tokens) < 2 or tokens[1] == "wall_time":
        return None
    figure = [tokens[0]]
    rest = tokens[1:]
    while rest and "=" in rest[0] and not rest[0].startswith("ratio="):
        figure.append(rest.pop(0))
    value: list[str] = []
    while rest and not rest[0].startswith(("ratio=", "(")):
        value.append(rest.pop(0))
    ratio = rest.pop(0).removeprefix("ratio=") if rest and rest[0].startswith("ratio=") else ""
    context = " ".join(rest)
    if context.startswith("(") and context.endswith(")"):
        context = context[1:-1]
    return " ".join(figure), " ".join(value), ratio, context


def table(lines: list[str]) -> str:
    """Markdown table of the figure lines."""
    rows = ["| Figure | Value | Ratio | Baseline and context |", "| --- | ---: | ---: | --- |"]
    for line in lines:
        if (parsed := parse(line)) is not None:
            figure, value, ratio, context = parsed
            rows.append(
                f"| `{_cell(figure)}` | {_cell(value)} | {_cell(ratio)} | {_cell(context)} |"
            )
    return "\n".join(rows)


def measured_table(run: Callable[[], object]) -> str:
    """Run a benchmark's ``main`` (its lines still reach stdout) and make its docs table."""
    where = machine()
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):
            run()
    finally:
        text = captured.getvalue()
        sys.stdout.write(text)  # what was measured, even when the run failed
    lines = [line for line in text.splitlines() if line.strip()]
    wall = next((line.split()[2] for line in lines if " wall_time " in line), "?")
    return f"Run on {where}; {wall} s of wall time.\n\n{table(lines)}"
