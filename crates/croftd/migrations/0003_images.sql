-- Images croft has built or imported, with their metadata.
CREATE TABLE images (
    name        TEXT PRIMARY KEY NOT NULL,
    source      TEXT NOT NULL,          -- 'built' or 'imported'
    description TEXT NOT NULL DEFAULT '',
    size_bytes  INTEGER,
    sha256      TEXT,                   -- of the tarball it came from or was last exported to
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
