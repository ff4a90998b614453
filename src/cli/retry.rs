//! `kernel-sync retry`: put parked items back to work.

use std::path::Path;

use anyhow::bail;

use super::{Exit, load_settings, open_store};

/// Options of `retry`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only this object sync.
    #[arg(long)]
    pub object: Option<String>,
    /// Every parked item (of the object sync, when given).
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
    /// Record ids of parked items.
    pub ids: Vec<String>,
}

/// Requeues parked items; they are picked up by the next pass or the running daemon.
///
/// # Errors
///
/// Neither `--all` nor ids given, or the store failed.
pub async fn execute(config: &Path, args: Args) -> anyhow::Result<Exit> {
    if !args.all && args.ids.is_empty() {
        bail!("name the record ids to retry, or pass --all");
    }
    let settings = load_settings(config)?;
    if let Some(name) = &args.object {
        super::once::select_objects(&settings, std::slice::from_ref(name))?;
    }
    let store = open_store(&settings).await?;
    let requeued = store
        .requeue_parked(args.object.as_deref(), &args.ids)
        .await?;
    println!("{requeued} parked item(s) put back to work");
    tracing::info!(
        requeued,
        object_sync = args.object.as_deref().unwrap_or("all"),
        "parked items requeued"
    );
    Ok(Exit::Ok)
}
