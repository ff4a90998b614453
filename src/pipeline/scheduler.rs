//! Passes and schedules: one pass for `once`, cron-driven harvests for the daemon.
//!
//! A pass harvests every selected object sync, then drives the pipeline until each work item
//! is written, skipped, parked or dropped, or until the deadline. The daemon harvests each
//! object sync on its own cron schedule (skipping a tick while the previous harvest of that
//! object still runs) and drives the pipeline continuously.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_cron_scheduler::{Job, JobScheduler};

use super::driver::{CountsHandle, DriveCounts, DriveEnd, DriveUntil};
use super::{Engine, PipelineError};
use crate::store::{ItemState, RunCounts};

/// The result of one pass over some object syncs.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// Per object sync: harvest counts merged with what the drive did.
    pub objects: Vec<ObjectReport>,
    /// How the drive ended (`None` when harvest failed before it).
    pub end: Option<DriveEnd>,
}

/// One object sync's share of a pass.
#[derive(Debug, Clone, Default)]
pub struct ObjectReport {
    /// The object sync.
    pub name: String,
    /// The counts.
    pub counts: RunCounts,
    /// Executions submitted.
    pub submitted: u64,
    /// Items still active when the pass ended (deadline or shutdown).
    pub left_active: u64,
    /// Why the harvest failed, if it did.
    pub harvest_error: Option<String>,
}

impl PassReport {
    /// Whether every record of the pass made it (nothing parked, nothing left, no failure).
    pub fn all_made_it(&self) -> bool {
        self.objects
            .iter()
            .all(|o| o.counts.parked == 0 && o.left_active == 0 && o.harvest_error.is_none())
    }
}

