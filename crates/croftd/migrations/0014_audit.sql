-- Every mutating API request, once it is authenticated: when, who (never
-- a secret), which tenant, what, and the answer's status.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    caller      TEXT NOT NULL,
    role        TEXT NOT NULL,
    tenant      TEXT NOT NULL,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    action      TEXT NOT NULL,
    status      INTEGER NOT NULL,
    remote      TEXT
);
CREATE INDEX audit_log_tenant ON audit_log (tenant, id);
