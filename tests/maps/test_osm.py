from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maps.network import RoadNetwork
from maps.osm import OsmImportError, import_osm, parse_bbox

# A hand-written extract exercising the tag rules through the real osmium parser.
# Nodes 1-2-3-4 run west→east; way 10 (two-way, 4 lanes, FI:urban) 1-2-3, way 11 (oneway=-1,
# 30 mph) 3-4, way 12 roundabout 2-5-6-2, way 13 footway 3-7 (not drivable), way 14
# private 4-8 (excluded), way 15 motorway 4-9 (implicitly one-way, no maxspeed).
XML = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
  <node id="1" lat="60.0000" lon="25.0000" version="1"/>
  <node id="2" lat="60.0000" lon="25.0010" version="1"/>
  <node id="3" lat="60.0000" lon="25.0020" version="1"/>
  <node id="4" lat="60.0000" lon="25.0030" version="1"/>
  <node id="5" lat="60.0005" lon="25.0012" version="1"/>
  <node id="6" lat="60.0005" lon="25.0008" version="1"/>
  <node id="7" lat="60.0010" lon="25.0020" version="1"/>
  <node id="8" lat="60.0010" lon="25.0030" version="1"/>
  <node id="9" lat="60.0000" lon="25.0100" version="1"/>
  <way id="10" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/>
    <tag k="highway" v="primary"/><tag k="lanes" v="4"/><tag k="maxspeed" v="FI:urban"/><tag k="name" v="Main"/></way>
  <way id="11" version="1"><nd ref="3"/><nd ref="4"/>
    <tag k="highway" v="residential"/><tag k="oneway" v="-1"/><tag k="maxspeed" v="30 mph"/></way>
  <way id="12" version="1"><nd ref="2"/><nd ref="5"/><nd ref="6"/><nd ref="2"/>
    <tag k="highway" v="tertiary"/><tag k="junction" v="roundabout"/></way>
  <way id="13" version="1"><nd ref="3"/><nd ref="7"/><tag k="highway" v="footway"/></way>
  <way id="14" version="1"><nd ref="4"/><nd ref="8"/><tag k="highway" v="service"/><tag k="access" v="private"/></way>
  <way id="15" version="1"><nd ref="4"/><nd ref="9"/><tag k="highway" v="motorway"/></way>