impl Engine {
    /// Prepares the store for this process: items caught mid-POST by a crash go back to
    /// pending, and executions still open take their slots.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn resume(&self) -> Result<(), PipelineError> {
        let recovered = self.store.recover_interrupted().await?;
        let open = self.store.open_executions().await?;
        self.kernel
            .budget()
            .adopt_open(u32::try_from(open).unwrap_or(u32::MAX));
        if recovered > 0 || open > 0 {
            tracing::info!(
                recovered,
                open_executions = open,
                "resuming work left by a previous process"
            );
        }
        Ok(())
    }

    /// One pass: harvest each object sync, then drive until idle, `max_wait`, or shutdown.
    ///
    /// # Errors
    ///
    /// A failure an operator must fix (credentials, permissions) or a store failure. A
    /// harvest that fails otherwise is reported in its object's row and the pass goes on.
    pub async fn run_pass(
        &self,
        names: &[String],
        max_wait: Option<Duration>,
        shutdown: watch::Receiver<bool>,
        counts: CountsHandle,
    ) -> Result<PassReport, PipelineError> {
        self.resume().await?;
        let deadline = max_wait.map(|w| Instant::now() + w);
        let mut report = PassReport::default();
        let mut runs = HashMap::new();

        for name in names {
            let Some(plan) = self.plan(name) else {
                continue;
            };
            let run_id = self.store.start_run(name).await?;
            runs.insert(name.clone(), run_id);
            let started = Instant::now();
            let mut object = ObjectReport {
                name: name.clone(),
                ..ObjectReport::default()
            };
            match self.harvest(plan, run_id).await {
                Ok(counts) => object.counts = counts,
                Err(e) if e.needs_operator() => return Err(e),
                Err(e) => {
                    tracing::error!(object_sync = %name, error = %e, "harvest failed");
                    object.harvest_error = Some(e.to_string());
                }
            }
            metrics::gauge!("kernel_sync_harvest_duration_seconds", "object_sync" => name.clone())
                .set(started.elapsed().as_secs_f64());
            tracing::info!(
                object_sync = %name,
                harvested = object.counts.harvested,
                queued = object.counts.queued,
                skipped = object.counts.skipped,
                unchanged = object.counts.unchanged,
                "harvest finished"
            );
            report.objects.push(object);
        }

        let end = if *shutdown.borrow() {
            DriveEnd::Shutdown
        } else {
            self.drive(
                names,
                DriveUntil::Idle { deadline },
                shutdown,
                counts.clone(),
            )
            .await?
        };
        report.end = Some(end.clone());
        self.record_api_usage().await?;

        let drive: HashMap<String, DriveCounts> =
            counts.lock().map(|c| c.clone()).unwrap_or_default();
        for object in &mut report.objects {
            let done = drive.get(&object.name).cloned().unwrap_or_default();
            object.counts.written = done.written;
            object.counts.parked = done.parked;
            object.counts.dropped = done.dropped;
            object.submitted = done.submitted;
            object.left_active = self
                .store
                .active_count(std::slice::from_ref(&object.name))
                .await?;
            let outcome = match (&end, &object.harvest_error) {
                (_, Some(e)) => format!("failed: {e}"),
                (DriveEnd::Idle, None) if object.counts.parked == 0 => "complete".to_owned(),
                (DriveEnd::Idle, None) => "partial".to_owned(),
                (DriveEnd::Deadline, None) => "deadline".to_owned(),
                (DriveEnd::Shutdown, None) => "interrupted".to_owned(),
                (DriveEnd::SalesforceBudgetSpent, None) => "salesforce budget spent".to_owned(),
            };
            if let Some(run_id) = runs.get(&object.name) {
                self.store
                    .finish_run(*run_id, &outcome, &object.counts)
                    .await?;
            }
            tracing::info!(
                object_sync = %object.name,
                outcome = %outcome,
                harvested = object.counts.harvested,
                queued = object.counts.queued,
                skipped = object.counts.skipped,
                written = object.counts.written,
                parked = object.counts.parked,
                dropped = object.counts.dropped,
                left_active = object.left_active,
                "run finished"
            );
        }
        Ok(report)
    }

    /// The daemon: harvests every object sync on its cron schedule and drives the pipeline
    /// until shutdown.
    ///
    /// # Errors
    ///
    /// The scheduler could not start, a schedule did not parse, or the drive failed in a
    /// way an operator must fix.
    pub async fn run_daemon(
        &self,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), PipelineError> {
        self.resume().await?;
        let names: Vec<String> = self.plans.iter().map(|p| p.sync.name.clone()).collect();
        let (tick_tx, mut tick_rx) = mpsc::channel::<String>(names.len().max(1) * 2);

        let mut scheduler = JobScheduler::new().await.map_err(scheduler_error)?;
        for plan in self.plans.iter() {
            let name = plan.sync.name.clone();
            let tx = tick_tx.clone();
            let job = Job::new_async(plan.sync.schedule.as_str(), move |_id, _sched| {
                let tx = tx.clone();
                let name = name.clone();
                Box::pin(async move {
                    // A full channel means ticks are piling up behind a slow harvest: the
                    // running harvest covers them.
                    let _ = tx.try_send(name);
                })
            })
            .map_err(scheduler_error)?;
            scheduler.add(job).await.map_err(scheduler_error)?;
        }
        scheduler.start().await.map_err(scheduler_error)?;
        tracing::info!(object_syncs = names.len(), "scheduler started");

        let counts = CountsHandle::default();
        let driver = {
            let engine = self.clone();
            let names = names.clone();
            let shutdown = shutdown.clone();
            let counts = counts.clone();
            tokio::spawn(async move {
                engine
                    .drive(&names, DriveUntil::Shutdown, shutdown, counts)
                    .await
            })
        };

        let running: Arc<HashMap<String, AtomicBool>> = Arc::new(
            names
                .iter()
                .map(|n| (n.clone(), AtomicBool::new(false)))
                .collect(),
        );
        let mut harvests = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                Some(name) = tick_rx.recv() => {
                    let Some(flag) = running.get(&name) else { continue };
                    if flag.swap(true, Ordering::SeqCst) {
                        tracing::info!(object_sync = %name, "tick skipped: the previous harvest is still running");
                        continue;
                    }
                    let engine = self.clone();
                    let running = running.clone();
                    harvests.spawn(async move {
                        engine.scheduled_harvest(&name).await;
                        if let Some(flag) = running.get(&name) {
                            flag.store(false, Ordering::SeqCst);
                        }
                    });
                }
                Some(_) = harvests.join_next(), if !harvests.is_empty() => {}
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break; }
                }
            }
        }

        tracing::info!("shutting down: harvests stop, the write in hand finishes");
        harvests.abort_all();
        let _ = scheduler.shutdown().await;
        match driver.await {
            Ok(result) => result.map(|_| ()),
            Err(join) => {
                tracing::error!(error = %join, "pipeline driver ended abnormally");
                Ok(())
            }
        }
    }

    async fn scheduled_harvest(&self, name: &str) {
        let Some(plan) = self.plan(name) else { return };
        let run_id = match self.store.start_run(name).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(object_sync = %name, error = %e, "cannot record the run");
                return;
            }
        };
        let (outcome, counts) = match self.harvest(plan, run_id).await {
            Ok(counts) => ("harvested".to_owned(), counts),
            Err(e) => {
                tracing::error!(object_sync = %name, error = %e, "harvest failed");
                (format!("failed: {e}"), RunCounts::default())
            }
        };
        let parked = self
            .store
            .state_counts(name)
            .await
            .ok()
            .and_then(|c| c.get(&ItemState::Parked).copied())
            .unwrap_or(0);
        tracing::info!(
            object_sync = %name,
            outcome = %outcome,
            harvested = counts.harvested,
            queued = counts.queued,
            skipped = counts.skipped,
            unchanged = counts.unchanged,
            parked_total = parked,
            "run finished"
        );
        if let Err(e) = self.record_api_usage().await {
            tracing::warn!(error = %e, "cannot record the org's api usage");
        }
        if let Err(e) = self.store.finish_run(run_id, &outcome, &counts).await {
            tracing::error!(object_sync = %name, error = %e, "cannot record the run");
        }
    }
}

#[expect(clippy::needless_pass_by_value, reason = "used as a map_err function")]
fn scheduler_error(e: tokio_cron_scheduler::JobSchedulerError) -> PipelineError {
    PipelineError::Scheduler(e.to_string())
}
