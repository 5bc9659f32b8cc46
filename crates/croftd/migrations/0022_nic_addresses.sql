-- Addresses a VPS has beside the first IPv4 and IPv6 of its interface
-- (nics.ipv4, nics.ipv6): added and removed live. An address is never
-- held twice in a network: the store checks these and nics' together.
CREATE TABLE nic_addresses (
    instance    TEXT NOT NULL REFERENCES instances(key) ON DELETE CASCADE,
    network     TEXT NOT NULL,
    address     TEXT NOT NULL,
    UNIQUE (network, address)
);
