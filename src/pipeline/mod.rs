//! The five-stage pipeline: harvest, dispatch, poll, map, write-back.
//!
//! [`Engine`] holds what every stage needs: the checked settings, the state store, the two
//! clients and one [`ObjectPlan`] per object sync (its mapping checked against describe).
//! Harvest runs per object sync, on its schedule ([`scheduler`]) or once per pass; the
//! [`driver`] runs dispatch, poll and write-back continuously over the store, so that a
//! restart after a crash resumes from whatever the store holds.

pub mod connect;
pub mod driver;
pub mod harvest;
pub mod map;
pub mod scheduler;
pub mod writeback;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::{ObjectSync, Settings};
use crate::kernel::{KernelClient, KernelError};
use crate::salesforce::{ObjectDescribe, SalesforceClient, SalesforceError};
use crate::store::{Store, StoreError};

/// Why a pass or a stage stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Salesforce failed after its own retries (boxed: the error is large).
    #[error(transparent)]
    Salesforce(Box<SalesforceError>),
    /// Kernel failed after its own retries (boxed: the error is large).
    #[error(transparent)]
    Kernel(Box<KernelError>),
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A query could not be built.
    #[error("cannot build the harvest query: {0}")]
    Soql(#[from] crate::salesforce::soql::SoqlError),
    /// The configured share of the org's daily API allowance is used.
    #[error(
        "salesforce daily api usage is {used} of {max} calls, at or above the configured share \
         {share}: harvest and write-back wait until it recovers"
    )]
    SalesforceBudgetSpent {
        /// Calls used in the last 24 hours.
        used: u64,
        /// The org's allowance.
        max: u64,
        /// `salesforce.daily_api_share`.
        share: f64,
    },
    /// The cron scheduler failed to start or refused a schedule.
    #[error("scheduler: {0}")]
    Scheduler(String),
    /// A daemon holds this store's engine lease: a pass beside it would submit the same
    /// records.
    #[error(
        "a kernel-sync daemon ({holder}) is driving this state store: stop it, or let it do \
         the work instead of `once`"
    )]
    DaemonRunning {
        /// The lease holder (host/pid/tag).
        holder: String,
    },
    /// Another replica took the engine lease (this one could not renew it in time).
    #[error("the engine lease was lost to another replica; restarting stands this one by")]
    LeaseLost,
    /// A mapping does not fit the org (found by describe).
    #[error("object sync {object_sync} does not fit the org: {}", problems.join("; "))]
    Mapping {
        /// The object sync.
        object_sync: String,
        /// One message per problem.
        problems: Vec<String>,
    },
}

impl From<SalesforceError> for PipelineError {
    fn from(e: SalesforceError) -> Self {
        PipelineError::Salesforce(Box::new(e))
    }
}

impl From<KernelError> for PipelineError {
    fn from(e: KernelError) -> Self {
        PipelineError::Kernel(Box::new(e))
    }
}

impl PipelineError {
    /// Whether the other side could not be reached (or stayed overloaded) through every
    /// retry: the exit code of `once` tells that apart from parked records.
    pub fn is_unreachable(&self) -> bool {
        match self {
            PipelineError::Salesforce(e) => e.kind() == crate::salesforce::ErrorKind::Retryable,
            PipelineError::Kernel(e) => e.is_transient(),
            _ => false,
        }
    }

    /// Whether an operator must act (credentials, permissions): the pass stops at once.
    pub fn needs_operator(&self) -> bool {
        match self {
            PipelineError::Salesforce(e) => matches!(
                e.kind(),
                crate::salesforce::ErrorKind::Auth | crate::salesforce::ErrorKind::Config
            ),
            PipelineError::Kernel(e) => e.kind().needs_operator(),
            PipelineError::Mapping { .. } => true,
            _ => false,
        }
    }
}

/// One object sync, ready to run: its settings and the describe of its object.
#[derive(Debug, Clone)]
pub struct ObjectPlan {
    /// The object sync's settings.
    pub sync: ObjectSync,
    /// Describe of the object, for conversions (lengths, scales, picklists).
    pub describe: ObjectDescribe,
}

/// Stops harvest and write-back while the org's daily API usage is at or above the
/// configured share, and says so once per episode.
#[derive(Debug)]
pub struct SalesforceGuard {
    share: f64,
    paused: AtomicBool,
    /// When the usage was last read while paused (to see it recover).
    rechecked: std::sync::Mutex<Option<std::time::Instant>>,
}

/// While paused, how often the guard reads `/limits` to see whether usage recovered.
pub const RECHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl SalesforceGuard {
    /// A guard for `share` of the daily allowance.
    pub fn new(share: f64) -> Self {
        SalesforceGuard {
            share,
            paused: AtomicBool::new(false),
            rechecked: std::sync::Mutex::new(None),
        }
    }

    /// Whether calls are paused now.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Updates the pause from the usage the client saw last.
    pub fn observe(&self, client: &SalesforceClient) {
        let Some(usage) = client.api_usage() else {
            return;
        };
        let spent = usage.max > 0 && usage.used as f64 >= self.share * usage.max as f64;
        let was = self.paused.swap(spent, Ordering::Relaxed);
        if spent && !was {
            tracing::warn!(
                used = usage.used,
                max = usage.max,
                share = self.share,
                "salesforce daily api share reached: harvest and write-back paused"
            );
        } else if !spent && was {
            tracing::info!(
                used = usage.used,
                max = usage.max,
                "salesforce api usage recovered"
            );
        }
        metrics::gauge!("kernel_sync_salesforce_daily_api_usage_ratio").set(if usage.max > 0 {
            usage.used as f64 / usage.max as f64
        } else {
            0.0
        });
    }

    /// While paused, reads `/limits` (at most once per [`RECHECK_EVERY`]) so the pause
    /// ends once the rolling 24-hour usage falls below the share again.
    pub async fn recheck(&self, client: &SalesforceClient) {
        if !self.is_paused() {
            return;
        }
        {
            let mut last = self
                .rechecked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < RECHECK_EVERY) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        match client.limits().await {
            Ok(_) => self.observe(client),
            Err(e) => tracing::warn!(error = %e, "cannot read the org's limits"),
        }
    }

    /// Fails when calls are paused.
    ///
    /// # Errors
    ///
    /// [`PipelineError::SalesforceBudgetSpent`] while paused.
    pub fn check_with(&self, client: &SalesforceClient) -> Result<(), PipelineError> {
        if !self.is_paused() {
            return Ok(());
        }
        let usage = client
            .api_usage()
            .unwrap_or(crate::salesforce::ApiUsage { used: 0, max: 0 });
        Err(PipelineError::SalesforceBudgetSpent {
            used: usage.used,
            max: usage.max,
            share: self.share,
        })
    }
}

