//! Durable state: cursors, work items, run history and the values kernel-sync wrote.
//!
//! One [`Store`] type serves both backends through sqlx's `Any` driver: SQLite (one file, WAL)
//! is the embedded default, PostgreSQL serves deployments with several replicas. Every state
//! change of a work item is one committed statement or transaction, so a process killed at
//! any instant leaves a store that the next start can resume from (see
//! [`Store::recover_interrupted`]).
//!
//! A work item is keyed by (object sync, record id) and lives as long as the record does: it
//! carries the record through one enrichment at a time and remembers the fingerprint of the
//! inputs that were last enriched, which is what keeps kernel-sync from re-enriching its own
//! writes.

mod schema;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row};

/// Milliseconds since the Unix epoch: the store's clock unit.
pub type Millis = i64;

/// The current time in store units.
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Everything that can go wrong talking to the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL is neither `sqlite:` nor `postgres:`.
    #[error("unsupported store url scheme `{0}`: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// The database could not be reached or answered with an error.
    #[error("state store: {context}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A stored value did not decode (a column written by a newer or broken version).
    #[error("state store holds an unreadable {what} for work item {item}: {detail}")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// The work item's id.
        item: i64,
        /// The decoder's complaint.
        detail: String,
    },
}

impl StoreError {
    fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database { context, source }
    }
}

/// Where a work item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Waiting to be submitted to Kernel at `next_action_at`.
    Pending,
    /// A POST is (or was, when a process died) under way; no executionId stored yet.
    Submitting,
    /// An execution is open at Kernel and is polled at `next_action_at`.
    Open,
    /// The enrichment is complete; its mapped values wait to be written.
    Writing,
    /// The values were written (or nothing needed writing).
    Written,
    /// The record cannot be enriched as it stands (missing inputs); `reason` says why.
    Skipped,
    /// Gave up until an operator acts (`retry`); `reason` says why.
    Parked,
    /// The record was deleted in Salesforce.
    Dropped,
}

impl ItemState {
    /// Every state, in pipeline order.
    pub const ALL: [ItemState; 8] = [
        ItemState::Pending,
        ItemState::Submitting,
        ItemState::Open,
        ItemState::Writing,
        ItemState::Written,
        ItemState::Skipped,
        ItemState::Parked,
        ItemState::Dropped,
    ];

    /// The name stored in the database and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Submitting => "submitting",
            ItemState::Open => "open",
            ItemState::Writing => "writing",
            ItemState::Written => "written",
            ItemState::Skipped => "skipped",
            ItemState::Parked => "parked",
            ItemState::Dropped => "dropped",
        }
    }

    /// Whether the pipeline still has work to do on an item in this state.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ItemState::Pending | ItemState::Submitting | ItemState::Open | ItemState::Writing
        )
    }
}

impl fmt::Display for ItemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ItemState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ItemState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown work item state `{s}`"))
    }
}

/// The company data sent to Kernel for one record: never a person's name, address or phone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredInputs {
    /// Company name.
    pub name: Option<String>,
    /// Company website.
    pub website: Option<String>,
    /// LinkedIn company page.
    pub linkedin_url: Option<String>,
    /// The domain of an email address (only the domain is ever kept).
    pub email_domain: Option<String>,
}

/// Mapped values waiting for write-back.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PendingWrite {
    /// Proposed value per Salesforce field, converted for the field's type.
    pub fields: Map<String, Value>,
    /// True for the final write of a complete enrichment, false for the early write of the
    /// fast fields at `fast-success`.
    pub is_final: bool,
}

