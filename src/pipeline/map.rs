//! Map: Kernel's dynamic payload to Salesforce field values, and the overwrite policies.
//!
//! Everything here is pure: [`propose`] turns a payload into converted values for the
//! mapped fields, checked against the object's describe metadata; [`decide`] says whether a
//! proposed value may replace what the record holds now. Mappings are checked against
//! describe before any run by [`check_mapping`].

use serde_json::{Map, Number, Value};

use crate::config::{Conversion, FieldMapping, Overwrite, Source};
use crate::salesforce::{FieldDescribe, FieldType, ObjectDescribe};

/// Values proposed for one record, and what was left out and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Proposal {
    /// Converted value per Salesforce field.
    pub values: Map<String, Value>,
    /// Fields left out or altered, with the reason (for logs at debug and `dry-run`).
    pub notes: Vec<String>,
}

/// Converts the mapped fields found in `payload` (a `null` or missing source is "not found
/// yet" and is left out).
pub fn propose(
    fields: &[FieldMapping],
    describe: &ObjectDescribe,
    payload: &Map<String, Value>,
) -> Proposal {
    let mut proposal = Proposal::default();
    for mapping in fields {
        let Some(raw) = lookup(payload, &mapping.source) else {
            continue;
        };
        if let Some(gate) = &mapping.confidence {
            let confidence = lookup(payload, &gate.source).and_then(Value::as_f64);
            match confidence {
                Some(c) if c >= gate.min => {}
                Some(c) => {
                    proposal.notes.push(format!(
                        "{}: confidence {c} is below {}; value left out",
                        mapping.target, gate.min
                    ));
                    continue;
                }
                None => {
                    proposal.notes.push(format!(
                        "{}: no confidence in the payload; value left out",
                        mapping.target
                    ));
                    continue;
                }
            }
        }
        let Some(field) = describe.field(&mapping.target) else {
            proposal.notes.push(format!(
                "{}: not in describe; value left out",
                mapping.target
            ));
            continue;
        };
        match convert(mapping, field, raw) {
            Ok((value, note)) => {
                if let Some(note) = note {
                    proposal.notes.push(format!("{}: {note}", mapping.target));
                }
                proposal.values.insert(field.name.clone(), value);
            }
            Err(why) => proposal
                .notes
                .push(format!("{}: {why}; value left out", mapping.target)),
        }
    }
    proposal
}

/// The payload value at `source`, unless it is missing or `null`.
pub fn lookup<'a>(payload: &'a Map<String, Value>, source: &Source) -> Option<&'a Value> {
    let value = match source {
        Source::Key(key) => payload.get(key),
        Source::Pointer(pointer) => {
            let (first, rest) = split_pointer(pointer);
            let top = payload.get(&first)?;
            if rest.is_empty() {
                Some(top)
            } else {
                top.pointer(rest)
            }
        }
    };
    value.filter(|v| !v.is_null())
}

/// Splits `/a/b/c` into the unescaped first token `a` and the rest `/b/c`.
fn split_pointer(pointer: &str) -> (String, &str) {
    let body = pointer.strip_prefix('/').unwrap_or(pointer);
    let (first, rest) = match body.find('/') {
        Some(at) => (&body[..at], &body[at..]),
        None => (body, ""),
    };
    (first.replace("~1", "/").replace("~0", "~"), rest)
}