/// Everything the stages share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    /// Checked settings.
    pub settings: Arc<Settings>,
    /// The state store.
    pub store: Store,
    /// The Salesforce client (integration user).
    pub salesforce: SalesforceClient,
    /// The Kernel client (one API key).
    pub kernel: KernelClient,
    /// One plan per enabled object sync.
    pub plans: Arc<Vec<ObjectPlan>>,
    /// The daily API budget guard.
    pub salesforce_guard: Arc<SalesforceGuard>,
    /// The poll cadence.
    pub cadence: crate::kernel::CadenceSettings,
}

/// The observation under which the org's API usage is kept for `status` (`used/max`).
pub const SALESFORCE_USAGE: &str = "salesforce_api_usage";

impl Engine {
    /// Keeps the org's API usage, as the client last saw it, for `status`.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn record_api_usage(&self) -> Result<(), PipelineError> {
        if let Some(usage) = self.salesforce.api_usage() {
            let text = format!("{}/{}", usage.used, usage.max);
            self.store.observe(SALESFORCE_USAGE, &text).await?;
        }
        Ok(())
    }

    /// Lets a Salesforce call through unless the daily share is spent (re-reading the usage
    /// now and then while it is).
    ///
    /// # Errors
    ///
    /// [`PipelineError::SalesforceBudgetSpent`] while the share is spent.
    pub async fn salesforce_gate(&self) -> Result<(), PipelineError> {
        self.salesforce_guard.recheck(&self.salesforce).await;
        self.salesforce_guard.check_with(&self.salesforce)
    }

    /// The plan of an object sync by name.
    pub fn plan(&self, name: &str) -> Option<&ObjectPlan> {
        self.plans.iter().find(|p| p.sync.name == name)
    }
}

impl Engine {
    /// Builds an engine: authenticates as the integration user, describes every enabled
    /// object and checks its mapping against the describe.
    ///
    /// # Errors
    ///
    /// Credentials refused or Salesforce unreachable; every mapping problem of every object
    /// ([`PipelineError::Mapping`], one per object sync).
    pub async fn connect(
        settings: Arc<Settings>,
        store: Store,
        salesforce: SalesforceClient,
        kernel: KernelClient,
    ) -> Result<Engine, PipelineError> {
        // Authenticate first, so wrong credentials fail before any describe. The user id is
        // not kept: harvest does not filter on LastModifiedById (it would hide a person's
        // edit made while an execution was open); the input fingerprint is the guard.
        salesforce.identity().await?;
        let mut plans = Vec::new();
        for sync in settings.objects.iter().filter(|s| s.enabled) {
            let describe = salesforce.describe(&sync.object).await?;
            let problems = check_plan(sync, &describe);
            if !problems.is_empty() {
                return Err(PipelineError::Mapping {
                    object_sync: sync.name.clone(),
                    problems,
                });
            }
            plans.push(ObjectPlan {
                sync: sync.clone(),
                describe,
            });
        }
        let guard = Arc::new(SalesforceGuard::new(settings.salesforce.daily_api_share));
        guard.observe(&salesforce);
        Ok(Engine {
            cadence: connect::cadence(&settings.kernel.poll),
            settings,
            store,
            salesforce,
            kernel,
            plans: Arc::new(plans),
            salesforce_guard: guard,
        })
    }
}

/// Every problem of one object sync against its object's describe: the mapped fields (exist,
/// updateable, type fits) and the inputs (exist; only an email-typed field under
/// `inputs.email`, and never a phone, since only company data may leave the org).
pub fn check_plan(sync: &ObjectSync, describe: &ObjectDescribe) -> Vec<String> {
    use crate::salesforce::FieldType;

    let mut problems = map::check_mapping(&sync.fields, describe);
    let email_field = match &sync.inputs.email {
        Some(crate::config::EmailInput::Address(field)) => Some(field.as_str()),
        _ => None,
    };
    for field in sync.input_fields() {
        let Some(found) = describe.field(field) else {
            problems.push(format!(
                "input field {}.{field} does not exist (or the integration user cannot read it)",
                describe.name
            ));
            continue;
        };
        let is_email_input = email_field.is_some_and(|f| f.eq_ignore_ascii_case(field));
        match found.field_type {
            FieldType::Email if !is_email_input => problems.push(format!(
                "input field {}.{field} holds email addresses: only company data may be sent \
                 to Kernel; name it under inputs.email, which sends only the domain",
                describe.name
            )),
            FieldType::Phone => problems.push(format!(
                "input field {}.{field} holds phone numbers: only company data may be sent to \
                 Kernel",
                describe.name
            )),
            _ => {}
        }
    }
    problems
}
