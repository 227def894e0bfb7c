-- Telematics: GTFS stop_times.timepoint, the control stops of the holding advice
-- (telematics.holding.control_stops). 1: the time is exact (a timepoint), 0: approximate,
-- NULL: the feed does not say (then control stops fall back to a schedule spacing). Feeds
-- imported before this migration keep NULL until they are imported again.
ALTER TABLE gtfs_stop_times ADD COLUMN IF NOT EXISTS timepoint smallint CHECK (timepoint IN (0, 1));
