"""GTFS import into a real PostgreSQL: counts, round trip, atomic re-import, bad feeds."""

from __future__ import annotations

import shutil
import threading
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from its.db import Database
from telematics.gtfs import FeedError, read_feed
from telematics.gtfs.database import (
    active_feed_version,
    agencies,
    import_feed,
    import_feed_file,
    load_feed,
)
from telematics.store import read_stop_arrivals, write_stop_arrivals


def _count(db: Database, table: str, version: int) -> int:
    return int(db.fetchall(f"SELECT count(*) FROM {table} WHERE feed_version = %s", (version,))[0][0])


def test_cairns_import_counts_and_round_trip(db: Database, cairns_zip: Path) -> None:
    result = import_feed_file(db, cairns_zip, "cairns")
    assert result.rows["gtfs_stops"] == 416
    assert result.rows["gtfs_trips"] == 1339
    assert result.rows["gtfs_stop_times"] == 37790
    assert result.rows["gtfs_shapes"] > 0
    assert agencies(db) == ["cairns"]
    assert _count(db, "gtfs_stop_times", result.feed_version) == 37790
    original = read_feed(cairns_zip)
    loaded = load_feed(db, "cairns")
    assert loaded.timezone == "Australia/Brisbane"
    a = original.stop_times.sort_values(["trip_id", "stop_sequence"]).reset_index(drop=True)
    b = loaded.stop_times.reset_index(drop=True)
    assert (a["arrival_time"].to_numpy() == b["arrival_time"].to_numpy()).all()
    assert (a["stop_id"].astype(str).to_numpy() == b["stop_id"].to_numpy()).all()
    # times past 24:00 survive the round trip
    assert int(b["departure_time"].max()) == int(a["departure_time"].max())
    assert set(loaded.calendar_dates["date"]) == set(original.calendar_dates["date"])


def test_wmata_reimport_replaces_atomically(db: Database, wmata_dir: Path) -> None:
    first = import_feed_file(db, wmata_dir / "wmata_gtfs.zip", "wmata")
    assert first.rows["gtfs_calendar_dates"] == len(read_feed(wmata_dir / "wmata_gtfs.zip").calendar_dates)  # WMATA: 46
    seen: list[int] = []
    stop = threading.Event()

    def reader() -> None:  # concurrent readers must see a whole feed, never half of one
        while not stop.is_set():
            seen.append(len(load_feed(db, "wmata").stop_times))
            stop.wait(0.3)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        second = import_feed_file(db, wmata_dir / "wmata_gtfs.zip", "wmata")
    finally:
        stop.set()
        thread.join()
    assert second.replaced_version == first.feed_version
    assert active_feed_version(db, "wmata") == second.feed_version
    assert _count(db, "gtfs_stop_times", first.feed_version) == 0  # old version gone
    assert seen and set(seen) == {len(read_feed(wmata_dir / "wmata_gtfs.zip").stop_times)}  # WMATA: 232187
    # Presidents' Day 2026 runs on a calendar_dates exception
    feed = load_feed(db, "wmata")
    from telematics.gtfs import service_ids_on

    assert service_ids_on(feed, date(2026, 2, 16)) == service_ids_on(read_feed(wmata_dir / "wmata_gtfs.zip"),
                                                                        date(2026, 2, 16))


def _broken_copy(src: Path, dst: Path, member: str, edit) -> Path:  # type: ignore[no-untyped-def]
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == member:
                data = edit(data)
            zout.writestr(info, data)
    return dst


def test_bad_feed_names_file_line_field_and_keeps_old(db: Database, cairns_zip: Path, tmp_path: Path) -> None:
    good = import_feed_file(db, cairns_zip, "cairns")

    def bad_time(data: bytes) -> bytes:
        lines = data.decode("utf-8-sig").splitlines()
        cols = lines[3].split(",")
        cols[1] = "7:6O:00"
        lines[3] = ",".join(cols)
        return "\n".join(lines).encode()

    broken = _broken_copy(cairns_zip, tmp_path / "bad.zip", "stop_times.txt", bad_time)
    with pytest.raises(FeedError) as err:
        import_feed_file(db, broken, "cairns")
    assert err.value.file == "stop_times.txt" and err.value.line == 4 and err.value.field == "arrival_time"
    assert active_feed_version(db, "cairns") == good.feed_version
    assert db.fetchall("SELECT count(*) FROM gtfs_feeds")[0][0] == 1


def test_duplicate_stop_rolls_back_everything(db: Database, cairns_zip: Path, tmp_path: Path) -> None:
    def dup_stop(data: bytes) -> bytes:
        lines = data.decode("utf-8-sig").splitlines()
        return "\n".join([*lines, lines[1]]).encode()

    broken = _broken_copy(cairns_zip, tmp_path / "dup.zip", "stops.txt", dup_stop)
    with pytest.raises(FeedError) as err:
        import_feed_file(db, broken, "cairns")
    assert err.value.file == "stops.txt" and err.value.field == "stop_id" and err.value.line == 418
    assert agencies(db) == []
    for table in ("gtfs_feeds", "gtfs_stops", "gtfs_stop_times"):
        assert db.fetchall(f"SELECT count(*) FROM {table}")[0][0] == 0


def test_feed_without_shapes_imports(db: Database, cairns_zip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "noshapes"
    with zipfile.ZipFile(cairns_zip) as z:
        z.extractall(folder)
    (folder / "shapes.txt").unlink()
    trips = pd.read_csv(folder / "trips.txt", dtype=str)
    trips["shape_id"] = ""
    trips.to_csv(folder / "trips.txt", index=False)
    result = import_feed(db, read_feed(folder), "noshapes")
    assert "gtfs_shapes" not in result.rows
    assert load_feed(db, "noshapes").shapes is None
    shutil.rmtree(folder)


def test_stop_arrivals_written_idempotently(db: Database) -> None:
    t = datetime(2026, 2, 16, 18, 0, 5, tzinfo=UTC)
    row = ("wmata", date(2026, 2, 16), "8428100", 12, t, "1001", "5473", "C53", t, 5.0)
    assert write_stop_arrivals(db, [row, row]) == 1
    assert write_stop_arrivals(db, [row]) == 0
    got = read_stop_arrivals(db, "wmata", datetime(2026, 2, 16, tzinfo=UTC), datetime(2026, 2, 17, tzinfo=UTC))
    assert got["trip_id"].tolist() == ["8428100"] and got["delay_s"].tolist() == [5.0]


def test_cli_gtfs_import(db_url: str, cairns_zip: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    its = [sys.executable, "-m", "its.app.cli"]
    env = {**os.environ, "ITS_DATABASE_URL": db_url, "ITS_DATA_DIR": str(tmp_path / "data")}
    env.pop("ITS_MQTT_URL", None)
    ok = subprocess.run([*its, "gtfs", "import", str(cairns_zip), "--agency", "cairns", "--rebase-calendar"],
                        env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "agency cairns: feed version" in ok.stdout and "37790 stop_times" in ok.stdout
    db = Database(db_url)
    try:
        end = db.fetchall("SELECT max(end_date) FROM gtfs_calendar")[0][0]
        assert end >= date.today()  # rebased to cover today, weekday pattern kept
        assert (end - date(2014, 12, 28)).days % 7 == 0
    finally:
        db.close()
    bad = subprocess.run([*its, "gtfs", "import", str(tmp_path / "missing.zip")], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "missing.zip" in bad.stderr
