"""Served times along a trip: strictly increasing from stop to stop (GTFS-realtime E022)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from telematics.board import _after

_stop = st.tuples(st.floats(1.7e9, 1.7e9 + 600.0, allow_nan=False), st.integers(0, 120))  # arrival, dwell s


@settings(max_examples=300, deadline=None)
@given(stops=st.lists(_stop, max_size=12))
def test_served_times_increase_strictly_along_a_trip(stops: list[tuple[float, int]]) -> None:
    """Whatever the predictions (equal, inverted by a few seconds, a long scheduled dwell
    before a quick next stop), the whole seconds served increase strictly: each arrival after
    the previous departure, each departure not before its arrival; an arrival already after
    the previous departure is served as predicted, a moved one keeps its band."""
    departed: int | None = None
    for predicted, dwell in stops:
        arrive, p10, p90 = _after((predicted, predicted - 20.0, predicted + 40.0), departed)
        leave = max(arrive + dwell, arrive)
        if departed is None or round(predicted) > departed:
            assert arrive == predicted
        else:
            assert round(arrive) == departed + 1
        assert departed is None or round(arrive) > departed
        assert round(leave) >= round(arrive)
        assert abs((arrive - p10) - 20.0) < 1e-6 and abs((p90 - arrive) - 40.0) < 1e-6
        departed = round(leave)
