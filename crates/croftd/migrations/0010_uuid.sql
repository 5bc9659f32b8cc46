-- Every VPS gets a UUID, its identity for good (a name can be reused
-- after a delete). Existing VPSes get a random version-4 UUID each.
ALTER TABLE instances ADD COLUMN uuid TEXT;
UPDATE instances SET uuid = (
    SELECT lower(substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-'
        || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(h, 18, 3) || '-' || substr(h, 21, 12))
    FROM (SELECT hex(randomblob(16)) AS h, instances.name AS n)
);
CREATE UNIQUE INDEX instances_uuid ON instances (uuid);
-- The cgroup location moved to the VPS's run directory, kept by the
-- container backend; 'error' was never written by any croftd.
ALTER TABLE instances DROP COLUMN cgroup;
UPDATE instances SET status = 'stopped' WHERE status = 'error';
