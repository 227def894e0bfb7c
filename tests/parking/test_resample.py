"""Birmingham as other networks would report it: other reading rates, zone, fewer sites."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parking.cleaning import read_history_csv
from parking.resample import relocate, resample_readings


@pytest.fixture(scope="module")
def history(birmingham_csv: Path) -> pd.DataFrame:
    return read_history_csv(birmingham_csv)


@pytest.mark.parametrize("every_min", [15, 60])
def test_resampled_readings(history: pd.DataFrame, every_min: int) -> None:
    out = resample_readings(history, every_min)
    secs = (out["time"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    assert (secs % (every_min * 60) == 0).all()
    assert not out.duplicated(["site_id", "time"]).any()
    one = out[out["site_id"] == "BHMBCCMKT01"]
    gaps = one["time"].diff().dt.total_seconds().dropna()
    assert (gaps >= every_min * 60).all()
    # nothing invented overnight: local hours stay those of the readings (08:00-16:30 or so)
    assert out["local_min"].between(7 * 60 + 45, 17 * 60 + 15).all()
    # local time of day matches UTC plus the site's offset (one hour in October, none in December)
    oct_ = out[out["local_date"] == pd.Timestamp("2016-10-10")]
    dec = out[out["local_date"] == pd.Timestamp("2016-12-12")]
    assert ((oct_["local_min"] - oct_["time"].dt.hour * 60 - oct_["time"].dt.minute) == 60).all()
    assert ((dec["local_min"] - dec["time"].dt.hour * 60 - dec["time"].dt.minute) == 0).all()
    # values between the readings around them
    raw = history[history["site_id"] == "BHMBCCMKT01"].drop_duplicates("time")
    t_raw = raw["time"].astype("int64").to_numpy()
    t_out = one["time"].astype("int64").to_numpy()
    k = np.searchsorted(t_raw, t_out)
    lo = raw["occupied"].to_numpy()[np.clip(k - 1, 0, None)]
    hi = raw["occupied"].to_numpy()[np.clip(k, None, len(raw) - 1)]
    assert ((one["occupied"].to_numpy() >= np.minimum(lo, hi)) & (one["occupied"].to_numpy() <= np.maximum(lo, hi))).all()


def test_relocated_history_keeps_local_times(history: pd.DataFrame) -> None:
    out = relocate(history, utc_offset_min=600, keep_sites=0.5, seed=3)
    assert out["site_id"].nunique() == 15
    part = history[history["site_id"].isin(out["site_id"].unique())].reset_index(drop=True)
    pd.testing.assert_series_equal(out["local_min"], part["local_min"])
    local = (out["time"].dt.hour * 60 + out["time"].dt.minute + out["time"].dt.second / 60 + 600) % 1440
    np.testing.assert_allclose(local.to_numpy(), out["local_min"].to_numpy(), atol=1e-6)
    with pytest.raises(ValueError):
        resample_readings(history, 7)
