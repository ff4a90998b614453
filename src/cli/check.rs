//! `kernel-sync check`: everything that can be checked before a run, all problems listed.

use std::path::Path;

use super::{Exit, load_settings, open_store};
use crate::pipeline::{check_plan, harvest};

/// Checks the configuration, the secrets, the credentials, every object's describe and
/// mapping, and every filter (with a `LIMIT 1` query). Prints each problem; exit 0 or 2.
///
/// # Errors
///
/// Only for failures that stop the check itself (the configuration does not load).
pub async fn execute(config: &Path) -> anyhow::Result<Exit> {
    let settings = load_settings(config)?;
    println!(
        "configuration: ok ({} object syncs)",
        settings.objects.len()
    );
    let mut problems: Vec<String> = Vec::new();

    if let Err(e) = open_store(&settings).await {
        problems.push(format!("state store: {e:#}"));
    }
    let (salesforce, kernel) = match super::clients(&settings) {
        Ok(clients) => clients,
        Err(e) => {
            problems.push(format!("{e:#}"));
            return Ok(report(&problems));
        }
    };
    drop(kernel);

    match salesforce.identity().await {
        Ok(identity) => println!("salesforce: authenticated as user {}", identity.user_id),
        Err(e) => {
            problems.push(format!("salesforce credentials: {e}"));
            return Ok(report(&problems));
        }
    }

    for sync in &settings.objects {
        let describe = match salesforce.describe(&sync.object).await {
            Ok(describe) => describe,
            Err(e) => {
                problems.push(format!("{}: describe {}: {e}", sync.name, sync.object));
                continue;
            }
        };
        let found = check_plan(sync, &describe);
        problems.extend(found.iter().map(|p| format!("{}: {p}", sync.name)));
        let plan = crate::pipeline::ObjectPlan {
            sync: sync.clone(),
            describe,
        };
        match harvest::harvest_soql(&plan, None) {
            Ok(soql) => {
                let probe = format!("{soql} LIMIT 1");
                match salesforce.query(&probe).await {
                    Ok(_) => println!("{}: mapping and filter ok", sync.name),
                    Err(e) => problems.push(format!("{}: the filter does not run: {e}", sync.name)),
                }
            }
            Err(e) => problems.push(format!("{}: {e}", sync.name)),
        }
    }
    Ok(report(&problems))
}

fn report(problems: &[String]) -> Exit {
    if problems.is_empty() {
        println!("no problems found");
        return Exit::Ok;
    }
    // The problems are the command's answer: stdout, like the lines that passed.
    println!("{} problem(s):", problems.len());
    for problem in problems {
        println!("  - {problem}");
    }
    Exit::Config
}
