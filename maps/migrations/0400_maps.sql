-- Road networks (maps/): one row per imported network, its nodes and directed edges.
CREATE TABLE IF NOT EXISTS road_networks (
    name        text PRIMARY KEY,
    source      text NOT NULL DEFAULT '',
    n_nodes     integer NOT NULL,
    n_edges     integer NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS road_nodes (
    network   text NOT NULL REFERENCES road_networks(name) ON DELETE CASCADE,
    node      integer NOT NULL,
    source_id bigint NOT NULL,
    lon       float8 NOT NULL,
    lat       float8 NOT NULL,
    PRIMARY KEY (network, node)
);

-- Edge index = the id other tables (edge speeds, observations) refer to.
-- SI units: length_m (m), freeflow_mps (m/s), capacity_vph (vehicles/hour).
CREATE TABLE IF NOT EXISTS road_edges (
    network      text NOT NULL REFERENCES road_networks(name) ON DELETE CASCADE,
    edge         integer NOT NULL,
    u            integer NOT NULL,
    v            integer NOT NULL,
    way_id       bigint,
    road_class   text NOT NULL,
    name         text NOT NULL DEFAULT '',
    lanes        smallint NOT NULL CHECK (lanes >= 1),
    oneway       boolean NOT NULL,
    length_m     float8 NOT NULL CHECK (length_m >= 0),
    freeflow_mps float8 NOT NULL CHECK (freeflow_mps > 0),
    capacity_vph float8 NOT NULL CHECK (capacity_vph > 0),
    geometry_wkt text NOT NULL,          -- LINESTRING in lon/lat (EPSG:4326), from u to v
    PRIMARY KEY (network, edge)
);
CREATE INDEX IF NOT EXISTS road_edges_way ON road_edges (network, way_id);
