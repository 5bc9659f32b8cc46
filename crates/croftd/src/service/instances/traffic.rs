//! Traffic accounting, and the usage history read back for graphs.
//!
//! Traffic: what each VPS sends and receives, read from the
//! host end of its interface every `traffic_interval` seconds (and before
//! it stops), added to its totals of the calendar month (UTC) in the
//! store, and held against its monthly transfer quota: past it, a VPS is
//! throttled to `limits.transfer.throttle` (or only reported), and set
//! free at the next month or when its quota grows.
//!
//! The store keeps the counters of the last reading, so a reading after a
//! croftd restart or crash adds exactly what moved in between. What a VPS
//! moves between the last reading and the end of its interface (it
//! stopped or rebooted from inside while croftd was down) is not counted.

use super::InstanceService;
use crate::service::history;
use crate::service::{Result, ServiceError, VpsName};
use crate::store::TrafficReading;
use croft_api::{Status, Traffic, TrafficStatus, UsageHistory};
use std::collections::HashSet;
use tracing::warn;

/// The calendar month (UTC) of the Unix time `secs`: `2026-12`.
pub fn month_of(secs: u64) -> String {
    // Civil from days (H. Hinnant's algorithm), for the proleptic
    // Gregorian calendar.
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}")
}

/// The month now.
pub fn this_month() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    month_of(secs)
}

impl InstanceService {
    /// Read every running VPS's interface and hold each to its quota, in
    /// `month`: what the background sampler does every interval. Every
    /// interface is read in one netlink dump.
    pub async fn sample_traffic(&self, month: &str) -> Result<()> {
        let rows = self.store.instances().await?;
        let counters = self.network.all_counters().await?;
        let mut throttled = HashSet::new();
        for row in rows.iter().filter(|r| r.status == Status::Running) {
            let Some(c) = counters.get(&row.key) else {
                continue;
            };
            match self.record_reading(&row.key, month, c).await {
                Ok(totals) => {
                    if self.enforce_quota(row, &totals).await {
                        throttled.insert(row.key.clone());
                    }
                }
                Err(e) => warn!(vps = %row.key, "recording its traffic: {}", crate::error_chain(&e)),
            }
        }
        *self.throttled.lock().expect("throttled set poisoned") = Some(throttled);
        Ok(())
    }

    /// Add what VPS `key`'s interface moved since the last reading to its
    /// totals of `month`; those totals (`None` without an interface up).
    pub(super) async fn read_traffic(&self, key: &str, month: &str) -> Result<Option<Traffic>> {
        let Some(c) = self.network.counters(key).await? else {
            return Ok(None);
        };
        Ok(Some(self.record_reading(key, month, &c).await?))
    }

    /// Add reading `c` of VPS `key`'s interfaces to its totals of `month`.
    async fn record_reading(
        &self,
        key: &str,
        month: &str,
        c: &croft_host::net::LinkCounters,
    ) -> Result<Traffic> {
        // The host end receives what the VPS sends.
        let reading = TrafficReading {
            link_index: c.index,
            received_bytes: c.tx_bytes,
            sent_bytes: c.rx_bytes,
            received_packets: c.tx_packets,
            sent_packets: c.rx_packets,
        };
        Ok(self.store.record_traffic(key, month, &reading).await?)
    }

    /// Throttle a VPS past its transfer quota, or set one free that is no
    /// longer past it; whether it is throttled now.
    async fn enforce_quota(&self, row: &crate::store::InstanceRecord, totals: &Traffic) -> bool {
        let cfg = &row.settings.parsed;
        let over = cfg
            .transfer_bytes
            .is_some_and(|quota| totals.received_bytes + totals.sent_bytes >= quota);
        let throttle = over && !cfg.transfer_report_only;
        let was = self
            .throttled
            .lock()
            .expect("throttled set poisoned")
            .as_ref()
            .map(|set| set.contains(&row.key));
        // Unknown after a croftd start: whatever the host has, made right.
        let changed = was.is_none_or(|was| was != throttle);
        if changed && (throttle || cfg.transfer_bytes.is_some() || was == Some(true)) {
            let (ingress, egress) = held(cfg, throttle);
            match self.apply_bandwidth(&row.key, ingress, egress).await {
                Ok(()) if throttle => {
                    warn!(vps = %row.key, tenant = %row.tenant, "past its transfer quota: throttled");
                    self.emit(row, "vps-throttled", Some("past its transfer quota".into()));
                }
                Ok(()) => {}
                Err(e) => warn!(vps = %row.key, "applying its transfer throttle: {}", crate::error_chain(&e)),
            }
        }
        throttle
    }

