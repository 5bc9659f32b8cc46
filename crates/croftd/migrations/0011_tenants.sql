-- Tenants: the customers a provider sells VPSes to. Every VPS belongs to
-- one; the host administrator's own are in 'default', which is where all
-- VPSes from before tenants go.
CREATE TABLE tenants (
    name        TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
INSERT INTO tenants (name, description) VALUES ('default', 'the host administrator''s own VPSes');

-- A VPS's name is now unique within its tenant only. What names it on
-- this host (its disk, run directory and cgroup, and its rows in the
-- other tables) is its key, fixed when it is created: its name in
-- 'default', its UUID in other tenants. Renaming the column carries the
-- other tables' foreign keys with it.
ALTER TABLE instances RENAME COLUMN name TO key;
ALTER TABLE instances ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE instances ADD COLUMN name TEXT NOT NULL DEFAULT '';
UPDATE instances SET name = key;
CREATE UNIQUE INDEX instances_tenant_name ON instances (tenant, name);

-- Jobs are seen by the tenant whose VPS or image they work on.
ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