/// Converts one raw value for `field`. Returns the value and an optional note (a cut text).
///
/// # Errors
///
/// A value that cannot become the field's type, or a picklist value the field refuses.
pub fn convert(
    mapping: &FieldMapping,
    field: &FieldDescribe,
    raw: &Value,
) -> Result<(Value, Option<String>), String> {
    match mapping.convert {
        Conversion::Text => {
            let text = as_text(raw, &mapping.separator);
            let limit = text_limit(mapping.max_length, field);
            Ok(cut(text, limit))
        }
        Conversion::Number => {
            let n = as_number(raw)?;
            Ok((number(round_to_scale(n, field.scale))?, None))
        }
        Conversion::Integer => {
            let n = as_number(raw)?.round();
            if n.abs() > 9_007_199_254_740_991.0 {
                return Err(format!("{n} is out of range for an integer"));
            }
            // The check above keeps the cast exact.
            #[expect(clippy::cast_possible_truncation, reason = "range checked above")]
            Ok((Value::from(n as i64), None))
        }
        Conversion::Percent => {
            let fraction = as_number(raw)?;
            Ok((number(round_to_scale(fraction * 100.0, field.scale))?, None))
        }
        Conversion::Boolean => match raw {
            Value::Bool(b) => Ok((Value::Bool(*b), None)),
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Ok((Value::Bool(true), None)),
                "false" | "no" | "0" => Ok((Value::Bool(false), None)),
                _ => Err(format!("`{s}` is not a boolean")),
            },
            Value::Number(n) if n.as_f64() == Some(1.0) => Ok((Value::Bool(true), None)),
            Value::Number(n) if n.as_f64() == Some(0.0) => Ok((Value::Bool(false), None)),
            other => Err(format!("{} is not a boolean", kind_of(other))),
        },
        Conversion::Date => {
            let Value::String(s) = raw else {
                return Err(format!("{} is not a date", kind_of(raw)));
            };
            let day = s.get(..10).unwrap_or(s);
            chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
                .map(|d| (Value::String(d.format("%Y-%m-%d").to_string()), None))
                .map_err(|_| format!("`{s}` is not a date (expected YYYY-MM-DD)"))
        }
        Conversion::Picklist => {
            let text = as_text(raw, ";");
            let mapped = mapping.picklist_map.get(&text).cloned().unwrap_or(text);
            let known = field
                .picklist_values
                .iter()
                .find(|v| v.eq_ignore_ascii_case(&mapped));
            match known {
                Some(value) => Ok((Value::String(value.clone()), None)),
                None if field.restricted_picklist => Err(format!(
                    "`{mapped}` is not a value of the restricted picklist (add a value map \
                     entry or the value to the picklist)"
                )),
                None => Ok((Value::String(mapped), None)),
            }
        }
    }
}

fn text_limit(max_length: Option<u32>, field: &FieldDescribe) -> Option<usize> {
    let described = (field.length > 0).then_some(field.length);
    let limit = match (max_length, described) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    limit.map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

fn cut(text: String, limit: Option<usize>) -> (Value, Option<String>) {
    match limit {
        Some(limit) if text.chars().count() > limit => {
            let cut: String = text.chars().take(limit).collect();
            let note = format!("text of {} characters cut to {limit}", text.chars().count());
            (Value::String(cut), Some(note))
        }
        _ => (Value::String(text), None),
    }
}

fn as_text(raw: &Value, separator: &str) -> String {
    match raw {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| as_text(v, separator))
            .collect::<Vec<_>>()
            .join(separator),
        other => other.to_string(),
    }
}

fn as_number(raw: &Value) -> Result<f64, String> {
    match raw {
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| format!("{n} is not a finite number")),
        Value::String(s) => s
            .trim()
            .trim_end_matches('%')
            .replace(',', "")
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("`{s}` is not a number")),
        other => Err(format!("{} is not a number", kind_of(other))),
    }
}

fn round_to_scale(n: f64, scale: u32) -> f64 {
    let factor = 10f64.powi(i32::try_from(scale.min(15)).unwrap_or(15));
    (n * factor).round() / factor
}

fn number(n: f64) -> Result<Value, String> {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_991.0 {
        #[expect(clippy::cast_possible_truncation, reason = "integral and in range")]
        return Ok(Value::from(n as i64));
    }
    Number::from_f64(n)
        .map(Value::Number)
        .ok_or_else(|| format!("{n} is not a finite number"))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What the overwrite policy decided for one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Write the proposed value.
    Write,
    /// The record already holds the proposed value.
    Unchanged,
    /// A person changed the value after kernel-sync wrote it (or before kernel-sync ever did);
    /// the policy keeps theirs.
    KeepPersonEdit,
    /// `never`: the field was filled once already.
    KeepFilled,
}

impl Decision {
    /// Short name for `dry-run`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Write => "write",
            Decision::Unchanged => "unchanged",
            Decision::KeepPersonEdit => "keep (person's value)",
            Decision::KeepFilled => "keep (never overwrite)",
        }
    }
}

