-- Video domain: per-interval pedestrian counts from camera workers with a people model.
-- One row per camera, place and measure and interval (idempotent key): measure 'present' is a
-- zone (place_id = zone id, 'all' = the whole region of interest) with the mean and max people
-- present; 'in'/'out' is a people-counting line (place_id = line id) with the people who crossed
-- it that way (estimated from density and optical flow, fractional).
SELECT its_create_timeseries(
    'people_counts', 'interval_start',
    $$camera_id text NOT NULL,
      place_id text NOT NULL,
      measure text NOT NULL CHECK (measure IN ('present', 'in', 'out')),
      interval_start timestamptz NOT NULL,
      interval_s integer NOT NULL CHECK (interval_s > 0),
      people_mean float8 CHECK (people_mean IS NULL OR people_mean >= 0),
      people_max float8 CHECK (people_max IS NULL OR people_max >= people_mean),
      samples integer CHECK (samples IS NULL OR samples > 0),
      crossings float8 CHECK (crossings IS NULL OR crossings >= 0),
      CHECK ((measure = 'present') = (people_mean IS NOT NULL AND people_max IS NOT NULL AND samples IS NOT NULL)),
      CHECK ((measure = 'present') = (crossings IS NULL)),
      PRIMARY KEY (camera_id, place_id, measure, interval_start)$$,
    chunk => interval '1 day',
    segment_by => 'camera_id'
);
