-- Device status (heartbeats and Last Will) of every kind of device: its uptime history.
SELECT its_create_timeseries('device_status', 'time',
    $$kind text NOT NULL, device_id text NOT NULL, time timestamptz NOT NULL, online boolean NOT NULL,
      PRIMARY KEY (kind, device_id, time)$$,
    chunk => interval '1 day', segment_by => 'kind, device_id');
