//! The org's mutable state and the operations on it: sessions, query cursors, record writes
//! checked against the describe and validation rules, API usage and statistics.
//!
//! Everything here is synchronous and runs under one lock held by the server; nothing awaits
//! while it is held.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::time::{Duration, Instant};

use super::config::{Faults, OrgSimConfig};
use super::data::{ObjectDef, OrgData, derive_fields};
use super::soql::{self, SoqlError, eval};
use super::values::{self, format_datetime};

/// Counters the simulator keeps for tests and the demo (`GET /__sim/stats`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimStats {
    /// REST calls served, by endpoint (`query`, `queryMore`, `describe`,
    /// `composite/sobjects`, `limits`), refused calls included.
    pub api_calls: BTreeMap<String, u64>,
    /// Successful API writes per record Id.
    pub records_written: BTreeMap<String, u64>,
    /// The SOQL text of every query run, in order.
    pub queries: Vec<String>,
    /// Tokens issued, by flow (`jwt-bearer`, `client_credentials`, `refresh_token`).
    pub tokens_issued: BTreeMap<String, u64>,
    /// Calls counted against the daily allowance so far.
    pub api_usage: u64,
}

/// One error of a record write, in the per-record shape `{statusCode, message, fields}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordError {
    /// The Salesforce status code, e.g. `STRING_TOO_LONG`.
    pub status_code: String,
    /// The message as Salesforce words it.
    pub message: String,
    /// The fields concerned, possibly none.
    pub fields: Vec<String>,
}

impl RecordError {
    fn new(status_code: &str, message: impl Into<String>, fields: Vec<String>) -> Self {
        Self {
            status_code: status_code.into(),
            message: message.into(),
            fields,
        }
    }
}

/// A REST error in the array shape `[{message, errorCode, fields?}]`, with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RestError {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) fields: Option<Vec<String>>,
}

impl RestError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            fields: None,
        }
    }

    pub(crate) fn from_soql(err: &SoqlError, soql: &str) -> Self {
        Self::new(400, err.code, err.render(soql))
    }

    pub(crate) fn body(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("message".into(), Value::String(self.message.clone()));
        entry.insert("errorCode".into(), Value::String(self.code.clone()));
        if let Some(fields) = &self.fields {
            entry.insert("fields".into(), json!(fields));
        }
        Value::Array(vec![Value::Object(entry)])
    }

    pub(crate) fn session_invalid() -> Self {
        Self::new(401, "INVALID_SESSION_ID", "Session expired or invalid")
    }
}

/// A live access token.
#[derive(Debug)]
struct Session {
    user_id: String,
    issued: Instant,
    calls: u64,
}

/// A query's result, frozen at query time and read page by page through its locator.
#[derive(Debug)]
struct Cursor {
    records: Arc<Vec<Value>>,
    batch: usize,
    last_used: Instant,
}

/// Everything that changes while the simulator runs.
#[derive(Debug)]
pub(crate) struct OrgState {
    pub(crate) data: OrgData,
    sessions: HashMap<String, Session>,
    cursors: HashMap<String, Cursor>,
    pub(crate) api_used: u64,
    pub(crate) stats: SimStats,
    pub(crate) faults: Faults,
    rng: StdRng,
}

/// Salesforce's upper bound on records in one sObject Collections call.
const COLLECTION_LIMIT: usize = 200;

impl OrgState {
    pub(crate) fn new(data: OrgData, config: &OrgSimConfig) -> Self {
        Self {
            data,
            sessions: HashMap::new(),
            cursors: HashMap::new(),
            api_used: config.api_usage_start,
            stats: SimStats {
                api_usage: config.api_usage_start,
                ..SimStats::default()
            },
            faults: config.faults.clone(),
            rng: StdRng::seed_from_u64(config.seed),
        }
    }

    /// Draws whether a fault with probability `share` strikes now.
    pub(crate) fn strikes(&mut self, share: f64) -> bool {
        share > 0.0 && self.rng.random::<f64>() < share
    }

    // ----- sessions -----

