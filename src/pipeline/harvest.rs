//! Harvest: find the records of an object sync that need enrichment.
//!
//! One SOQL query, drained page by page (query locators expire after 15 minutes, so no slow
//! work happens while a locator is open). Each page's decisions and the cursor move commit in
//! one transaction; the next harvest starts `lookback` before the cursor, and the work items'
//! fingerprints make the overlap harmless.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Engine, ObjectPlan, PipelineError};
use crate::config::EmailInput;
use crate::salesforce::{self, Record, soql};
use crate::store::{Cursor, HarvestDecision, Millis, RunCounts, StoredInputs, WorkItem, now_ms};

/// Why a record without enough inputs is skipped (shown in `status`).
pub const MISSING_INPUTS: &str =
    "missing inputs: Kernel needs a LinkedIn URL, or both a company name and a website";

/// Builds the harvest query of an object sync, starting at `since` when there is a cursor.
///
/// # Errors
///
/// A field or object name that is not an API name (the config checks this first).
pub fn harvest_soql(
    plan: &ObjectPlan,
    since: Option<DateTime<Utc>>,
) -> Result<String, PipelineError> {
    let sync = &plan.sync;
    let mut select = soql::Select::new(&sync.object)?
        .fields(["SystemModstamp"])?
        .fields(sync.input_fields())?
        .order_by_modstamp();
    if let Some(filter) = &sync.filter {
        select = select.filter(filter)?;
    }
    if let Some(since) = since {
        select = select.modified_since(since);
    }
    Ok(select.build())
}

/// Reads the company inputs of a record as the mapping names them. An email address is
/// reduced to its domain here, so the address itself never leaves this function.
pub fn inputs_of(plan: &ObjectPlan, record: &Record) -> StoredInputs {
    let inputs = &plan.sync.inputs;
    let text = |field: Option<&String>| -> Option<String> {
        let value = field.and_then(|f| get_field(&record.fields, f))?;
        let text = value.as_str()?.trim();
        (!text.is_empty()).then(|| text.to_owned())
    };
    let email_domain = match &inputs.email {
        Some(EmailInput::Address(field)) => {
            text(Some(field)).and_then(|address| domain_of_email(&address))
        }
        Some(EmailInput::Domain(field)) => text(Some(field)).map(|d| d.to_ascii_lowercase()),
        None => None,
    };
    StoredInputs {
        name: text(inputs.name.as_ref()),
        website: text(inputs.website.as_ref()),
        linkedin_url: text(inputs.linkedin_url.as_ref()),
        email_domain,
    }
}

