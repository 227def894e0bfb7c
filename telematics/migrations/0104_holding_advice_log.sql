-- Telematics: the audit log of the dispatchers' decisions on holding advice
-- (telematics.holding_advice, /v1/holding/advice): who accepted or dismissed which advice
-- and when, with the advice as it stood then. Times UTC; durations in seconds.
CREATE TABLE IF NOT EXISTS holding_advice_log (
    log_id               bigserial PRIMARY KEY,
    decided_at           timestamptz NOT NULL DEFAULT now(),
    action               text NOT NULL CHECK (action IN ('accepted', 'dismissed')),
    actor                text NOT NULL,                -- the dispatcher's user name
    advice_id            text NOT NULL,                -- one per vehicle, trip, service day and control stop
    agency               text NOT NULL,
    vehicle_id           text NOT NULL,
    route_id             text NOT NULL,
    trip_id              text NOT NULL,
    service_date         date NOT NULL,
    stop_id              text NOT NULL,
    stop_sequence        integer NOT NULL,
    hold_s               real NOT NULL CHECK (hold_s >= 0),
    forward_headway_s    real,                         -- to the bus ahead (NULL: none known)
    backward_headway_s   real,                         -- to the bus behind (NULL: none known)
    scheduled_headway_s  real,
    issued_at            timestamptz NOT NULL,         -- when the advice was first given
    reason               text NOT NULL
);
CREATE INDEX IF NOT EXISTS holding_advice_log_time ON holding_advice_log (decided_at DESC);
CREATE INDEX IF NOT EXISTS holding_advice_log_advice ON holding_advice_log (advice_id);