    /// Issues a new opaque access token for `user_id`.
    pub(crate) fn issue_token(&mut self, org_id: &str, user_id: &str, flow: &str) -> String {
        // Tokens are unpredictable on purpose: the seeded generator is for faults only.
        let mut rng = rand::rng();
        let secret: String = (0..96)
            .map(|_| char::from(rng.sample(rand::distr::Alphanumeric)))
            .collect();
        let org_prefix = org_id.get(..15).unwrap_or(org_id);
        let token = format!("{org_prefix}!{secret}");
        self.sessions.insert(
            token.clone(),
            Session {
                user_id: user_id.to_string(),
                issued: Instant::now(),
                calls: 0,
            },
        );
        *self
            .stats
            .tokens_issued
            .entry(flow.to_string())
            .or_default() += 1;
        token
    }

    /// Checks a bearer token and counts the call against it; returns the session's user Id.
    pub(crate) fn authenticate(
        &mut self,
        token: Option<&str>,
        config: &OrgSimConfig,
    ) -> Result<String, RestError> {
        self.authenticate_at(token, config, Instant::now())
    }

    /// [`Self::authenticate`] at a given instant, so that expiry is testable without waiting.
    fn authenticate_at(
        &mut self,
        token: Option<&str>,
        config: &OrgSimConfig,
        now: Instant,
    ) -> Result<String, RestError> {
        let token = token.ok_or_else(RestError::session_invalid)?;
        let Some(session) = self.sessions.get_mut(token) else {
            return Err(RestError::session_invalid());
        };

        let too_old = config
            .token_ttl_secs
            .is_some_and(|ttl| now.duration_since(session.issued) >= Duration::from_secs(ttl));
        let worn_out = config
            .token_max_calls
            .is_some_and(|max| session.calls >= max);
        if too_old || worn_out {
            self.sessions.remove(token);
            return Err(RestError::session_invalid());
        }

        session.calls += 1;
        Ok(session.user_id.clone())
    }

    /// Invalidates every access token, as an administrator revoking sessions would.
    pub(crate) fn revoke_tokens(&mut self) {
        self.sessions.clear();
    }

    // ----- API usage -----

    /// Counts a REST call against the daily allowance, or refuses it when none is left.
    pub(crate) fn count_call(&mut self, endpoint: &str, allowance: u64) -> Result<(), RestError> {
        *self
            .stats
            .api_calls
            .entry(endpoint.to_string())
            .or_default() += 1;
        if self.api_used >= allowance {
            return Err(RestError::new(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ));
        }
        self.api_used += 1;
        self.stats.api_usage = self.api_used;
        Ok(())
    }

    // ----- queries -----

    /// Runs a query and answers its first page.
    pub(crate) fn query(
        &mut self,
        soql_text: &str,
        batch: usize,
        version: &str,
    ) -> Result<Value, RestError> {
        self.stats.queries.push(soql_text.to_string());
        let plan = soql::compile_query(soql_text, &self.data)
            .map_err(|err| RestError::from_soql(&err, soql_text))?;

        let object = &self.data.objects[plan.object];
        let live: Vec<&Map<String, Value>> = object
            .records
            .iter()
            .filter(|r| r.get("IsDeleted") != Some(&Value::Bool(true)))
            .collect();
        let live_owned: Vec<Map<String, Value>> = live.into_iter().cloned().collect();
        let hits = eval::run(&plan, &live_owned);
        let rendered: Vec<Value> = hits
            .into_iter()
            .map(|i| render_record(&object.def, &live_owned[i], &plan.select, version))
            .collect();

        let query_id = random_locator_id(&mut self.rng);
        let cursor = Cursor {
            records: Arc::new(rendered),
            batch,
            last_used: Instant::now(),
        };
        let page = page(&cursor, &query_id, 0, version);
        if cursor.records.len() > batch {
            self.cursors.insert(query_id, cursor);
        }
        Ok(page)
    }

