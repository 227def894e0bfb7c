-- Parking: sites and spaces, sensor and counter events, derived occupancy, 15-minute rollup.

CREATE TABLE IF NOT EXISTS parking_sites (
    site_id              text PRIMARY KEY,
    name                 text NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('off-street', 'on-street')),
    lat                  float8 NOT NULL,           -- representative point (WGS84 degrees)
    lon                  float8 NOT NULL,
    geometry             jsonb NOT NULL,            -- GeoJSON Point or Polygon
    capacity             integer NOT NULL CHECK (capacity >= 0),
    capacity_car         integer CHECK (capacity_car >= 0),
    capacity_disabled    integer CHECK (capacity_disabled >= 0),
    capacity_ev          integer CHECK (capacity_ev >= 0),
    capacity_motorcycle  integer CHECK (capacity_motorcycle >= 0),
    opening_hours        text,                      -- OpenStreetMap opening_hours syntax
    tariff               text,
    timezone             text,                      -- IANA zone; NULL: ITS_PARKING_TIMEZONE
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS parking_spaces (
    site_id       text NOT NULL REFERENCES parking_sites (site_id) ON DELETE CASCADE,
    space_id      text NOT NULL,
    lat           float8 NOT NULL,                  -- WGS84 degrees
    lon           float8 NOT NULL,
    vehicle_type  text NOT NULL DEFAULT 'car' CHECK (vehicle_type IN ('car', 'disabled', 'ev', 'motorcycle')),
    sensor_id     text NOT NULL,                    -- device id of its sensor (status topic)
    PRIMARY KEY (site_id, space_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS parking_spaces_sensor ON parking_spaces (sensor_id);

-- per-space sensor messages: its/v1/parking/{site_id}/spaces/{space_id}
SELECT its_create_timeseries('parking_space_events', 'time',
    $$site_id text NOT NULL, space_id text NOT NULL, time timestamptz NOT NULL,
      occupied boolean NOT NULL, battery_v float8, rssi float8,
      PRIMARY KEY (site_id, space_id, time)$$,
    chunk => interval '1 day', segment_by => 'site_id, space_id');

-- counter messages: its/v1/parking/{site_id}/counts (absolute occupied and/or entry/exit deltas)
SELECT its_create_timeseries('parking_counts', 'time',
    $$site_id text NOT NULL, time timestamptz NOT NULL,
      occupied integer, entries integer, exits integer,
      PRIMARY KEY (site_id, time)$$,
    chunk => interval '1 day', segment_by => 'site_id');

-- sensor heartbeats and Last Will go to the shared device_status table (kind 'parking-sensor')

-- site availability as computed by the parking service (occupancy history)
SELECT its_create_timeseries('parking_occupancy', 'time',
    $$site_id text NOT NULL, time timestamptz NOT NULL, capacity integer NOT NULL,
      occupied integer, free integer, unknown integer NOT NULL, status text NOT NULL,
      PRIMARY KEY (site_id, time)$$,
    chunk => interval '1 day', segment_by => 'site_id');

SELECT its_register_rollup('parking_occupancy_15m', 'parking_occupancy', 'time', interval '15 minutes',
    $$SELECT {bucket} AS bucket, site_id, avg(occupied)::float8 AS mean_occupied,
             avg(free)::float8 AS mean_free, min(free) AS min_free, max(free) AS max_free,
             max(capacity) AS capacity, count(*) AS readings
      FROM parking_occupancy GROUP BY 1, 2$$);
