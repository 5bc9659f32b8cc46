//! The SQLite store's usage history: every VPS's rings of points
//! (`usage_points`), written a minute at a time in one transaction for
//! all VPSes.

use super::SqliteStore;
use crate::store::history::{Archive, HistoryPoint, MinutePoint, Series, Stat, Values, ARCHIVES};
use crate::store::Result;
use sqlx::Row;
use std::sync::OnceLock;

/// The statement that writes a minute into one archive's ring: a newer
/// period (one a ring-length on) replaces the slot's; the same period
/// takes the minute in, each series' average weighted by the minutes it
/// was measured in so far, its maximum the larger. A series missing on
/// one side keeps the other's. An older period (the clock went back)
/// never replaces a newer one.
fn upsert_statement() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let columns: Vec<String> = Series::ALL
            .iter()
            .flat_map(|s| {
                let c = s.column();
                [format!("{c}_avg"), format!("{c}_max"), format!("{c}_n")]
            })
            .collect();
        let merged: Vec<String> = Series::ALL
            .iter()
            .flat_map(|s| {
                let c = s.column();
                let fresh = format!("at != excluded.at OR {c}_n = 0");
                [
                    format!(
                        "{c}_avg = CASE WHEN {fresh} THEN excluded.{c}_avg \
                         WHEN excluded.{c}_n = 0 THEN {c}_avg \
                         ELSE round(({c}_avg * {c}_n + excluded.{c}_avg) * 1.0 / ({c}_n + 1)) END"
                    ),
                    format!(
                        "{c}_max = CASE WHEN {fresh} THEN excluded.{c}_max \
                         WHEN excluded.{c}_n = 0 THEN {c}_max \
                         ELSE max({c}_max, excluded.{c}_max) END"
                    ),
                    format!("{c}_n = CASE WHEN at != excluded.at THEN excluded.{c}_n ELSE {c}_n + excluded.{c}_n END"),
                ]
            })
            .collect();
        format!(
            "INSERT INTO usage_points (series, archive, slot, at, {}) VALUES (?, ?, ?, ?, {})
             ON CONFLICT (series, archive, slot) DO UPDATE SET {},
                 at = excluded.at
             WHERE excluded.at >= usage_points.at",
            columns.join(", "),
            vec!["?"; columns.len()].join(", "),
            merged.join(",\n"),
        )
    })
}

/// A value as stored: an integer in the series' unit.
fn stored(series: Series, value: f64) -> i64 {
    (value * series.scale()).round() as i64
}

fn values_of(row: &sqlx::sqlite::SqliteRow) -> Result<Values> {
    let mut values: Values = [None; 7];
    for (value, series) in values.iter_mut().zip(Series::ALL) {
        let avg: Option<i64> = row.try_get(format!("{}_avg", series.column()).as_str())?;
        let max: Option<i64> = row.try_get(format!("{}_max", series.column()).as_str())?;
        if let (Some(avg), Some(max)) = (avg, max) {
            *value = Some(Stat {
                avg: avg as f64 / series.scale(),
                max: max as f64 / series.scale(),
            });
        }
    }
    Ok(values)
}

impl SqliteStore {
    pub(super) async fn write_history(&self, points: &[MinutePoint]) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for point in points {
            // A VPS deleted since the sample has no series to write into.
            sqlx::query(
                "INSERT OR IGNORE INTO usage_series (instance)
                 SELECT key FROM instances WHERE key = ?",
            )
            .bind(&point.instance)
            .execute(&mut *tx)
            .await?;
            let Some(series): Option<i64> =
                sqlx::query_scalar("SELECT id FROM usage_series WHERE instance = ?")
                    .bind(&point.instance)
                    .fetch_optional(&mut *tx)
                    .await?
            else {
                continue;
            };
            for archive in ARCHIVES {
                let at = archive.period_of(point.minute);
                let mut query = sqlx::query(upsert_statement())
                    .bind(series)
                    .bind(i64::from(archive.id))
                    .bind(archive.slot_of(at))
                    .bind(at);
                for (value, kind) in point.values.iter().zip(Series::ALL) {
                    query = query
                        .bind(value.map(|v| stored(kind, v.avg)))
                        .bind(value.map(|v| stored(kind, v.max)))
                        .bind(i64::from(value.is_some()));
                }
                query.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn read_history(
        &self,
        instance: &str,
        archive: Archive,
        since: i64,
    ) -> Result<Vec<HistoryPoint>> {
        let rows = sqlx::query(
            "SELECT p.* FROM usage_points p JOIN usage_series s ON s.id = p.series
             WHERE s.instance = ? AND p.archive = ? AND p.at >= ?
             ORDER BY p.at",
        )
        .bind(instance)
        .bind(i64::from(archive.id))
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryPoint {
                    at: r.try_get("at")?,
                    values: values_of(r)?,
                })
            })
            .collect()
    }
}
