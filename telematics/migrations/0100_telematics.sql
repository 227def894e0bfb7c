-- Telematics: versioned GTFS static feeds, vehicle positions, detected stop arrivals.
--
-- A GTFS import loads every table under a new feed_version inside one transaction, then
-- points gtfs_active at it and deletes the previous version (ON DELETE CASCADE), so a reader
-- sees either the whole old feed or the whole new one. Times of day are seconds since
-- service-day midnight (may exceed 86,400); coordinates are WGS84 degrees; distances metres.

CREATE TABLE IF NOT EXISTS gtfs_feeds (
    feed_version  bigserial PRIMARY KEY,
    agency        text NOT NULL,                 -- platform agency id (the MQTT topic level)
    source        text NOT NULL,                 -- file name the feed came from
    sha256        text NOT NULL,                 -- digest of the source file
    timezone      text NOT NULL,                 -- IANA zone service days are counted in
    imported_at   timestamptz NOT NULL DEFAULT now()
);

-- the version readers use, one per agency
CREATE TABLE IF NOT EXISTS gtfs_active (
    agency        text PRIMARY KEY,
    feed_version  bigint NOT NULL REFERENCES gtfs_feeds (feed_version),
    activated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS gtfs_agency (
    feed_version     bigint NOT NULL REFERENCES gtfs_feeds (feed_version) ON DELETE CASCADE,
    agency_id        text NOT NULL,
    agency_name      text NOT NULL,
    agency_url       text NOT NULL,
    agency_timezone  text NOT NULL,
    agency_lang      text,
    agency_phone     text,
    PRIMARY KEY (feed_version, agency_id)
);

CREATE TABLE IF NOT EXISTS gtfs_routes (
    feed_version      bigint NOT NULL REFERENCES gtfs_feeds (feed_version) ON DELETE CASCADE,
    route_id          text NOT NULL,
    agency_id         text NOT NULL,
    route_short_name  text NOT NULL DEFAULT '',
    route_long_name   text NOT NULL DEFAULT '',
    route_type        integer NOT NULL,
    route_color       text NOT NULL DEFAULT '',
    route_text_color  text NOT NULL DEFAULT '',
    PRIMARY KEY (feed_version, route_id)
);

CREATE TABLE IF NOT EXISTS gtfs_stops (
    feed_version    bigint NOT NULL REFERENCES gtfs_feeds (feed_version) ON DELETE CASCADE,
    stop_id         text NOT NULL,
    stop_code       text NOT NULL DEFAULT '',
    stop_name       text NOT NULL DEFAULT '',
    stop_lat        float8 NOT NULL CHECK (stop_lat BETWEEN -90 AND 90),
    stop_lon        float8 NOT NULL CHECK (stop_lon BETWEEN -180 AND 180),
    location_type   integer NOT NULL DEFAULT 0,
    parent_station  text NOT NULL DEFAULT '',
    PRIMARY KEY (feed_version, stop_id)
);

CREATE TABLE IF NOT EXISTS gtfs_trips (
    feed_version   bigint NOT NULL REFERENCES gtfs_feeds (feed_version) ON DELETE CASCADE,
    trip_id        text NOT NULL,
    route_id       text NOT NULL,
    service_id     text NOT NULL,
    trip_headsign  text NOT NULL DEFAULT '',
    direction_id   integer,
    block_id       text NOT NULL DEFAULT '',
    shape_id       text NOT NULL DEFAULT '',
    PRIMARY KEY (feed_version, trip_id),
    FOREIGN KEY (feed_version, route_id) REFERENCES gtfs_routes (feed_version, route_id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS gtfs_stop_times (
    feed_version         bigint NOT NULL REFERENCES gtfs_feeds (feed_version) ON DELETE CASCADE,
    trip_id              text NOT NULL,
    stop_sequence        integer NOT NULL,
    stop_id              text NOT NULL,
    arrival_s            integer NOT NULL,   -- seconds since service-day midnight
    departure_s          integer NOT NULL,
    shape_dist_traveled  float8,             -- in the feed's own units
    time_interpolated    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (feed_version, trip_id, stop_sequence),
    FOREIGN KEY (feed_version, trip_id) REFERENCES gtfs_trips (feed_version, trip_id) ON DELETE CASCADE,
    FOREIGN KEY (feed_version, stop_id) REFERENCES gtfs_stops (feed_version, stop_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS gtfs_stop_times_stop ON gtfs_stop_times (feed_version, stop_id);

CREATE TABLE IF NOT EXISTS gtfs_shapes (
    feed_version         bigint NOT NULL REFERENCES gtfs_feeds (feed_version) ON DELETE CASCADE,
    shape_id             text NOT NULL,
    shape_pt_sequence    integer NOT NULL,
    shape_pt_lat         float8 NOT NULL,
    shape_pt_lon         float8 NOT NULL,
    shape_dist_traveled  float8,
    PRIMARY KEY (feed_version, shape_id, shape_pt_sequence)
);

CREATE TABLE IF NOT EXISTS gtfs_calendar (
    feed_version  bigint NOT NULL REFERENCES gtfs_feeds (feed_version) ON DELETE CASCADE,
    service_id    text NOT NULL,
    monday        boolean NOT NULL,
    tuesday       boolean NOT NULL,
    wednesday     boolean NOT NULL,
    thursday      boolean NOT NULL,
    friday        boolean NOT NULL,
    saturday      boolean NOT NULL,
    sunday        boolean NOT NULL,
    start_date    date NOT NULL,
    end_date      date NOT NULL,
    PRIMARY KEY (feed_version, service_id)
);

CREATE TABLE IF NOT EXISTS gtfs_calendar_dates (
    feed_version    bigint NOT NULL REFERENCES gtfs_feeds (feed_version) ON DELETE CASCADE,
    service_id      text NOT NULL,
    date            date NOT NULL,
    exception_type  smallint NOT NULL CHECK (exception_type IN (1, 2)),
    PRIMARY KEY (feed_version, service_id, date)
);

CREATE TABLE IF NOT EXISTS gtfs_frequencies (
    feed_version  bigint NOT NULL REFERENCES gtfs_feeds (feed_version) ON DELETE CASCADE,
    trip_id       text NOT NULL,
    start_s       integer NOT NULL,
    end_s         integer NOT NULL,
    headway_s     integer NOT NULL CHECK (headway_s > 0),
    exact_times   smallint NOT NULL DEFAULT 0,
    PRIMARY KEY (feed_version, trip_id, start_s),
    FOREIGN KEY (feed_version, trip_id) REFERENCES gtfs_trips (feed_version, trip_id) ON DELETE CASCADE
);

-- its/v1/vehicles/{agency}/{vehicle_id}/position (JSON) and .../position/gtfsrt (protobuf)
SELECT its_create_timeseries('vehicle_positions', 'time',
    $$agency text NOT NULL, vehicle_id text NOT NULL, time timestamptz NOT NULL,
      lat float8 NOT NULL, lon float8 NOT NULL,
      speed_mps float8, bearing float8, trip_id text, route_id text, start_date date,
      odometer_m float8, occupancy text,
      PRIMARY KEY (agency, vehicle_id, time)$$,
    chunk => interval '1 day', segment_by => 'agency, vehicle_id');

-- the time each vehicle passed each stop of its trip, interpolated between its pings:
-- the ground truth for accuracy and the history predictions learn from
SELECT its_create_timeseries('stop_arrivals', 'time',
    $$agency text NOT NULL, service_date date NOT NULL, trip_id text NOT NULL,
      stop_sequence integer NOT NULL, time timestamptz NOT NULL,
      stop_id text NOT NULL, vehicle_id text NOT NULL, route_id text,
      scheduled_time timestamptz, delay_s float8,
      PRIMARY KEY (agency, service_date, trip_id, stop_sequence, time)$$,
    chunk => interval '1 day', segment_by => 'agency, trip_id');
