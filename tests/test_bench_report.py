"""The real-time benchmarks' lines become the docs' tables without losing a figure."""

from __future__ import annotations

import pytest

from benchmarks import report


def test_figure_lines_are_parsed() -> None:
    """Name and keys, value and unit, ratio and context each land in their column."""
    assert report.parse(
        "latency_p99 rate=100/s 0.636 ms ratio=4.89 (online sensor; baseline 1 async_set 0.130 ms)"
    ) == (
        "latency_p99 rate=100/s",
        "0.636 ms",
        "4.89",
        "online sensor; baseline 1 async_set 0.130 ms",
    )
    assert report.parse("scale_entities contacts=5000 10000 entities of 10009 expected") == (
        "scale_entities contacts=5000",
        "10000 entities of 10009 expected",
        "",
        "",
    )
    assert report.parse("reconnect_state_writes_per_contact 1.96 (online sensor 1.00)") == (
        "reconnect_state_writes_per_contact",
        "1.96",
        "",
        "online sensor 1.00",
    )
    assert report.parse("latency wall_time 92.7 s") is None


def test_measured_table_keeps_every_line_and_names_the_machine(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every figure printed is a row; the run's machine and wall time head the table."""
    lines = [
        "a_p50 rate=10/s 0.4 ms ratio=5.1 (x | y)",
        "a_target rate=100/s p99<10ms and ratio<3: MISSED (p99 0.6 ms)",
        "a wall_time 12.5 s",
    ]

    def run() -> None:
        for line in lines:
            print(line)

    text = report.measured_table(run)
    assert capsys.readouterr().out.splitlines() == lines  # still printed as usual
    head, table = text.split("\n\n", 1)
    assert head.startswith("Run on ")
    assert head.endswith("; 12.5 s of wall time.")
    assert "CPUs" in head
    assert "Home Assistant" in head
    assert "commit" in head
    rows = table.splitlines()
    assert rows[2] == "| `a_p50 rate=10/s` | 0.4 ms | 5.1 | x \\| y |"
    assert rows[3] == "| `a_target rate=100/s` | p99<10ms and ratio<3: MISSED |  | p99 0.6 ms |"
    assert len(rows) == 4