/// A record field by name, case-insensitively (SOQL answers use describe's spelling).
pub fn get_field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).or_else(|| {
        fields
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// The domain of an email address, lowercased; `None` for anything that is not one.
pub fn domain_of_email(address: &str) -> Option<String> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid = !local.is_empty() && domain.contains('.') && !domain.contains(char::is_whitespace);
    valid.then_some(domain)
}

/// Whether the inputs satisfy Kernel's rule: a LinkedIn URL, or a name and a website.
pub fn has_enough_inputs(inputs: &StoredInputs) -> bool {
    inputs.linkedin_url.is_some() || (inputs.name.is_some() && inputs.website.is_some())
}

/// A stable hash of the enrichment inputs, insensitive to case and surrounding space.
pub fn fingerprint(inputs: &StoredInputs) -> String {
    let mut hasher = Sha256::new();
    for part in [
        &inputs.name,
        &inputs.website,
        &inputs.linkedin_url,
        &inputs.email_domain,
    ] {
        let normal = part
            .as_deref()
            .map(|s| s.trim().to_lowercase())
            .unwrap_or_default();
        hasher.update(normal.as_bytes());
        hasher.update([0x1f]);
    }
    hex::encode(&hasher.finalize()[..16])
}

/// What to do with one harvested record, given its work item (if any).
pub fn decide(
    record_id: &str,
    inputs: StoredInputs,
    existing: Option<&WorkItem>,
    refresh_after: Option<Duration>,
    now: Millis,
) -> Option<HarvestDecision> {
    let fp = fingerprint(&inputs);
    let record_id = record_id.to_owned();
    let enough = has_enough_inputs(&inputs);

    let Some(item) = existing else {
        return Some(if enough {
            HarvestDecision::Enrich {
                record_id,
                inputs,
                fingerprint: fp,
                force: false,
            }
        } else {
            HarvestDecision::Skip {
                record_id,
                reason: MISSING_INPUTS.into(),
                fingerprint: fp,
            }
        });
    };

    // An execution in flight finishes with the inputs it was given; a pending one takes the
    // new inputs.
    if item.state.is_active() {
        if item.fingerprint == fp || !enough {
            return None;
        }
        if item.state == crate::store::ItemState::Pending {
            let force = item.force || item.enriched_fingerprint.is_some();
            return Some(HarvestDecision::Enrich {
                record_id,
                inputs,
                fingerprint: fp,
                force,
            });
        }
        return Some(HarvestDecision::Refresh {
            record_id,
            inputs,
            fingerprint: fp,
        });
    }

    // Parked and skipped items stay as they are until their inputs change (or `retry`).
    let parked_or_skipped = matches!(
        item.state,
        crate::store::ItemState::Parked | crate::store::ItemState::Skipped
    );
    if parked_or_skipped && item.fingerprint == fp {
        return None;
    }
    if !enough {
        return Some(HarvestDecision::Skip {
            record_id,
            reason: MISSING_INPUTS.into(),
            fingerprint: fp,
        });
    }

    match &item.enriched_fingerprint {
        Some(done) if *done == fp => {
            let age = item.enriched_at.map(|at| now.saturating_sub(at));
            let due = match (refresh_after, age) {
                (Some(limit), Some(age)) => u128::try_from(age).unwrap_or(0) >= limit.as_millis(),
                _ => false,
            };
            due.then_some(HarvestDecision::Enrich {
                record_id,
                inputs,
                fingerprint: fp,
                force: true,
            })
        }
        // Changed inputs of a record Kernel already enriched: without `force` Kernel would
        // answer from its 14-day cache, with data about the old inputs.
        Some(_) => Some(HarvestDecision::Enrich {
            record_id,
            inputs,
            fingerprint: fp,
            force: true,
        }),
        None => Some(HarvestDecision::Enrich {
            record_id,
            inputs,
            fingerprint: fp,
            force: false,
        }),
    }
}

impl Engine {
    /// Harvests one object sync: queries every page, commits each page's work items and the
    /// cursor, and returns the counts.
    ///
    /// # Errors
    ///
    /// Salesforce failed (after its own retries), the daily API share is spent, or the store
    /// failed. Pages committed before the error stay committed.
    pub async fn harvest(
        &self,
        plan: &ObjectPlan,
        run_id: i64,
    ) -> Result<RunCounts, PipelineError> {
        let sync = &plan.sync;
        let mut counts = RunCounts::default();
        let cursor = self.store.cursor(&sync.name).await?;
        let since = cursor.map(|c| {
            let lookback = i64::try_from(sync.lookback.as_millis()).unwrap_or(i64::MAX);
            let ms = c.modstamp_ms.saturating_sub(lookback);
            // Whole seconds: SOQL datetime literals carry no fraction here.
            DateTime::<Utc>::from_timestamp_millis(ms - ms.rem_euclid(1000)).unwrap_or_default()
        });
        let query = harvest_soql(plan, since)?;
        tracing::debug!(object_sync = %sync.name, soql = %query, "harvest query");

        self.salesforce_gate().await?;
        counts.salesforce_calls += 1;
        let mut page = self.salesforce.query(&query).await?;
        self.salesforce_guard.observe(&self.salesforce);
        loop {
            let ids: Vec<String> = page.records.iter().map(|r| r.id.clone()).collect();
            let existing = self.store.items_for_records(&sync.name, &ids).await?;
            let now = now_ms();
            let mut decisions = Vec::with_capacity(page.records.len());
            let mut newest: Option<Millis> = None;
            for record in &page.records {
                counts.harvested += 1;
                if let Some(stamp) = get_field(&record.fields, "SystemModstamp")
                    .and_then(Value::as_str)
                    .and_then(|s| salesforce::parse_datetime(s).ok())
                {
                    let ms = stamp.timestamp_millis();
                    newest = Some(newest.map_or(ms, |n| n.max(ms)));
                }
                let inputs = inputs_of(plan, record);
                match decide(
                    &record.id,
                    inputs,
                    existing.get(&record.id),
                    sync.refresh_after,
                    now,
                ) {
                    Some(decision) => {
                        match &decision {
                            HarvestDecision::Enrich { .. } | HarvestDecision::Refresh { .. } => {
                                counts.queued += 1;
                            }
                            HarvestDecision::Skip { .. } => counts.skipped += 1,
                        }
                        decisions.push(decision);
                    }
                    None => counts.unchanged += 1,
                }
            }
            let next_cursor = match (newest, cursor) {
                (Some(n), Some(c)) if n <= c.modstamp_ms => None,
                (Some(n), _) => Some(Cursor { modstamp_ms: n }),
                (None, _) => None,
            };
            self.store
                .commit_harvest_page(&sync.name, &sync.object, run_id, &decisions, next_cursor)
                .await?;

            let Some(next) = page.next_records_url.clone().filter(|_| !page.done) else {
                break;
            };
            self.salesforce_gate().await?;
            counts.salesforce_calls += 1;
            page = self.salesforce.query_more(&next).await?;
            self.salesforce_guard.observe(&self.salesforce);
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ItemState;

    fn inputs(name: &str, website: Option<&str>) -> StoredInputs {
        StoredInputs {
            name: Some(name.into()),
            website: website.map(str::to_owned),
            ..StoredInputs::default()
        }
    }

    fn item(state: ItemState, inputs: &StoredInputs, enriched: bool) -> WorkItem {
        let fp = fingerprint(inputs);
        WorkItem {
            id: 1,
            object_sync: "accounts".into(),
            record_id: "001A".into(),
            object_type: "Account".into(),
            state,
            reason: None,
            inputs: inputs.clone(),
            fingerprint: fp.clone(),
            enriched_fingerprint: enriched.then(|| fp.clone()),
            submitted_fingerprint: None,
            enriched_at: enriched.then_some(1_000),
            force: false,
            attempts: 0,
            execution_id: None,
            submitted_at: None,
            polls: 0,
            last_status: None,
            next_action_at: 0,
            payload: None,
            pending_write: None,
            write_attempts: 0,
            fast_written: false,
            run_id: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn email_addresses_are_reduced_to_their_domain() {
        assert_eq!(
            domain_of_email("Mira.Szabo@Cedarforge.Example"),
            Some("cedarforge.example".into())
        );
        assert_eq!(domain_of_email("not an address"), None);
        assert_eq!(domain_of_email("@nobody.example"), None);
        assert_eq!(domain_of_email("x@localhost"), None);
    }

    #[test]
    fn fingerprints_ignore_case_and_space_but_not_content() {
        let a = inputs("Cedarforge Robotics", Some("cedarforge.example"));
        let b = inputs("  cedarforge robotics ", Some("CEDARFORGE.example"));
        let c = inputs("Cedarforge Robotics", Some("cedarforge-labs.example"));
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }

    #[test]
    fn new_records_are_enriched_or_skipped_by_the_input_rule() {
        let good = inputs("Cedarforge Robotics", Some("cedarforge.example"));
        assert!(matches!(
            decide("001A", good, None, None, 0),
            Some(HarvestDecision::Enrich { force: false, .. })
        ));
        let no_site = inputs("Cedarforge Robotics", None);
        assert!(matches!(
            decide("001A", no_site, None, None, 0),
            Some(HarvestDecision::Skip { .. })
        ));
        let linkedin_only = StoredInputs {
            linkedin_url: Some("https://www.linkedin.com/company/cedarforge".into()),
            ..StoredInputs::default()
        };
        assert!(matches!(
            decide("001A", linkedin_only, None, None, 0),
            Some(HarvestDecision::Enrich { .. })
        ));
    }

    /// The feedback loop: our own write brings the record back with the same inputs, and
    /// nothing happens; changed inputs or a due refresh force a new enrichment.
    #[test]
    fn enriched_records_return_only_for_changed_inputs_or_refresh() {
        let now_inputs = inputs("Cedarforge Robotics", Some("cedarforge.example"));
        let done = item(ItemState::Written, &now_inputs, true);
        assert_eq!(
            decide("001A", now_inputs.clone(), Some(&done), None, 10_000),
            None
        );

        let day = Duration::from_secs(86_400);
        assert_eq!(
            decide("001A", now_inputs.clone(), Some(&done), Some(day), 10_000),
            None
        );
        let later = 1_000 + 86_400_000;
        assert!(matches!(
            decide("001A", now_inputs, Some(&done), Some(day), later),
            Some(HarvestDecision::Enrich { force: true, .. })
        ));

        let moved = inputs("Cedarforge Robotics", Some("cedarforge-labs.example"));
        assert!(matches!(
            decide("001A", moved, Some(&done), None, 10_000),
            Some(HarvestDecision::Enrich { force: true, .. })
        ));
    }

    #[test]
    fn items_in_flight_and_parked_items_are_left_alone() {
        let now_inputs = inputs("Cedarforge Robotics", Some("cedarforge.example"));
        let open = item(ItemState::Open, &now_inputs, false);
        let moved = inputs("Cedarforge Robotics", Some("cedarforge-labs.example"));
        assert_eq!(
            decide("001A", now_inputs.clone(), Some(&open), None, 0),
            None
        );
        assert!(matches!(
            decide("001A", moved.clone(), Some(&open), None, 0),
            Some(HarvestDecision::Refresh { .. })
        ));

        let parked = item(ItemState::Parked, &now_inputs, false);
        assert_eq!(
            decide("001A", now_inputs.clone(), Some(&parked), None, 0),
            None
        );
        assert!(matches!(
            decide("001A", moved.clone(), Some(&parked), None, 0),
            Some(HarvestDecision::Enrich { .. })
        ));

        let pending = item(ItemState::Pending, &now_inputs, false);
        assert_eq!(decide("001A", now_inputs, Some(&pending), None, 0), None);
        assert!(matches!(
            decide("001A", moved, Some(&pending), None, 0),
            Some(HarvestDecision::Enrich { .. })
        ));
    }
}
