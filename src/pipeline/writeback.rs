//! Write-back: mapped values to Salesforce through sObject Collections.
//!
//! A batch holds up to 200 items of one object sync. Before writing, the batch reads the
//! records' current values (one query), so the overwrite policy judges what the record holds
//! now, not what it held hours ago at harvest: a person's edit made while Kernel worked is
//! respected. Only values that change are sent; a record with nothing to change costs no
//! write (and does not bump its `SystemModstamp`).

use serde_json::{Map, Value};

use super::driver::{CountsHandle, bump};
use super::harvest::get_field;
use super::{Engine, PipelineError, map};
use crate::salesforce::{ErrorKind as SfErrorKind, RecordOutcome, RecordUpdate};
use crate::store::{ItemState, WorkItem, now_ms};

/// One record's write, decided.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// The Salesforce field.
    pub field: String,
    /// What the record holds now.
    pub current: Option<Value>,
    /// What kernel-sync proposes.
    pub proposed: Value,
    /// The policy's decision.
    pub decision: map::Decision,
}

impl Engine {
    /// Decides, per field, what to write over the record's `current` values.
    pub fn plan_changes(
        &self,
        object_sync: &str,
        proposed: &Map<String, Value>,
        current: &Map<String, Value>,
        last_written: Option<&Map<String, Value>>,
    ) -> Vec<FieldChange> {
        let Some(plan) = self.plan(object_sync) else {
            return Vec::new();
        };
        let mut changes = Vec::new();
        for (field, value) in proposed {
            let policy = plan
                .sync
                .fields
                .iter()
                .find(|m| m.target.eq_ignore_ascii_case(field))
                .map_or(crate::config::Overwrite::IfEmpty, |m| m.overwrite);
            let now = get_field(current, field).filter(|v| !v.is_null()).cloned();
            let ours = last_written.and_then(|w| get_field(w, field));
            let decision = map::decide(policy, now.as_ref(), value, ours);
            changes.push(FieldChange {
                field: field.clone(),
                current: now,
                proposed: value.clone(),
                decision,
            });
        }
        changes
    }

    /// Writes one batch (items of one object sync) and saves each item's outcome.
    ///
    /// # Errors
    ///
    /// A failure of the whole call: credentials refused, the daily API share spent, or a
    /// store failure. Items keep their pending write and are tried again.
    pub(crate) async fn write_batch(
        &self,
        mut batch: Vec<WorkItem>,
        counts: &CountsHandle,
    ) -> Result<(), PipelineError> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        let object_sync = first.object_sync.clone();
        let Some(plan) = self.plan(&object_sync) else {
            return Ok(());
        };
        let object = plan.sync.object.clone();

        // 1. What the records hold now, and what kernel-sync wrote to them before.
        let mut fields: Vec<String> = Vec::new();
        for item in &batch {
            for field in item.pending_write.iter().flat_map(|w| w.fields.keys()) {
                if !fields.iter().any(|f| f.eq_ignore_ascii_case(field)) {
                    fields.push(field.clone());
                }
            }
        }
        let ids: Vec<String> = batch.iter().map(|i| i.record_id.clone()).collect();
        let field_refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        self.salesforce_gate().await?;
        bump(counts, &object_sync, |c| c.salesforce_calls += 1);
        let records = match self
            .salesforce
            .read_by_ids(&object, &field_refs, &ids)
            .await
        {
            Ok(records) => records,
            Err(e) => return self.batch_failed(batch, e.into(), counts).await,
        };
        self.salesforce_guard.observe(&self.salesforce);
        let current: std::collections::HashMap<String, Map<String, Value>> =
            records.into_iter().map(|r| (r.id, r.fields)).collect();
        let written_before = self.store.written_values(&object_sync, &ids).await?;

        // 2. Decide per record; records gone from Salesforce are dropped here.
        let mut updates = Vec::new();
        let mut update_items = Vec::new();
        for mut item in batch.drain(..) {
            let Some(now_values) = current.get(&item.record_id) else {
                self.drop_item(&mut item, counts).await?;
                continue;
            };
            let proposed = item
                .pending_write
                .as_ref()
                .map(|w| w.fields.clone())
                .unwrap_or_default();
            let changes = self.plan_changes(
                &object_sync,
                &proposed,
                now_values,
                written_before.get(&item.record_id),
            );
            // Fields that already hold the proposed value count as ours too: after a kill
            // between a write and its commit, the repeat finds them unchanged.
            let mut to_write = Map::new();
            let mut already = Map::new();
            for change in changes {
                match change.decision {
                    map::Decision::Write => to_write.insert(change.field, change.proposed),
                    map::Decision::Unchanged => already.insert(change.field, change.proposed),
                    map::Decision::KeepPersonEdit | map::Decision::KeepFilled => None,
                };
            }
            if to_write.is_empty() {
                self.finish_write(&mut item, &already, counts).await?;
                continue;
            }
            updates.push(RecordUpdate {
                object_type: object.clone(),
                id: item.record_id.clone(),
                fields: to_write,
            });
            update_items.push((item, already));
        }
        if updates.is_empty() {
            return Ok(());
        }

