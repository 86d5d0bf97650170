"""CI runs the same checks as a newcomer: there, a skipped end-to-end or browser test fails."""

from __future__ import annotations

import pytest

from .ci import skip_is_failure


def _item(request: pytest.FixtureRequest, marker: str | None) -> pytest.Item:
    item = request.node
    assert isinstance(item, pytest.Item)
    if marker is not None:
        item.add_marker(marker)
    return item


def _report(outcome: str) -> pytest.TestReport:
    return pytest.TestReport(
        "tests/e2e/test_x.py::test_x",
        ("tests/e2e/test_x.py", 1, "test_x"),
        {},
        outcome,  # type: ignore[arg-type]
        ("tests/e2e/test_x.py", 1, "Skipped: Chromium is not installed")
        if outcome == "skipped"
        else None,
        "setup",
    )


@pytest.mark.parametrize(
    ("ci", "marker", "outcome", "failure"),
    [
        ("true", "e2e", "skipped", True),
        ("true", "browser", "skipped", True),
        ("true", None, "skipped", False),
        ("true", "e2e", "passed", False),
        ("", "e2e", "skipped", False),
        ("false", "browser", "skipped", False),
    ],
)
def test_skip_is_failure_only_in_ci_for_e2e_and_browser(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    ci: str,
    marker: str | None,
    outcome: str,
    failure: bool,
) -> None:
    """Only an e2e or browser test's skip, and only with CI=true."""
    monkeypatch.setenv("CI", ci)
    assert skip_is_failure(_item(request, marker), _report(outcome)) is failure
