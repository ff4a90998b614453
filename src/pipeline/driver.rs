//! Dispatch and poll, and the loop that drives every stage after harvest.
//!
//! The driver owns the in-memory view of what is in flight. Each turn it starts, in this
//! order: polls that are due (finishing executions frees slots), one submission when a slot
//! is free, and a write-back batch when one is full or has waited long enough. Every outcome
//! is saved to the store before the next turn uses it.
//!
//! Submissions go one at a time: a kill can then catch at most one POST between Kernel's
//! answer and our commit, so a restart costs at most one repeated POST (which Kernel answers
//! with the running execution).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Engine, PipelineError, map};
use crate::kernel::{
    CompanyInputs, EnrichmentRequest, ErrorKind as KernelErrorKind, PollAnswer, PollDecision,
    PollStatus, SubmitStatus, next_poll,
};
use crate::store::{ItemState, Millis, PendingWrite, WorkItem, now_ms};

/// How many polls may be in flight at once (the request budget paces them anyway).
const MAX_CONCURRENT_POLLS: usize = 16;

/// Write-back batches are at most this many records: one sObject Collections call.
pub const WRITE_BATCH: usize = 200;

/// A write that failed transiently is tried this many times before the item is parked.
const MAX_WRITE_ATTEMPTS: u32 = 5;

/// Outcomes counted per object sync while driving.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriveCounts {
    /// Executions submitted.
    pub submitted: u64,
    /// Records written (final write).
    pub written: u64,
    /// Records parked.
    pub parked: u64,
    /// Records dropped (deleted in Salesforce).
    pub dropped: u64,
    /// Kernel calls answered (submits and polls).
    pub kernel_reached: u64,
    /// Kernel calls that failed for good after their retries (unreachable, overloaded).
    pub kernel_unreachable: u64,
    /// Salesforce calls of write-back (reads before writing, Collections updates).
    pub salesforce_calls: u64,
}

/// When a drive stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveUntil {
    /// When no item of the driven object syncs is active, or at the deadline.
    Idle {
        /// Stop here even with work left (it stays in the store for the next pass).
        deadline: Option<Instant>,
    },
    /// Only on shutdown (the daemon).
    Shutdown,
}

/// How a drive ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveEnd {
    /// Every item reached a final state.
    Idle,
    /// The deadline passed with work left.
    Deadline,
    /// Shutdown was asked for.
    Shutdown,
    /// The configured share of the org's daily API allowance is spent: nothing more can be
    /// written in this pass, so a pass stops instead of waiting (its work stays in the store).
    SalesforceBudgetSpent,
}

enum TaskDone {
    Submitted {
        item_id: i64,
        result: Result<(), PipelineError>,
    },
    Polled {
        item_id: i64,
        result: Result<(), PipelineError>,
    },
    Wrote {
        item_ids: Vec<i64>,
        result: Result<(), PipelineError>,
    },
}

/// A live view of the counts, shared with progress displays and metrics.
pub type CountsHandle = std::sync::Arc<std::sync::Mutex<HashMap<String, DriveCounts>>>;

