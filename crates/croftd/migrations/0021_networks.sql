-- Networks beyond the default one (croftd's configuration's [network]),
-- made through the API. A VPS's interface names its network in
-- nics.network; a network in use cannot be deleted.
CREATE TABLE networks (
    name        TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL,          -- 'nat'
    bridge      TEXT NOT NULL UNIQUE,
    ipv4        TEXT,                   -- the gateway and prefix, 10.88.0.1/24
    ipv6        TEXT,
    nat         INTEGER NOT NULL,
    isolated    INTEGER NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
