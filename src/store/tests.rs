//! The store's behaviour, run against SQLite and PostgreSQL alike.

use super::*;
use serde_json::json;

/// A store for one test, dropped with its database.
struct TestStore {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    drop_db: Option<(String, String)>,
}

impl TestStore {
    async fn cleanup(self) {
        self.store.close().await;
        if let Some((admin_url, name)) = self.drop_db {
            let admin = Store::open_admin(&admin_url).await;
            let sql = format!("DROP DATABASE IF EXISTS {name}");
            let _ = sqlx::query(AssertSqlSafe(sql)).execute(&admin).await;
            admin.close().await;
        }
    }
}

impl Store {
    async fn open_admin(url: &str) -> AnyPool {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .expect("admin connection")
    }
}

async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("state.sqlite").display());
    let store = Store::open(&url).await.expect("open sqlite store");
    TestStore {
        store,
        _dir: Some(dir),
        drop_db: None,
    }
}

/// The PostgreSQL server the tests use: `KERNEL_SYNC_TEST_POSTGRES_URL`, or the machine's
/// own on 127.0.0.1:5432 (`.ci/postgres-up` starts it). Without a server the tests fail under
/// CI and are skipped, loudly, elsewhere.
async fn postgres() -> Option<TestStore> {
    let admin_url = std::env::var("KERNEL_SYNC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    let admin = match AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&admin_url)
        .await
    {
        Ok(pool) => pool,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PostgreSQL is required in CI but {admin_url} is unreachable: {e}"
            );
            eprintln!("SKIPPED: PostgreSQL store tests: {admin_url} is unreachable ({e})");
            return None;
        }
    };
    let name = format!("kernel_sync_test_{}", uuid_like());
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(base, _)| base);
    let store = Store::open(&format!("{base}/{name}"))
        .await
        .expect("open postgres store");
    Some(TestStore {
        store,
        _dir: None,
        drop_db: Some((admin_url, name)),
    })
}

fn uuid_like() -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{}_{n:016x}", std::process::id())
}

async fn each_backend<F, Fut>(scenario: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let lite = sqlite().await;
    scenario(lite.store.clone()).await;
    lite.cleanup().await;
    if let Some(pg) = postgres().await {
        scenario(pg.store.clone()).await;
        pg.cleanup().await;
    }
}

fn enrich(id: &str, website: &str) -> HarvestDecision {
    HarvestDecision::Enrich {
        record_id: id.into(),
        inputs: StoredInputs {
            name: Some("Cedarforge Robotics".into()),
            website: Some(website.into()),
            ..StoredInputs::default()
        },
        fingerprint: format!("fp-{website}"),
        force: false,
    }
}

fn syncs() -> Vec<String> {
    vec!["accounts".to_owned()]
}

/// A harvested page becomes pending items and moves the cursor in one commit; a claim marks
/// the item submitting, and a restart puts it back to pending without force.
#[tokio::test]
async fn harvest_claim_and_recover() {
    each_backend(|store| async move {
        let run = store.start_run("accounts").await.unwrap();
        let page = vec![
            enrich("001A", "cedarforge.example"),
            HarvestDecision::Skip {
                record_id: "001B".into(),
                reason: "no website and no linkedin url".into(),
                fingerprint: "fp-b".into(),
            },
        ];
        let cursor = Cursor {
            modstamp_ms: 1_700_000_000_123,
        };
        store
            .commit_harvest_page("accounts", "Account", run, &page, Some(cursor))
            .await
            .unwrap();
        assert_eq!(store.cursor("accounts").await.unwrap(), Some(cursor));

        let counts = store.state_counts("accounts").await.unwrap();
        assert_eq!(counts.get(&ItemState::Pending), Some(&1));
        assert_eq!(counts.get(&ItemState::Skipped), Some(&1));

        let claimed = store
            .claim_pending(&syncs(), now_ms())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.record_id, "001A");
        assert_eq!(claimed.state, ItemState::Submitting);
        assert!(
            store
                .claim_pending(&syncs(), now_ms())
                .await
                .unwrap()
                .is_none()
        );

        let mut forced = claimed.clone();
        forced.force = true;
        store.save(&forced).await.unwrap();
        assert_eq!(store.recover_interrupted().await.unwrap(), 1);
        let again = store
            .claim_pending(&syncs(), now_ms())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.id, claimed.id);
        assert!(!again.force, "a re-post after a crash must not force");
    })
    .await;
}