        // 3. One Collections call; each record's outcome decides its fate.
        bump(counts, &object_sync, |c| c.salesforce_calls += 1);
        let outcomes = match self.salesforce.update(&updates).await {
            Ok(outcomes) => outcomes,
            Err(e) => {
                let items = update_items.into_iter().map(|(item, _)| item).collect();
                return self.batch_failed(items, e.into(), counts).await;
            }
        };
        self.salesforce_guard.observe(&self.salesforce);
        metrics::counter!("kernel_sync_salesforce_write_calls_total").increment(1);
        let pairs = update_items.into_iter().zip(updates).zip(outcomes);
        for (((mut item, mut ours), update), outcome) in pairs {
            match outcome {
                RecordOutcome::Written => {
                    ours.extend(update.fields);
                    self.finish_write(&mut item, &ours, counts).await?;
                }
                RecordOutcome::Gone => self.drop_item(&mut item, counts).await?,
                RecordOutcome::Retryable { code, message } => {
                    self.retry_write(&mut item, format!("{code}: {message}"), counts)
                        .await?;
                }
                RecordOutcome::Rejected {
                    status_code,
                    message,
                    fields,
                } => {
                    let is_final = item.pending_write.as_ref().is_some_and(|w| w.is_final);
                    let fields = if fields.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", fields.join(", "))
                    };
                    let reason =
                        format!("salesforce rejected the update: {status_code}: {message}{fields}");
                    if is_final {
                        tracing::error!(
                            object_sync = %item.object_sync,
                            record_id = %item.record_id,
                            code = %status_code,
                            "salesforce rejected a record's update; parked"
                        );
                        self.park(&mut item, reason, counts).await?;
                    } else {
                        // The early write of fast fields failed; the final write tries again
                        // with every field and parks the record if it fails then.
                        item.pending_write = None;
                        item.fast_written = true;
                        self.store.save(&item).await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn finish_write(
        &self,
        item: &mut WorkItem,
        written: &Map<String, Value>,
        counts: &CountsHandle,
    ) -> Result<(), PipelineError> {
        let is_final = item.pending_write.as_ref().is_none_or(|w| w.is_final);
        item.pending_write = None;
        item.write_attempts = 0;
        item.reason = None;
        if is_final {
            item.state = ItemState::Written;
            // The inputs changed while Kernel worked on the old ones: enrich again.
            if item.enriched_fingerprint.as_deref() != Some(item.fingerprint.as_str()) {
                item.state = ItemState::Pending;
                item.force = true;
                item.execution_id = None;
                item.next_action_at = now_ms();
            }
        } else {
            item.fast_written = true;
        }
        self.store.save_written(item, written).await?;
        if is_final {
            bump(counts, &item.object_sync, |c| c.written += 1);
            metrics::counter!("kernel_sync_records_written_total").increment(1);
        }
        Ok(())
    }

    async fn drop_item(
        &self,
        item: &mut WorkItem,
        counts: &CountsHandle,
    ) -> Result<(), PipelineError> {
        if item.state == ItemState::Open {
            self.kernel.budget().release_slot();
        }
        item.state = ItemState::Dropped;
        item.pending_write = None;
        item.reason = Some("record deleted in salesforce".into());
        self.store.save(item).await?;
        bump(counts, &item.object_sync, |c| c.dropped += 1);
        Ok(())
    }

    async fn retry_write(
        &self,
        item: &mut WorkItem,
        reason: String,
        counts: &CountsHandle,
    ) -> Result<(), PipelineError> {
        let is_final = item.pending_write.as_ref().is_some_and(|w| w.is_final);
        if !is_final {
            // A failed early write is not retried: the final write carries the same fields.
            item.pending_write = None;
            self.store.save(item).await?;
            return Ok(());
        }
        item.write_attempts = item.write_attempts.saturating_add(1);
        if !Self::may_retry_write(item) {
            let reason = format!("write failed {} times, last: {reason}", item.write_attempts);
            return self.park(item, reason, counts).await;
        }
        let backoff = 1_000i64.saturating_mul(1 << item.write_attempts.min(10));
        item.reason = Some(reason);
        item.next_action_at = now_ms() + backoff;
        self.store.save(item).await?;
        Ok(())
    }

    /// The whole call failed: every item waits and is tried again, unless an operator must
    /// act or the call can never succeed.
    async fn batch_failed(
        &self,
        items: Vec<WorkItem>,
        error: PipelineError,
        counts: &CountsHandle,
    ) -> Result<(), PipelineError> {
        let permanent =
            matches!(&error, PipelineError::Salesforce(e) if e.kind() == SfErrorKind::Permanent);
        for mut item in items {
            if permanent {
                self.retry_write(&mut item, error.to_string(), counts)
                    .await?;
            } else {
                item.next_action_at = now_ms() + 5_000;
                item.reason = Some(error.to_string());
                self.store.save(&item).await?;
            }
        }
        Err(error)
    }
}
