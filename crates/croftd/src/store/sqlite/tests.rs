//! The SQLite store's own tests, besides the conformance suite.

use super::*;

crate::store_conformance!(SqliteStore::in_memory().await.unwrap());

/// A database file with VPSes from before migration 10 gets a distinct
/// UUID for each, and its 'error' rows become stopped; migration 11
/// puts them in the default tenant, keyed by their names.
#[tokio::test]
async fn migrations_give_existing_vpses_uuids_and_the_default_tenant() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("croft.db");
    let opts = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new().connect_with(opts).await.unwrap();
    for (_, _, sql) in &MIGRATIONS[..9] {
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
    }
    for (i, status) in ["running", "error", "stopped"].iter().enumerate() {
        sqlx::query("INSERT INTO instances (name, image, uid_base, status) VALUES (?, 'busybox', ?, ?)")
            .bind(format!("v{i}"))
            .bind(1_000_000 + i as i64 * 65536)
            .bind(status)
            .execute(&pool)
            .await
            .unwrap();
    }
    for (_, _, sql) in &MIGRATIONS[9..] {
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    // Read back on a fresh connection: one that saw the old schema may
    // describe `SELECT *` by it.
    let opts = SqliteConnectOptions::new().filename(&path);
    let store = SqliteStore {
        pool: SqlitePoolOptions::new().connect_with(opts).await.unwrap(),
    };
    let all = store.instances().await.unwrap();
    assert_eq!(all.len(), 3);
    let uuids: std::collections::HashSet<_> = all.iter().map(|i| i.uuid).collect();
    assert_eq!(uuids.len(), 3, "every VPS has its own uuid");
    assert!(all.iter().all(|i| i.uuid.get_version_num() == 4));
    assert_eq!(all[1].status, Status::Stopped);
    for (i, vps) in all.iter().enumerate() {
        assert_eq!(vps.name, format!("v{i}"));
        assert_eq!(vps.key, vps.name);
        assert_eq!(vps.tenant, crate::store::DEFAULT_TENANT);
    }
}

/// A configuration row croft would refuse is an error, not defaults.
#[tokio::test]
async fn a_corrupt_configuration_is_an_error() {
    let store = SqliteStore::in_memory().await.unwrap();
    let new = super::super::conformance::new_instance("bad", 1_000_000);
    store.create_instance(&new).await.unwrap();
    sqlx::query("UPDATE instances SET config = '{\"limits.memory\":\"lots\"}'")
        .execute(&store.pool)
        .await
        .unwrap();
    let err = store.instance("bad").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { what, .. } if what.contains("configuration of bad")),
        "{err:?}"
    );
}

/// A VPS's history never takes more than 1 MiB, however long it runs:
/// every slot of every ring filled (a year of minutes, written the way the
/// sampler writes them, each period full) and then written over again.
#[tokio::test]
async fn a_vps_history_stays_under_one_mebibyte() {
    use crate::store::history::{ARCHIVES, MINUTES};
    let tmp = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&tmp.path().join("croft.db")).await.unwrap();
    let size = |store: &SqliteStore| {
        let pool = store.pool.clone();
        async move {
            sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&pool)
                .await
                .unwrap();
            let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
                .fetch_one(&pool)
                .await
                .unwrap();
            let page: i64 = sqlx::query_scalar("PRAGMA page_size")
                .fetch_one(&pool)
                .await
                .unwrap();
            pages * page
        }
    };
    let new = super::super::conformance::new_instance("busy", 1_000_000);
    store.create_instance(&new).await.unwrap();
    let before = size(&store).await;
    // Each ring gets one point per slot, twice around: values of many
    // digits, as busy VPSes have.
    for archive in ARCHIVES {
        let points: Vec<_> = (0..archive.slots * 2)
            .map(|i| {
                let mut p = super::super::conformance::minute_point(
                    "busy",
                    1_800_000_000 + i * archive.step,
                    123.456 + i as f64,
                );
                for stat in p.values.iter_mut() {
                    *stat = Some(crate::store::history::Stat {
                        avg: 98_765_432_109.0 + i as f64,
                        max: 198_765_432_109.0 + i as f64,
                    });
                }
                p
            })
            .collect();
        for chunk in points.chunks(500) {
            store.record_history(chunk).await.unwrap();
        }
    }
    let used = size(&store).await - before;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_points")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    let most: i64 = ARCHIVES.iter().map(|a| a.slots).sum();
    assert_eq!(rows, most, "every slot once");
    assert!(used < 1 << 20, "{used} bytes for {rows} points");
    assert_eq!(
        store.history("busy", MINUTES, 0).await.unwrap().len() as i64,
        MINUTES.slots
    );
    eprintln!("a full history: {used} bytes, {rows} points");
}
