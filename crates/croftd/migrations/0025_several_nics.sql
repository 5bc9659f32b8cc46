-- A VPS may have several interfaces, one per network: `idx` 0 is its
-- first (eth0, made at launch), 1.. the ones added after (eth1..). The
-- table is made anew (SQLite cannot change a primary key); nothing
-- references it.
CREATE TABLE nics_new (
    instance    TEXT NOT NULL REFERENCES instances(key) ON DELETE CASCADE,
    idx         INTEGER NOT NULL DEFAULT 0,
    network     TEXT NOT NULL,
    host_if     TEXT NOT NULL UNIQUE,
    mac         TEXT NOT NULL UNIQUE,
    ipv4        TEXT,
    ipv6        TEXT,
    PRIMARY KEY (instance, idx),
    UNIQUE (instance, network),
    UNIQUE (network, ipv4),
    UNIQUE (network, ipv6)
);
INSERT INTO nics_new (instance, idx, network, host_if, mac, ipv4, ipv6)
    SELECT instance, 0, network, host_if, mac, ipv4, ipv6 FROM nics;
DROP TABLE nics;
ALTER TABLE nics_new RENAME TO nics;
