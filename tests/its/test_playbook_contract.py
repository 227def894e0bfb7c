"""The playbook's pure parts: the live mode rule is the report's, where a situation reaches,
the expected excess wait of a hold, action ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from its.playbook import Action, Effect, IncidentSite, Situation, action_id, distance_m
from telematics.holding import RouteParams, excess_wait_change, headway_holds
from traffic.kpi import classify_mode, operating_mode


def test_live_rule_is_the_reports_operating_mode() -> None:
    hours = pd.date_range("2026-02-16 06:00", periods=5, freq="h", tz="UTC")
    tti = pd.Series([1.1, 1.3, 1.45, np.nan, 1.0], index=hours)
    spans = pd.DataFrame({"start": [hours[4] + pd.Timedelta(minutes=10)], "stop": [hours[4] + pd.Timedelta(minutes=20)]})
    report = operating_mode(hours, tti, spans, peak_tti=1.3)
    modes = [None if pd.isna(m) else m for m in report["mode"]]
    assert modes == ["normal", "peak", "peak", None, "incident"]
    live = classify_mode(tti.to_numpy(), report["incidents"].to_numpy(), 1.3)
    assert live.tolist() == modes
    assert classify_mode([np.nan], [0], 1.3).tolist() == [None]
    assert classify_mode([np.nan], [2], 1.3).tolist() == ["incident"]


def _situation(mode: str | None, tti: float | None, incidents: tuple[IncidentSite, ...] = ()) -> Situation:
    return Situation(mode, tti, 1.3, incidents, 0.0)


def test_situation_reaches_everywhere_at_peak_and_near_incidents_otherwise() -> None:
    inc = IncidentSite("wmata:17", "warning", "edge wmata:17: 4 km/h", 38.90, -77.03)
    incident = _situation("incident", 1.05, (inc,))
    assert incident.active and not incident.network_wide
    km = 1.0 / 111.32  # one km of latitude in degrees
    assert incident.affects(38.90 + 1.5 * km, -77.03)
    assert not incident.affects(38.90 + 2.5 * km, -77.03)
    assert 1990 < distance_m(38.90, -77.03, 38.90 + 2 * km, -77.03) < 2010
    peak = _situation("peak", 1.4)
    assert peak.network_wide and peak.affects(0.0, 0.0)
    both = _situation("incident", 1.35, (inc,))  # an incident at peak: the whole network
    assert both.affects(0.0, 0.0)
    for quiet in (_situation("normal", 1.1), _situation(None, None)):
        assert not quiet.active and not quiet.affects(38.90, -77.03)


def test_expected_excess_wait_of_a_hold() -> None:
    # bunched: 60 s behind the bus ahead, 540 s ahead of the bus behind, every 300 s
    before, after = excess_wait_change([60.0], [540.0], [240.0], [300.0])
    assert before[0] == pytest.approx((60**2 + 540**2) / 1200 - 150)  # 96 s
    assert after[0] == pytest.approx(0.0)  # even gaps: no excess wait
    # 30 s behind, 690 s ahead: the excess over evenly spaced gaps (never negative)
    b1, a1 = excess_wait_change([30.0], [690.0], [120.0], [780.0])
    assert b1[0] == pytest.approx((30**2 + 690**2) / 1440 - 180) and a1[0] == pytest.approx((150**2 + 570**2) / 1440 - 180)
    assert 0 < a1[0] < b1[0]
    # its change is the change of the TfL EWT (AWT - SWT): the span of the two gaps stays
    awt = lambda f, b: (f * f + b * b) / (2 * (f + b))  # noqa: E731
    assert a1[0] - b1[0] == pytest.approx(awt(150, 570) - awt(30, 690))
    # the rule's own hold never raises the excess wait, and a larger gain cuts it more
    params = RouteParams.from_headways([300.0], gain=0.4, cap_share=1.0)
    hold = headway_holds([0], [1000.0], [940.0], [1540.0], [np.nan], params)
    b, a = excess_wait_change([60.0], [540.0], hold, [300.0])
    assert 0 < a[0] < b[0]
    # an unknown neighbour counts as one scheduled headway, as in the rule
    b2, a2 = excess_wait_change([np.nan], [500.0], [0.0], [300.0])
    assert b2[0] == a2[0] == pytest.approx((300**2 + 500**2) / 1600 - 200)


def test_action_ids_are_stable_per_domain_kind_and_subject() -> None:
    e = Effect("travel time", "s", 120.0, 80.0, "saves 40 s")
    a = Action("traffic", "detour", "wmata:17", "Divert", "jam", e)
    b = Action("traffic", "detour", "wmata:17", "Divert (recomputed)", "jam", Effect("travel time", "s", 130, 70, ""))
    assert a.action_id == b.action_id == action_id("traffic", "detour", "wmata:17")
    assert len(a.action_id) == 16 and a.action_id != action_id("traffic", "detour", "wmata:18")
    js = a.to_json()
    assert js["effect"]["change"] == pytest.approx(-40.0) and js["action_id"] == a.action_id
    assert Effect("p", "probability", None, 0.9, "").change is None
