-- Cameras registered in the database (`its cameras add`) and the leases through which
-- `its video run` workers (no --config) share them: each camera is processed by the one
-- worker holding an unexpired lease; a dead worker's leases expire and others take them.
CREATE TABLE IF NOT EXISTS video_cameras (
    camera_id text PRIMARY KEY,
    config jsonb NOT NULL,                 -- the camera's cameras.yaml entry, validated, sources absolute
    interval_s integer NOT NULL DEFAULT 60 CHECK (interval_s BETWEEN 1 AND 3600),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS video_camera_leases (
    camera_id text PRIMARY KEY REFERENCES video_cameras (camera_id) ON DELETE CASCADE,
    owner text NOT NULL,                   -- the worker id holding it
    expires_at timestamptz NOT NULL,       -- renewed by the owner every lease/3
    acquired_at timestamptz NOT NULL,
    generation bigint NOT NULL DEFAULT 1,  -- +1 at every change of owner (fencing token)
    counted_until timestamptz              -- end of the last interval a releasing owner published
);
CREATE INDEX IF NOT EXISTS video_camera_leases_owner ON video_camera_leases (owner);

-- Live workers (heartbeat): the fair share of a worker is ceil(cameras / live workers).
CREATE TABLE IF NOT EXISTS video_workers (
    worker_id text PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now()
);
