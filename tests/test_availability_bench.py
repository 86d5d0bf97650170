"""The availability benchmark's figures behave as the modes promise (short simulated runs)."""

from __future__ import annotations

import pytest

from benchmarks import availability


@pytest.fixture(autouse=True)
def short_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three simulated hours instead of a day: enough for every mode's pattern."""
    monkeypatch.setattr(availability, "DAY", 3 * 3600.0)


async def test_sampling_costs_freshness_and_saves_online_time() -> None:
    """Sampling: about a tenth of the time online, older presence, more missed periods."""
    always = await availability.Run(availability._always, "changes").run()
    sampling = await availability.Run(availability._sampling, "changes").run()
    assert always["online_share"] > 0.95
    assert always["age_median_s"] == 0
    assert sampling["online_share"] == pytest.approx(0.1, abs=0.01)
    assert sampling["age_median_s"] > 60
    assert sampling["missed_share"] > always["missed_share"]
    assert sampling["calls_per_contact_day"] > always["calls_per_contact_day"]


async def test_resent_presence_spares_the_renewals() -> None:
    """If WhatsApp resends everyone's presence on availability, resuming costs few calls."""
    resend = await availability.Run(availability._sampling, "resend").run()
    changes = await availability.Run(availability._sampling, "changes").run()
    assert resend["calls_per_contact_day"] < changes["calls_per_contact_day"] / 2
    assert resend["age_median_s"] <= changes["age_median_s"]


def test_the_table_has_a_row_per_mode_and_model() -> None:
    """Markdown for the docs: a header, a rule, six rows."""
    results = {
        (mode, model): {
            "age_median_s": 0.0,
            "age_p95_s": 120.0,  # shown in minutes from 90 s on
            "missed_share": 0.5,
            "online_share": 0.1,
            "calls_per_contact_day": 3.0,
            "periods": 1.0,
        }
        for mode in availability.MODES
        for model in availability.MODELS
    }
    table = availability.render(results).splitlines()
    assert len(table) == 2 + 6
    assert table[2] == "| Always | resends presence | 0 s | 2.0 min | 50 % | 10 % | 3.0 |"
