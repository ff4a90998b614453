//! Field types and values: the wire forms of dates and datetimes, typed comparison for SOQL,
//! and the checks a written value must pass (type, length, range, restricted picklist).

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::data::FieldDef;

/// The Salesforce field types the simulator knows, by their describe `type` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FieldType {
    Id,
    Reference,
    String,
    Textarea,
    Url,
    Email,
    Phone,
    Picklist,
    Boolean,
    Int,
    Double,
    Currency,
    Percent,
    Date,
    Datetime,
}

impl FieldType {
    /// The describe `type` value.
    pub(crate) fn wire_name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Reference => "reference",
            Self::String => "string",
            Self::Textarea => "textarea",
            Self::Url => "url",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Picklist => "picklist",
            Self::Boolean => "boolean",
            Self::Int => "int",
            Self::Double => "double",
            Self::Currency => "currency",
            Self::Percent => "percent",
            Self::Date => "date",
            Self::Datetime => "datetime",
        }
    }

    /// The describe `soapType` value.
    pub(crate) fn soap_type(self) -> &'static str {
        match self {
            Self::Id | Self::Reference => "tns:ID",
            Self::Boolean => "xsd:boolean",
            Self::Int => "xsd:int",
            Self::Double | Self::Currency | Self::Percent => "xsd:double",
            Self::Date => "xsd:date",
            Self::Datetime => "xsd:dateTime",
            _ => "xsd:string",
        }
    }

    /// Values held as text (ids and picklists included).
    pub(crate) fn is_text(self) -> bool {
        matches!(
            self,
            Self::Id
                | Self::Reference
                | Self::String
                | Self::Textarea
                | Self::Url
                | Self::Email
                | Self::Phone
                | Self::Picklist
        )
    }

    /// Numeric types.
    pub(crate) fn is_number(self) -> bool {
        matches!(
            self,
            Self::Int | Self::Double | Self::Currency | Self::Percent
        )
    }

    /// The type name used in SOQL filter type errors.
    pub(crate) fn filter_type_name(self) -> &'static str {
        match self {
            Self::Id | Self::Reference => "id",
            Self::Boolean => "boolean",
            Self::Int => "integer",
            Self::Double | Self::Currency | Self::Percent => "double",
            Self::Date => "date",
            Self::Datetime => "dateTime",
            _ => "string",
        }
    }
}

/// A value with its type known, for comparison and sorting.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Typed {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
}