/// One record's enrichment, from harvest to write-back.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkItem {
    /// Store id.
    pub id: i64,
    /// The object sync's name (from the configuration).
    pub object_sync: String,
    /// The Salesforce record id.
    pub record_id: String,
    /// The Salesforce object's API name.
    pub object_type: String,
    /// Where the item stands.
    pub state: ItemState,
    /// Why it was skipped or parked, or the last transient trouble.
    pub reason: Option<String>,
    /// The inputs for the next (or current) enrichment.
    pub inputs: StoredInputs,
    /// Fingerprint of `inputs`.
    pub fingerprint: String,
    /// Fingerprint of the inputs of the last complete enrichment.
    pub enriched_fingerprint: Option<String>,
    /// Fingerprint of the inputs sent with the open execution.
    pub submitted_fingerprint: Option<String>,
    /// When the last enrichment completed.
    pub enriched_at: Option<Millis>,
    /// Submit with `force` (refresh or operator request).
    pub force: bool,
    /// Enrichment attempts that ended in an execution error.
    pub attempts: u32,
    /// Kernel's executionId while an execution is open.
    pub execution_id: Option<u64>,
    /// When the open execution was submitted.
    pub submitted_at: Option<Millis>,
    /// Polls of the open execution so far.
    pub polls: u32,
    /// Kernel's last status for the open execution.
    pub last_status: Option<String>,
    /// When the pipeline should look at this item next.
    pub next_action_at: Millis,
    /// The last payload Kernel returned (its dynamic fields).
    pub payload: Option<Map<String, Value>>,
    /// Mapped values waiting to be written.
    pub pending_write: Option<PendingWrite>,
    /// Write attempts that failed transiently.
    pub write_attempts: u32,
    /// The fast fields were written early for the open execution.
    pub fast_written: bool,
    /// The run that last made this item work.
    pub run_id: Option<i64>,
    /// When the item was created.
    pub created_at: Millis,
    /// When the item last changed.
    pub updated_at: Millis,
}

/// Where the last harvest of an object sync stopped. DESIGN.md names a (SystemModstamp, Id)
/// pair; the Id is not needed here: the next harvest starts `lookback` before this instant
/// with `>=`, so ties are re-read, and work items (one per record, with the fingerprint of
/// what was enriched) make the re-read harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// `SystemModstamp` of the last committed record, in milliseconds.
    pub modstamp_ms: Millis,
}

/// What harvest decided about one record.
#[derive(Debug, Clone, PartialEq)]
pub enum HarvestDecision {
    /// Enrich the record (new, inputs changed, or refresh due).
    Enrich {
        /// The record id.
        record_id: String,
        /// The inputs to send.
        inputs: StoredInputs,
        /// Their fingerprint.
        fingerprint: String,
        /// Submit with `force`.
        force: bool,
    },
    /// The inputs of a record whose execution is in flight changed: keep them, so the record
    /// is enriched again once the running execution is written.
    Refresh {
        /// The record id.
        record_id: String,
        /// The new inputs.
        inputs: StoredInputs,
        /// Their fingerprint.
        fingerprint: String,
    },
    /// The record lacks the inputs Kernel needs.
    Skip {
        /// The record id.
        record_id: String,
        /// Why, for `status`.
        reason: String,
        /// Fingerprint of what the record holds now.
        fingerprint: String,
    },
}

/// A run's counts, kept with its history row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    /// Records the harvest read.
    pub harvested: u64,
    /// Records that became work.
    pub queued: u64,
    /// Records skipped for missing inputs.
    pub skipped: u64,
    /// Records already enriched with the same inputs.
    pub unchanged: u64,
    /// Records written back in this run.
    pub written: u64,
    /// Records parked in this run.
    pub parked: u64,
    /// Records dropped (deleted) in this run.
    pub dropped: u64,
    /// Salesforce API calls the run made (queries and writes; token requests aside).
    #[serde(default)]
    pub salesforce_calls: u64,
    /// Kernel calls the run made (submissions and polls, each counted once however often
    /// the client retried it).
    #[serde(default)]
    pub kernel_calls: u64,
}

/// One row of run history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    /// Run id.
    pub id: i64,
    /// Object sync.
    pub object_sync: String,
    /// Start, in ms.
    pub started_at: Millis,
    /// End, in ms, once finished.
    pub finished_at: Option<Millis>,
    /// `complete`, `partial`, `interrupted` or `failed: ...`.
    pub outcome: Option<String>,
    /// The counts.
    pub counts: RunCounts,
}

/// The store: a pool over SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

const ITEM_COLUMNS: &str = "id, object_sync, record_id, object_type, state, reason, inputs, \
     fingerprint, enriched_fingerprint, submitted_fingerprint, enriched_at, force_refresh, \
     attempts, execution_id, \
     submitted_at, polls, last_status, next_action_at, payload, pending_write, write_attempts, \
     fast_written, run_id, created_at, updated_at";