</osm>
"""


@pytest.fixture
def crafted(tmp_path: Path) -> RoadNetwork:
    path = tmp_path / "crafted.osm"
    path.write_text(XML)
    return import_osm(path)


def _edges_of_way(net: RoadNetwork, way: int) -> np.ndarray:
    return np.nonzero(net.way_id == way)[0]


def _src(net: RoadNetwork, edge: int) -> tuple[int, int]:
    return int(net.node_source_id[net.u[edge]]), int(net.node_source_id[net.v[edge]])


def test_tag_rules(crafted: RoadNetwork) -> None:
    net = crafted
    assert set(net.way_id.tolist()) == {10, 11, 12, 15}
    main = _edges_of_way(net, 10)
    # split at node 2 (shared with the roundabout): 2 segments x 2 directions
    assert sorted(_src(net, e) for e in main) == [(1, 2), (2, 1), (2, 3), (3, 2)]
    assert (net.lanes[main] == 2).all() and not net.oneway[main].any()
    np.testing.assert_allclose(net.freeflow_mps[main], 50 / 3.6)
    assert (net.street_name[main] == "Main").all()
    back = _edges_of_way(net, 11)
    assert [_src(net, e) for e in back] == [(4, 3)] and net.oneway[back].all()
    np.testing.assert_allclose(net.freeflow_mps[back], 30 * 1.609344 / 3.6)
    ring = _edges_of_way(net, 12)
    assert len(ring) == 1 and net.oneway[ring].all() and _src(net, ring[0]) == (2, 2)
    motorway = _edges_of_way(net, 15)
    assert [_src(net, e) for e in motorway] == [(4, 9)]
    np.testing.assert_allclose(net.freeflow_mps[motorway], 100 / 3.6)
    # geometry runs from u to v
    e = main[[_src(net, x) for x in main].index((2, 1))]
    seg = net.coords[net.geom_offsets[e]:net.geom_offsets[e + 1]]
    np.testing.assert_allclose(seg, [[25.001, 60.0], [25.0, 60.0]])
    assert net.length_m[e] == pytest.approx(55.8, abs=0.5)  # 0.001° lon at 60° N


def test_bbox_cuts_ways(tmp_path: Path) -> None:
    path = tmp_path / "crafted.osm"
    path.write_text(XML)
    net = import_osm(path, bbox=(24.9995, 59.9995, 25.0025, 60.0008))
    assert set(net.node_source_id.tolist()) <= {1, 2, 3, 5, 6}
    assert set(net.way_id.tolist()) == {10, 12}


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.osm\.pbf"):
        import_osm(tmp_path / "missing.osm.pbf")
    bad = tmp_path / "bad.osm.pbf"
    bad.write_bytes(b"\x00\x00\x00\x0cnot a pbf at all")
    with pytest.raises(OsmImportError, match=r"bad\.osm\.pbf"):
        import_osm(bad)
    empty = tmp_path / "empty.osm"
    empty.write_text("<?xml version='1.0'?><osm version='0.6'></osm>")
    with pytest.raises(OsmImportError, match="no drivable"):
        import_osm(empty)


def test_parse_bbox() -> None:
    assert parse_bbox("24.9,60.1,25.0,60.2") == (24.9, 60.1, 25.0, 60.2)
    for text in ("1,2,3", "a,b,c,d", "25,60,24,61"):
        with pytest.raises(ValueError, match="bbox"):
            parse_bbox(text)


def test_small_extract(small_osm: RoadNetwork) -> None:
    net = small_osm
    assert 400 < net.n_edges < 800 and 200 < net.n_nodes < 400
    assert {"residential", "tertiary", "secondary", "motorway"} <= set(net.road_class.tolist())
    assert 60 < net.length_m.sum() / 1000 < 100
    assert (net.length_m > 0).all()
    motorway = net.road_class == "motorway"
    assert net.oneway[motorway].all()
    assert net.strongly_connected_edges().mean() > 0.8


def test_helsinki_extract(helsinki: RoadNetwork) -> None:
    net = helsinki
    assert 1200 < net.n_edges < 1800
    w, s, e, n = net.bbox
    assert 24.93 < w < e < 24.96 and 60.16 < s < n < 60.18
    # central Helsinki: mostly 30-40 km/h limits, many one-way streets and multi-lane arterials
    kmh = np.round(net.freeflow_mps * 3.6)
    assert ((kmh >= 30) & (kmh <= 40)).mean() > 0.7
    assert 0.2 < net.oneway.mean() < 0.5
    assert (net.lanes[net.road_class == "primary"] >= 2).mean() > 0.3
    # every two-way edge has its reverse twin with the reversed geometry
    two_way = np.nonzero(~net.oneway)[0]
    rev = net.reverse_edge[two_way]
    assert (rev >= 0).all()
    np.testing.assert_allclose(net.length_m[two_way], net.length_m[rev], rtol=1e-9)
    erottajankatu = (net.street_name == "Erottajankatu") & (net.road_class == "unclassified")
    assert erottajankatu.any() and net.oneway[erottajankatu].all()
    # no dangling indices, geometry endpoints are the nodes
    first = net.coords[net.geom_offsets[:-1]]
    last = net.coords[net.geom_offsets[1:] - 1]
    np.testing.assert_allclose(first, np.column_stack([net.node_lon[net.u], net.node_lat[net.u]]))
    np.testing.assert_allclose(last, np.column_stack([net.node_lon[net.v], net.node_lat[net.v]]))


def test_helsinki_bbox(helsinki: RoadNetwork, sample_data: Path) -> None:
    box = (24.940, 60.165, 24.948, 60.172)
    part = import_osm(sample_data / "osm" / "Helsinki.osm.pbf", bbox=box)
    assert 0 < part.n_edges < helsinki.n_edges / 2
    lon, lat = part.coords[:, 0], part.coords[:, 1]
    assert ((lon >= box[0]) & (lon <= box[2]) & (lat >= box[1]) & (lat <= box[3])).all()
