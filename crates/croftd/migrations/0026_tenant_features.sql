-- The features (features.tun, features.fuse) a tenant's VPSes may have
-- switched on: a JSON array of names; NULL for none. The admin's own VPSes
-- (the default tenant) may have every one.
ALTER TABLE tenants ADD COLUMN features TEXT;
