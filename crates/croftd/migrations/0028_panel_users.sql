-- People who log in to the web panel with a name and a password: a
-- tenant's (owner or viewer) or the provider's (admin, of no tenant).
-- Passwords are kept as Argon2id PHC strings, never as given. A tenant's
-- users go with the tenant.
CREATE TABLE users (
    name          TEXT PRIMARY KEY NOT NULL,
    tenant        TEXT REFERENCES tenants(name) ON DELETE CASCADE,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    last_login_at TEXT
);

-- Logged-in sessions, by the SHA-256 of the cookie's secret (never the
-- secret). Times are seconds since the epoch. They go with their user.
CREATE TABLE sessions (
    hash        TEXT PRIMARY KEY NOT NULL,
    user        TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    seen_at     INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user);