impl Typed {
    /// Reads a stored wire value of a field of type `kind`. Values that do not parse read as
    /// null: the store only holds checked values, so that does not happen in practice.
    pub(crate) fn from_wire(kind: FieldType, value: &Value) -> Self {
        match (kind, value) {
            (_, Value::Null) => Self::Null,
            (_, Value::Bool(b)) => Self::Bool(*b),
            (_, Value::Number(n)) => n.as_f64().map_or(Self::Null, Self::Number),
            (FieldType::Date, Value::String(s)) => parse_date(s).map_or(Self::Null, Self::Date),
            (FieldType::Datetime, Value::String(s)) => {
                parse_datetime(s).map_or(Self::Null, Self::DateTime)
            }
            (_, Value::String(s)) => Self::Text(s.clone()),
            _ => Self::Null,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// Compares two non-null values of the same kind. Text compares case-insensitively, as
    /// SOQL does; values of different kinds do not compare.
    pub(crate) fn compare(&self, other: &Self) -> Option<Ordering> {
        match (self, other) {
            (Self::Bool(a), Self::Bool(b)) => Some(a.cmp(b)),
            (Self::Number(a), Self::Number(b)) => a.partial_cmp(b),
            (Self::Text(a), Self::Text(b)) => Some(fold(a).cmp(&fold(b))),
            (Self::Date(a), Self::Date(b)) => Some(a.cmp(b)),
            (Self::DateTime(a), Self::DateTime(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// Case folding for SOQL text comparison.
pub(crate) fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// Formats an instant in Salesforce's wire form: `2024-05-01T10:00:00.000+0000`.
pub(crate) fn format_datetime(instant: DateTime<Utc>) -> String {
    instant.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Parses a datetime in Salesforce's wire form or in RFC 3339.
pub(crate) fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(parsed) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(parsed.with_timezone(&Utc));
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|parsed| parsed.with_timezone(&Utc))
}

/// Parses a `YYYY-MM-DD` date.
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// An RFC 3339 rendering for logs and tests.
#[cfg(test)]
pub(crate) fn rfc3339(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Whether `id` looks like a Salesforce record Id: 15 or 18 letters and digits.
pub(crate) fn is_valid_id(id: &str) -> bool {
    (id.len() == 15 || id.len() == 18) && id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Why a value cannot be written to a field, as a per-record error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueProblem {
    pub(crate) status_code: &'static str,
    pub(crate) message: String,
}

/// Checks `value` against `field` and returns the value as it would be stored (numbers
/// rounded to the field's scale, datetimes in wire form).
pub(crate) fn check_value(field: &FieldDef, value: &Value) -> Result<Value, ValueProblem> {
    let label = &field.label;
    let wrong_type = || ValueProblem {
        status_code: "INVALID_TYPE_ON_FIELD_IN_RECORD",
        message: format!("{label}: value not of required type: {}", display(value)),
    };

    if value.is_null() {
        if !field.nillable && field.kind != FieldType::Boolean {
            return Err(ValueProblem {
                status_code: "REQUIRED_FIELD_MISSING",
                message: format!("Required fields are missing: [{}]", field.name),
            });
        }
        // A checkbox cannot be empty: Salesforce stores false.
        return Ok(if field.kind == FieldType::Boolean {
            Value::Bool(false)
        } else {
            Value::Null
        });
    }

    match field.kind {
        FieldType::Id | FieldType::Reference => {
            let Some(text) = value.as_str() else {
                return Err(wrong_type());
            };
            if !is_valid_id(text) {
                return Err(ValueProblem {
                    status_code: "MALFORMED_ID",
                    message: format!("{label}: id value of incorrect type: {text}"),
                });
            }
            Ok(value.clone())
        }
        FieldType::String
        | FieldType::Textarea
        | FieldType::Url
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Picklist => check_text(field, value).ok_or_else(wrong_type)?,
        FieldType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
            _ => Err(wrong_type()),
        },
        FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent => {
            check_number(field, value).ok_or_else(wrong_type)?
        }
        FieldType::Date => {
            let text = value.as_str().ok_or_else(wrong_type)?;
            // Salesforce accepts a datetime for a date field and keeps the date part.
            let date = parse_date(text)
                .or_else(|| parse_datetime(text).map(|instant| instant.date_naive()))
                .ok_or_else(wrong_type)?;
            Ok(Value::String(date.format("%Y-%m-%d").to_string()))
        }
        FieldType::Datetime => {
            let text = value.as_str().ok_or_else(wrong_type)?;
            let instant = parse_datetime(text).ok_or_else(wrong_type)?;
            Ok(Value::String(format_datetime(instant)))
        }
    }
}

/// Text checks; `None` when the JSON value is not text at all.
fn check_text(field: &FieldDef, value: &Value) -> Option<Result<Value, ValueProblem>> {
    let text = match value {
        Value::String(s) => s.clone(),
        // Salesforce turns numbers and booleans sent to a text field into text.
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    let label = &field.label;

    let length = text.chars().count();
    if field.length > 0 && length > field.length as usize {
        return Some(Err(ValueProblem {
            status_code: "STRING_TOO_LONG",
            message: format!(
                "{label}: data value too large: {text} (max length={})",
                field.length
            ),
        }));
    }
    if field.kind == FieldType::Picklist
        && field.restricted
        && !field.picklist.iter().any(|allowed| allowed == &text)
    {
        return Some(Err(ValueProblem {
            status_code: "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            message: format!("{label}: bad value for restricted picklist field: {text}"),
        }));
    }
    if field.kind == FieldType::Email && !looks_like_email(&text) {
        return Some(Err(ValueProblem {
            status_code: "INVALID_EMAIL_ADDRESS",
            message: format!("{label}: invalid email address: {text}"),
        }));
    }
    Some(Ok(Value::String(text)))
}

fn looks_like_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !text.contains(' ')
}

/// Number checks; `None` when the JSON value is not a number or numeric text.
fn check_number(field: &FieldDef, value: &Value) -> Option<Result<Value, ValueProblem>> {
    let number = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !number.is_finite() {
        return None;
    }
    let label = &field.label;
    let out_of_range = || ValueProblem {
        status_code: "NUMBER_OUTSIDE_VALID_RANGE",
        message: format!(
            "{label}: value outside of valid range on numeric field: {}",
            display(value)
        ),
    };

    if field.kind == FieldType::Int {
        if number.fract() != 0.0 {
            return None;
        }
        let limit = 10f64.powi(i32::try_from(field.digits).unwrap_or(9));
        if number.abs() >= limit {
            return Some(Err(out_of_range()));
        }
        // Exact: the value is integral and below 10^digits, far inside i64.
        #[allow(clippy::cast_possible_truncation)]
        return Some(Ok(Value::from(number as i64)));
    }

    let scale = i32::try_from(field.scale).unwrap_or(0);
    let whole_digits = i32::try_from(field.precision.saturating_sub(field.scale)).unwrap_or(18);
    let factor = 10f64.powi(scale);
    let rounded = (number * factor).round() / factor;
    if rounded.abs() >= 10f64.powi(whole_digits) {
        return Some(Err(out_of_range()));
    }
    Some(Ok(
        serde_json::Number::from_f64(rounded).map_or(Value::Null, Value::Number)
    ))
}

/// A value as it appears inside an error message: text without quotes.
fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: FieldType) -> FieldDef {
        FieldDef {
            name: "F__c".into(),
            label: "F".into(),
            kind,
            length: 5,
            digits: 4,
            precision: 5,
            scale: 2,
            nillable: true,
            updateable: true,
            calculated: false,
            custom: true,
            picklist: vec!["Seed".into(), "Growth".into()],
            restricted: true,
            default: Value::Null,
            system: false,
        }
    }

    fn code(kind: FieldType, value: &Value) -> &'static str {
        match check_value(&field(kind), value) {
            Ok(_) => "OK",
            Err(problem) => problem.status_code,
        }
    }

    #[test]
    fn write_checks_give_salesforce_status_codes() {
        let table: Vec<(FieldType, Value, &str)> = vec![
            (FieldType::String, Value::from("abcde"), "OK"),
            (FieldType::String, Value::from("abcdef"), "STRING_TOO_LONG"),
            (FieldType::String, Value::from(12), "OK"),
            (
                FieldType::String,
                serde_json::json!({"a": 1}),
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
            ),
            (FieldType::Picklist, Value::from("Seed"), "OK"),
            (
                FieldType::Picklist,
                Value::from("seed"),
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            ),
            (FieldType::Int, Value::from(9999), "OK"),
            (
                FieldType::Int,
                Value::from(10000),
                "NUMBER_OUTSIDE_VALID_RANGE",
            ),
            (
                FieldType::Int,
                Value::from(1.5),
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
            ),
            (
                FieldType::Int,
                Value::from("abc"),
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
            ),
            (FieldType::Percent, Value::from(999.994), "OK"),
            (
                FieldType::Percent,
                Value::from(1000),
                "NUMBER_OUTSIDE_VALID_RANGE",
            ),
            (FieldType::Double, Value::from("12.5"), "OK"),
            (FieldType::Boolean, Value::from(true), "OK"),
            (
                FieldType::Boolean,
                Value::from(1),
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
            ),
            (FieldType::Date, Value::from("2024-02-29"), "OK"),
            (
                FieldType::Date,
                Value::from("2023-02-29"),
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
            ),
            (
                FieldType::Datetime,
                Value::from("2024-05-01T10:00:00Z"),
                "OK",
            ),
            (
                FieldType::Datetime,
                Value::from("yesterday"),
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
            ),
            (FieldType::Email, Value::from("a@b.c"), "OK"),
            (
                FieldType::Email,
                Value::from("nope"),
                "INVALID_EMAIL_ADDRESS",
            ),
            (
                FieldType::Reference,
                Value::from("005000000000001AAA"),
                "OK",
            ),
            (FieldType::Reference, Value::from("005"), "MALFORMED_ID"),
        ];
        for (kind, value, expected) in table {
            assert_eq!(code(kind, &value), expected, "{kind:?} {value}");
        }
    }

    #[test]
    fn numbers_round_to_scale_and_datetimes_take_wire_form() {
        let stored = check_value(&field(FieldType::Percent), &Value::from(12.345)).expect("fits");
        assert_eq!(stored, Value::from(12.35));
        let stored = check_value(
            &field(FieldType::Datetime),
            &Value::from("2024-05-01T12:00:00+02:00"),
        )
        .expect("parses");
        assert_eq!(stored, Value::from("2024-05-01T10:00:00.000+0000"));
    }

    #[test]
    fn null_is_refused_only_where_not_nillable() {
        let mut required = field(FieldType::String);
        required.nillable = false;
        let problem = check_value(&required, &Value::Null).expect_err("required");
        assert_eq!(problem.status_code, "REQUIRED_FIELD_MISSING");
        assert_eq!(
            check_value(&field(FieldType::String), &Value::Null),
            Ok(Value::Null)
        );
        assert_eq!(
            check_value(&field(FieldType::Boolean), &Value::Null),
            Ok(Value::Bool(false))
        );
    }

    #[test]
    fn wire_datetimes_round_trip() {
        let instant = parse_datetime("2024-05-01T10:00:00.123+0000").expect("wire form");
        assert_eq!(format_datetime(instant), "2024-05-01T10:00:00.123+0000");
        assert_eq!(rfc3339(instant), "2024-05-01T10:00:00.123Z");
        assert!(parse_datetime("2024-05-01").is_none());
    }

    #[test]
    fn text_compares_case_insensitively() {
        let a = Typed::Text("acme".into());
        let b = Typed::Text("ACME".into());
        assert_eq!(a.compare(&b), Some(Ordering::Equal));
        assert_eq!(Typed::Number(1.0).compare(&Typed::Text("1".into())), None);
    }
}
