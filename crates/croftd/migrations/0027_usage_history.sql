-- Each VPS's usage history, kept round-robin as RRD keeps it: a ring of
-- points per archive (minutes for a day, half hours for a month, six
-- hours for a year), each point a period's average and maximum of every
-- series. A point's slot is (at / step) % slots, so a new period takes
-- the place of the one a ring-length before it, and a VPS's history
-- never grows past its rings (store/history.rs says the sizes).

-- A VPS's points name it by this small number, not by its key.
CREATE TABLE usage_series (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    instance TEXT NOT NULL UNIQUE REFERENCES instances(key) ON DELETE CASCADE
);

-- Values are integers: CPU and processes in hundredths (of a percent of
-- one CPU, of a process), the rest in bytes or bytes per second. Each
-- series has the minutes it was measured in the period (`_n`), which
-- weigh its average as minutes are merged in; NULL and 0 are a series not
-- measured then (disk I/O on a host that cannot count it).
CREATE TABLE usage_points (
    series          INTEGER NOT NULL REFERENCES usage_series(id) ON DELETE CASCADE,
    archive         INTEGER NOT NULL,
    slot            INTEGER NOT NULL,
    at              INTEGER NOT NULL,   -- the period's start, seconds since the epoch
    cpu_avg         INTEGER, cpu_max         INTEGER, cpu_n         INTEGER NOT NULL,
    memory_avg      INTEGER, memory_max      INTEGER, memory_n      INTEGER NOT NULL,
    disk_read_avg   INTEGER, disk_read_max   INTEGER, disk_read_n   INTEGER NOT NULL,
    disk_write_avg  INTEGER, disk_write_max  INTEGER, disk_write_n  INTEGER NOT NULL,
    net_in_avg      INTEGER, net_in_max      INTEGER, net_in_n      INTEGER NOT NULL,
    net_out_avg     INTEGER, net_out_max     INTEGER, net_out_n     INTEGER NOT NULL,
    processes_avg   INTEGER, processes_max   INTEGER, processes_n   INTEGER NOT NULL,
    PRIMARY KEY (series, archive, slot)
) WITHOUT ROWID;
