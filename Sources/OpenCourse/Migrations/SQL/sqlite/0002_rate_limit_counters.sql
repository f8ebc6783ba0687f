-- Login-failure and registration counters (kept for parity; a single SQLite process uses memory).
CREATE TABLE rate_limit_counters (
    key          TEXT PRIMARY KEY,
    window_start REAL NOT NULL,
    count        INTEGER NOT NULL
);
