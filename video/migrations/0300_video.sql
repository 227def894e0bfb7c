-- Video domain: per-interval vehicle counts from camera workers.
-- One row per camera, line, direction, vehicle class and interval (idempotent key).
-- Speeds are stored in SI (m/s); the MQTT payload carries km/h (mean_speed_kmh).
SELECT its_create_timeseries(
    'traffic_counts', 'interval_start',
    $$camera_id text NOT NULL,
      line_id text NOT NULL,
      direction text NOT NULL CHECK (direction IN ('in', 'out')),
      vehicle_class text NOT NULL CHECK (vehicle_class IN ('car', 'truck_bus', 'motorcycle')),
      interval_start timestamptz NOT NULL,
      interval_s integer NOT NULL CHECK (interval_s > 0),
      count integer NOT NULL CHECK (count >= 0),
      mean_speed_mps float8 CHECK (mean_speed_mps IS NULL OR mean_speed_mps >= 0),
      occupancy float8 CHECK (occupancy IS NULL OR occupancy BETWEEN 0 AND 1),
      PRIMARY KEY (camera_id, line_id, direction, vehicle_class, interval_start)$$,
    chunk => interval '1 day',
    segment_by => 'camera_id'
);
