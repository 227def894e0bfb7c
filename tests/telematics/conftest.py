"""Telematics fixtures: real feeds from the shared data, a database with them imported."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cairns_zip(sample_data: Path) -> Path:
    """The real Cairns GTFS feed (shipped in the gtfs-kit sdist)."""
    return sample_data / "gtfs" / "cairns_gtfs.zip"


def _gtfsrt_from_avl(wmata_dir: Path, folder: Path) -> list[Path]:
    """Three GTFS-realtime VehiclePositions snapshots 30 s apart (as the real Minneapolis ones)
    from the (stand-in) AVL: each vehicle's latest ping at the snapshot time, as an agency's
    feed serves them. (Shifted so the first is now, the last one's pings are up to 60 s ahead:
    further apart, the collector rightly rejects them as implausibly in the future.)"""
    import pandas as pd
    from google.transit import gtfs_realtime_pb2

    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False)
    avl["t"] = pd.to_datetime(avl["timestamp"], utc=True).map(lambda d: int(d.timestamp()))
    t0 = int(avl["t"].min()) + 3600
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(3):
        now = t0 + 30 * k
        latest = avl[(avl["t"] <= now) & (avl["t"] > now - 120)].sort_values("t").groupby("vehicle_id").tail(1)
        msg = gtfs_realtime_pb2.FeedMessage()
        msg.header.gtfs_realtime_version = "2.0"
        msg.header.timestamp = now
        for r in latest.itertuples():
            e = msg.entity.add()
            e.id = f"e-{r.vehicle_id}"
            vp = e.vehicle
            vp.vehicle.id = r.vehicle_id
            vp.timestamp = int(r.t)
            vp.position.latitude, vp.position.longitude = float(r.lat), float(r.lon)
            vp.trip.trip_id, vp.trip.route_id = r.trip_id, r.route_id  # no start_date, as Minneapolis
        path = folder / f"VehiclePositions_{k}.pb"
        path.write_bytes(msg.SerializeToString())
        out.append(path)
    return out


@pytest.fixture(scope="session")
def gtfsrt_snapshots(wmata_dir: Path, sample_data: Path) -> list[Path]:
    """The three real Minneapolis VehiclePositions snapshots of the shared data, else three
    snapshots made from the (stand-in) WMATA AVL."""
    from tests.conftest import shared_data_path

    real = sorted((shared_data_path() / "avl" / "minneapolis").glob("*.pb"))
    return real if len(real) == 3 else _gtfsrt_from_avl(wmata_dir, sample_data / "avl" / "gtfsrt")
