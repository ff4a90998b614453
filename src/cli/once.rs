//! `kernel-sync once`: one pass, for a Kubernetes CronJob or a systemd timer.

use std::path::Path;
use std::time::Duration;

use anyhow::bail;

use super::{Exit, connect, load_settings, shutdown_signal};
use crate::pipeline::driver::CountsHandle;
use crate::pipeline::scheduler::PassReport;

/// Options of `once`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only these object syncs (by name; repeatable). Default: every enabled one.
    #[arg(long = "object")]
    pub objects: Vec<String>,
    /// Stop driving after this long (e.g. `45m`); open executions stay in the store for the
    /// next pass.
    #[arg(long, value_parser = crate::config::parse_duration)]
    pub max_wait: Option<Duration>,
}

/// Runs one pass and maps its report to the exit code.
///
/// # Errors
///
/// Configuration, credentials, or the store.
pub async fn execute(config: &Path, args: Args) -> anyhow::Result<Exit> {
    let settings = load_settings(config)?;
    let names = select_objects(&settings, &args.objects)?;
    let engine = connect(settings).await?;
    let http = super::run::start_http(&engine).await?;
    let report = engine
        .run_pass(
            &names,
            args.max_wait,
            shutdown_signal(),
            CountsHandle::default(),
        )
        .await?;
    if let Some(http) = http {
        http.abort();
    }
    Ok(exit_for(&report))
}

/// The exit code of a pass: 3 when Salesforce or Kernel could not be reached, 0 when every
/// record made it, 1 otherwise.
pub fn exit_for(report: &PassReport) -> Exit {
    if report.objects.iter().any(|o| o.unreachable) {
        Exit::Unreachable
    } else if report.all_made_it() {
        Exit::Ok
    } else {
        Exit::Parked
    }
}

/// The names of the object syncs to run: the ones asked for, or every enabled one.
///
/// # Errors
///
/// A name that is not configured, or one that is disabled.
pub fn select_objects(
    settings: &crate::config::Settings,
    asked: &[String],
) -> anyhow::Result<Vec<String>> {
    let enabled: Vec<String> = settings
        .objects
        .iter()
        .filter(|o| o.enabled)
        .map(|o| o.name.clone())
        .collect();
    if asked.is_empty() {
        return Ok(enabled);
    }
    for name in asked {
        if !enabled.contains(name) {
            let problem = crate::config::Problem {
                file: settings.path.clone(),
                line: None,
                key: "objects".into(),
                message: format!(
                    "no enabled object sync is named `{name}`: expected one of {}",
                    enabled.join(", ")
                ),
            };
            bail!(crate::config::ConfigError::Invalid {
                problems: vec![problem]
            });
        }
    }
    Ok(asked.to_vec())
}
