"""Telemetry time parsing and the collector's plausibility window (pure, no I/O); the shared id check."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from its.ingest import UNSAFE_TEXT, PayloadError, check_id
from its.settings import SettingsError, load_settings
from its.timeutil import TimeError, TimePolicy, TimeWindow, parse_time

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC).timestamp()


def test_window_bounds_are_inclusive_and_named_in_the_reason() -> None:
    w = TimeWindow(max_future_s=60.0, max_age_s=7 * 86400.0)
    assert w.problem(NOW + 60.0, NOW, NOW) is None
    assert w.problem(NOW - 7 * 86400.0, NOW, NOW) is None
    ahead = w.problem(NOW + 61.0, NOW, NOW)
    assert ahead is not None and "61 s in the future" in ahead and "limit 60 s" in ahead
    old = w.problem(datetime(2005, 3, 1, tzinfo=UTC).timestamp(), NOW, NOW)
    assert old is not None and old.startswith("implausible time: 2005-03-01") and "limit 7 days" in old


def test_age_counts_from_receipt_and_lead_from_the_clock() -> None:
    """A message spooled during a two-day outage is judged by when it arrived."""
    w = TimeWindow(60.0, 86400.0)
    received = NOW - 2 * 86400.0
    assert w.problem(received - 3600.0, received, NOW) is None
    assert w.problem(received - 2 * 86400.0, received, NOW) is not None
    assert w.problem(received + 3600.0, received, NOW) is None  # ahead of its receipt, not of the clock


def test_policy_overrides_per_feed() -> None:
    policy = TimePolicy(TimeWindow(60.0, 604800.0), {"gtfsrt": 300.0}, {"parking_counts": 30 * 86400.0})
    assert policy.window("vehicle_positions") == TimeWindow(60.0, 604800.0)
    assert policy.window("gtfsrt") == TimeWindow(300.0, 604800.0)
    assert policy.window("parking_counts") == TimeWindow(60.0, 30 * 86400.0)


def test_settings_take_per_feed_limits_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITS_INGEST_MAX_AGE_S_BY_FEED", '{"parking_counts": 2592000}')
    monkeypatch.setenv("ITS_INGEST_MAX_FUTURE_S", "5")
    s = load_settings()
    assert s.ingest_max_age_s_by_feed == {"parking_counts": 2592000.0} and s.ingest_max_future_s == 5.0
    assert (s.ingest_max_age_s, s.rejected_payload_max_bytes) == (7 * 86400.0, 4096)
    monkeypatch.setenv("ITS_INGEST_MAX_AGE_S_BY_FEED", '{"parking_counts": -1}')
    with pytest.raises(SettingsError, match="ITS_INGEST_MAX_AGE_S_BY_FEED"):
        load_settings()


def test_parse_time_still_refuses_what_no_feed_can_send() -> None:
    with pytest.raises(TimeError, match="before 2000"):
        parse_time("1999-12-31T23:59:59Z")
    with pytest.raises(TimeError, match="future"):
        parse_time(NOW + 2 * 86400.0, now=datetime.fromtimestamp(NOW, UTC))


@pytest.mark.parametrize("value", ["ab\u202ecd", "x\u2066y", "\u2069", "a\u202a", "tab\there", "nul\x00", "c1\x85"])
def test_ids_with_control_or_bidi_override_characters_are_refused(value: str) -> None:
    assert UNSAFE_TEXT.search(value)
    with pytest.raises(PayloadError, match="vehicle_id contains control or bidi-override"):
        check_id(value, "vehicle_id")


def test_ordinary_ids_pass() -> None:
    for value in ("bus-17", "NIA North", "Zürich HB", "東京", "lot7.s12"):
        assert check_id(value, "id") == value
    with pytest.raises(PayloadError, match="1-8 characters"):
        check_id("x" * 9, "id", max_len=8)
