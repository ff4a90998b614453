//! What the REST API sends and takes: query pages, records, Collections results, limits, the
//! identity of the integration user, and Salesforce's datetime form.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::is_transient_code;

/// One page of a query answer.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    /// Matches across all pages.
    pub total_size: u64,
    /// Whether this is the last page.
    pub done: bool,
    /// Where the next page is, when `done` is false (a path on the instance).
    pub next_records_url: Option<String>,
    /// The records of this page.
    pub records: Vec<Record>,
}

/// One record of a query answer. Its `Debug` shows field names, never their values, so that
/// a record cannot leak into a log line.
#[derive(Clone, PartialEq)]
pub struct Record {
    /// Its sObject type, from `attributes.type`.
    pub object_type: String,
    /// Its id: the `Id` field, or the last part of `attributes.url` when `Id` was not selected.
    pub id: String,
    /// The selected fields as returned (without `attributes`), nested relationship objects
    /// included. A null and a missing field both mean empty: read through [`Record::get`].
    pub fields: Map<String, Value>,
}

impl Record {
    /// The value of a field, `None` when it is null or missing. Salesforce answers with the
    /// names' canonical casing, so an exact match is tried first, then a case-insensitive one.
    pub fn get(&self, field: &str) -> Option<&Value> {
        let value = match self.fields.get(field) {
            Some(value) => Some(value),
            None => self
                .fields
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(field))
                .map(|(_, value)| value),
        };
        value.filter(|v| !v.is_null())
    }

    /// The text of a field, `None` when it is null, missing, not a string, or blank.
    pub fn text(&self, field: &str) -> Option<&str> {
        self.get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    /// A datetime field in Salesforce's form, `None` when empty or unreadable.
    pub fn datetime(&self, field: &str) -> Option<DateTime<Utc>> {
        self.get(field)
            .and_then(Value::as_str)
            .and_then(|s| parse_datetime(s).ok())
    }

    /// Builds a record from one JSON object of a query answer; the error names what is missing.
    pub(crate) fn from_json(mut fields: Map<String, Value>) -> Result<Self, &'static str> {
        let Some(Value::Object(attributes)) = fields.remove("attributes") else {
            return Err("a record has no attributes");
        };
        let object_type = match attributes.get("type") {
            Some(Value::String(t)) => t.clone(),
            _ => return Err("a record's attributes have no type"),
        };
        let id = match fields.get("Id") {
            Some(Value::String(id)) => id.clone(),
            _ => match attributes.get("url").and_then(Value::as_str) {
                Some(url) => url.rsplit('/').next().unwrap_or_default().to_owned(),
                None => return Err("a record has neither an Id nor an attributes url"),
            },
        };
        if id.is_empty() {
            return Err("a record has an empty id");
        }
        Ok(Self {
            object_type,
            id,
            fields,
        })
    }
}

/// The wire form of a query page.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawQueryPage {
    pub(crate) total_size: u64,
    pub(crate) done: bool,
    #[serde(default)]
    pub(crate) next_records_url: Option<String>,
    #[serde(default)]
    pub(crate) records: Vec<Map<String, Value>>,
}

impl RawQueryPage {
    pub(crate) fn into_page(self) -> Result<QueryPage, &'static str> {
        let records = self
            .records
            .into_iter()
            .map(Record::from_json)
            .collect::<Result<_, _>>()?;
        if !self.done && self.next_records_url.is_none() {
            return Err("a page that is not the last has no nextRecordsUrl");
        }
        Ok(QueryPage {
            total_size: self.total_size,
            done: self.done,
            next_records_url: self.next_records_url,
            records,
        })
    }
}

/// New values for some fields of one record. Its `Debug` shows field names only.
#[derive(Clone, PartialEq)]
pub struct RecordUpdate {
    /// Its sObject type.
    pub object_type: String,
    /// Its id.
    pub id: String,
    /// Field API names and their new values (`null` clears a field); never `Id` or
    /// `attributes`.
    pub fields: Map<String, Value>,
}

/// Debug output of a record: type, id and field names, no values.
fn debug_record(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    object_type: &str,
    id: &str,
    fields: &Map<String, Value>,
) -> std::fmt::Result {
    f.debug_struct(name)
        .field("object_type", &object_type)
        .field("id", &id)
        .field("fields", &fields.keys().collect::<Vec<_>>())
        .finish()
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_record(f, "Record", &self.object_type, &self.id, &self.fields)
    }
}

impl std::fmt::Debug for RecordUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_record(f, "RecordUpdate", &self.object_type, &self.id, &self.fields)
    }
}

/// What became of one record of a Collections update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The values are stored.
    Written,
    /// A transient fault (row lock...): send the same values again later.
    Retryable {
        /// Salesforce's status code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The values were refused (validation rule, too long, bad picklist value...); sending
    /// them again cannot help.
    Rejected {
        /// Salesforce's status code (of the first error when there were several).
        status_code: String,
        /// The messages, joined with `; `.
        message: String,
        /// The fields the errors name.
        fields: Vec<String>,
    },
    /// The record is deleted.
    Gone,
}

