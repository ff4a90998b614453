//! `kernel-sync dry-run`: what a pass would do, without submitting or writing anything.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::{Exit, connect, load_settings};
use crate::pipeline::harvest::{self, get_field};
use crate::pipeline::{Engine, ObjectPlan};
use crate::store::{HarvestDecision, now_ms};

/// Options of `dry-run`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only this object sync.
    #[arg(long)]
    pub object: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Show at most this many records per object sync.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text.
    Table,
    /// One JSON document.
    Json,
}

/// One object sync's dry run.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectDryRun {
    /// Name.
    pub name: String,
    /// The SOQL the harvest would send.
    pub soql: String,
    /// Records matched.
    pub matched: usize,
    /// Per record (up to the limit).
    pub records: Vec<RecordDryRun>,
}

/// One record's dry run.
#[derive(Debug, Clone, Serialize)]
pub struct RecordDryRun {
    /// Record id.
    pub id: String,
    /// `enrich (new)`, `enrich (inputs changed)`, `enrich (refresh due)`, `skip: ...` or
    /// `unchanged`.
    pub action: String,
    /// For records with a Kernel result: each field's current and proposed value and the
    /// policy's decision.
    pub fields: Vec<FieldDryRun>,
}

/// One field's dry run.
#[derive(Debug, Clone, Serialize)]
pub struct FieldDryRun {
    /// Salesforce field.
    pub field: String,
    /// Current value.
    pub current: Value,
    /// Proposed value.
    pub proposed: Value,
    /// The policy's decision.
    pub decision: String,
}

/// Prints the dry run.
///
/// # Errors
///
/// Configuration, credentials, Salesforce, or the store.
pub async fn execute(config: &Path, args: Args) -> anyhow::Result<Exit> {
    let settings = load_settings(config)?;
    let names = super::once::select_objects(&settings, args.object.as_slice())?;
    let engine = connect(settings).await?;
    let mut all = Vec::new();
    for name in &names {
        let Some(plan) = engine.plan(name) else {
            continue;
        };
        all.push(dry_run(&engine, plan, args.limit).await?);
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&all)?),
        Format::Table => print!("{}", render(&all)),
    }
    Ok(Exit::Ok)
}

/// The dry run of one object sync: the harvest query as the next pass would send it, and
/// for every matched record (up to `limit`) the decision and the field changes.
///
/// # Errors
///
/// Salesforce or the store.
pub async fn dry_run(
    engine: &Engine,
    plan: &ObjectPlan,
    limit: usize,
) -> anyhow::Result<ObjectDryRun> {
    let sync = &plan.sync;
    let cursor = engine.store.cursor(&sync.name).await?;
    let since = cursor.and_then(|c| {
        let lookback = i64::try_from(sync.lookback.as_millis()).unwrap_or(i64::MAX);
        let ms = c.modstamp_ms.saturating_sub(lookback);
        chrono::DateTime::from_timestamp_millis(ms - ms.rem_euclid(1000))
    });
    let soql = harvest::harvest_soql(plan, since)?;

    // Read the targets too, so current values can be shown beside the proposed ones.
    let mut targets: Vec<String> = sync.fields.iter().map(|f| f.target.clone()).collect();
    targets.retain(|t| !soql.contains(&format!(", {t}")));
    let query = match soql.find(" FROM ") {
        Some(at) if !targets.is_empty() => {
            format!("{}, {}{}", &soql[..at], targets.join(", "), &soql[at..])
        }
        _ => soql.clone(),
    };

    let mut records = Vec::new();
    let mut page = engine.salesforce.query(&query).await?;
    loop {
        records.append(&mut page.records);
        match page.next_records_url.clone().filter(|_| !page.done) {
            Some(next) => page = engine.salesforce.query_more(&next).await?,
            None => break,
        }
    }
    let matched = records.len();
    records.truncate(limit);
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let items = engine.store.items_for_records(&sync.name, &ids).await?;
    let written = engine.store.written_values(&sync.name, &ids).await?;

    let mut out = Vec::new();
    for record in &records {
        let existing = items.get(&record.id);
        let inputs = harvest::inputs_of(plan, record);
        let action =
            match harvest::decide(&record.id, inputs, existing, sync.refresh_after, now_ms()) {
                Some(HarvestDecision::Skip { reason, .. }) => format!("skip: {reason}"),
                Some(HarvestDecision::Enrich { force: true, .. }) if existing.is_some() => {
                    "enrich (inputs changed or refresh due; with force)".to_owned()
                }
                Some(HarvestDecision::Enrich { .. }) => "enrich (new)".to_owned(),
                Some(HarvestDecision::Refresh { .. }) => {
                    "inputs changed while in progress: enriched again after this execution"
                        .to_owned()
                }
                None => match existing {
                    Some(item) if item.state.is_active() => format!("in progress ({})", item.state),
                    Some(item) => format!("unchanged ({})", item.state),
                    None => "unchanged".to_owned(),
                },
            };
        let mut fields = Vec::new();
        if let Some(payload) = existing.and_then(|i| i.payload.as_ref()) {
            let proposal = crate::pipeline::map::propose(&sync.fields, &plan.describe, payload);
            let changes = engine.plan_changes(
                &sync.name,
                &proposal.values,
                &record.fields,
                written.get(&record.id),
            );
            for change in changes {
                fields.push(FieldDryRun {
                    current: get_field(&record.fields, &change.field)
                        .cloned()
                        .unwrap_or(Value::Null),
                    field: change.field,
                    proposed: change.proposed,
                    decision: change.decision.as_str().to_owned(),
                });
            }
        }
        out.push(RecordDryRun {
            id: record.id.clone(),
            action,
            fields,
        });
    }
    Ok(ObjectDryRun {
        name: sync.name.clone(),
        soql,
        matched,
        records: out,
    })
}

fn render(all: &[ObjectDryRun]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for object in all {
        let _ = writeln!(out, "{}: {} record(s) match", object.name, object.matched);
        let _ = writeln!(out, "  soql: {}", object.soql);
        for record in &object.records {
            let _ = writeln!(out, "  {:<18}  {}", record.id, record.action);
            for f in &record.fields {
                let _ = writeln!(
                    out,
                    "      {:<28} {:<24} -> {:<24} {}",
                    f.field,
                    short(&f.current),
                    short(&f.proposed),
                    f.decision
                );
            }
        }
    }
    out
}

fn short(value: &Value) -> String {
    let text = match value {
        Value::Null => "(empty)".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 24 {
        format!("{}…", text.chars().take(23).collect::<String>())
    } else {
        text
    }
}
