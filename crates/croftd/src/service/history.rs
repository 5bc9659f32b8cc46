//! Usage history: the metrics sampler's figures folded into a point per
//! VPS per minute (the average and the largest of that minute's samples),
//! which the store keeps round-robin (`store/history.rs`), and the spans
//! graphs ask for, read back a point per step.
//!
//! Counters (CPU time, bytes moved) become rates between two samples of
//! the same run; a counter that went back (the VPS restarted) starts the
//! next rate from there. A minute is written when a sample of a later
//! minute comes; the minute a croftd stop interrupts is lost.

use crate::store::history::{Archive, MinutePoint, Series, Stat, Values, HALF_HOURS, MINUTES, QUARTER_DAYS};
use croft_api::{UsageHistory, UsageSeries};
use std::collections::HashMap;
use std::sync::Mutex;

/// What one sample read of a running VPS.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    pub cpu_ns: u64,
    pub memory_bytes: u64,
    pub processes: u64,
    pub net_in_bytes: Option<u64>,
    pub net_out_bytes: Option<u64>,
    pub disk_read_bytes: Option<u64>,
    pub disk_write_bytes: Option<u64>,
}

/// One series' figures within the minute being gathered.
#[derive(Debug, Clone, Copy, Default)]
struct Gathered {
    sum: f64,
    max: f64,
    count: u32,
}

impl Gathered {
    fn add(&mut self, value: f64) {
        self.max = if self.count == 0 {
            value
        } else {
            self.max.max(value)
        };
        self.sum += value;
        self.count += 1;
    }

    fn stat(&self) -> Option<Stat> {
        (self.count > 0).then(|| Stat {
            avg: self.sum / f64::from(self.count),
            max: self.max,
        })
    }
}

/// A VPS as the recorder follows it.
#[derive(Debug, Default)]
struct Track {
    /// The last reading and when it was taken, for the next rates.
    last: Option<(f64, Reading)>,
    /// The minute being gathered (its start) and its figures.
    minute: i64,
    gathered: [Gathered; 7],
}

impl Track {
    fn point(&self, instance: &str) -> Option<MinutePoint> {
        let values: Values = std::array::from_fn(|i| self.gathered[i].stat());
        values.iter().any(Option::is_some).then(|| MinutePoint {
            instance: instance.to_string(),
            minute: self.minute,
            values,
        })
    }
}

/// Folds samples into minute points.
#[derive(Default)]
pub struct Recorder {
    tracks: Mutex<HashMap<String, Track>>,
}

/// Per second, what `counter` moved from `before` over `seconds`; `None`
/// if either is unknown or it went back (a new run).
fn rate(before: Option<u64>, now: Option<u64>, seconds: f64) -> Option<f64> {
    let (before, now) = (before?, now?);
    (now >= before).then(|| (now - before) as f64 / seconds)
}

impl Recorder {
    /// Take in one sample taken at `at` (seconds since the epoch): the
    /// readings of the VPSes that run, by key. Returns the minute points
    /// it finished: every minute before `at`'s that was gathering, also of
    /// VPSes that no longer run (which are then forgotten).
    pub fn record(&self, at: f64, readings: &[(String, Reading)]) -> Vec<MinutePoint> {
        let minute = MINUTES.period_of(at.floor() as i64);
        let mut tracks = self.tracks.lock().expect("history recorder poisoned");
        let mut finished = Vec::new();
        for (key, track) in tracks.iter_mut() {
            // Any other minute ends the one gathering: a later one, or an
            // earlier one if the clock went back.
            if track.minute != minute {
                finished.extend(track.point(key));
                track.gathered = Default::default();
                track.minute = minute;
            }
        }
        // A VPS that stopped is forgotten once its last minute is written.
        let running: std::collections::HashSet<&str> = readings.iter().map(|(k, _)| k.as_str()).collect();
        tracks.retain(|key, track| {
            running.contains(key.as_str()) || track.gathered.iter().any(|g| g.count > 0)
        });
        for (key, now) in readings {
            let track = tracks.entry(key.clone()).or_insert_with(|| Track {
                minute,
                ..Track::default()
            });
            let g = &mut track.gathered;
            g[Series::Memory as usize].add(now.memory_bytes as f64);
            g[Series::Processes as usize].add(now.processes as f64);
            if let Some((then, before)) = track.last.filter(|(then, _)| at > *then) {
                let seconds = at - then;
                let rates = [
                    // CPU: nanoseconds per second, as a percent of one CPU.
                    (
                        Series::Cpu,
                        rate(Some(before.cpu_ns), Some(now.cpu_ns), seconds).map(|r| r / 1e7),
                    ),
                    (
                        Series::NetIn,
                        rate(before.net_in_bytes, now.net_in_bytes, seconds),
                    ),
                    (
                        Series::NetOut,
                        rate(before.net_out_bytes, now.net_out_bytes, seconds),
                    ),
                    (
                        Series::DiskRead,
                        rate(before.disk_read_bytes, now.disk_read_bytes, seconds),
                    ),
                    (
                        Series::DiskWrite,
                        rate(before.disk_write_bytes, now.disk_write_bytes, seconds),
                    ),
                ];
                for (series, value) in rates {
                    if let Some(value) = value {
                        g[series as usize].add(value);
                    }
                }
            }
            track.last = Some((at, *now));
        }
        finished
    }
}