/// One entry of a Collections answer.
#[derive(Debug, Deserialize)]
pub(crate) struct SaveResult {
    #[serde(default)]
    #[allow(dead_code)] // Matched by position, never by id: failed entries may lack it.
    pub(crate) id: Option<String>,
    pub(crate) success: bool,
    #[serde(default)]
    pub(crate) errors: Vec<RecordError>,
}

/// One error inside a per-record result.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecordError {
    pub(crate) status_code: String,
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) fields: Vec<String>,
}

impl From<SaveResult> for RecordOutcome {
    fn from(result: SaveResult) -> Self {
        if result.success {
            return Self::Written;
        }
        if result
            .errors
            .iter()
            .any(|e| e.status_code == "ENTITY_IS_DELETED")
        {
            return Self::Gone;
        }

        let message = result
            .errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        let Some(first) = result.errors.first() else {
            return Self::Rejected {
                status_code: "UNKNOWN".to_owned(),
                message: "salesforce reported a failure without an error".to_owned(),
                fields: vec![],
            };
        };
        // Only a record whose every error is transient is worth sending again.
        if result
            .errors
            .iter()
            .all(|e| is_transient_code(&e.status_code))
        {
            return Self::Retryable {
                code: first.status_code.clone(),
                message,
            };
        }
        let mut fields: Vec<String> = Vec::new();
        for field in result.errors.iter().flat_map(|e| &e.fields) {
            if !fields.contains(field) {
                fields.push(field.clone());
            }
        }
        Self::Rejected {
            status_code: first.status_code.clone(),
            message,
            fields,
        }
    }
}

/// One REST error entry (`[{message, errorCode, fields}]`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiErrorBody {
    #[serde(default)]
    pub(crate) message: String,
    pub(crate) error_code: String,
    #[serde(default)]
    pub(crate) fields: Vec<String>,
}

/// An OAuth error answer (`{error, error_description}`).
#[derive(Debug, Deserialize)]
pub(crate) struct OAuthErrorBody {
    pub(crate) error: String,
    #[serde(default)]
    pub(crate) error_description: String,
}

/// The org's API usage from the last `Sforce-Limit-Info` header seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    /// Calls counted in the rolling 24 hours.
    pub used: u64,
    /// The allocation.
    pub max: u64,
}

impl ApiUsage {
    /// Parses a `Sforce-Limit-Info` value: `;`-separated parts, of which only `api-usage=N/M`
    /// is read (`per-app-api-usage=...` and unknown parts are ignored).
    pub fn parse_header(value: &str) -> Option<Self> {
        value.split(';').find_map(|part| {
            let (used, max) = part.trim().strip_prefix("api-usage=")?.split_once('/')?;
            Some(Self {
                used: used.trim().parse().ok()?,
                max: max.trim().parse().ok()?,
            })
        })
    }

    /// The share of the allocation used, from 0.0 (1.0 when the allocation is zero).
    pub fn fraction_used(&self) -> f64 {
        if self.max == 0 {
            return 1.0;
        }
        // Precision loss only above 2^52 calls.
        #[allow(clippy::cast_precision_loss)]
        let fraction = self.used as f64 / self.max as f64;
        fraction
    }
}

/// One entry of `/limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Limit {
    /// The allocation.
    #[serde(rename = "Max")]
    pub max: i64,
    /// What is left of it.
    #[serde(rename = "Remaining")]
    pub remaining: i64,
}

/// The answer of `/limits`, by limit name (`DailyApiRequests`, `DailyBulkApiRequests`...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Limits(pub BTreeMap<String, Limit>);

impl Limits {
    /// One limit by name.
    pub fn get(&self, name: &str) -> Option<Limit> {
        self.0.get(name).copied()
    }

    /// The rolling 24-hour API request allocation.
    pub fn daily_api_requests(&self) -> Option<Limit> {
        self.get("DailyApiRequests")
    }
}

/// Who the client is logged in as, from the token answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The integration user's id (the last part of the token's `id` URL).
    pub user_id: String,
    /// The org's id.
    pub org_id: String,
    /// The base URL of every API call.
    pub instance_url: url::Url,
}

impl Identity {
    /// Reads org and user ids from a token's identity URL (`.../id/<org id>/<user id>`).
    pub(crate) fn from_id_url(id_url: &str, instance_url: url::Url) -> Option<Self> {
        let mut parts = id_url.trim_end_matches('/').rsplit('/');
        let user_id = parts.next()?.to_owned();
        let org_id = parts.next()?.to_owned();
        if parts.next()? != "id" || user_id.is_empty() || org_id.is_empty() {
            return None;
        }
        Some(Self {
            user_id,
            org_id,
            instance_url,
        })
    }
}

/// A datetime Salesforce could not have written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not a salesforce datetime (expected 2024-05-01T10:00:00.000+0000 or rfc 3339)"
)]
pub struct DatetimeError {
    /// The text as given.
    pub value: String,
}

/// Parses a datetime in Salesforce's wire form (`2024-05-01T10:00:00.000+0000`, no colon in
/// the offset) or in RFC 3339 (`2024-05-01T10:00:00Z`).
///
/// # Errors
///
/// [`DatetimeError`] when it is neither.
pub fn parse_datetime(s: &str) -> Result<DateTime<Utc>, DatetimeError> {
    let parsed = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s));
    parsed
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DatetimeError {
            value: s.to_owned(),
        })
}

