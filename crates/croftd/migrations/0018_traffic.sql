-- What each VPS sent and received, per calendar month (UTC), counted on
-- the host end of its interface: kept for billing and transfer quotas.
CREATE TABLE traffic (
    instance         TEXT NOT NULL REFERENCES instances(key) ON DELETE CASCADE,
    month            TEXT NOT NULL,             -- '2026-12'
    received_bytes   INTEGER NOT NULL DEFAULT 0,
    sent_bytes       INTEGER NOT NULL DEFAULT 0,
    received_packets INTEGER NOT NULL DEFAULT 0,
    sent_packets     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (instance, month)
);

-- The interface's counters at the last reading: the next reading adds
-- only what moved since (also after a croftd restart). A new interface
-- (another index, or counters that went back) starts from zero.
CREATE TABLE traffic_cursor (
    instance         TEXT PRIMARY KEY NOT NULL REFERENCES instances(key) ON DELETE CASCADE,
    link_index       INTEGER NOT NULL,
    received_bytes   INTEGER NOT NULL,
    sent_bytes       INTEGER NOT NULL,
    received_packets INTEGER NOT NULL,
    sent_packets     INTEGER NOT NULL
);
