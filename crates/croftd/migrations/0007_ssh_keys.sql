-- Public keys given to a VPS's root at launch: kept with the VPS so a
-- rebuild or a copy can put them in place again.
CREATE TABLE ssh_keys (
    instance    TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    PRIMARY KEY (instance, key)
);
