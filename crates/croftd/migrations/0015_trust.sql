-- Client certificates trusted by fingerprint (the CLI's way in), each
-- with the role it was enrolled with; and the one-time trust tokens that
-- enroll them (only the SHA-256 of a token's secret is kept). A tenant's
-- go with the tenant.
CREATE TABLE trusted_certificates (
    fingerprint  TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    tenant       TEXT REFERENCES tenants(name) ON DELETE CASCADE,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE TABLE trust_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    hash         TEXT NOT NULL,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    tenant       TEXT REFERENCES tenants(name) ON DELETE CASCADE,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    expires_at   TEXT NOT NULL
);
