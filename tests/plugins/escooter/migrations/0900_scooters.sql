SELECT its_create_timeseries('scooter_positions', 'time',
  $$scooter_id text NOT NULL, time timestamptz NOT NULL, lat float8 NOT NULL, lon float8 NOT NULL,
    battery_pct float8, PRIMARY KEY (scooter_id, time)$$,
  chunk => interval '1 day', segment_by => 'scooter_id');
