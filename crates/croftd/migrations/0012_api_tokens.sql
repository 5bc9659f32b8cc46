-- Bearer API tokens. The token itself is shown once when made; only the
-- SHA-256 of its secret is kept. A tenant's tokens go with the tenant.
CREATE TABLE api_tokens (
    id              TEXT PRIMARY KEY NOT NULL,
    hash            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    -- The tenant of an owner or viewer token; NULL for admin and metrics.
    tenant          TEXT REFERENCES tenants(name) ON DELETE CASCADE,
    role            TEXT NOT NULL,
    -- Requests are accepted only from this network (CIDR), if set.
    from_cidr       TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    -- Same format as created_at, so they compare as text; NULL: never.
    expires_at      TEXT,
    last_used_at    TEXT,
    last_used_from  TEXT
);
