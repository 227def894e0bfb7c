from __future__ import annotations

import math

import numpy as np
import pytest

from maps.roadclass import capacity_vph, class_freeflow_kmh, parse_maxspeed_kmh


@pytest.mark.parametrize(
    ("value", "kmh"),
    [("50", 50.0), ("30 mph", 48.28032), ("FI:urban", 50.0), ("FI:rural", 80.0), ("DE:zone30", 30.0),
     ("DE:30", 30.0), ("walk", 7.0), ("60;40", 40.0), (" 80 km/h", 80.0)],
)
def test_parse_maxspeed(value: str, kmh: float) -> None:
    assert parse_maxspeed_kmh(value) == pytest.approx(kmh)


@pytest.mark.parametrize("value", [None, "none", "signals", "DE:motorway", "fast", "0"])
def test_parse_maxspeed_unknown(value: str | None) -> None:
    assert math.isnan(parse_maxspeed_kmh(value))


def test_class_defaults() -> None:
    np.testing.assert_allclose(class_freeflow_kmh(["motorway", "residential", "nonsense"]), [100, 30, 40])
    np.testing.assert_allclose(capacity_vph(["motorway", "residential"], [3, 0]), [6000, 600])
