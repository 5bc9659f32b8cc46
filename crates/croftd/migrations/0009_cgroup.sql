-- Where a VPS's cgroup is while it runs (croft_host::cgroup::CgroupLocation
-- as JSON), recorded when it starts: a croftd started later in another
-- cgroup of its own still finds it. NULL while the VPS is not running.
ALTER TABLE instances ADD COLUMN cgroup TEXT;