impl Store {
    /// Opens (creating when needed) the store at `url` and brings its schema up to date.
    ///
    /// `sqlite://PATH` (created when missing, WAL journal) or `postgres://...`.
    ///
    /// # Errors
    ///
    /// An unsupported URL, an unreachable database, or a failed migration.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let sep = if path.contains('?') { '&' } else { '?' };
            (Backend::Sqlite, format!("sqlite://{path}{sep}mode=rwc"))
        } else if url.starts_with("sqlite:") {
            (Backend::Sqlite, url.to_owned())
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_owned())
        } else {
            let scheme = url.split(':').next().unwrap_or(url);
            return Err(StoreError::UnsupportedUrl(scheme.to_owned()));
        };

        // SQLite serialises writers anyway; a few connections let readers (status, metrics)
        // proceed while the pipeline writes.
        let max_connections = if backend == Backend::Sqlite { 4 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&url)
            .await
            .map_err(StoreError::db("connect"))?;
        let store = Store { pool, backend };
        if backend == Backend::Sqlite {
            // WAL lets readers run beside the writer and survives a kill without corruption.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&store.pool)
                .await
                .map_err(StoreError::db("enable WAL"))?;
        }
        store.migrate().await?;
        Ok(store)
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers (for `/readyz`).
    ///
    /// # Errors
    ///
    /// The database did not answer.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("ping"))?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS kernel_sync_migrations (
                version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("create migrations table"))?;
        let id_type = match self.backend {
            Backend::Sqlite => schema::SQLITE_ID,
            Backend::Postgres => schema::POSTGRES_ID,
        };

        for migration in schema::MIGRATIONS {
            let mut tx = self
                .pool
                .begin()
                .await
                .map_err(StoreError::db("begin migration"))?;
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT version FROM kernel_sync_migrations WHERE version = $1")
                    .bind(migration.version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(StoreError::db("read migrations"))?;
            if applied.is_some() {
                continue;
            }
            for statement in migration.statements {
                let sql = statement.replace("{id}", id_type);
                sqlx::query(AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("apply migration"))?;
            }
            sqlx::query(
                "INSERT INTO kernel_sync_migrations (version, description, applied_at) \
                 VALUES ($1, $2, $3)",
            )
            .bind(migration.version)
            .bind(migration.description)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("record migration"))?;
            tx.commit()
                .await
                .map_err(StoreError::db("commit migration"))?;
        }
        Ok(())
    }

    /// Puts items caught mid-flight by a crash back to work: `submitting` items become
    /// `pending` without `force` (Kernel answers a repeat with the running execution or a
    /// cached result). Returns how many were recovered.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn recover_interrupted(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE work_items SET state = 'pending', force_refresh = 0, updated_at = $1 \
             WHERE state = 'submitting'",
        )
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("recover submitting items"))?;
        Ok(done.rows_affected())
    }

    /// The cursor of an object sync, if a harvest ever committed one.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn cursor(&self, object_sync: &str) -> Result<Option<Cursor>, StoreError> {
        let row = sqlx::query("SELECT modstamp_ms FROM cursors WHERE object_sync = $1")
            .bind(object_sync)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("read cursor"))?;
        row.map(|row| {
            Ok(Cursor {
                modstamp_ms: row.try_get(0).map_err(StoreError::db("read cursor"))?,
            })
        })
        .transpose()
    }

    /// The work items of these records, by record id.
    ///
    /// # Errors
    ///
    /// The database failed or a row did not decode.
    pub async fn items_for_records(
        &self,
        object_sync: &str,
        record_ids: &[String],
    ) -> Result<HashMap<String, WorkItem>, StoreError> {
        let mut found = HashMap::with_capacity(record_ids.len());
        for chunk in record_ids.chunks(200) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT {ITEM_COLUMNS} FROM work_items \
                 WHERE object_sync = $1 AND record_id IN ({})",
                placeholders.join(", ")
            );
            let query = bind_all(sqlx::query(AssertSqlSafe(sql)).bind(object_sync), chunk);
            let rows = query
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::db("read items"))?;
            for row in rows {
                let item = decode_item(&row)?;
                found.insert(item.record_id.clone(), item);
            }
        }
        Ok(found)
    }

    /// Commits one harvested page in one transaction: the page's decisions, then the cursor.
    ///
    /// An `Enrich` decision for a record whose item is active updates the inputs only while
    /// the item is still `pending`; an execution already under way finishes first, and the
    /// next harvest sees the changed fingerprint.
    ///
    /// # Errors
    ///
    /// The database failed; nothing of the page is committed then.
    pub async fn commit_harvest_page(
        &self,
        object_sync: &str,
        object_type: &str,
        run_id: i64,
        decisions: &[HarvestDecision],
        cursor: Option<Cursor>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("begin harvest page"))?;
        for decision in decisions {
            match decision {
                HarvestDecision::Enrich {
                    record_id,
                    inputs,
                    fingerprint,
                    force,
                } => {
                    let inputs = to_json(inputs);
                    sqlx::query(
                        "INSERT INTO work_items (object_sync, record_id, object_type, state, \
                             inputs, fingerprint, force_refresh, next_action_at, run_id, \
                             created_at, updated_at) \
                         VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $7, $7) \
                         ON CONFLICT (object_sync, record_id) DO UPDATE SET \
                             state = 'pending', reason = NULL, inputs = excluded.inputs, \
                             fingerprint = excluded.fingerprint, \
                             force_refresh = excluded.force_refresh, attempts = 0, \
                             execution_id = NULL, submitted_at = NULL, polls = 0, \
                             last_status = NULL, payload = NULL, pending_write = NULL, \
                             write_attempts = 0, fast_written = 0, \
                             next_action_at = excluded.next_action_at, run_id = excluded.run_id, \
                             updated_at = excluded.updated_at \
                         WHERE work_items.state IN ('pending', 'written', 'skipped', 'parked', \
                             'dropped')",
                    )
                    .bind(object_sync)
                    .bind(record_id)
                    .bind(object_type)
                    .bind(inputs)
                    .bind(fingerprint)
                    .bind(i64::from(*force))
                    .bind(now)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("queue work item"))?;
                }
                HarvestDecision::Refresh {
                    record_id,
                    inputs,
                    fingerprint,
                } => {
                    sqlx::query(
                        "UPDATE work_items SET inputs = $1, fingerprint = $2, updated_at = $3 \
                         WHERE object_sync = $4 AND record_id = $5",
                    )
                    .bind(to_json(inputs))
                    .bind(fingerprint)
                    .bind(now)
                    .bind(object_sync)
                    .bind(record_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("refresh work item inputs"))?;
                }
                HarvestDecision::Skip {
                    record_id,
                    reason,
                    fingerprint,
                } => {
                    sqlx::query(
                        "INSERT INTO work_items (object_sync, record_id, object_type, state, \
                             reason, inputs, fingerprint, next_action_at, run_id, created_at, \
                             updated_at) \
                         VALUES ($1, $2, $3, 'skipped', $4, '{}', $5, $6, $7, $6, $6) \
                         ON CONFLICT (object_sync, record_id) DO UPDATE SET \
                             state = 'skipped', reason = excluded.reason, \
                             fingerprint = excluded.fingerprint, run_id = excluded.run_id, \
                             updated_at = excluded.updated_at \
                         WHERE work_items.state IN ('pending', 'written', 'skipped', 'parked', \
                             'dropped')",
                    )
                    .bind(object_sync)
                    .bind(record_id)
                    .bind(object_type)
                    .bind(reason)
                    .bind(fingerprint)
                    .bind(now)
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("skip work item"))?;
                }
            }
        }
        if let Some(cursor) = cursor {
            sqlx::query(
                "INSERT INTO cursors (object_sync, modstamp_ms, updated_at) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (object_sync) DO UPDATE SET modstamp_ms = excluded.modstamp_ms, \
                     updated_at = excluded.updated_at",
            )
            .bind(object_sync)
            .bind(cursor.modstamp_ms)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("advance cursor"))?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("commit harvest page"))?;
        Ok(())
    }

    /// Claims the pending item due first among `object_syncs`, marking it `submitting` in
    /// the same statement, so a crash between the POST and its commit is visible on
    /// restart.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn claim_pending(
        &self,
        object_syncs: &[String],
        now: Millis,
    ) -> Result<Option<WorkItem>, StoreError> {
        if object_syncs.is_empty() {
            return Ok(None);
        }
        // One statement, so SQLite takes the write lock at once (a read that later upgrades
        // to a write fails with SQLITE_BUSY when another writer committed in between).
        let names = in_list(3, object_syncs.len());
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE work_items SET state = 'submitting', updated_at = $2 WHERE id = ( \
                 SELECT id FROM work_items WHERE state = 'pending' AND next_action_at <= $1 \
                 AND object_sync IN ({names}) ORDER BY next_action_at, id LIMIT 1{lock}) \
             AND state = 'pending' RETURNING {ITEM_COLUMNS}"
        );
        let query = bind_all(
            sqlx::query(AssertSqlSafe(sql)).bind(now).bind(now_ms()),
            object_syncs,
        );
        let row = query
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("claim"))?;
        row.as_ref().map(decode_item).transpose()
    }

    /// Open items whose next poll is due, earliest first.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn due_polls(
        &self,
        object_syncs: &[String],
        now: Millis,
        limit: u32,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let due = "state = 'open' AND next_action_at <= $1";
        self.due_items(due, object_syncs, now, limit).await
    }

    /// Items with values waiting to be written whose write is due, earliest first: the
    /// early write of an open execution's fast fields at once, a final write at its time.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn due_writes(
        &self,
        object_syncs: &[String],
        now: Millis,
        limit: u32,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let due = "pending_write IS NOT NULL \
                   AND (state = 'open' OR (state = 'writing' AND next_action_at <= $1))";
        self.due_items(due, object_syncs, now, limit).await
    }

    /// Items of `object_syncs` matching `due` (which may use `$1`, the time), earliest
    /// first, at most `limit`.
    async fn due_items(
        &self,
        due: &str,
        object_syncs: &[String],
        now: Millis,
        limit: u32,
    ) -> Result<Vec<WorkItem>, StoreError> {
        if object_syncs.is_empty() {
            return Ok(Vec::new());
        }
        let names = in_list(3, object_syncs.len());
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM work_items WHERE {due} \
             AND object_sync IN ({names}) ORDER BY next_action_at, id LIMIT $2"
        );
        let query = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(i64::from(limit));
        let rows = bind_all(query, object_syncs)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("due items"))?;
        rows.iter().map(decode_item).collect()
    }

    /// The earliest `next_action_at` of any item with work due among `object_syncs`
    /// (pending items only with `include_pending`).
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn next_action_at(
        &self,
        object_syncs: &[String],
        include_pending: bool,
    ) -> Result<Option<Millis>, StoreError> {
        if object_syncs.is_empty() {
            return Ok(None);
        }
        let names = in_list(1, object_syncs.len());
        let states = if include_pending {
            "'pending', 'open'"
        } else {
            "'open'"
        };
        let sql = format!(
            "SELECT MIN(next_action_at) FROM work_items WHERE object_sync IN ({names}) AND \
             (state IN ({states}) OR pending_write IS NOT NULL)"
        );
        let mut query = sqlx::query_scalar(AssertSqlSafe(sql));
        for name in object_syncs {
            query = query.bind(name);
        }
        query
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("next action"))
    }

    /// Saves every mutable column of `item` in one statement.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn save(&self, item: &WorkItem) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("begin save"))?;
        save_item(&mut tx, item).await?;
        tx.commit().await.map_err(StoreError::db("commit save"))?;
        Ok(())
    }

    /// Saves `item` and records the values written to its record, in one transaction.
    ///
    /// # Errors
    ///
    /// The database failed; neither change is committed then.
    pub async fn save_written(
        &self,
        item: &WorkItem,
        written: &Map<String, Value>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::db("begin save written"))?;
        save_item(&mut tx, item).await?;
        for (field, value) in written {
            sqlx::query(
                "INSERT INTO written_values (object_sync, record_id, field, value, written_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (object_sync, record_id, field) DO UPDATE SET \
                     value = excluded.value, written_at = excluded.written_at",
            )
            .bind(&item.object_sync)
            .bind(&item.record_id)
            .bind(field)
            .bind(value.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("record written value"))?;
        }
        tx.commit()
            .await
            .map_err(StoreError::db("commit save written"))?;
        Ok(())
    }

    /// The values kernel-sync last wrote to these records: record id, then field.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn written_values(
        &self,
        object_sync: &str,
        record_ids: &[String],
    ) -> Result<HashMap<String, Map<String, Value>>, StoreError> {
        let mut found: HashMap<String, Map<String, Value>> = HashMap::new();
        for chunk in record_ids.chunks(200) {
            let sql = format!(
                "SELECT record_id, field, value FROM written_values WHERE object_sync = $1 \
                 AND record_id IN ({})",
                in_list(2, chunk.len())
            );
            let query = bind_all(sqlx::query(AssertSqlSafe(sql)).bind(object_sync), chunk);
            let rows = query
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::db("written values"))?;
            for row in rows {
                let record: String = row.try_get(0).map_err(StoreError::db("written values"))?;
                let field: String = row.try_get(1).map_err(StoreError::db("written values"))?;
                let text: String = row.try_get(2).map_err(StoreError::db("written values"))?;
                let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                found.entry(record).or_default().insert(field, value);
            }
        }
        Ok(found)
    }

    /// Starts a run of an object sync; returns its id.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn start_run(&self, object_sync: &str) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO runs (object_sync, started_at, counts) VALUES ($1, $2, '{}') RETURNING id",
        )
        .bind(object_sync)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::db("start run"))
    }

    /// Records a run's counts and outcome.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn finish_run(
        &self,
        run_id: i64,
        outcome: &str,
        counts: &RunCounts,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE runs SET finished_at = $1, outcome = $2, counts = $3 WHERE id = $4")
            .bind(now_ms())
            .bind(outcome)
            .bind(to_json(counts))
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("finish run"))?;
        Ok(())
    }

    /// The latest run of an object sync.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn last_run(&self, object_sync: &str) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, object_sync, started_at, finished_at, outcome, counts FROM runs \
             WHERE object_sync = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(object_sync)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("last run"))?;
        let Some(row) = row else { return Ok(None) };
        let err = StoreError::db;
        let counts: String = row.try_get(5).map_err(err("last run"))?;
        Ok(Some(RunRecord {
            id: row.try_get(0).map_err(err("last run"))?,
            object_sync: row.try_get(1).map_err(err("last run"))?,
            started_at: row.try_get(2).map_err(err("last run"))?,
            finished_at: row.try_get(3).map_err(err("last run"))?,
            outcome: row.try_get(4).map_err(err("last run"))?,
            counts: serde_json::from_str(&counts).unwrap_or_default(),
        }))
    }

    /// Work items by state for an object sync (states with no items are absent).
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn state_counts(
        &self,
        object_sync: &str,
    ) -> Result<HashMap<ItemState, u64>, StoreError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) FROM work_items WHERE object_sync = $1 GROUP BY state",
        )
        .bind(object_sync)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("count states"))?;
        let mut counts = HashMap::new();
        for row in rows {
            let state: String = row.try_get(0).map_err(StoreError::db("count states"))?;
            let count: i64 = row.try_get(1).map_err(StoreError::db("count states"))?;
            if let Ok(state) = state.parse() {
                counts.insert(state, u64::try_from(count).unwrap_or(0));
            }
        }
        Ok(counts)
    }

    /// Items in `state` (parked or skipped, for `status`), newest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn items_in_state(
        &self,
        object_sync: &str,
        state: ItemState,
        limit: u32,
    ) -> Result<Vec<WorkItem>, StoreError> {
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM work_items WHERE object_sync = $1 AND state = $2 \
             ORDER BY updated_at DESC, id DESC LIMIT $3"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(object_sync)
            .bind(state.as_str())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("items in state"))?;
        rows.iter().map(decode_item).collect()
    }

    /// How many items are in active states among `object_syncs`, optionally only those of
    /// runs at or after `since_run`.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn active_count(&self, object_syncs: &[String]) -> Result<u64, StoreError> {
        if object_syncs.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "SELECT COUNT(*) FROM work_items WHERE state IN ('pending', 'submitting', 'open', \
             'writing') AND object_sync IN ({})",
            in_list(1, object_syncs.len())
        );
        let mut query = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql));
        for name in object_syncs {
            query = query.bind(name);
        }
        let count = query
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("active count"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// How many executions are open at Kernel (all object syncs share one API key).
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn open_executions(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM work_items WHERE state = 'open'")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("open executions"))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Puts parked items back to work: all of an object sync's, or those of `record_ids`.
    /// Returns how many were requeued.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn requeue_parked(
        &self,
        object_sync: Option<&str>,
        record_ids: &[String],
    ) -> Result<u64, StoreError> {
        let now = now_ms();
        // An item parked after a complete enrichment still holds its mapped values: it goes
        // back to writing rather than spending another enrichment.
        let mut sql = String::from(
            "UPDATE work_items SET \
                 state = CASE WHEN pending_write IS NOT NULL THEN 'writing' ELSE 'pending' END, \
                 reason = NULL, attempts = 0, write_attempts = 0, execution_id = NULL, \
                 polls = 0, next_action_at = $1, updated_at = $1 \
             WHERE state = 'parked'",
        );
        let mut next = 2;
        if object_sync.is_some() {
            sql.push_str(&format!(" AND object_sync = ${next}"));
            next += 1;
        }
        if !record_ids.is_empty() {
            sql.push_str(&format!(
                " AND record_id IN ({})",
                in_list(next, record_ids.len())
            ));
        }
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now);
        if let Some(name) = object_sync {
            query = query.bind(name);
        }
        let done = bind_all(query, record_ids)
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("requeue parked"))?;
        Ok(done.rows_affected())
    }

    /// Tries to take or renew the lease `name` for `holder` until `ttl` from now. Returns
    /// whether `holder` holds it. Replicas sharing a PostgreSQL store use leases so that one
    /// at a time harvests an object sync.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let done = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(expires)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("take lease"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Who holds the lease `name` and until when, if anyone ever took it.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn lease(&self, name: &str) -> Result<Option<(String, Millis)>, StoreError> {
        let row = sqlx::query("SELECT holder, expires_at FROM leases WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("read lease"))?;
        row.map(|row| {
            let holder: String = row.try_get(0).map_err(StoreError::db("read lease"))?;
            let expires: i64 = row.try_get(1).map_err(StoreError::db("read lease"))?;
            Ok((holder, expires))
        })
        .transpose()
    }

    /// Gives up the lease `name` if `holder` holds it.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("release lease"))?;
        Ok(())
    }

    /// Remembers an observation (such as the org's API usage) for `status`.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn observe(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO observations (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                 updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("record observation"))?;
        Ok(())
    }

    /// The last value of an observation and when it was made.
    ///
    /// # Errors
    ///
    /// The database failed.
    pub async fn observation(&self, name: &str) -> Result<Option<(String, Millis)>, StoreError> {
        let row = sqlx::query("SELECT value, updated_at FROM observations WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("read observation"))?;
        row.map(|row| {
            let value: String = row.try_get(0).map_err(StoreError::db("read observation"))?;
            let at: i64 = row.try_get(1).map_err(StoreError::db("read observation"))?;
            Ok((value, at))
        })
        .transpose()
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A query with the arguments bound so far.
type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, <sqlx::Any as sqlx::Database>::Arguments>;

/// Binds every value in turn (for the placeholders of an `IN (...)` list).
fn bind_all<'q>(mut query: AnyQuery<'q>, values: &[String]) -> AnyQuery<'q> {
    for value in values {
        query = query.bind(value.clone());
    }
    query
}

