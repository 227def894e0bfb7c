"""Profiles read between slot centres, whatever the time of a reading."""

from __future__ import annotations

import numpy as np
import pytest

from parking.profiles import profile_at, slot_of


def test_profile_read_between_slot_centres() -> None:
    values = np.full((1, 1, 48), np.nan)
    values[0, 0, 18:21] = [100.0, 160.0, 160.0]  # 09:00, 09:30, 10:00
    at = profile_at(values, [0] * 5, [0] * 5, [540.0, 555.0, 570.0, 600.0, 605.0], 30)
    np.testing.assert_allclose(at[:4], [100.0, 130.0, 160.0, 160.0])
    assert at[4] == 160.0  # next slot has no value: the neighbour's
    assert np.isnan(profile_at(values, [0], [0], [300.0], 30)[0])  # no value around 05:00
    # a reading at 09:14 and one at 09:16 differ by a minute, not by a whole slot
    a, b = profile_at(values, [0, 0], [0, 0], [554.0, 556.0], 30)
    assert abs(b - a) == pytest.approx(4.0)
    assert slot_of(554.0, 30) != slot_of(556.0, 30)  # what nearest-slot lookup would jump across
