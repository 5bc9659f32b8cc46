-- Read-only point-in-time copies of a VPS's disk.
CREATE TABLE snapshots (
    instance    TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (instance, name)
);
