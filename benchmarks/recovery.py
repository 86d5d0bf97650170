"""Time to recover from the faults a bridge meets: runs the fault-injection suite and reports.

The suite (``tests/faults``) injects each fault into the real launcher, a real child bridge
(simulator backend) and a real Home Assistant with the integration, then drives Home
Assistant's clock until every tracked contact is subscribed again. Each test records its time
to recover; this script runs the suite in a child pytest, collects the records and prints one
line per fault, then the Markdown table that ``docs/reliability.md`` carries between its
``bench:recovery`` markers.

Times are simulated seconds on Home Assistant's clock, from the fault to every tracked contact
subscribed again: they count the integration's own waits (restart delay, reconnect backoff,
liveness pings, the pace of re-subscription), which are what the design decides. The wall time
a real process takes to start (about a second here) is not in them: the clock stands still
while the driver waits for another process. Steps are 0.5 s (2 s for the hang), so figures are
multiples of those. Machine-independent apart from the reconnect jitter (80-120 % of a delay).

Run: ``scripts/bench recovery`` (about a minute and a half).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT_ENV = "WHATSAPP_PRESENCE_RECOVERY_OUT"  # tests/faults/harness.py: RECOVERY_OUT


def measure() -> list[dict[str, Any]]:
    """Run the fault suite once; its records, in the order the tests ran."""
    with tempfile.TemporaryDirectory(prefix="wa-recovery-") as folder:
        out = Path(folder) / "recovery.jsonl"
        env = {**os.environ, OUT_ENV: str(out)}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/faults", "-q", "-p", "no:randomly", "-x"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-5000:] + result.stderr[-5000:])
            raise SystemExit(f"the fault suite failed (exit {result.returncode})")
        return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def table(records: list[dict[str, Any]]) -> str:
    """The Markdown table of the docs."""
    lines = [
        "| Fault | Recovered after (simulated s) | Bound the test holds it to | |",
        "|---|---|---|---|",
    ]
    lines.extend(
        f"| {record['fault']} | {record['worst']:g} | {record['bound']:g} | {record['note']} |"
        for record in records
    )
    return "\n".join(lines)


def tables() -> dict[str, str]:
    """Measure and return ``{"recovery": <markdown table>}`` for the docs updater."""
    return {"recovery": table(measure())}


def main() -> None:
    """Print one figure line per fault, then the table."""
    records = measure()
    for record in records:
        name = record["test"].removeprefix("test_")
        print(
            f"recovery_seconds fault={name} {record['worst']:g} s simulated "
            f"(bound {record['bound']:g} s; {record['fault']})"
        )
    print()
    print(table(records))


if __name__ == "__main__":
    main()