/// Saving an item keeps every column, and written values are remembered per field.
#[tokio::test]
async fn save_round_trips_every_column() {
    each_backend(|store| async move {
        let run = store.start_run("accounts").await.unwrap();
        store
            .commit_harvest_page(
                "accounts",
                "Account",
                run,
                &[enrich("001A", "a.example")],
                None,
            )
            .await
            .unwrap();
        let mut item = store
            .claim_pending(&syncs(), now_ms())
            .await
            .unwrap()
            .unwrap();
        item.state = ItemState::Open;
        item.execution_id = Some(9_007_199_254_740_993);
        item.submitted_at = Some(now_ms());
        item.polls = 3;
        item.last_status = Some("fast-success".into());
        item.payload = Some(
            json!({"industry": "Software", "headcount": null})
                .as_object()
                .unwrap()
                .clone(),
        );
        item.pending_write = Some(PendingWrite {
            fields: json!({"Industry": "Technology"})
                .as_object()
                .unwrap()
                .clone(),
            is_final: false,
        });
        item.next_action_at = 5;
        store.save(&item).await.unwrap();

        let loaded = store
            .items_for_records("accounts", &["001A".into()])
            .await
            .unwrap();
        let loaded = &loaded["001A"];
        assert_eq!(loaded.execution_id, item.execution_id);
        assert_eq!(loaded.payload, item.payload);
        assert_eq!(loaded.pending_write, item.pending_write);
        assert_eq!(loaded.polls, 3);
        assert_eq!(store.due_writes(&syncs(), 10, 10).await.unwrap().len(), 1);
        assert_eq!(store.due_polls(&syncs(), 10, 10).await.unwrap().len(), 1);
        assert_eq!(store.open_executions().await.unwrap(), 1);

        let written = json!({"Industry": "Technology", "NumberOfEmployees": 120});
        let mut done = loaded.clone();
        done.state = ItemState::Written;
        done.pending_write = None;
        store
            .save_written(&done, written.as_object().unwrap())
            .await
            .unwrap();
        let values = store
            .written_values("accounts", &["001A".into()])
            .await
            .unwrap();
        assert_eq!(values["001A"]["NumberOfEmployees"], json!(120));
        assert_eq!(values["001A"]["Industry"], json!("Technology"));
    })
    .await;
}

/// A changed record does not disturb an execution in flight, parked items come back on
/// `retry`, and runs keep their counts.
#[tokio::test]
async fn active_items_are_not_reset_and_parked_items_requeue() {
    each_backend(|store| async move {
        let run = store.start_run("accounts").await.unwrap();
        store
            .commit_harvest_page(
                "accounts",
                "Account",
                run,
                &[enrich("001A", "a.example")],
                None,
            )
            .await
            .unwrap();
        let mut item = store
            .claim_pending(&syncs(), now_ms())
            .await
            .unwrap()
            .unwrap();
        item.state = ItemState::Open;
        item.execution_id = Some(7);
        store.save(&item).await.unwrap();

        store
            .commit_harvest_page(
                "accounts",
                "Account",
                run,
                &[enrich("001A", "b.example")],
                None,
            )
            .await
            .unwrap();
        let now = store
            .items_for_records("accounts", &["001A".into()])
            .await
            .unwrap();
        assert_eq!(now["001A"].state, ItemState::Open);
        assert_eq!(now["001A"].execution_id, Some(7));

        item.state = ItemState::Parked;
        item.reason = Some("kernel rejected the request".into());
        store.save(&item).await.unwrap();
        assert_eq!(store.active_count(&syncs()).await.unwrap(), 0);
        assert_eq!(
            store
                .requeue_parked(Some("accounts"), &["001Z".into()])
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            store.requeue_parked(Some("accounts"), &[]).await.unwrap(),
            1
        );
        assert_eq!(store.active_count(&syncs()).await.unwrap(), 1);

        let counts = RunCounts {
            harvested: 2,
            queued: 1,
            ..RunCounts::default()
        };
        store.finish_run(run, "complete", &counts).await.unwrap();
        let last = store.last_run("accounts").await.unwrap().unwrap();
        assert_eq!(last.counts, counts);
        assert_eq!(last.outcome.as_deref(), Some("complete"));
    })
    .await;
}

/// Only one holder owns a lease until it expires.
#[tokio::test]
async fn leases_exclude_other_holders_until_expiry() {
    each_backend(|store| async move {
        let long = Duration::from_secs(60);
        assert!(
            store
                .try_lease("harvest:accounts", "replica-a", long)
                .await
                .unwrap()
        );
        assert!(
            !store
                .try_lease("harvest:accounts", "replica-b", long)
                .await
                .unwrap()
        );
        assert!(
            store
                .try_lease("harvest:accounts", "replica-a", long)
                .await
                .unwrap()
        );
        store
            .release_lease("harvest:accounts", "replica-a")
            .await
            .unwrap();
        assert!(
            store
                .try_lease("harvest:accounts", "replica-b", Duration::ZERO)
                .await
                .unwrap()
        );
        // An expired lease (this one expired the moment it was taken) can be taken over.
        assert!(
            store
                .try_lease("harvest:accounts", "replica-a", long)
                .await
                .unwrap()
        );
    })
    .await;
}

#[test]
fn states_round_trip_through_text() {
    for state in ItemState::ALL {
        assert_eq!(state.as_str().parse::<ItemState>(), Ok(state));
    }
    assert!("finished".parse::<ItemState>().is_err());
}

#[tokio::test]
async fn unsupported_urls_are_refused_by_scheme() {
    let err = Store::open("mysql://localhost/db").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported store url scheme `mysql`: expected sqlite://PATH or postgres://..."
    );
}
