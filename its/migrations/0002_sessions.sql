-- Dispatcher sessions (server side, so logout and revocation are immediate).
CREATE TABLE IF NOT EXISTS sessions (
    token_hash   text PRIMARY KEY,
    username     text NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    role         text NOT NULL,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
