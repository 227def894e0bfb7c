from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from maps.from_gtfs import GtfsShapeError, ShapeNetwork, derive_network, read_shapes


@pytest.fixture(scope="module")
def cairns(sample_data: Path) -> ShapeNetwork:
    return derive_network(sample_data / "gtfs" / "cairns_gtfs.zip")


def test_cairns_network_connected_and_merged(cairns: ShapeNetwork, sample_data: Path) -> None:
    net = cairns.network
    shapes = read_shapes(sample_data / "gtfs" / "cairns_gtfs.zip")
    assert len(cairns.shape_edges) == shapes["shape_id"].nunique() == 54
    # shared sections merged: the network is far shorter than the sum of shape lengths
    walked = sum(float(net.length_m[e].sum()) for e in cairns.shape_edges.values())
    assert net.length_m.sum() < 0.45 * walked
    per_edge = cairns.shapes_per_edge()
    assert (per_edge >= 1).all()
    assert (per_edge > 1).mean() > 0.6
    # junction-to-junction edges, not grid-sized fragments
    assert np.median(net.length_m) > 100
    assert net.strongly_connected_edges().mean() > 0.95
    assert (net.road_class == "bus_route").all()


def test_shape_walks_are_paths_following_the_shape(cairns: ShapeNetwork, sample_data: Path) -> None:
    net = cairns.network
    shapes = read_shapes(sample_data / "gtfs" / "cairns_gtfs.zip")
    for sid, edges in cairns.shape_edges.items():
        assert (net.v[edges[:-1]] == net.u[edges[1:]]).all(), sid
        pts = shapes[shapes["shape_id"] == sid]
        start = net.coords[net.geom_offsets[edges[0]]]
        assert abs(start[0] - pts["shape_pt_lon"].iloc[0]) < 1e-4
        assert abs(start[1] - pts["shape_pt_lat"].iloc[0]) < 1e-4
        # walked length within 2 % of the shape's own length
        from maps.geometry import haversine_m

        own = haversine_m(pts["shape_pt_lon"].to_numpy()[:-1], pts["shape_pt_lat"].to_numpy()[:-1],
                          pts["shape_pt_lon"].to_numpy()[1:], pts["shape_pt_lat"].to_numpy()[1:]).sum()
        assert net.length_m[edges].sum() == pytest.approx(own, rel=0.02), sid


def test_nyc_subway_shapes(sample_data: Path) -> None:
    """A second real feed (New York City subway, shipped in the gtfs-kit sdist)."""
    sn = derive_network(sample_data / "gtfs" / "nyc_subway_gtfs.zip")
    assert sn.network.n_edges >= 20  # junction to junction: the lines merge and split at 20 sections
    assert len(sn.shape_edges) >= 10
    for edges in sn.shape_edges.values():
        assert (sn.network.v[edges[:-1]] == sn.network.u[edges[1:]]).all()


def _feed(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feed.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("shapes.txt", text)
    return path


def test_bad_shapes_name_line_and_field(tmp_path: Path) -> None:
    header = "shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence\n"
    bad = _feed(tmp_path, header + "a,-16.9,145.7,1\na,north,145.8,2\n")
    with pytest.raises(GtfsShapeError, match=r"line 3: field shape_pt_lat = 'north'"):
        derive_network(bad)
    with pytest.raises(GtfsShapeError, match=r"missing column.*shape_pt_sequence"):
        derive_network(_feed(tmp_path, "shape_id,shape_pt_lat,shape_pt_lon\na,1,2\n"))
    with pytest.raises(GtfsShapeError, match="line 2: field shape_pt_lon"):
        derive_network(_feed(tmp_path, header + "a,-16.9,200,1\n"))
    with pytest.raises(FileNotFoundError, match=r"nope\.zip"):
        derive_network(tmp_path / "nope.zip")


def test_two_shapes_sharing_a_street_merge(tmp_path: Path) -> None:
    # shape a: west→east along a street; shape b: the same street with different vertex
    # spacing, drawn 0.8 m aside, then turning north: the shared part must become one edge
    rows = ["shape_id,shape_pt_lat,shape_pt_lon,shape_pt_sequence"]
    for i, lon in enumerate(np.linspace(145.70, 145.71, 11)):
        rows.append(f"a,-16.90,{lon:.6f},{i}")
    for i, lon in enumerate(np.linspace(145.70, 145.705, 4)):
        rows.append(f"b,-16.900007,{lon:.6f},{i}")  # drawn 0.8 m beside shape a
    rows.append("b,-16.89,145.705,10")
    sn = derive_network(_feed(tmp_path, "\n".join(rows) + "\n"))
    a, b = sn.shape_edges["a"], sn.shape_edges["b"]
    assert a[0] == b[0]  # shared section west of the junction
    assert len(a) == 2 and len(b) == 2 and a[1] != b[1]
    assert sn.network.n_nodes == 4 and sn.network.oneway.all()


def test_vertex_merge_does_not_chain() -> None:
    from maps.from_gtfs import _merge_vertices

    # one dense line (1 m spacing over 100 m) and a second shape 0.8 m beside it
    x = np.concatenate([np.arange(0.0, 100.0, 1.0), np.arange(0.0, 100.0, 10.0) + 0.3])
    y = np.concatenate([np.zeros(100), np.full(10, 0.8)])
    shape = np.concatenate([np.zeros(100, np.int64), np.ones(10, np.int64)])
    vid, vx, vy = _merge_vertices(x, y, shape, 3.0)
    moved = np.hypot(vx[vid] - x, vy[vid] - y)
    assert moved.max() <= 3.0
    assert len(vx) >= 100 / 6  # at most one vertex per 2 × radius survives, no collapse
    assert len(vx) < 110 / 2  # close vertices did merge
