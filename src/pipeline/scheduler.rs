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
    /// Salesforce or Kernel could not be reached: the harvest failed for that reason, or
    /// every Kernel call of the pass failed after its retries.
    pub unreachable: bool,
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
        if let Some((holder, expires)) = self.store.lease(ENGINE_LEASE).await?
            && expires > crate::store::now_ms()
        {
            return Err(PipelineError::DaemonRunning { holder });
        }
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
                    object.unreachable = e.is_unreachable();
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
            object.counts.salesforce_calls += done.salesforce_calls;
            object.counts.kernel_calls = done.kernel_reached + done.kernel_unreachable;
            object.unreachable |= done.kernel_reached == 0 && done.kernel_unreachable > 0;
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
                kernel_calls = object.counts.kernel_calls,
                salesforce_calls = object.counts.salesforce_calls,
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
        outer_shutdown: watch::Receiver<bool>,
    ) -> Result<(), PipelineError> {
        let holder = replica_name();
        let Some(lease) = self.wait_for_lease(&holder, outer_shutdown.clone()).await? else {
            return Ok(());
        };
        let mut shutdown = lease.stop.clone();
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
                        tracing::info!(
                            object_sync = %name,
                            "tick skipped: the previous harvest is still running"
                        );
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
        let driven = match driver.await {
            Ok(result) => result.map(|_| ()),
            Err(join) => {
                tracing::error!(error = %join, "pipeline driver ended abnormally");
                Ok(())
            }
        };
        lease.renewal.abort();
        if lease.lost.load(Ordering::SeqCst) {
            return Err(PipelineError::LeaseLost);
        }
        if let Err(e) = self.store.release_lease(ENGINE_LEASE, &holder).await {
            tracing::warn!(error = %e, "cannot release the engine lease; it expires by itself");
        }
        driven
    }

    /// Waits until this replica holds the engine lease (standing by while another holds
    /// it), then keeps renewing it. `None` when shutdown came first.
    async fn wait_for_lease(
        &self,
        holder: &str,
        mut outer: watch::Receiver<bool>,
    ) -> Result<Option<Lease>, PipelineError> {
        let mut said = false;
        while !self
            .store
            .try_lease(ENGINE_LEASE, holder, LEASE_TTL)
            .await?
        {
            if !said {
                tracing::info!("standing by: another kernel-sync process holds this store's lease");
                said = true;
            }
            tokio::select! {
                () = tokio::time::sleep(LEASE_RENEW) => {}
                _ = outer.changed() => {
                    if *outer.borrow() { return Ok(None); }
                }
            }
        }
        tracing::info!(holder, "engine lease taken");

        // One stop signal for the daemon: the operator's, or losing the lease.
        let (stop_tx, stop) = watch::channel(*outer.borrow());
        let lost = Arc::new(AtomicBool::new(false));
        let renewal = {
            let store = self.store.clone();
            let holder = holder.to_owned();
            let lost = lost.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(LEASE_RENEW) => {}
                        _ = outer.changed() => {
                            if *outer.borrow() { let _ = stop_tx.send(true); return; }
                            continue;
                        }
                    }
                    match store.try_lease(ENGINE_LEASE, &holder, LEASE_TTL).await {
                        Ok(true) => {}
                        Ok(false) | Err(_) => {
                            tracing::error!(
                                "engine lease lost: stopping so another replica can drive"
                            );
                            lost.store(true, Ordering::SeqCst);
                            let _ = stop_tx.send(true);
                            return;
                        }
                    }
                }
            })
        };
        Ok(Some(Lease {
            stop,
            lost,
            renewal,
        }))
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

/// The lease a daemon holds while it drives a store: two daemons on one store (replicas
/// sharing PostgreSQL, or two processes on one SQLite file) would submit the same records.
pub const ENGINE_LEASE: &str = "engine";

/// How long the engine lease lasts without renewal; a crashed daemon's successor waits at
/// most this long.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// How often the lease is renewed (and a standby replica tries to take it).
const LEASE_RENEW: Duration = Duration::from_secs(10);

/// A held engine lease.
struct Lease {
    /// Turns true on shutdown or when the lease is lost.
    stop: watch::Receiver<bool>,
    /// Whether the lease was lost.
    lost: Arc<AtomicBool>,
    /// The renewal task.
    renewal: tokio::task::JoinHandle<()>,
}

/// This process's name as a lease holder: host, process id and a random part.
fn replica_name() -> String {
    use rand::Rng;
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let tag: u32 = rand::rng().random();
    format!("{host}/{}/{tag:08x}", std::process::id())
}

#[expect(clippy::needless_pass_by_value, reason = "used as a map_err function")]
fn scheduler_error(e: tokio_cron_scheduler::JobSchedulerError) -> PipelineError {
    PipelineError::Scheduler(e.to_string())
}
