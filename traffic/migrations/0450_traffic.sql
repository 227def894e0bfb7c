-- Traffic domain: per-edge probe speed observations and camera-line attachments.
-- Edge indices refer to road_edges(network, edge). SI units: m/s, m, s.

-- One row per (network, edge, time bin): vehicles that traversed the edge in the bin,
-- their space-mean speed (covered length / travel time) and the length they covered.
SELECT its_create_timeseries(
    'traffic_probe_speeds', 'time',
    $$network text NOT NULL,
      edge integer NOT NULL CHECK (edge >= 0),
      time timestamptz NOT NULL,
      bin_s integer NOT NULL CHECK (bin_s > 0),
      speed_mps float8 NOT NULL CHECK (speed_mps > 0),
      samples integer NOT NULL CHECK (samples > 0),
      covered_m float8 NOT NULL CHECK (covered_m > 0),
      PRIMARY KEY (network, edge, time)$$,
    chunk => interval '1 day',
    segment_by => 'network, edge'
);

-- Where a camera's counting line sits on the road network: counts of (camera, line,
-- direction) measure the flow on this directed edge.
CREATE TABLE IF NOT EXISTS traffic_camera_links (
    camera_id  text NOT NULL,
    line_id    text NOT NULL,
    direction  text NOT NULL CHECK (direction IN ('in', 'out')),
    network    text NOT NULL,
    edge       integer NOT NULL CHECK (edge >= 0),
    lon        float8 NOT NULL,
    lat        float8 NOT NULL,
    heading_deg float8,
    PRIMARY KEY (camera_id, line_id, direction)
);