impl Engine {
    /// Runs dispatch, poll and write-back over `object_syncs` until `until` says stop.
    ///
    /// # Errors
    ///
    /// A failure an operator must fix (credentials refused), or a store failure.
    pub async fn drive(
        &self,
        object_syncs: &[String],
        until: DriveUntil,
        mut shutdown: watch::Receiver<bool>,
        counts: CountsHandle,
    ) -> Result<DriveEnd, PipelineError> {
        let mut tasks: JoinSet<TaskDone> = JoinSet::new();
        let mut busy: HashSet<i64> = HashSet::new();
        let mut polling = 0usize;
        let mut submitting = false;
        let mut writing = false;
        // Step failures are retried; the first of a run of them warns, the rest are debug.
        let mut troubled = false;
        let write_delay = self.settings.salesforce.write_batch_delay;

        loop {
            if *shutdown.borrow() {
                return Ok(self.wind_down(tasks, writing).await);
            }
            let now = now_ms();
            // A pass cannot write while the daily share is spent: it starts nothing new and
            // ends once its tasks are done. The daemon waits, re-reading the usage (below).
            let budget_spent =
                matches!(until, DriveUntil::Idle { .. }) && self.salesforce_guard.is_paused();
            if budget_spent && tasks.is_empty() {
                tracing::warn!(
                    "salesforce daily api share spent: the pass ends, its work stays queued"
                );
                return Ok(DriveEnd::SalesforceBudgetSpent);
            }

            // The daemon waits out a spent share, reading the usage now and then.
            if matches!(until, DriveUntil::Shutdown) {
                self.salesforce_guard.recheck(&self.salesforce).await;
            }

            // 1. Due polls first: finishing executions frees slots for new ones.
            if polling < MAX_CONCURRENT_POLLS && !budget_spent {
                // Ask for enough to fill the room even when some due items are busy.
                let limit = u32::try_from(MAX_CONCURRENT_POLLS + busy.len()).unwrap_or(u32::MAX);
                for item in self.store.due_polls(object_syncs, now, limit).await? {
                    if polling >= MAX_CONCURRENT_POLLS {
                        break;
                    }
                    // An item with an early write of its fast fields pending is written before
                    // it is polled again (unless writes are paused): polling it first would
                    // keep it busy at every turn until completion replaced the early write.
                    if item.pending_write.is_some() && !self.salesforce_guard.is_paused() {
                        continue;
                    }
                    if busy.insert(item.id) {
                        polling += 1;
                        let engine = self.clone();
                        let counts = counts.clone();
                        tasks.spawn(async move {
                            let item_id = item.id;
                            let result = engine.poll_one(item, &counts).await;
                            TaskDone::Polled { item_id, result }
                        });
                    }
                }
            }

            // 2. One submission at a time, when a slot is free.
            if !submitting && !budget_spent && self.kernel.budget().try_take_slot() {
                match self.store.claim_pending(object_syncs, now).await? {
                    Some(item) => {
                        submitting = true;
                        busy.insert(item.id);
                        let engine = self.clone();
                        let counts = counts.clone();
                        tasks.spawn(async move {
                            let item_id = item.id;
                            let result = engine.submit_one(item, &counts).await;
                            TaskDone::Submitted { item_id, result }
                        });
                    }
                    None => self.kernel.budget().release_slot(),
                }
            }

            // 3. Write-back: a full batch, or one that waited long enough, or the last one.
            if !writing && !self.salesforce_guard.is_paused() {
                let due = self
                    .store
                    .due_writes(
                        object_syncs,
                        now,
                        u32::try_from(WRITE_BATCH * 2).unwrap_or(400),
                    )
                    .await?;
                let due: Vec<WorkItem> =
                    due.into_iter().filter(|i| !busy.contains(&i.id)).collect();
                if let Some(batch) = self
                    .pick_write_batch(due, now, write_delay, object_syncs)
                    .await?
                {
                    writing = true;
                    let ids: Vec<i64> = batch.iter().map(|i| i.id).collect();
                    busy.extend(ids.iter().copied());
                    let engine = self.clone();
                    let counts = counts.clone();
                    tasks.spawn(async move {
                        let result = engine.write_batch(batch, &counts).await;
                        TaskDone::Wrote {
                            item_ids: ids,
                            result,
                        }
                    });
                }
            }

            // 4. Finished?
            if tasks.is_empty() {
                if let DriveUntil::Idle { deadline } = until {
                    if self.store.active_count(object_syncs).await? == 0 {
                        return Ok(DriveEnd::Idle);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(DriveEnd::Deadline);
                    }
                }
            } else if let DriveUntil::Idle { deadline: Some(d) } = until
                && Instant::now() >= d
            {
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return Ok(DriveEnd::Deadline);
            }

            // 5. Wait for a task to finish, the next due item, or shutdown.
            let slot_free = self.kernel.budget().open() < self.kernel.budget().slots();
            let wake = self
                .next_wake(object_syncs, slot_free && !submitting)
                .await?;
            tokio::select! {
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    let done = match done {
                        Ok(done) => done,
                        Err(join) if join.is_cancelled() => continue,
                        Err(join) => std::panic::resume_unwind(join.into_panic()),
                    };
                    let (ids, result) = match done {
                        TaskDone::Submitted { item_id, result } => {
                            submitting = false;
                            (vec![item_id], result)
                        }
                        TaskDone::Polled { item_id, result } => {
                            polling -= 1;
                            (vec![item_id], result)
                        }
                        TaskDone::Wrote { item_ids, result } => {
                            writing = false;
                            (item_ids, result)
                        }
                    };
                    for id in ids {
                        busy.remove(&id);
                    }
                    match result {
                        Ok(()) => troubled = false,
                        Err(e) if e.needs_operator() || matches!(e, PipelineError::Store(_)) => {
                            tasks.abort_all();
                            return Err(e);
                        }
                        Err(e) if troubled => {
                            tracing::debug!(error = %e, "pipeline step failed; it will be retried");
                        }
                        Err(e) => {
                            troubled = true;
                            tracing::warn!(error = %e, "pipeline step failed; it will be retried");
                        }
                    }
                }
                () = tokio::time::sleep_until(wake) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Waits (a few seconds at most) for the write in hand so it is committed, then drops
    /// everything else: the store already holds the state of polls and submissions.
    async fn wind_down(&self, mut tasks: JoinSet<TaskDone>, writing: bool) -> DriveEnd {
        if writing {
            let deadline = Instant::now() + Duration::from_secs(5);
            while let Ok(Some(done)) = tokio::time::timeout_at(deadline, tasks.join_next()).await {
                if matches!(done, Ok(TaskDone::Wrote { .. })) {
                    break;
                }
            }
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        DriveEnd::Shutdown
    }

    /// When the loop should look again: at the next due item (pending ones only when a
    /// submission could start), and at least twice a second.
    async fn next_wake(
        &self,
        object_syncs: &[String],
        can_submit: bool,
    ) -> Result<Instant, PipelineError> {
        let cap = Instant::now() + Duration::from_millis(500);
        let Some(at) = self.store.next_action_at(object_syncs, can_submit).await? else {
            return Ok(cap);
        };
        let wait = u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0);
        Ok(cap.min(Instant::now() + Duration::from_millis(wait.max(20))))
    }

    /// Chooses the next write batch from due items: one object sync's items, up to
    /// [`WRITE_BATCH`], once full, or once the oldest waited `delay`, or when nothing else
    /// of these object syncs can add to it.
    async fn pick_write_batch(
        &self,
        due: Vec<WorkItem>,
        now: Millis,
        delay: Duration,
        object_syncs: &[String],
    ) -> Result<Option<Vec<WorkItem>>, PipelineError> {
        let Some(first) = due.first() else {
            return Ok(None);
        };
        let sync = first.object_sync.clone();
        let batch: Vec<WorkItem> = due
            .into_iter()
            .filter(|i| i.object_sync == sync)
            .take(WRITE_BATCH)
            .collect();
        // An item is ready since its last change (the early write of an open execution's fast
        // fields is due at once, not at its next poll).
        let oldest = batch
            .iter()
            .map(|i| i.updated_at.min(i.next_action_at))
            .min()
            .unwrap_or(now);
        let waited = u128::try_from(now.saturating_sub(oldest)).unwrap_or(0) >= delay.as_millis();
        let full = batch.len() >= WRITE_BATCH;
        let last = !full && !waited && {
            let active = self.store.active_count(object_syncs).await?;
            active <= u64::try_from(batch.len()).unwrap_or(u64::MAX)
        };
        Ok((full || waited || last).then_some(batch))
    }

    /// Submits one claimed item and saves the outcome.
    async fn submit_one(
        &self,
        mut item: WorkItem,
        counts: &CountsHandle,
    ) -> Result<(), PipelineError> {
        let inputs = CompanyInputs {
            name: item.inputs.name.clone(),
            website: item.inputs.website.clone(),
            linkedin_url: item.inputs.linkedin_url.clone(),
            email_domain: item.inputs.email_domain.clone(),
        };
        let request = match EnrichmentRequest::for_salesforce(&item.record_id, inputs, item.force) {
            Ok(request) => request,
            Err(e) => {
                self.kernel.budget().release_slot();
                item.state = ItemState::Skipped;
                item.reason = Some(e.to_string());
                self.store.save(&item).await?;
                return Ok(());
            }
        };

        let started = now_ms();
        match self.kernel.submit(&request).await {
            Ok(answer) => {
                let cadence = &self.settings.kernel.poll;
                item.state = ItemState::Open;
                item.submitted_fingerprint = Some(item.fingerprint.clone());
                item.execution_id = Some(answer.execution_id.0);
                item.submitted_at = Some(started);
                item.polls = 0;
                item.reason = None;
                item.last_status = Some(submit_status_name(answer.status).to_owned());
                // A cached answer is complete already: look at once.
                item.next_action_at = match answer.status {
                    SubmitStatus::Cached => now_ms(),
                    _ => now_ms() + millis(cadence.first),
                };
                self.store.save(&item).await?;
                bump(counts, &item.object_sync, |c| {
                    c.submitted += 1;
                    c.kernel_reached += 1;
                });
                let status = submit_status_name(answer.status);
                metrics::counter!("kernel_sync_executions_submitted_total", "status" => status)
                    .increment(1);
                Ok(())
            }
            Err(e) => {
                self.kernel.budget().release_slot();
                if e.is_transient() {
                    bump(counts, &item.object_sync, |c| c.kernel_unreachable += 1);
                }
                match e.kind() {
                    KernelErrorKind::Rejected | KernelErrorKind::InvalidInput => {
                        self.park(
                            &mut item,
                            format!("kernel refused the request: {e}"),
                            counts,
                        )
                        .await
                    }
                    KernelErrorKind::Unauthorized => {
                        item.state = ItemState::Pending;
                        self.store.save(&item).await?;
                        Err(e.into())
                    }
                    _ => {
                        item.state = ItemState::Pending;
                        item.reason = Some(e.to_string());
                        item.next_action_at = now_ms() + millis(self.settings.kernel.poll.first);
                        self.store.save(&item).await?;
                        Err(e.into())
                    }
                }
            }
        }
    }

    /// Polls one open execution and saves what it learned.
    async fn poll_one(
        &self,
        mut item: WorkItem,
        counts: &CountsHandle,
    ) -> Result<(), PipelineError> {
        let Some(execution) = item.execution_id else {
            // An open item always has an executionId; repair by submitting again.
            item.state = ItemState::Pending;
            self.store.save(&item).await?;
            return Ok(());
        };
        let answer = match self
            .kernel
            .poll(crate::kernel::ExecutionId(execution))
            .await
        {
            Ok(answer) => answer,
            Err(e) if e.kind() == KernelErrorKind::Unauthorized => return Err(e.into()),
            Err(e) => {
                if e.is_transient() {
                    bump(counts, &item.object_sync, |c| c.kernel_unreachable += 1);
                }
                item.reason = Some(e.to_string());
                item.next_action_at = now_ms() + millis(self.settings.kernel.poll.first);
                self.store.save(&item).await?;
                return Err(e.into());
            }
        };
        bump(counts, &item.object_sync, |c| c.kernel_reached += 1);
        item.polls = item.polls.saturating_add(1);
        item.last_status = Some(poll_status_name(answer.status).to_owned());
        item.reason = None;
        match answer.status {
            PollStatus::Complete => self.complete(item, answer, counts).await,
            PollStatus::Failed => self.execution_failed(item, answer, counts).await,
            PollStatus::Processing | PollStatus::FastSuccess => {
                self.still_running(item, answer, counts).await
            }
        }
    }

    async fn still_running(
        &self,
        mut item: WorkItem,
        answer: PollAnswer,
        counts: &CountsHandle,
    ) -> Result<(), PipelineError> {
        let plan = self.plan(&item.object_sync);
        let fast = answer.status == PollStatus::FastSuccess;
        if let Some(plan) = plan.filter(|p| fast && p.sync.write_fast_fields)
            && !item.fast_written
            && item.pending_write.is_none()
        {
            let proposal = map::propose(&plan.sync.fields, &plan.describe, &answer.fields);
            if !proposal.values.is_empty() {
                item.pending_write = Some(PendingWrite {
                    fields: proposal.values,
                    is_final: false,
                });
            }
        }
        item.payload = Some(answer.fields);

        let age = Duration::from_millis(
            u64::try_from(now_ms().saturating_sub(item.submitted_at.unwrap_or_else(now_ms)))
                .unwrap_or(0),
        );
        let jitter: f64 = rand::rng().random();
        match next_poll(age, item.polls, answer.status, &self.cadence, jitter) {
            PollDecision::After(wait) => {
                item.next_action_at = now_ms() + millis(wait);
                self.store.save(&item).await?;
                Ok(())
            }
            PollDecision::GiveUp => {
                self.kernel.budget().release_slot();
                let status = item.last_status.clone().unwrap_or_default();
                let reason = format!(
                    "kernel execution {} still {status} after {}: timed out",
                    item.execution_id.unwrap_or_default(),
                    humanize(age)
                );
                self.park(&mut item, reason, counts).await
            }
        }
    }

    async fn complete(
        &self,
        mut item: WorkItem,
        answer: PollAnswer,
        counts: &CountsHandle,
    ) -> Result<(), PipelineError> {
        self.kernel.budget().release_slot();
        if let Some(submitted) = item.submitted_at {
            let seconds = (now_ms().saturating_sub(submitted)) as f64 / 1000.0;
            metrics::histogram!("kernel_sync_enrichment_duration_seconds").record(seconds);
        }
        let Some(plan) = self.plan(&item.object_sync) else {
            return self
                .park(&mut item, "object sync no longer configured".into(), counts)
                .await;
        };
        let proposal = map::propose(&plan.sync.fields, &plan.describe, &answer.fields);
        if !proposal.notes.is_empty() {
            // The notes quote values; only the fields they concern reach the log.
            let fields: Vec<&str> = proposal
                .notes
                .iter()
                .filter_map(|n| n.split(':').next())
                .collect();
            tracing::debug!(
                record_id = %item.record_id,
                fields = ?fields,
                "mapped values left out or cut"
            );
        }
        item.payload = Some(answer.fields);
        item.enriched_fingerprint = Some(
            item.submitted_fingerprint
                .clone()
                .unwrap_or_else(|| item.fingerprint.clone()),
        );
        item.enriched_at = Some(now_ms());
        item.force = false;
        item.state = ItemState::Writing;
        item.pending_write = Some(PendingWrite {
            fields: proposal.values,
            is_final: true,
        });
        item.next_action_at = now_ms();
        self.store.save(&item).await?;
        Ok(())
    }

    async fn execution_failed(
        &self,
        mut item: WorkItem,
        answer: PollAnswer,
        counts: &CountsHandle,
    ) -> Result<(), PipelineError> {
        self.kernel.budget().release_slot();
        item.attempts = item.attempts.saturating_add(1);
        let message = answer.message.unwrap_or_else(|| "no message".into());
        let max = self
            .plan(&item.object_sync)
            .map_or(3, |p| p.sync.max_attempts);
        if item.attempts >= max {
            let reason = format!(
                "kernel execution failed {} times, last: {message}",
                item.attempts
            );
            return self.park(&mut item, reason, counts).await;
        }
        let cadence = &self.settings.kernel.poll;
        let backoff = cadence
            .first
            .saturating_mul(2u32.saturating_pow(item.attempts))
            .min(cadence.max_interval);
        tracing::debug!(
            record_id = %item.record_id,
            attempts = item.attempts,
            "kernel execution failed; retrying later"
        );
        item.state = ItemState::Pending;
        item.execution_id = None;
        item.pending_write = None;
        item.fast_written = false;
        item.reason = Some(format!("kernel execution failed: {message}"));
        item.next_action_at = now_ms() + millis(backoff);
        self.store.save(&item).await?;
        Ok(())
    }

    /// Parks an item with its reason (an operator's `retry` brings it back).
    pub(crate) async fn park(
        &self,
        item: &mut WorkItem,
        reason: String,
        counts: &CountsHandle,
    ) -> Result<(), PipelineError> {
        tracing::debug!(
            object_sync = %item.object_sync,
            record_id = %item.record_id,
            reason = %reason,
            "work item parked"
        );
        item.state = ItemState::Parked;
        item.reason = Some(reason);
        self.store.save(item).await?;
        bump(counts, &item.object_sync, |c| c.parked += 1);
        metrics::counter!("kernel_sync_records_parked_total").increment(1);
        Ok(())
    }

    /// Whether an item's write may be retried once more.
    pub(crate) fn may_retry_write(item: &WorkItem) -> bool {
        item.write_attempts < MAX_WRITE_ATTEMPTS
    }
}

/// Adds to one object sync's live counts.
pub(crate) fn bump(counts: &CountsHandle, object_sync: &str, f: impl FnOnce(&mut DriveCounts)) {
    if let Ok(mut counts) = counts.lock() {
        f(counts.entry(object_sync.to_owned()).or_default());
    }
}

pub(crate) fn millis(d: Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn humanize(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}h", secs / 3600)
    } else if secs >= 60 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

fn submit_status_name(status: SubmitStatus) -> &'static str {
    match status {
        SubmitStatus::Starting => "starting",
        SubmitStatus::Cached => "cached",
        SubmitStatus::InProgress => "in_progress",
    }
}

fn poll_status_name(status: PollStatus) -> &'static str {
    match status {
        PollStatus::Processing => "processing",
        PollStatus::FastSuccess => "fast-success",
        PollStatus::Complete => "complete",
        PollStatus::Failed => "error",
    }
}
