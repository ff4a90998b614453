//! `kernel-sync status`: what the store knows, per object sync. Reads only the store, so it
//! works without credentials and while the daemon runs.

use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Exit, load_settings, open_store};
use crate::pipeline::SALESFORCE_USAGE;
use crate::store::{ItemState, Millis, RunRecord, Store};

/// How many parked or skipped items `status` lists per object sync.
const LISTED: u32 = 20;

/// Options of `status`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Everything `status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Per object sync.
    pub objects: Vec<ObjectStatus>,
    /// Executions open at Kernel (all object syncs share the API key).
    pub open_executions: u64,
    /// The org's daily API usage, as last seen.
    pub salesforce_api_usage: Option<ApiUsageSeen>,
}

/// The org's API usage as last seen.
#[derive(Debug, Clone, Serialize)]
pub struct ApiUsageSeen {
    /// `used/max` calls in the last 24 hours.
    pub usage: String,
    /// When it was seen.
    pub seen_at: String,
    /// Whether harvest and write-back pause at this usage (`salesforce.daily_api_share`).
    pub paused: bool,
}

/// One object sync's state.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectStatus {
    /// Name.
    pub name: String,
    /// Salesforce object.
    pub object: String,
    /// Whether it runs.
    pub enabled: bool,
    /// The cursor (last committed SystemModstamp).
    pub cursor: Option<String>,
    /// The last run.
    pub last_run: Option<RunRecord>,
    /// Work items by state.
    pub items: std::collections::BTreeMap<String, u64>,
    /// Parked items with their reasons (newest first, at most 20).
    pub parked: Vec<Listed>,
    /// Skipped items with their reasons (newest first, at most 20).
    pub skipped: Vec<Listed>,
}

/// A listed item.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// The Salesforce record id.
    pub record_id: String,
    /// Why.
    pub reason: String,
}

/// Prints the status.
///
/// # Errors
///
/// Configuration or the store.
pub async fn execute(config: &Path, args: Args) -> anyhow::Result<Exit> {
    let settings = load_settings(config)?;
    let store = open_store(&settings).await?;
    let status = gather(&settings, &store).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(Exit::Ok)
}

/// Reads the status from the store.
///
/// # Errors
///
/// The store failed.
pub async fn gather(settings: &crate::config::Settings, store: &Store) -> anyhow::Result<Status> {
    let mut objects = Vec::new();
    for sync in &settings.objects {
        let cursor = store.cursor(&sync.name).await?.map(|c| time(c.modstamp_ms));
        let counts = store.state_counts(&sync.name).await?;
        let items = ItemState::ALL
            .into_iter()
            .map(|s| (s.as_str().to_owned(), counts.get(&s).copied().unwrap_or(0)))
            .collect();
        let listed = |items: Vec<crate::store::WorkItem>| -> Vec<Listed> {
            items
                .into_iter()
                .map(|i| Listed {
                    record_id: i.record_id,
                    reason: i.reason.unwrap_or_default(),
                })
                .collect()
        };
        objects.push(ObjectStatus {
            name: sync.name.clone(),
            object: sync.object.clone(),
            enabled: sync.enabled,
            cursor,
            last_run: store.last_run(&sync.name).await?,
            items,
            parked: listed(
                store
                    .items_in_state(&sync.name, ItemState::Parked, LISTED)
                    .await?,
            ),
            skipped: listed(
                store
                    .items_in_state(&sync.name, ItemState::Skipped, LISTED)
                    .await?,
            ),
        });
    }
    let usage = store
        .observation(SALESFORCE_USAGE)
        .await?
        .map(|(usage, at)| ApiUsageSeen {
            paused: at_or_above_share(&usage, settings.salesforce.daily_api_share),
            usage,
            seen_at: time(at),
        });
    Ok(Status {
        objects,
        open_executions: store.open_executions().await?,
        salesforce_api_usage: usage,
    })
}

/// The status as text for a terminal.
pub fn render(status: &Status) -> String {
    let mut out = String::new();
    for object in &status.objects {
        let enabled = if object.enabled { "" } else { " (disabled)" };
        let _ = writeln!(out, "{} ({}){enabled}", object.name, object.object);
        let _ = writeln!(
            out,
            "  cursor      {}",
            object.cursor.as_deref().unwrap_or("none yet")
        );
        match &object.last_run {
            Some(run) => {
                let c = &run.counts;
                let _ = writeln!(
                    out,
                    "  last run    #{} started {}, {}: harvested {}, queued {}, skipped {}, \
                     unchanged {}, written {}, parked {}, dropped {}",
                    run.id,
                    time(run.started_at),
                    run.outcome.as_deref().unwrap_or("running"),
                    c.harvested,
                    c.queued,
                    c.skipped,
                    c.unchanged,
                    c.written,
                    c.parked,
                    c.dropped
                );
            }
            None => {
                let _ = writeln!(out, "  last run    none yet");
            }
        }
        let states: Vec<String> = object
            .items
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        let states = if states.is_empty() {
            "none".to_owned()
        } else {
            states.join(", ")
        };
        let _ = writeln!(out, "  work items  {states}");
        for (title, list) in [("parked", &object.parked), ("skipped", &object.skipped)] {
            if list.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {title}:");
            for item in list {
                let _ = writeln!(out, "    {}  {}", item.record_id, item.reason);
            }
            let total = object.items.get(title).copied().unwrap_or(0);
            let more = usize::try_from(total)
                .unwrap_or(usize::MAX)
                .saturating_sub(list.len());
            if more > 0 {
                let _ = writeln!(out, "    ... and {more} more (the newest are shown)");
            }
        }
    }
    let _ = writeln!(out, "open kernel executions  {}", status.open_executions);
    match &status.salesforce_api_usage {
        Some(seen) => {
            let paused = if seen.paused {
                ": at or above salesforce.daily_api_share, harvest and write-back are paused"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "salesforce api usage    {} (seen {}){paused}",
                seen.usage, seen.seen_at
            );
        }
        None => {
            let _ = writeln!(out, "salesforce api usage    not seen yet");
        }
    }
    out
}

/// Whether `used/max` is at or above `share` of the allowance.
fn at_or_above_share(usage: &str, share: f64) -> bool {
    let Some((used, max)) = usage.split_once('/') else {
        return false;
    };
    match (used.parse::<f64>(), max.parse::<f64>()) {
        (Ok(used), Ok(max)) if max > 0.0 => used >= share * max,
        _ => false,
    }
}

fn time(ms: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::at_or_above_share;

    #[test]
    fn the_pause_follows_the_configured_share() {
        assert!(at_or_above_share("12000/15000", 0.8));
        assert!(!at_or_above_share("11999/15000", 0.8));
        assert!(!at_or_above_share("5/0", 0.8));
        assert!(!at_or_above_share("garbled", 0.8));
    }
}
