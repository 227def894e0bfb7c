"""Road networks: geometry, OSM/GTFS import, spatial snapping, routing, GeoJSON, storage.

Public API (stable; other packages build on it):

- :class:`maps.network.RoadNetwork` — nodes/edges as parallel numpy arrays (``u``, ``v``,
  ``length_m``, ``road_class``, ``lanes``, ``oneway``, ``freeflow_mps``, ``capacity_vph``,
  ``coords``/``geom_offsets`` lon/lat geometry), derived views (``geometries``,
  ``geometries_xy``, ``projector``, ``reverse_edge``, ``edge_index``, ``edge_bounds``,
  ``line_graph``, ``node_adjacency(weights)``, ``to_networkx``), ``save``/``load`` (npz),
  ``subset``, ``concat``.
- :func:`maps.osm.import_osm`, :func:`maps.from_gtfs.derive_network`,
  :func:`maps.synthetic.grid_network` build networks.
- :class:`maps.spatial.EdgeSnapper` — ``nearest`` and ``candidates`` (distance, offset,
  heading difference) for many points at once.
- :class:`maps.routing.Router` — fastest paths with swappable per-edge travel times.
- :func:`maps.geojson.edges_geojson` — FeatureCollection with per-edge arrays, bbox filter.
- :mod:`maps.store` — ``save_network``/``load_network`` in PostgreSQL (``road_edges``).
"""