/// A span graphs ask for: the archive it is read from and how many of
/// its points.
pub fn span(range: &str) -> Option<(Archive, i64)> {
    Some(match range {
        "hour" => (MINUTES, 60),
        "day" => (MINUTES, 1440),
        "week" => (HALF_HOURS, 7 * 48),
        "month" => (HALF_HOURS, 30 * 48),
        "year" => (QUARTER_DAYS, 365 * 4),
        _ => return None,
    })
}

/// The names `span` knows, for an error message.
pub const RANGES: &str = "hour, day, week, month or year";

/// `points` laid out a point per step, `count` steps ending with the
/// period holding `now`: periods without a point are `null`.
pub fn lay_out(
    range: &str,
    archive: Archive,
    count: i64,
    now: i64,
    points: &[crate::store::history::HistoryPoint],
) -> UsageHistory {
    let first = archive.period_of(now) - (count - 1) * archive.step;
    let at: Vec<i64> = (0..count).map(|i| first + i * archive.step).collect();
    let by_time: HashMap<i64, &Values> = points.iter().map(|p| (p.at, &p.values)).collect();
    let series = Series::ALL
        .iter()
        .enumerate()
        .map(|(i, series)| {
            let stats: Vec<Option<Stat>> = at
                .iter()
                .map(|t| by_time.get(t).and_then(|values| values[i]))
                .collect();
            UsageSeries {
                name: series.name().to_string(),
                avg: stats.iter().map(|s| s.map(|s| s.avg)).collect(),
                max: stats.iter().map(|s| s.map(|s| s.max)).collect(),
            }
        })
        .collect();
    UsageHistory {
        range: range.to_string(),
        step_seconds: archive.step as u64,
        at,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(cpu_s: f64, net_in: u64) -> Reading {
        Reading {
            cpu_ns: (cpu_s * 1e9) as u64,
            memory_bytes: 100,
            processes: 3,
            net_in_bytes: Some(net_in),
            net_out_bytes: Some(0),
            disk_read_bytes: None,
            disk_write_bytes: None,
        }
    }

    #[test]
    fn samples_become_a_point_per_minute_with_rates_average_and_max() {
        let recorder = Recorder::default();
        let t = 1_800_000_000.0 - 1_800_000_000.0 % 60.0;
        let vps = |r: Reading| vec![("v".to_string(), r)];
        assert!(recorder.record(t + 1.0, &vps(reading(10.0, 0))).is_empty());
        // 10 s later: half a CPU and 1000 B/s; then a full CPU.
        assert!(recorder.record(t + 11.0, &vps(reading(15.0, 10_000))).is_empty());
        assert!(recorder.record(t + 21.0, &vps(reading(25.0, 10_000))).is_empty());
        // The next minute's first sample finishes the first minute.
        let points = recorder.record(t + 61.0, &vps(reading(25.0, 10_000)));
        assert_eq!(points.len(), 1);
        let p = &points[0];
        assert_eq!((p.instance.as_str(), p.minute), ("v", t as i64));
        let cpu = p.values[Series::Cpu as usize].unwrap();
        assert_eq!((cpu.avg, cpu.max), (75.0, 100.0));
        let net = p.values[Series::NetIn as usize].unwrap();
        assert_eq!((net.avg, net.max), (500.0, 1000.0));
        assert_eq!(p.values[Series::Memory as usize].unwrap().avg, 100.0);
        assert_eq!(p.values[Series::DiskRead as usize], None, "not measured");
        // A restart's counters (back to near zero) give no rate across it.
        recorder.record(t + 71.0, &vps(reading(0.5, 0)));
        let points = recorder.record(t + 121.0, &vps(reading(0.5, 0)));
        let cpu = points[0].values[Series::Cpu as usize].unwrap();
        assert_eq!(
            cpu.max, 0.0,
            "a counter that went back gives no rate, not a huge one"
        );
    }

    #[test]
    fn a_vps_that_stops_gets_its_last_minute_written_then_is_forgotten() {
        let recorder = Recorder::default();
        let t = 1_800_000_000.0 - 1_800_000_000.0 % 60.0;
        recorder.record(t, &[("v".into(), reading(1.0, 0))]);
        assert!(recorder.record(t + 10.0, &[]).is_empty());
        let points = recorder.record(t + 60.0, &[]);
        assert_eq!(points.len(), 1);
        assert!(recorder.record(t + 120.0, &[]).is_empty());
        assert!(recorder.tracks.lock().unwrap().is_empty());
    }

    #[test]
    fn a_span_is_laid_out_a_point_per_step_with_gaps() {
        let (archive, count) = span("hour").unwrap();
        let now = 1_800_000_030;
        let point = crate::store::history::HistoryPoint {
            at: 1_800_000_000 - 120,
            values: [Some(Stat { avg: 1.0, max: 2.0 }); 7],
        };
        let h = lay_out("hour", archive, count, now, std::slice::from_ref(&point));
        assert_eq!(h.at.len(), 60);
        // 1,800,000,000 is a whole minute.
        assert_eq!(*h.at.last().unwrap(), 1_800_000_000);
        let cpu = &h.series[0];
        assert_eq!(cpu.name, "cpu_percent");
        let i = h.at.iter().position(|t| *t == point.at).unwrap();
        assert_eq!((cpu.avg[i], cpu.max[i]), (Some(1.0), Some(2.0)));
        assert_eq!(cpu.avg.iter().filter(|v| v.is_some()).count(), 1);
        assert!(span("decade").is_none());
    }
}
