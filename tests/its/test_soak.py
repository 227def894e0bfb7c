"""The 60-second soak: buses at 1 Hz and sensors at their cadence through the whole platform."""

from __future__ import annotations

import pytest

from its.app.bench.soak import run_soak
from its.settings import Settings


@pytest.mark.slow
def test_sixty_second_soak_loses_nothing_and_stays_flat(settings: Settings) -> None:
    result = run_soak(settings, buses=500, sensors=3000, minutes=1.0, api_rate=50.0)
    assert result["messages"] >= 500 * 55
    assert result["lost"] == 0 and result["duplicates"] == 0 and result["rejected"] == 0
    assert result["ingest_lag_p99_s"] < 2.0
    assert result["api_errors"] == 0
    start, end = result["rss_mb"]["collector"]
    assert end <= start * 1.10 + 5, result["rss_mb"]
    start, end = result["rss_mb"]["api"]
    assert end <= start * 1.10 + 5, result["rss_mb"]