/// Parses a date field (`2010-01-01`).
///
/// # Errors
///
/// [`DatetimeError`] when it is not one.
pub fn parse_date(s: &str) -> Result<NaiveDate, DatetimeError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| DatetimeError {
        value: s.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn datetimes_in_both_forms() {
        let expected = Utc
            .with_ymd_and_hms(2024, 5, 1, 10, 0, 0)
            .single()
            .expect("valid");
        assert_eq!(parse_datetime("2024-05-01T10:00:00.000+0000"), Ok(expected));
        assert_eq!(parse_datetime("2024-05-01T10:00:00Z"), Ok(expected));
        assert_eq!(parse_datetime("2024-05-01T12:00:00+02:00"), Ok(expected));
        assert_eq!(parse_datetime("2024-05-01T12:00:00.000+0200"), Ok(expected));
        assert!(parse_datetime("2024-05-01").is_err());
        assert!(parse_datetime("yesterday").is_err());
    }

    #[test]
    fn limit_info_header() {
        let table = [
            ("api-usage=10018/100000", Some((10018, 100000))),
            ("api-usage=113/5000000", Some((113, 5000000))),
            (
                "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-app)",
                Some((25, 5000)),
            ),
            (
                "per-app-api-usage=17/250(appName=sample-app);api-usage=3/10",
                Some((3, 10)),
            ),
            ("per-app-api-usage=17/250(appName=sample-app)", None),
            ("api-usage=lots", None),
            ("", None),
        ];
        for (header, expected) in table {
            let parsed = ApiUsage::parse_header(header).map(|u| (u.used, u.max));
            assert_eq!(parsed, expected, "{header}");
        }
    }

    #[test]
    fn null_and_missing_fields_are_both_empty() {
        let record = Record::from_json(
            json!({
                "attributes": {
                    "type": "Account",
                    "url": "/services/data/v62.0/sobjects/Account/001000000000001AAA"
                },
                "Id": "001000000000001AAA",
                "Name": "Irongate Diagnostics",
                "Website": null,
                "Type": "  "
            })
            .as_object()
            .cloned()
            .expect("object"),
        )
        .expect("valid record");
        assert_eq!(record.object_type, "Account");
        assert_eq!(record.id, "001000000000001AAA");
        assert!(!record.fields.contains_key("attributes"));
        assert_eq!(record.text("Name"), Some("Irongate Diagnostics"));
        assert_eq!(record.text("name"), Some("Irongate Diagnostics"));
        assert_eq!(record.get("Website"), None);
        assert_eq!(record.get("Industry"), None);
        assert_eq!(record.text("Type"), None);
        let debug = format!("{record:?}");
        assert!(
            debug.contains("Website") && !debug.contains("Irongate"),
            "{debug}"
        );
    }

    #[test]
    fn identity_from_the_id_url() {
        let instance = url::Url::parse("https://acme.my.salesforce.com").expect("valid");
        let identity = Identity::from_id_url(
            "https://login.salesforce.com/id/00D000000000001AAA/005000000000099AAA",
            instance.clone(),
        )
        .expect("valid id url");
        assert_eq!(identity.org_id, "00D000000000001AAA");
        assert_eq!(identity.user_id, "005000000000099AAA");
        assert!(Identity::from_id_url("https://login.salesforce.com/005", instance).is_none());
    }

    fn outcome(value: Value) -> RecordOutcome {
        serde_json::from_value::<SaveResult>(value)
            .expect("valid save result")
            .into()
    }

    #[test]
    fn per_record_outcomes() {
        assert_eq!(
            outcome(json!({"id": "001", "success": true, "errors": []})),
            RecordOutcome::Written
        );
        assert_eq!(
            outcome(json!({"success": false, "errors": [
                {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}
            ]})),
            RecordOutcome::Gone
        );
        assert_eq!(
            outcome(json!({"success": false, "errors": [{
                "statusCode": "UNABLE_TO_LOCK_ROW",
                "message": "unable to obtain exclusive access to this record",
                "fields": []
            }]})),
            RecordOutcome::Retryable {
                code: "UNABLE_TO_LOCK_ROW".into(),
                message: "unable to obtain exclusive access to this record".into()
            }
        );
        assert_eq!(
            outcome(json!({"success": false, "errors": [
                {
                    "statusCode": "STRING_TOO_LONG",
                    "message": "Summary: data value too large",
                    "fields": ["Summary__c"]
                },
                {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked"},
                {
                    "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    "message": "no",
                    "fields": ["Summary__c", "B2B__c"]
                }
            ]})),
            RecordOutcome::Rejected {
                status_code: "STRING_TOO_LONG".into(),
                message: "Summary: data value too large; locked; no".into(),
                fields: vec!["Summary__c".into(), "B2B__c".into()]
            }
        );
        assert!(matches!(
            outcome(json!({"success": false})),
            RecordOutcome::Rejected { .. }
        ));
    }
}