    /// Answers the page a `nextRecordsUrl` locator points at.
    pub(crate) fn query_more(
        &mut self,
        locator: &str,
        version: &str,
        idle_limit: Duration,
    ) -> Result<Value, RestError> {
        let invalid = || RestError::new(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
        let (query_id, offset) = locator.rsplit_once('-').ok_or_else(invalid)?;
        let offset: usize = offset.parse().map_err(|_| invalid())?;

        let cursor = self.cursors.get_mut(query_id).ok_or_else(invalid)?;
        if cursor.last_used.elapsed() >= idle_limit {
            self.cursors.remove(query_id);
            return Err(invalid());
        }
        if offset == 0 || offset >= cursor.records.len() {
            return Err(invalid());
        }
        cursor.last_used = Instant::now();
        Ok(page(cursor, query_id, offset, version))
    }

    // ----- writes -----

    /// Applies an sObject Collections update body and answers the per-record results.
    pub(crate) fn collections_update(
        &mut self,
        body: &Value,
        user_id: &str,
    ) -> Result<Vec<Value>, RestError> {
        let Some(records) = body.get("records").and_then(Value::as_array) else {
            return Err(RestError::new(
                400,
                "JSON_PARSER_ERROR",
                "Cannot deserialize the request body: expected an object with a records array",
            ));
        };
        if records.len() > COLLECTION_LIMIT {
            return Err(RestError::new(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            ));
        }
        let all_or_none = body
            .get("allOrNone")
            .and_then(Value::as_bool)
            .unwrap_or(false);

        // Check every record first; nothing is applied until all outcomes are known.
        let lock_share = self.faults.lock_row_share;
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            let mut outcome = self.prepare_api_update(record);
            if outcome.is_ok() && self.strikes(lock_share) {
                let id = record_id(record).unwrap_or_default();
                outcome = Err(Failure::with_id(
                    &id,
                    RecordError::new(
                        "UNABLE_TO_LOCK_ROW",
                        format!(
                            "unable to obtain exclusive access to this record or 1 records: {id}"
                        ),
                        Vec::new(),
                    ),
                ));
            }
            outcomes.push(outcome);
        }

        let any_failed = outcomes.iter().any(Result::is_err);
        let now = now_ms();
        let mut results = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            let result = match outcome {
                Ok(change) if all_or_none && any_failed => result_json(
                    Some(&change.id),
                    &[RecordError::new(
                        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                        "Record rolled back because not all records were valid and the request \
                         was using AllOrNone header",
                        Vec::new(),
                    )],
                ),
                Ok(change) => {
                    let id = change.id.clone();
                    self.apply(change, user_id, now);
                    *self.stats.records_written.entry(id.clone()).or_default() += 1;
                    result_json(Some(&id), &[])
                }
                Err(failure) => result_json(failure.id.as_deref(), &failure.errors),
            };
            results.push(result);
        }
        Ok(results)
    }

    /// Checks one Collections entry: its type, Id and fields.
    fn prepare_api_update(&self, record: &Value) -> Result<Change, Failure> {
        let Some(fields) = record.as_object() else {
            return Err(Failure::anonymous(RecordError::new(
                "JSON_PARSER_ERROR",
                "each record must be a JSON object",
                Vec::new(),
            )));
        };
        let type_name = fields
            .get("attributes")
            .and_then(|a| a.get("type"))
            .and_then(Value::as_str);
        let Some(type_name) = type_name else {
            return Err(Failure::anonymous(RecordError::new(
                "INVALID_TYPE",
                "Must send a concrete entity type.",
                Vec::new(),
            )));
        };
        let Some(object) = self.data.object_index(type_name) else {
            return Err(Failure::anonymous(RecordError::new(
                "INVALID_TYPE",
                format!("sObject type '{type_name}' is not supported."),
                Vec::new(),
            )));
        };
        let Some(id) = record_id(record) else {
            return Err(Failure::anonymous(RecordError::new(
                "MISSING_ARGUMENT",
                "Id not specified in an update call",
                Vec::new(),
            )));
        };

        let changes = fields
            .iter()
            .filter(|(key, _)| *key != "attributes" && !key.eq_ignore_ascii_case("id"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        self.prepare_change(object, &id, &changes)
    }

    /// Checks a change to the record `id` of object `object` against the describe and the
    /// validation rules, and computes the record as it would be saved.
    pub(crate) fn prepare_change(
        &self,
        object: usize,
        id: &str,
        changes: &Map<String, Value>,
    ) -> Result<Change, Failure> {
        let data = &self.data.objects[object];
        let def = &data.def;
        if !values::is_valid_id(id) || !id.starts_with(&def.key_prefix) {
            return Err(Failure::anonymous(RecordError::new(
                "MALFORMED_ID",
                format!("{} ID: id value of incorrect type: {id}", def.label),
                vec!["Id".into()],
            )));
        }
        let Some(index) = find_record(&data.records, id) else {
            return Err(Failure::with_id(
                id,
                RecordError::new(
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id",
                    Vec::new(),
                ),
            ));
        };
        let current = &data.records[index];
        if current.get("IsDeleted") == Some(&Value::Bool(true)) {
            return Err(Failure::with_id(
                id,
                RecordError::new("ENTITY_IS_DELETED", "entity is deleted", Vec::new()),
            ));
        }

        let mut merged = current.clone();
        check_fields(def, changes, &mut merged).map_err(|errors| Failure {
            id: Some(id.to_string()),
            errors,
        })?;
        derive_fields(def, &mut merged);
        check_rules(def, &merged).map_err(|errors| Failure {
            id: Some(id.to_string()),
            errors,
        })?;

        let stored_id = current
            .get("Id")
            .and_then(Value::as_str)
            .unwrap_or(id)
            .to_string();
        Ok(Change {
            object,
            index,
            id: stored_id,
            record: merged,
        })
    }

    /// Saves a checked change, stamping it as written by `user_id` at `now`.
    pub(crate) fn apply(&mut self, change: Change, user_id: &str, now: DateTime<Utc>) {
        let mut record = change.record;
        let stamp = Value::String(format_datetime(now));
        record.insert("LastModifiedDate".into(), stamp.clone());
        record.insert("SystemModstamp".into(), stamp);
        record.insert(
            "LastModifiedById".into(),
            Value::String(user_id.to_string()),
        );
        self.data.objects[change.object].records[change.index] = record;
    }

    /// Creates a record as `user_id` (the control surface's "a person adds a record").
    pub(crate) fn insert(
        &mut self,
        object: usize,
        fields: &Map<String, Value>,
        user_id: &str,
    ) -> Result<String, Vec<RecordError>> {
        let def = self.data.objects[object].def.clone();
        let id = self.next_id(object);
        let now = Value::String(format_datetime(now_ms()));

        let mut record = Map::new();
        for field in &def.fields {
            record.insert(field.name.clone(), field.default.clone());
        }
        record.insert("Id".into(), Value::String(id.clone()));
        record.insert("CreatedDate".into(), now.clone());
        record.insert("CreatedById".into(), Value::String(user_id.to_string()));
        record.insert("OwnerId".into(), Value::String(user_id.to_string()));

        let mut errors = match check_fields(&def, fields, &mut record) {
            Ok(()) => Vec::new(),
            Err(errors) => errors,
        };
        let missing: Vec<String> = def
            .fields
            .iter()
            .filter(|f| !f.nillable && !f.system && f.updateable)
            .filter(|f| record.get(&f.name).is_none_or(Value::is_null))
            .map(|f| f.name.clone())
            .collect();
        if !missing.is_empty() {
            errors.push(RecordError::new(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
                missing,
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        derive_fields(&def, &mut record);
        check_rules(&def, &record)?;

        let data = &mut self.data.objects[object];
        data.records.push(record);
        let index = data.records.len() - 1;
        let change = Change {
            object,
            index,
            id: id.clone(),
            record: data.records[index].clone(),
        };
        self.apply(change, user_id, now_ms());
        Ok(id)
    }

    /// Marks a record deleted (it goes to the recycle bin: queries skip it, writes fail with
    /// `ENTITY_IS_DELETED`).
    pub(crate) fn delete(&mut self, object: usize, id: &str, user_id: &str) -> bool {
        let data = &mut self.data.objects[object];
        let Some(index) = find_record(&data.records, id) else {
            return false;
        };
        let record = &mut data.records[index];
        if record.get("IsDeleted") == Some(&Value::Bool(true)) {
            return false;
        }
        record.insert("IsDeleted".into(), Value::Bool(true));
        let stamp = Value::String(format_datetime(now_ms()));
        record.insert("LastModifiedDate".into(), stamp.clone());
        record.insert("SystemModstamp".into(), stamp);
        record.insert(
            "LastModifiedById".into(),
            Value::String(user_id.to_string()),
        );
        true
    }

    /// A record as stored, deleted or not.
    pub(crate) fn record(&self, object: usize, id: &str) -> Option<Map<String, Value>> {
        let data = &self.data.objects[object];
        find_record(&data.records, id).map(|index| data.records[index].clone())
    }

    fn next_id(&self, object: usize) -> String {
        let data = &self.data.objects[object];
        let prefix = &data.def.key_prefix;
        let highest = data
            .records
            .iter()
            .filter_map(|r| r.get("Id").and_then(Value::as_str))
            .filter_map(|id| id.get(3..15).and_then(|digits| digits.parse::<u64>().ok()))
            .max()
            .unwrap_or(0);
        format!("{prefix}{:012}AAA", highest + 1)
    }
}

/// A write that passed every check, ready to apply.
#[derive(Debug)]
pub(crate) struct Change {
    object: usize,
    index: usize,
    id: String,
    record: Map<String, Value>,
}

/// A write that failed, with the Id to echo (absent when the Id itself was the problem).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) id: Option<String>,
    pub(crate) errors: Vec<RecordError>,
}

impl Failure {
    fn anonymous(error: RecordError) -> Self {
        Self {
            id: None,
            errors: vec![error],
        }
    }

    fn with_id(id: &str, error: RecordError) -> Self {
        Self {
            id: Some(id.to_string()),
            errors: vec![error],
        }
    }
}

fn record_id(record: &Value) -> Option<String> {
    let fields = record.as_object()?;
    fields
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("id"))
        .and_then(|(_, value)| value.as_str())
        .map(str::to_string)
}

/// Finds a record by its 18-character Id, or by the 15-character case-sensitive form.
fn find_record(records: &[Map<String, Value>], id: &str) -> Option<usize> {
    records.iter().position(|r| {
        let Some(stored) = r.get("Id").and_then(Value::as_str) else {
            return false;
        };
        if id.len() == 15 {
            stored.get(..15) == Some(id)
        } else {
            stored.eq_ignore_ascii_case(id)
        }
    })
}

/// Checks written fields and merges them into `record`, collecting every problem.
fn check_fields(
    def: &ObjectDef,
    changes: &Map<String, Value>,
    record: &mut Map<String, Value>,
) -> Result<(), Vec<RecordError>> {
    let mut errors = Vec::new();
    let mut read_only = Vec::new();

    for (key, value) in changes {
        let Some(field) = def.field(key) else {
            errors.push(RecordError::new(
                "INVALID_FIELD",
                format!("No such column '{key}' on sobject of type {}", def.name),
                Vec::new(),
            ));
            continue;
        };
        if field.system || !field.updateable {
            read_only.push(field.name.clone());
            continue;
        }
        match values::check_value(field, value) {
            Ok(stored) => {
                record.insert(field.name.clone(), stored);
            }
            Err(problem) => {
                errors.push(RecordError::new(
                    problem.status_code,
                    problem.message,
                    vec![field.name.clone()],
                ));
            }
        }
    }

    if !read_only.is_empty() {
        errors.insert(
            0,
            RecordError::new(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of \
                     this field and verify that it is read/write for your profile or permission \
                     set.",
                    read_only.join(", ")
                ),
                read_only,
            ),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Runs the object's validation rules over the record as it would be saved.
fn check_rules(def: &ObjectDef, record: &Map<String, Value>) -> Result<(), Vec<RecordError>> {
    let errors: Vec<RecordError> = def
        .rules
        .iter()
        .filter(|rule| eval::matches(&rule.condition, record))
        .map(|rule| {
            tracing::debug!(
                object = %def.name,
                rule = %rule.name,
                "validation rule refused a write"
            );
            RecordError::new(
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                rule.message.clone(),
                rule.error_field.iter().cloned().collect(),
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn result_json(id: Option<&str>, errors: &[RecordError]) -> Value {
    let mut entry = Map::new();
    if let Some(id) = id {
        entry.insert("id".into(), Value::String(id.to_string()));
    }
    entry.insert("success".into(), Value::Bool(errors.is_empty()));
    entry.insert("errors".into(), json!(errors));
    Value::Object(entry)
}

/// The current server time, cut to the millisecond as Salesforce stores it.
pub(crate) fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

fn random_locator_id(rng: &mut StdRng) -> String {
    let tail: String = (0..15)
        .map(|_| char::from(rng.sample(rand::distr::Alphanumeric)))
        .collect();
    format!("01g{tail}")
}

fn render_record(
    def: &ObjectDef,
    record: &Map<String, Value>,
    select: &[String],
    version: &str,
) -> Value {
    let id = record.get("Id").and_then(Value::as_str).unwrap_or_default();
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({
            "type": def.name,
            "url": format!("/services/data/{version}/sobjects/{}/{id}", def.name),
        }),
    );
    for field in select {
        out.insert(
            field.clone(),
            record.get(field).cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(out)
}

fn page(cursor: &Cursor, query_id: &str, offset: usize, version: &str) -> Value {
    let total = cursor.records.len();
    let end = (offset + cursor.batch).min(total);
    let mut body = Map::new();
    body.insert("totalSize".into(), json!(total));
    body.insert("done".into(), json!(end >= total));
    if end < total {
        body.insert(
            "nextRecordsUrl".into(),
            json!(format!("/services/data/{version}/query/{query_id}-{end}")),
        );
    }
    body.insert(
        "records".into(),
        Value::Array(cursor.records[offset..end].to_vec()),
    );
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(config: &OrgSimConfig) -> OrgState {
        OrgState::new(
            OrgData::builtin().expect("builtin fixtures are consistent"),
            config,
        )
    }

    #[test]
    fn token_dies_after_its_lifetime() {
        let config = OrgSimConfig {
            token_ttl_secs: Some(600),
            ..OrgSimConfig::default()
        };
        let mut state = state(&config);
        let token = state.issue_token(&config.org_id, "005000000000099AAA", "jwt-bearer");
        let issued = Instant::now();

        let fresh = state.authenticate_at(Some(&token), &config, issued + Duration::from_secs(599));
        assert_eq!(fresh, Ok("005000000000099AAA".to_string()));
        let stale = state.authenticate_at(Some(&token), &config, issued + Duration::from_secs(601));
        assert_eq!(stale, Err(RestError::session_invalid()));
        // Once dead, it stays dead.
        assert_eq!(
            state.authenticate_at(Some(&token), &config, issued),
            Err(RestError::session_invalid())
        );
    }

    #[test]
    fn token_dies_after_its_calls() {
        let config = OrgSimConfig {
            token_max_calls: Some(2),
            ..OrgSimConfig::default()
        };
        let mut state = state(&config);
        let token = state.issue_token(&config.org_id, "005000000000099AAA", "client_credentials");
        assert!(state.authenticate(Some(&token), &config).is_ok());
        assert!(state.authenticate(Some(&token), &config).is_ok());
        assert!(state.authenticate(Some(&token), &config).is_err());
        assert!(state.authenticate(None, &config).is_err());
        assert_eq!(state.stats.tokens_issued["client_credentials"], 1);
    }

    #[test]
    fn allowance_counts_then_refuses() {
        let config = OrgSimConfig {
            daily_api_allowance: 1,
            ..OrgSimConfig::default()
        };
        let mut state = state(&config);
        assert!(state.count_call("query", 1).is_ok());
        let refused = state.count_call("query", 1).expect_err("spent");
        assert_eq!(
            (refused.status, refused.code.as_str()),
            (403, "REQUEST_LIMIT_EXCEEDED")
        );
        assert_eq!(state.api_used, 1);
        assert_eq!(state.stats.api_calls["query"], 2);
    }

    #[test]
    fn new_ids_follow_the_highest_existing_one() {
        let config = OrgSimConfig::default();
        let state = state(&config);
        assert_eq!(state.next_id(0), "001000000000261AAA");
        assert_eq!(state.next_id(2), "a01000000000041AAA");
    }
}
