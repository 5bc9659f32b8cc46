-- One row per VPS. `status` is the last state croftd observed or set;
-- on start-up croftd reconciles it with the supervisors that are alive.
CREATE TABLE instances (
    name        TEXT PRIMARY KEY NOT NULL,
    image       TEXT NOT NULL,
    -- First host uid/gid of the VPS's private 65536-id range.
    uid_base    INTEGER NOT NULL UNIQUE,
    -- The user's key=value configuration as a JSON object of strings.
    config      TEXT NOT NULL DEFAULT '{}',
    status      TEXT NOT NULL,
    init_pid    INTEGER,
    last_exit   TEXT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

-- Long-running operations and their outcome.
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL,
    target      TEXT NOT NULL,
    status      TEXT NOT NULL,
    progress    INTEGER NOT NULL DEFAULT 0,
    message     TEXT,
    error       TEXT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
