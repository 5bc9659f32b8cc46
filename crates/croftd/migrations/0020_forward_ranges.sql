-- A port forward may take a range of host ports (to the same ports of the
-- VPS): `host_port` is its first, `host_port_end` its last (NULL for one
-- port). Ranges of one protocol never overlap (checked on insert).
ALTER TABLE port_forwards ADD COLUMN host_port_end INTEGER;