    /// The bandwidth VPS `key` gets from its configuration `cfg`: held to
    /// its throttle while it is past its transfer quota.
    pub(super) fn bandwidth_of(
        &self,
        key: &str,
        cfg: &croft_api::config::InstanceConfig,
    ) -> (Option<u64>, Option<u64>) {
        let throttled = self
            .throttled
            .lock()
            .expect("throttled set poisoned")
            .as_ref()
            .is_some_and(|set| set.contains(key));
        held(
            cfg,
            throttled && !cfg.transfer_report_only && cfg.transfer_bytes.is_some(),
        )
    }

    /// `GET /1.0/instances/{name}/traffic`: every month's totals, newest
    /// first (this month's as of the last reading).
    pub async fn traffic(&self, vps: VpsName<'_>) -> Result<Vec<Traffic>> {
        let row = self.find(vps).await?;
        Ok(self.store.traffic(&row.key).await?)
    }

    /// `GET /1.0/instances/{name}/metrics?range=`: its usage history over
    /// `range` (hour, day, week, month, year), a point per step.
    pub async fn usage_history(&self, vps: VpsName<'_>, range: &str) -> Result<UsageHistory> {
        let (archive, count) = history::span(range).ok_or_else(|| {
            ServiceError::Invalid(format!("unknown range {range:?}: use {}", history::RANGES))
        })?;
        let row = self.find(vps).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let since = archive.period_of(now) - (count - 1) * archive.step;
        let points = self.store.history(&row.key, archive, since).await?;
        Ok(history::lay_out(range, archive, count, now, &points))
    }

    /// This month's traffic of the VPS of `row` against its quota, from
    /// `totals` (as read last).
    pub(super) fn traffic_status(
        &self,
        row: &crate::store::InstanceRecord,
        totals: Option<Traffic>,
    ) -> TrafficStatus {
        let month = totals.unwrap_or_else(|| Traffic {
            month: this_month(),
            ..Default::default()
        });
        let quota = row.settings.parsed.transfer_bytes;
        TrafficStatus {
            over_quota: quota.is_some_and(|q| month.received_bytes + month.sent_bytes >= q),
            throttled: self
                .throttled
                .lock()
                .expect("throttled set poisoned")
                .as_ref()
                .is_some_and(|set| set.contains(&row.key)),
            quota_bytes: quota,
            month,
        }
    }
}

/// The bandwidth (ingress, egress) configuration `cfg` gives, capped by
/// its transfer throttle when `throttle`.
fn held(cfg: &croft_api::config::InstanceConfig, throttle: bool) -> (Option<u64>, Option<u64>) {
    if !throttle {
        return (cfg.ingress_bps, cfg.egress_bps);
    }
    let cap = |limit: Option<u64>| {
        Some(limit.map_or(cfg.transfer_throttle_bps, |l| l.min(cfg.transfer_throttle_bps)))
    };
    (cap(cfg.ingress_bps), cap(cfg.egress_bps))
}

#[cfg(test)]
mod tests {
    use super::month_of;

    #[test]
    fn months_are_the_utc_calendars() {
        assert_eq!(month_of(0), "1970-01");
        // 2026-12-31T23:59:59Z and a second later.
        assert_eq!(month_of(1_798_761_599), "2026-12");
        assert_eq!(month_of(1_798_761_600), "2027-01");
        // 2028-02-29 (a leap day) and 2028-03-01.
        assert_eq!(month_of(1_835_395_200), "2028-02");
        assert_eq!(month_of(1_835_481_600), "2028-03");
    }
}
