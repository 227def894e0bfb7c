"""The live gate judges positions one message at a time exactly as the kernel judges the whole day.

What the live state applies and what the report counts as plausible must agree: positions fed
one by one through `PositionGate` (each arriving at its own time) get the flags
`plausibility_flags` gives the same positions at once, with the gate keeping only a few fixes
per vehicle.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from telematics.config import TelematicsSettings
from telematics.gate import PositionGate, service_area
from telematics.ingest import PositionRow
from telematics.plausibility import AREA, FUTURE, SPEED, ServiceArea, plausibility_flags

AREA_DC = ServiceArea(-77.2, 38.7, -76.8, 39.1)
T0 = 1_770_000_000.0


def _row(vehicle: str, t: float, lat: float, lon: float) -> PositionRow:
    return PositionRow("a", vehicle, datetime.fromtimestamp(t, UTC), lat, lon, None, None, None, None, None, None,
                       None, None)


@st.composite
def days(draw: st.DrawFn) -> list[tuple[str, float, float, float]]:
    """Fixes of a few vehicles in arrival (= time) order, with outliers, relocations, far fixes."""
    n = draw(st.integers(1, 80))
    out, t, offset = [], T0, {"a": 0.0, "b": 0.0}
    for i in range(n):
        t += draw(st.sampled_from([1.0, 10.0, 30.0, 900.0]))
        v = draw(st.sampled_from(["a", "b"]))
        kind = draw(st.sampled_from(["walk"] * 4 + ["jump", "far", "shift"]))
        if kind == "shift":
            offset[v] += draw(st.floats(-0.15, 0.15))
        lat = 38.9 + offset[v] + 0.0005 * i + (0.06 if kind == "jump" else 0.0) + (10.0 if kind == "far" else 0.0)
        out.append((v, t, lat, -77.0 + 0.0002 * i))
    return out


@settings(max_examples=150, deadline=None)
@given(days(), st.sampled_from([2, 3, 4]), st.integers(1, 5))
def test_the_gate_one_message_at_a_time_agrees_with_the_kernel_on_the_whole_day(
        fixes: list[tuple[str, float, float, float]], k: int, per_message: int) -> None:
    cfg = TelematicsSettings(reanchor_fixes=k)
    gate = PositionGate(cfg)
    gate.set_area("a", AREA_DC)
    got: list[int] = []
    for i in range(0, len(fixes), per_message):  # a message may carry several positions (a GTFS-rt feed)
        batch = fixes[i:i + per_message]
        verdicts = gate.admit("a", [_row(*f) for f in batch], now_s=batch[-1][1])
        got += [v.flags for v in verdicts]
        assert all((v.row is None) == bool(v.flags) and not v.clamped for v in verdicts)
    v, t, lat, lon = zip(*fixes, strict=True)
    want = plausibility_flags(v, t, lat, lon, area=AREA_DC, reanchor_fixes=k, max_speed_mps=cfg.max_speed_mps,
                              gps_noise_m=cfg.gps_noise_m)
    assert got == want.tolist()
    assert all(len(h) <= k for h in gate.fixes.values())  # the state per vehicle stays a few fixes


def test_future_fixes_are_refused_then_clamped_and_old_ones_pass_to_the_fleet() -> None:
    gate = PositionGate(TelematicsSettings(max_future_s=300.0))
    gate.set_area("a", AREA_DC)
    now = T0 + 1000
    v1 = gate.admit("a", [_row("x", now - 10, 38.9, -77.0)], now)[0]
    assert v1.flags == 0 and v1.row is not None and not v1.clamped
    far, near = gate.admit("a", [_row("x", now + 86_000, 38.95, -77.0), _row("x", now + 120, 38.9001, -77.0)], now)
    assert far.flags == FUTURE and far.row is None
    assert near.flags == 0 and near.clamped and near.row is not None and near.row.time.timestamp() == now
    # the next real fix, stamped before the skewed one's own time, is judged and applied
    nxt = gate.admit("a", [_row("x", now + 20, 38.9003, -77.0)], now + 20)[0]
    assert nxt.flags == 0 and nxt.row is not None and nxt.row.time.timestamp() == now + 20
    # a fix older than the last accepted one is passed through unjudged: the fleet drops it as out of order
    old = gate.admit("a", [_row("x", now - 5, 45.0, -77.0)], now + 21)[0]
    assert old.flags == 0 and old.row is not None and old.row.lat == 45.0
    assert gate.forget(now + 1) == 0 and gate.forget(now + 21) == 1 and gate.fixes == {}


def test_an_agency_without_area_is_judged_by_speed_alone_and_its_area_comes_from_stops_or_settings() -> None:
    gate = PositionGate(TelematicsSettings())
    flags = [gate.admit("b", [_row("y", T0 + 10 * i, lat, -77.0)], T0 + 10 * i)[0].flags
             for i, lat in enumerate([38.9, 38.9001, 45.0, 38.9003])]
    assert flags == [0, 0, SPEED, 0]
    gate.set_area("b", AREA_DC)
    assert gate.admit("b", [_row("y", T0 + 50, 45.0, -77.0)], T0 + 50)[0].flags == AREA
    stops = service_area(TelematicsSettings(service_area_margin_m=1000), [38.8, 38.9], [-77.1, -77.0])
    assert stops is not None and stops.south < 38.8 and stops.north > 38.9
    fixed = service_area(TelematicsSettings(service_area=(-1.0, 50.0, 1.0, 52.0)), [38.8], [-77.1])
    assert fixed == ServiceArea(-1.0, 50.0, 1.0, 52.0)
    assert np.all(fixed.contains([51.5], [-0.12]))