/// Decides whether `proposed` may replace `current` under `policy`, knowing what
/// kernel-sync last wrote to the field (`last_written`).
pub fn decide(
    policy: Overwrite,
    current: Option<&Value>,
    proposed: &Value,
    last_written: Option<&Value>,
) -> Decision {
    if current.is_some_and(|c| same_value(c, proposed)) {
        return Decision::Unchanged;
    }
    let empty = current.is_none_or(is_empty);
    match policy {
        Overwrite::Always => Decision::Write,
        Overwrite::IfEmpty => {
            let ours = match (current, last_written) {
                (Some(c), Some(w)) => same_value(c, w),
                _ => false,
            };
            if empty || ours {
                Decision::Write
            } else {
                Decision::KeepPersonEdit
            }
        }
        Overwrite::Never => {
            if empty && last_written.is_none() {
                Decision::Write
            } else {
                Decision::KeepFilled
            }
        }
    }
}

/// Whether a Salesforce value counts as empty.
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Compares a value read from Salesforce with one kernel-sync would write: numbers by value
/// (Salesforce answers `120.0` for a double holding 120), everything else exactly.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        _ => a == b,
    }
}

/// Checks a mapping against the object's describe: every target exists, is updateable, and
/// its type fits the conversion. Returns one message per problem.
pub fn check_mapping(fields: &[FieldMapping], describe: &ObjectDescribe) -> Vec<String> {
    let mut problems = Vec::new();
    for mapping in fields {
        let Some(field) = describe.field(&mapping.target) else {
            problems.push(format!(
                "field {}.{} does not exist (or the integration user cannot see it): create it \
                 or grant field-level security",
                describe.name, mapping.target
            ));
            continue;
        };
        if !field.updateable || field.calculated {
            problems.push(format!(
                "field {}.{} is not updateable by the integration user: grant edit access in \
                 its field-level security, or map another field",
                describe.name, field.name
            ));
        }
        if !conversion_fits(mapping.convert, &field.field_type) {
            problems.push(format!(
                "field {}.{} is of type {} and cannot take a {} value: use one of {}",
                describe.name,
                field.name,
                type_name(&field.field_type),
                mapping.convert.as_str(),
                fitting_conversions(&field.field_type)
            ));
        }
        if mapping.convert == Conversion::Picklist && field.restricted_picklist {
            for sf_value in mapping.picklist_map.values() {
                if !field
                    .picklist_values
                    .iter()
                    .any(|v| v.eq_ignore_ascii_case(sf_value))
                {
                    problems.push(format!(
                        "field {}.{} is a restricted picklist without the value `{sf_value}` \
                         named in the mapping's value map",
                        describe.name, field.name
                    ));
                }
            }
        }
    }
    problems
}

fn conversion_fits(conversion: Conversion, field_type: &FieldType) -> bool {
    use FieldType as F;
    match conversion {
        Conversion::Text => matches!(
            field_type,
            F::String | F::Textarea | F::Url | F::Picklist | F::Multipicklist | F::Email | F::Phone
        ),
        Conversion::Number => {
            matches!(field_type, F::Double | F::Currency | F::Percent | F::Int)
        }
        Conversion::Integer => matches!(field_type, F::Int | F::Double | F::Currency),
        Conversion::Percent => matches!(field_type, F::Percent | F::Double),
        Conversion::Boolean => matches!(field_type, F::Boolean),
        Conversion::Date => matches!(field_type, F::Date),
        Conversion::Picklist => {
            matches!(
                field_type,
                F::Picklist | F::Multipicklist | F::String | F::Textarea
            )
        }
    }
}

fn type_name(field_type: &FieldType) -> &str {
    use FieldType as F;
    match field_type {
        F::Id => "id",
        F::Reference => "reference",
        F::String => "string",
        F::Textarea => "textarea",
        F::Picklist => "picklist",
        F::Multipicklist => "multipicklist",
        F::Boolean => "boolean",
        F::Int => "int",
        F::Double => "double",
        F::Currency => "currency",
        F::Percent => "percent",
        F::Date => "date",
        F::Datetime => "datetime",
        F::Time => "time",
        F::Email => "email",
        F::Phone => "phone",
        F::Url => "url",
        F::Other(name) => name,
    }
}

fn fitting_conversions(field_type: &FieldType) -> String {
    let all = [
        Conversion::Text,
        Conversion::Number,
        Conversion::Integer,
        Conversion::Percent,
        Conversion::Boolean,
        Conversion::Date,
        Conversion::Picklist,
    ];
    let fits: Vec<String> = all
        .into_iter()
        .filter(|c| conversion_fits(*c, field_type))
        .map(|c| c.as_str().to_owned())
        .collect();
    if fits.is_empty() {
        "none (map another field)".into()
    } else {
        fits.join(", ")
    }
}

#[cfg(test)]
mod tests;
