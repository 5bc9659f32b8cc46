//! Usage history as the store keeps it: rings of points per VPS, one ring
//! per [`Archive`], each point a period's average and maximum of every
//! [`Series`].
//!
//! Sizes, bounded by the rings: 1,440 minute points (a day), 1,488
//! half-hour points (31 days) and 1,464 six-hour points (366 days), 4,392
//! points per VPS at most, whatever its age. A minute point is written
//! once; the longer archives' current points take each minute in as it
//! comes (each series' average weighted by the minutes it was measured
//! in).

/// What one point holds of one series: its average and maximum over the
/// point's period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub avg: f64,
    pub max: f64,
}

/// The series kept, in the store's column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    /// Percent of one CPU (200 is two CPUs busy).
    Cpu,
    /// Bytes of memory, page cache included.
    Memory,
    /// Bytes per second read from its disk.
    DiskRead,
    /// Bytes per second written to its disk.
    DiskWrite,
    /// Bytes per second its interfaces received.
    NetIn,
    /// Bytes per second its interfaces sent.
    NetOut,
    /// Processes and threads.
    Processes,
}

impl Series {
    pub const ALL: [Series; 7] = [
        Series::Cpu,
        Series::Memory,
        Series::DiskRead,
        Series::DiskWrite,
        Series::NetIn,
        Series::NetOut,
        Series::Processes,
    ];

    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Series::Cpu => "cpu_percent",
            Series::Memory => "memory_bytes",
            Series::DiskRead => "disk_read_bytes_per_second",
            Series::DiskWrite => "disk_write_bytes_per_second",
            Series::NetIn => "network_receive_bytes_per_second",
            Series::NetOut => "network_transmit_bytes_per_second",
            Series::Processes => "processes",
        }
    }

    /// The prefix of its two columns (`cpu` for `cpu_avg`, `cpu_max`).
    pub fn column(self) -> &'static str {
        match self {
            Series::Cpu => "cpu",
            Series::Memory => "memory",
            Series::DiskRead => "disk_read",
            Series::DiskWrite => "disk_write",
            Series::NetIn => "net_in",
            Series::NetOut => "net_out",
            Series::Processes => "processes",
        }
    }

    /// What one stored unit is worth: values are kept as integers, CPU
    /// and processes in hundredths.
    pub fn scale(self) -> f64 {
        match self {
            Series::Cpu | Series::Processes => 100.0,
            _ => 1.0,
        }
    }
}

/// The values of one point, by [`Series::ALL`]'s order; `None` for a
/// series not measured then.
pub type Values = [Option<Stat>; 7];

/// One ring of points: a period per point and how many are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Archive {
    /// Its number in the store.
    pub id: u8,
    /// Seconds each point covers.
    pub step: i64,
    /// Points kept; older ones are overwritten.
    pub slots: i64,
}

impl Archive {
    /// The start of the period holding `time` (seconds since the epoch).
    pub fn period_of(self, time: i64) -> i64 {
        time.div_euclid(self.step) * self.step
    }

    /// The ring position of the period starting at `at`.
    pub fn slot_of(self, at: i64) -> i64 {
        at.div_euclid(self.step).rem_euclid(self.slots)
    }
}

/// A minute a point, for a day.
pub const MINUTES: Archive = Archive {
    id: 0,
    step: 60,
    slots: 1440,
};
/// Half an hour a point, for 31 days.
pub const HALF_HOURS: Archive = Archive {
    id: 1,
    step: 1800,
    slots: 1488,
};
/// Six hours a point, for 366 days.
pub const QUARTER_DAYS: Archive = Archive {
    id: 2,
    step: 21600,
    slots: 1464,
};
pub const ARCHIVES: [Archive; 3] = [MINUTES, HALF_HOURS, QUARTER_DAYS];

/// A VPS's usage over one minute, to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct MinutePoint {
    /// The VPS's key.
    pub instance: String,
    /// The minute's start, seconds since the epoch (a multiple of 60).
    pub minute: i64,
    pub values: Values,
}

/// A point as kept in one archive.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPoint {
    /// Its period's start, seconds since the epoch.
    pub at: i64,
    pub values: Values,
}
