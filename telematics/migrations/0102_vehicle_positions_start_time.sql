-- Telematics: the run of a vehicle's trip, so that a restarted service maps each vehicle to
-- the same run of a frequency-based trip (GTFS frequencies.txt; the live service names the
-- runs trip_id#HH:MM:SS).
-- start_time: GTFS-realtime TripDescriptor.start_time of the reported trip, 'HH:MM:SS' of the
-- service day (may pass 24:00:00, e.g. '25:10:00'); NULL when the message named no run. It
-- comes from the message (JSON start_time or GTFS-rt trip.start_time) or, for a message naming
-- a frequency-based trip without a run, from the run the live assignment gave the vehicle.
-- A plain nullable column, without default or constraint, so that the ALTER is also valid on a
-- TimescaleDB hypertable with compression enabled (0100 creates vehicle_positions through
-- its_create_timeseries); the format is checked by the parsers (telematics.ingest). On the native
-- path the column is added to every daily partition.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'vehicle_positions'
                     AND column_name = 'start_time') THEN
        ALTER TABLE vehicle_positions ADD COLUMN start_time text;
    END IF;
END
$$;