/// `$first, $first+1, ...` for `count` placeholders.
fn in_list(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail: they hold only strings, numbers and maps.
    serde_json::to_string(value).expect("store values serialise to JSON")
}

async fn save_item(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    item: &WorkItem,
) -> Result<(), StoreError> {
    sqlx::query(
        // Inputs and fingerprint belong to harvest (which may refresh them while an
        // execution is in flight): a stage saving its item never writes them back.
        "UPDATE work_items SET state = $1, reason = $2, submitted_fingerprint = $3, \
             enriched_fingerprint = $4, enriched_at = $5, force_refresh = $6, attempts = $7, \
             execution_id = $8, submitted_at = $9, polls = $10, last_status = $11, \
             next_action_at = $12, payload = $13, pending_write = $14, write_attempts = $15, \
             fast_written = $16, updated_at = $17 \
         WHERE id = $18",
    )
    .bind(item.state.as_str())
    .bind(item.reason.as_deref())
    .bind(item.submitted_fingerprint.as_deref())
    .bind(item.enriched_fingerprint.as_deref())
    .bind(item.enriched_at)
    .bind(i64::from(item.force))
    .bind(i64::from(item.attempts))
    .bind(
        item.execution_id
            .map(|id| i64::try_from(id).unwrap_or(i64::MAX)),
    )
    .bind(item.submitted_at)
    .bind(i64::from(item.polls))
    .bind(item.last_status.as_deref())
    .bind(item.next_action_at)
    .bind(item.payload.as_ref().map(to_json))
    .bind(item.pending_write.as_ref().map(to_json))
    .bind(i64::from(item.write_attempts))
    .bind(i64::from(item.fast_written))
    .bind(now_ms())
    .bind(item.id)
    .execute(&mut **tx)
    .await
    .map_err(StoreError::db("save work item"))?;
    Ok(())
}

