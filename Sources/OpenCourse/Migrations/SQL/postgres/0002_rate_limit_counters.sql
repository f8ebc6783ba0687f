-- Login-failure and registration counters shared by every instance (RATE_LIMIT_STORE=postgres).
CREATE TABLE rate_limit_counters (
    key          TEXT PRIMARY KEY,
    window_start TIMESTAMPTZ NOT NULL,
    count        INTEGER NOT NULL
);
