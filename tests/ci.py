"""CI runs the same checks as a newcomer: there (``CI=true``), a skipped end-to-end or browser
test fails the run.

A plugin of its own (``tests/conftest.py`` imports its hook) so the end-to-end run on the newest
Home Assistant, which loads no conftest (see ``scripts/test``), has it too: ``-p tests.ci``.
"""

from __future__ import annotations

from collections.abc import Generator
import os

import pytest


def skip_is_failure(item: pytest.Item, report: pytest.TestReport) -> bool:
    """In CI (``CI=true``) a skipped end-to-end or browser test fails: CI runs every check."""
    return (
        report.skipped
        and os.environ.get("CI", "").lower() == "true"
        and any(item.get_closest_marker(marker) for marker in ("e2e", "browser"))
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Turn ``skip_is_failure`` skips into failures that keep the skip's reason."""
    report = yield
    if skip_is_failure(item, report):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where it must run: {reason}"
    return report
