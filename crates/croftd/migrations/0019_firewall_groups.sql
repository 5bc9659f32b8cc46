-- Security groups: firewall rules a tenant defines once and attaches to
-- many of its VPSes. A VPS matches its own rules first, then each
-- attached group's, in the order attached.
CREATE TABLE firewall_groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant      TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    UNIQUE (tenant, name)
);

CREATE TABLE firewall_group_rules (
    group_id    INTEGER NOT NULL REFERENCES firewall_groups(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    direction   TEXT NOT NULL,
    action      TEXT NOT NULL,
    protocol    TEXT NOT NULL,
    port        TEXT,
    source      TEXT,
    destination TEXT
);

-- A group attached to a VPS; a group still attached cannot be deleted.
CREATE TABLE firewall_group_members (
    instance    TEXT NOT NULL REFERENCES instances(key) ON DELETE CASCADE,
    group_id    INTEGER NOT NULL REFERENCES firewall_groups(id) ON DELETE RESTRICT,
    position    INTEGER NOT NULL,
    PRIMARY KEY (instance, group_id)
);
