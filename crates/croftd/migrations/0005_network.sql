-- Each VPS's interface on a croft network: its veth, MAC and addresses.
-- The UNIQUE constraints are the address management: an address is never
-- given twice, and deleting the row frees it.
CREATE TABLE nics (
    instance    TEXT PRIMARY KEY NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
    network     TEXT NOT NULL,
    host_if     TEXT NOT NULL UNIQUE,
    mac         TEXT NOT NULL UNIQUE,
    ipv4        TEXT,
    ipv6        TEXT,
    UNIQUE (network, ipv4),
    UNIQUE (network, ipv6)
);

-- Host ports forwarded to a VPS port.
CREATE TABLE port_forwards (
    protocol    TEXT NOT NULL,          -- 'tcp' or 'udp'
    host_port   INTEGER NOT NULL,
    instance    TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
    vps_port    INTEGER NOT NULL,
    PRIMARY KEY (protocol, host_port)
);