fn decode_item(row: &AnyRow) -> Result<WorkItem, StoreError> {
    let err = StoreError::db("decode work item");
    let id: i64 = row.try_get("id").map_err(err)?;
    let get_text = |name: &str| -> Result<Option<String>, StoreError> {
        row.try_get(name)
            .map_err(StoreError::db("decode work item"))
    };
    let get_int = |name: &str| -> Result<Option<i64>, StoreError> {
        row.try_get(name)
            .map_err(StoreError::db("decode work item"))
    };
    let count = |name: &str| -> Result<u32, StoreError> {
        Ok(u32::try_from(get_int(name)?.unwrap_or(0)).unwrap_or(u32::MAX))
    };
    let json = |what: &'static str, text: Option<String>| -> Result<Option<Value>, StoreError> {
        text.map(|text| {
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                what,
                item: id,
                detail: e.to_string(),
            })
        })
        .transpose()
    };
    let corrupt = |what: &'static str, detail: String| StoreError::Corrupt {
        what,
        item: id,
        detail,
    };

    let state_text = get_text("state")?.unwrap_or_default();
    let state = state_text.parse().map_err(|e| corrupt("state", e))?;
    let inputs = match json("inputs", get_text("inputs")?)? {
        Some(value) => {
            serde_json::from_value(value).map_err(|e| corrupt("inputs", e.to_string()))?
        }
        None => StoredInputs::default(),
    };
    let payload = match json("payload", get_text("payload")?)? {
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err(corrupt("payload", "not a JSON object".into())),
        None => None,
    };
    let pending_write = json("pending_write", get_text("pending_write")?)?
        .map(|value| {
            serde_json::from_value(value).map_err(|e| corrupt("pending_write", e.to_string()))
        })
        .transpose()?;

    Ok(WorkItem {
        id,
        object_sync: get_text("object_sync")?.unwrap_or_default(),
        record_id: get_text("record_id")?.unwrap_or_default(),
        object_type: get_text("object_type")?.unwrap_or_default(),
        state,
        reason: get_text("reason")?,
        inputs,
        fingerprint: get_text("fingerprint")?.unwrap_or_default(),
        enriched_fingerprint: get_text("enriched_fingerprint")?,
        submitted_fingerprint: get_text("submitted_fingerprint")?,
        enriched_at: get_int("enriched_at")?,
        force: get_int("force_refresh")?.unwrap_or(0) != 0,
        attempts: count("attempts")?,
        execution_id: get_int("execution_id")?.and_then(|id| u64::try_from(id).ok()),
        submitted_at: get_int("submitted_at")?,
        polls: count("polls")?,
        last_status: get_text("last_status")?,
        next_action_at: get_int("next_action_at")?.unwrap_or(0),
        payload,
        pending_write,
        write_attempts: count("write_attempts")?,
        fast_written: get_int("fast_written")?.unwrap_or(0) != 0,
        run_id: get_int("run_id")?,
        created_at: get_int("created_at")?.unwrap_or(0),
        updated_at: get_int("updated_at")?.unwrap_or(0),
    })
}

#[cfg(test)]
mod tests;
