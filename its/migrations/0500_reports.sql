-- Reports: 15-minute camera volumes (traffic_counts) for the count indicators (video/kpi.py).
-- Native PostgreSQL: a plain view over date_bin; TimescaleDB: a continuous aggregate.
SELECT its_register_rollup('traffic_counts_15m', 'traffic_counts', 'interval_start', interval '15 minutes',
    $$SELECT {bucket} AS bucket, camera_id, line_id, direction, vehicle_class,
             sum(count)::bigint AS vehicles, count(*) AS intervals
      FROM traffic_counts GROUP BY 1, 2, 3, 4, 5$$);
