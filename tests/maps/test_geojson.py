from __future__ import annotations

import json

import numpy as np
import pytest
import shapely

from maps.geojson import edges_geojson, edges_in_bbox
from maps.network import RoadNetwork


def test_bbox_filter_matches_shapely(helsinki: RoadNetwork) -> None:
    box = (24.944, 60.168, 24.948, 60.171)
    idx = edges_in_bbox(helsinki, box)
    brute = np.nonzero(shapely.intersects(shapely.envelope(helsinki.geometries), shapely.box(*box)))[0]
    assert idx.tolist() == brute.tolist()
    assert 0 < len(idx) < helsinki.n_edges
    with pytest.raises(ValueError, match="bbox"):
        edges_in_bbox(helsinki, (1.0, 1.0, 0.0, 0.0))


def test_feature_collection(helsinki: RoadNetwork) -> None:
    speed = helsinki.freeflow_mps * 0.5
    speed[3] = np.nan
    level = np.where(np.arange(helsinki.n_edges) % 2 == 0, "free", "heavy")
    fc = edges_geojson(helsinki, {"speed_mps": speed, "level": level}, edges=np.arange(10))
    text = json.dumps(fc, allow_nan=False)  # valid JSON: no NaN
    back = json.loads(text)
    assert back["type"] == "FeatureCollection" and len(back["features"]) == 10
    f3 = back["features"][3]
    assert f3["id"] == 3 and f3["properties"]["speed_mps"] is None
    assert f3["properties"]["level"] == "heavy"
    assert f3["properties"]["road_class"] == str(helsinki.road_class[3])
    coords = np.array(f3["geometry"]["coordinates"])
    np.testing.assert_allclose(coords, helsinki.coords[helsinki.geom_offsets[3]:helsinki.geom_offsets[4]], atol=1e-6)
    f0 = back["features"][0]["properties"]
    assert f0["speed_mps"] == pytest.approx(round(speed[0], 3))


def test_bbox_and_property_shape(helsinki: RoadNetwork) -> None:
    box = (24.944, 60.168, 24.948, 60.171)
    fc = edges_geojson(helsinki, bbox=box)
    assert [f["id"] for f in fc["features"]] == edges_in_bbox(helsinki, box).tolist()
    with pytest.raises(ValueError, match="speed"):
        edges_geojson(helsinki, {"speed": np.ones(3)})
