-- Telematics: a bounded sample of the arrival predictions the live service served, so that
-- prediction accuracy can be scored against the detected stop_arrivals (reports).
-- issued: time of the vehicle ping the prediction was made from; predicted_time: the predicted arrival at the
-- stop; horizon_s = predicted_time - issued (s). The live service keeps at most one sample
-- per vehicle per minute (its predictions for the rest of its current trip, 30 min ahead).
SELECT its_create_timeseries('arrival_predictions', 'issued',
    $$issued timestamptz NOT NULL, agency text NOT NULL, service_date date NOT NULL,
      trip_id text NOT NULL, stop_id text NOT NULL, stop_sequence integer NOT NULL,
      vehicle_id text NOT NULL, predicted_time timestamptz NOT NULL, horizon_s float8 NOT NULL,
      PRIMARY KEY (agency, service_date, trip_id, stop_sequence, issued)$$,
    chunk => interval '1 day', segment_by => 'agency, trip_id');
