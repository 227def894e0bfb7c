-- Traffic domain: travel time index samples for the history route
-- (GET /v1/traffic/indices/history). TTI = current / free-flow travel time (ratio, 1.0 = free flow).
-- scope 'network' (subject ''): one row per estimate update; 'area' (subject = grid-cell id)
-- and 'corridor' (subject = street name): one row per group every ITS_TRAFFIC_TTI_GROUP_SAMPLE_S.
SELECT its_create_timeseries(
    'traffic_tti', 'time',
    $$network text NOT NULL,
      scope text NOT NULL CHECK (scope IN ('network', 'area', 'corridor')),
      subject text NOT NULL,
      time timestamptz NOT NULL,
      tti float8 NOT NULL CHECK (tti > 0),
      PRIMARY KEY (network, scope, subject, time)$$,
    chunk => interval '1 day',
    segment_by => 'network, scope, subject'
);
