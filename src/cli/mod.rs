//! The command line: one file per command, and what they share (loading settings, building
//! the clients, exit codes).

pub mod check;
pub mod demo;
pub mod dry_run;
pub mod logging;
pub mod once;
pub mod retry;
pub mod run;
pub mod sim;
pub mod status;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{self, Settings};
use crate::kernel::KernelClient;
use crate::pipeline::{Engine, PipelineError, connect};
use crate::salesforce::SalesforceClient;
use crate::store::Store;

/// The default deployment file, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "kernel-sync.toml";

/// kernel-sync: keeps Salesforce records enriched by the Kernel Inbound API.
#[derive(Debug, Parser)]
#[command(name = "kernel-sync", version, about)]
pub struct Cli {
    /// The deployment file [default: kernel-sync.toml]. (For `sim kernel`, the simulator's
    /// settings file.)
    // No clap default: a global argument's value reaches every subcommand's argument of the
    // same name, and `sim kernel --config` names a different file.
    #[arg(long, short, global = true, env = "KERNEL_SYNC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        env = "KERNEL_SYNC_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: logging::LogFormat,
    /// More detail in the logs (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run as a daemon: harvest every object sync on its cron schedule, enrich and write
    /// back continuously, serve health and metrics.
    Run,
    /// One pass (for a Kubernetes CronJob or a systemd timer): harvest, then drive every
    /// record to written, skipped or parked. Exit 0 when every record made it, 1 when some
    /// were parked, 2 for configuration errors, 3 when Salesforce or Kernel could not be
    /// reached or refused the credentials.
    Once(once::Args),
    /// Check the configuration, the credentials, every object's describe, every mapping
    /// and every filter against the org; list all problems.
    Check,
    /// Show the SOQL, the records that would be enriched and the field changes that would
    /// be written, without writing or submitting anything.
    DryRun(dry_run::Args),
    /// Cursors, last runs, work items by state, open executions, parked items with reasons.
    Status(status::Args),
    /// Put parked items back to work.
    Retry(retry::Args),
    /// Run one pass of the real engine against the built-in simulators.
    Demo(demo::Args),
    /// Serve a simulator until stopped.
    #[command(subcommand)]
    Sim(sim::Which),
}

/// The process's exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything made it.
    Ok,
    /// Some records were parked (or left for the next pass).
    Parked,
    /// The configuration is wrong.
    Config,
    /// Salesforce or Kernel could not be reached or refused the credentials.
    Unreachable,
    /// Anything else (the store failed, a bug).
    Internal,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Parked => 1,
            Exit::Config => 2,
            Exit::Unreachable => 3,
            Exit::Internal => 4,
        }
    }
}

/// Runs one command and reports its failure on stderr.
pub async fn run(cli: Cli) -> Exit {
    let format = cli.log_format;
    let config = cli.config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let result = match cli.command {
        Command::Run => run::execute(&config).await,
        Command::Once(args) => once::execute(&config, args).await,
        Command::Check => check::execute(&config).await,
        Command::DryRun(args) => dry_run::execute(&config, args).await,
        Command::Status(args) => status::execute(&config, args).await,
        Command::Retry(args) => retry::execute(&config, args).await,
        Command::Demo(args) => demo::execute(args).await,
        Command::Sim(which) => sim::execute(which).await,
    };
    match result {
        Ok(exit) => exit,
        Err(e) => {
            let exit = classify(&e);
            // With JSON logs stderr belongs to the log collector: the failure is one more
            // JSON line there, not free text.
            if format == logging::LogFormat::Json {
                let error = format!("{e:#}");
                tracing::error!(error = %error, exit_code = exit.code(), "command failed");
                return exit;
            }
            eprintln!("error: {e:#}");
            if exit == Exit::Config {
                eprintln!("(every key is described in config.example.toml and the README)");
            }
            exit
        }
    }
}

/// The exit code of a failed command, from the innermost error that explains it.
pub fn classify(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if cause.downcast_ref::<config::ConfigError>().is_some() {
            return Exit::Config;
        }
        if let Some(e) = cause.downcast_ref::<PipelineError>() {
            return match e {
                PipelineError::Mapping { .. } | PipelineError::DaemonRunning { .. } => Exit::Config,
                PipelineError::Store(_) => Exit::Internal,
                _ => Exit::Unreachable,
            };
        }
        if cause
            .downcast_ref::<crate::salesforce::SalesforceError>()
            .is_some()
            || cause.downcast_ref::<crate::kernel::KernelError>().is_some()
        {
            return Exit::Unreachable;
        }
    }
    Exit::Internal
}

/// Loads and checks the deployment file and its mappings.
///
/// # Errors
///
/// Every problem of the files, with file:line.
pub fn load_settings(path: &std::path::Path) -> anyhow::Result<Arc<Settings>> {
    let settings = config::load(path)?;
    Ok(Arc::new(settings))
}

/// Opens the state store of the settings.
///
/// # Errors
///
/// The store could not be opened or migrated.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let url = settings.store.url.as_str();
    Store::open(url)
        .await
        .with_context(|| format!("cannot open the state store {}", redact_url(url)))
}

/// Builds both clients from the settings, loading their secrets.
///
/// # Errors
///
/// A secret could not be loaded, or a client could not be built.
pub fn clients(settings: &Settings) -> anyhow::Result<(SalesforceClient, KernelClient)> {
    let salesforce = SalesforceClient::new(connect::salesforce_settings(settings)?)?;
    let kernel = KernelClient::new(connect::kernel_settings(settings)?)?;
    Ok((salesforce, kernel))
}

/// Connects everything an engine needs: store, clients, the integration user, and each
/// object's describe checked against its mapping.
///
/// # Errors
///
/// Secrets, credentials, describe or a mapping that does not fit the org.
pub async fn connect(settings: Arc<Settings>) -> anyhow::Result<Engine> {
    let store = open_store(&settings).await?;
    let (salesforce, kernel) = clients(&settings)?;
    let engine = Engine::connect(settings, store, salesforce, kernel).await?;
    Ok(engine)
}

/// A database URL with its password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("****"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// A channel that turns true on SIGTERM or SIGINT.
pub fn shutdown_signal() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutdown requested");
        let _ = tx.send(true);
    });
    rx
}
