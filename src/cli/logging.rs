//! Log output: human-readable on a terminal, JSON for log collectors.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text with colours on a terminal, without elsewhere.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber, writing to stderr. `RUST_LOG` overrides the level that
/// `verbose` picks (info, then debug, then trace). Calling it twice keeps the first.
pub fn init(format: LogFormat, verbose: u8) {
    let level = match verbose {
        0 => "info",
        1 => "kernel_sync=debug,info",
        _ => "kernel_sync=trace,debug",
    };
    // The scheduler crate narrates its own start-up at info, and sqlx logs PostgreSQL's
    // notices (such as "relation already exists, skipping") at info: keep both at warn.
    let default = format!("{level},tokio_cron_scheduler=warn,sqlx=warn");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    // A second call (tests run several commands in one process) keeps the first subscriber.
    drop(result);
}
