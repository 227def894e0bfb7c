-- Reports: API availability. Every API process records a heartbeat every
-- ITS_REPORTS_HEARTBEAT_INTERVAL_S (its/app/reports/heartbeat.py): whether it was ready (/readyz)
-- and the requests and 5xx answers since its previous heartbeat (its/app/reports/platform.py).
SELECT its_create_timeseries('api_heartbeats', 'time',
    $$time timestamptz NOT NULL, instance text NOT NULL, ready boolean NOT NULL,
      requests bigint NOT NULL, errors_5xx bigint NOT NULL,
      PRIMARY KEY (instance, time)$$,
    chunk => interval '1 day', segment_by => 'instance');
