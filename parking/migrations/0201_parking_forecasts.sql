-- Parking: the +15/+30/+60 min free-space forecasts the parking service issued, kept so that
-- reports can score them against the occupancy reached (parking/kpi.py forecast_error).
-- free_low/free_high: the uncertainty band served with the forecast
-- (ITS_PARKING_FORECAST_BAND_QUANTILE central coverage, default 5th-95th percentile).
SELECT its_create_timeseries('parking_forecasts', 'issued_at',
    $$issued_at timestamptz NOT NULL, site_id text NOT NULL, horizon_min smallint NOT NULL,
      observed_at timestamptz NOT NULL, target_time timestamptz NOT NULL,
      capacity integer NOT NULL, occupied_now integer NOT NULL,
      free_predicted integer NOT NULL, free_low integer NOT NULL, free_high integer NOT NULL,
      PRIMARY KEY (site_id, horizon_min, issued_at)$$,
    chunk => interval '1 day', segment_by => 'site_id, horizon_min');

CREATE INDEX IF NOT EXISTS parking_forecasts_target ON parking_forecasts (horizon_min, target_time);
