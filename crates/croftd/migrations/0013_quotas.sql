-- Each tenant's quota (a JSON object of caps; none: no caps), and plans:
-- named VPS sizes, their limits.* settings as a JSON object of strings.
ALTER TABLE tenants ADD COLUMN quota TEXT NOT NULL DEFAULT '{}';
CREATE TABLE plans (
    name        TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    config      TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
