"""People as their own stream: the people message parser, the line-crossing kernel on generated
frames, per-interval records, and storage through the collector route."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import orjson
import pytest

from its.db import Database, copy_rows
from its.ingest import PayloadError
from video.ingest import PEOPLE_COLUMNS, PEOPLE_TOPIC, ROUTES, PeopleRow, parse_people
from video.people import PeopleCrossings, PeopleEstimate, PeopleIntervals, PeopleRecord
from video.people_features import CellGrid, PeopleConfig, to_grey
from video.people_flow import LineFlux, line_samples

from .people_synth import Scene

TOPIC = "its/v1/cameras/mall-1/people"
ZONE = {"interval_start": "2026-01-05T08:01:00Z", "interval_s": 60, "zone_id": "entrance",
        "people_mean": 12.5, "people_max": 17.0, "samples": 120}
LINE = {"interval_start": "2026-01-05T08:01:00Z", "interval_s": 60, "line_id": "doors", "direction": "out",
        "crossings": 8.25}


def test_parse_zone_and_line_messages() -> None:
    (zone,) = parse_people(TOPIC, orjson.dumps(ZONE))
    assert zone == PeopleRow("mall-1", "entrance", "present", datetime(2026, 1, 5, 8, 1, tzinfo=UTC), 60,
                             12.5, 17.0, 120, None)
    (line,) = parse_people(TOPIC, orjson.dumps(LINE))
    assert line == PeopleRow("mall-1", "doors", "out", datetime(2026, 1, 5, 8, 1, tzinfo=UTC), 60, None, None, None, 8.25)
    route = next(r for r in ROUTES if r.table == "people_counts")
    assert route.matches(TOPIC) and route.columns == PEOPLE_COLUMNS and PEOPLE_TOPIC.stored_in == "people_counts"
    assert not route.matches("its/v1/cameras/mall-1/counts")
    from its.app.registry import domain_routes

    assert route in domain_routes()  # the platform collector gets it from the video descriptor
    # what the worker sends parses back to the same numbers
    start = datetime(2026, 1, 5, 8, 1, tzinfo=UTC)
    for rec in (PeopleRecord(start, 60, "all", 3.333, 5.0, 7), PeopleCrossings(start, 60, "doors", "in", 2.004)):
        (row,) = parse_people(TOPIC, orjson.dumps(rec.payload()))
        assert row.interval_start == start and (row.people_mean, row.crossings) in ((3.33, None), (None, 2.0))


@pytest.mark.parametrize(("payload", "reason"), [
    ({**ZONE, "line_id": "doors"}, "exactly one of fields 'zone_id'"),
    ({k: v for k, v in ZONE.items() if k != "zone_id"}, "exactly one of fields 'zone_id'"),
    ({**ZONE, "people_mean": -1}, "people_mean"),
    ({**ZONE, "people_max": 3.0}, "'people_max'=3.0 is below"),
    ({**ZONE, "samples": 0}, "samples"),
    ({**ZONE, "samples": 1.5}, "samples"),
    ({**ZONE, "crossings": 2}, "a zone message has no field 'crossings'"),
    ({**ZONE, "zone_id": "a\u202eb"}, "zone_id"),
    ({**ZONE, "interval_s": 0}, "interval_s"),
    ({**ZONE, "interval_start": "soon"}, "interval_start"),
    ({**LINE, "direction": "up"}, "direction"),
    ({**LINE, "crossings": "many"}, "crossings"),
    ({**LINE, "people_max": 3}, "a line message has no field 'people_max'"),
    ({k: v for k, v in LINE.items() if k != "crossings"}, "missing field 'crossings'"),
])
def test_bad_people_messages_name_the_reason(payload: dict, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason.replace("(", r"\(")):
        parse_people(TOPIC, orjson.dumps(payload))


def test_bad_topic_and_body() -> None:
    with pytest.raises(PayloadError, match="camera id"):
        parse_people("its/v1/cameras//people", orjson.dumps(ZONE))
    with pytest.raises(PayloadError):
        parse_people(TOPIC, b"[1, 2]")


def test_people_rows_are_stored_idempotently(db: Database) -> None:
    rows = [*parse_people(TOPIC, orjson.dumps(ZONE)), *parse_people(TOPIC, orjson.dumps(LINE)),
            *parse_people(TOPIC, orjson.dumps({**LINE, "direction": "in", "crossings": 0}))]
    with db.connection() as conn:
        assert copy_rows(conn, "people_counts", PEOPLE_COLUMNS, rows) == 3
    with db.connection() as conn:
        assert copy_rows(conn, "people_counts", PEOPLE_COLUMNS, rows[:1]) == 0  # redelivery
    got = db.fetchall("SELECT place_id, measure, people_mean, people_max, samples, crossings FROM people_counts"
                      " ORDER BY measure")
    assert got == [("doors", "in", None, None, None, 0.0), ("doors", "out", None, None, None, 8.25),
                   ("entrance", "present", 12.5, 17.0, 120, None)]


def test_line_samples_follow_the_vehicle_direction_convention() -> None:
    grid = CellGrid.for_frame((640, 480), PeopleConfig())  # model 320x240: half the frame
    s = line_samples((0, 200, 640, 200), grid)  # drawn left to right: `in` is moving down the image
    assert s.normal == pytest.approx((0.0, 1.0)) and len(s.row) * s.dl == pytest.approx(320)
    assert set(s.row) == {100 // 16} and s.col.min() == 0 and s.col.max() == 19
    up = line_samples((640, 200, 0, 200), grid)
    assert up.normal == pytest.approx((0.0, -1.0))


def test_flux_of_generated_walkers_matches_their_crossings() -> None:
    """With the true head density, density x flow across a line counts the walkers that crossed it."""
    scene = Scene(seconds=40, seed=4)
    grid = CellGrid.for_frame((320, 240), PeopleConfig())
    flux = LineFlux(grid, {"mid": (200, 0, 200, 240)})  # drawn downwards: `in` is moving left
    total = {"in": 0.0, "out": 0.0}
    prev = to_grey(scene.image(0), grid)
    for i in range(1, scene.n):
        grey = to_grey(scene.image(i), grid)
        step = flux.update(prev, grey, grid.heads_to_cells(scene.heads(i)), 1 / scene.fps, 1 / scene.fps)
        for d in total:
            total[d] += step[("mid", d)]
        prev = grey
    left, right = scene.crossings(200, 0, scene.n - 1)
    assert (left, right) == (14, 16)
    # walkers hiding each other mix the directions a little; the total holds
    assert total["in"] == pytest.approx(left, rel=0.2) and total["out"] == pytest.approx(right, rel=0.2)
    assert total["in"] + total["out"] == pytest.approx(left + right, rel=0.1)
    with pytest.raises(ValueError, match="gap_s"):
        flux.update(prev, prev, np.zeros((grid.rows, grid.cols), np.float32), 0.0, 0.1)


def test_intervals_sum_crossings_and_report_every_line() -> None:
    est = PeopleEstimate(4.0, {"z": 1.0}, np.zeros((2, 2), np.float32))
    iv = PeopleIntervals(60, lines=["a", "b"])
    t0 = 1_767_225_600.0
    assert iv.add(t0, est) == []  # no crossing measured yet
    assert iv.add(t0 + 1, est, {("a", "in"): 0.75}) == []
    assert iv.add(t0 + 2, est, {("a", "in"): 0.5, ("a", "out"): 0.25}) == []
    out = iv.add(t0 + 61, est)
    zones = [r for r in out if isinstance(r, PeopleRecord)]
    lines = {(r.line_id, r.direction): r.people for r in out if isinstance(r, PeopleCrossings)}
    assert {r.zone_id for r in zones} == {"all", "z"} and zones[0].samples == 3
    assert lines == {("a", "in"): 1.25, ("a", "out"): 0.25, ("b", "in"): 0.0, ("b", "out"): 0.0}
    final = iv.flush(final=True)  # the next interval measured no crossing: zones only
    assert final and all(isinstance(r, PeopleRecord) for r in final)
