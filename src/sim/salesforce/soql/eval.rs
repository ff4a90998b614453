//! Binding and evaluation: the parsed query is checked against the describe metadata (object
//! and field names, literal types), then run over records with typed comparisons.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::SoqlError;
use super::lexer::{CmpOp, PatElem};
use super::parser::{self, Expr, Ident, Lit, LitKind};
use crate::sim::salesforce::data::{ObjectDef, OrgData};
use crate::sim::salesforce::values::{FieldType, Typed, fold, is_valid_id};

/// A condition checked against an object's fields, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BoundExpr {
    And(Vec<BoundExpr>),
    Or(Vec<BoundExpr>),
    Not(Box<BoundExpr>),
    Compare {
        field: String,
        kind: FieldType,
        op: CmpOp,
        value: Typed,
    },
    In {
        field: String,
        kind: FieldType,
        negated: bool,
        values: Vec<Typed>,
    },
    Like {
        field: String,
        pattern: Vec<PatElem>,
    },
}

/// One ORDER BY key, with Salesforce's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrderKey {
    pub(crate) field: String,
    pub(crate) kind: FieldType,
    pub(crate) descending: bool,
    pub(crate) nulls_first: bool,
}

/// A query checked against the org, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// Index of the object in the org.
    pub(crate) object: usize,
    /// The selected fields, in the describe's spelling.
    pub(crate) select: Vec<String>,
    pub(crate) filter: Option<BoundExpr>,
    pub(crate) order: Vec<OrderKey>,
    pub(crate) limit: Option<usize>,
}

/// Parses and checks a query against `org`.
pub(crate) fn compile_query(soql: &str, org: &OrgData) -> Result<Plan, SoqlError> {
    let query = parser::parse_query(soql)?;

    let Some(object) = org.object_index(&query.object.name) else {
        return Err(SoqlError {
            code: "INVALID_TYPE",
            pos: query.object.pos,
            detail: format!(
                "sObject type '{}' is not supported. If you are attempting to use a custom \
                 object, be sure to append the '__c' after the entity name. Please reference \
                 your WSDL or the describe call for the appropriate names.",
                query.object.name
            ),
        });
    };
    let def = &org.objects[object].def;

    let mut select: Vec<String> = Vec::new();
    for ident in &query.fields {
        let (name, _) = resolve_field(def, ident)?;
        if !select.contains(&name) {
            select.push(name);
        }
    }

    let filter = query
        .filter
        .as_ref()
        .map(|expr| bind(def, expr))
        .transpose()?;

    let mut order = Vec::new();
    for item in &query.order_by {
        let (field, kind) = resolve_field(def, &item.field)?;
        order.push(OrderKey {
            field,
            kind,
            descending: item.descending,
            // Salesforce puts nulls first in ascending order and last in descending order.
            nulls_first: item.nulls_first.unwrap_or(!item.descending),
        });
    }

    let limit = query
        .limit
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    Ok(Plan {
        object,
        select,
        filter,
        order,
        limit,
    })
}

/// Parses and checks a bare condition (a validation rule) against `def`.
pub(crate) fn compile_condition(text: &str, def: &ObjectDef) -> Result<BoundExpr, SoqlError> {
    let expr = parser::parse_condition(text)?;
    bind(def, &expr)
}

fn resolve_field(def: &ObjectDef, ident: &Ident) -> Result<(String, FieldType), SoqlError> {
    match def.field(&ident.name) {
        Some(field) => Ok((field.name.clone(), field.kind)),
        None => Err(SoqlError {
            code: "INVALID_FIELD",
            pos: ident.pos,
            detail: format!(
                "No such column '{}' on entity '{}'. If you are attempting to use a custom \
                 field, be sure to append the '__c' after the custom field name. Please \
                 reference your WSDL or the describe call for the appropriate names.",
                ident.name, def.name
            ),
        }),
    }
}

fn bind(def: &ObjectDef, expr: &Expr) -> Result<BoundExpr, SoqlError> {
    Ok(match expr {
        Expr::And(parts) => BoundExpr::And(
            parts
                .iter()
                .map(|p| bind(def, p))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(parts) => BoundExpr::Or(
            parts
                .iter()
                .map(|p| bind(def, p))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(inner) => BoundExpr::Not(Box::new(bind(def, inner)?)),
        Expr::Compare { field, op, value } => {
            let (name, kind) = resolve_field(def, field)?;
            let value = typed_literal(&name, kind, value)?;
            BoundExpr::Compare {
                field: name,
                kind,
                op: *op,
                value,
            }
        }
        Expr::In {
            field,
            negated,
            values,
        } => {
            let (name, kind) = resolve_field(def, field)?;
            let values = values
                .iter()
                .map(|v| typed_literal(&name, kind, v))
                .collect::<Result<_, _>>()?;
            BoundExpr::In {
                field: name,
                kind,
                negated: *negated,
                values,
            }
        }
        Expr::Like {
            field,
            pattern,
            pos,
        } => {
            let (name, kind) = resolve_field(def, field)?;
            if !kind.is_text() || matches!(kind, FieldType::Id | FieldType::Reference) {
                return Err(SoqlError {
                    code: "INVALID_QUERY_FILTER_OPERATOR",
                    pos: *pos,
                    detail: format!(
                        "invalid operator on {} field: LIKE",
                        kind.filter_type_name()
                    ),
                });
            }
            BoundExpr::Like {
                field: name,
                pattern: pattern.clone(),
            }
        }
    })
}

/// Checks that a literal suits the field's type, as Salesforce does before running a query.
fn typed_literal(field: &str, kind: FieldType, lit: &Lit) -> Result<Typed, SoqlError> {
    let mismatch = |quoted: bool| {
        let quotes = if quoted {
            "should be enclosed in quotes"
        } else {
            "should not be enclosed in quotes"
        };
        SoqlError {
            code: "INVALID_FIELD",
            pos: lit.pos,
            detail: format!(
                "value of filter criterion for field '{field}' must be of type {} and {quotes}",
                kind.filter_type_name()
            ),
        }
    };

    match (&lit.kind, kind) {
        (LitKind::Null, _) => Ok(Typed::Null),
        (LitKind::Text(text), FieldType::Id | FieldType::Reference) => {
            if is_valid_id(text) {
                Ok(Typed::Text(text.clone()))
            } else {
                Err(SoqlError {
                    code: "INVALID_QUERY_FILTER_OPERATOR",
                    pos: lit.pos,
                    detail: format!("invalid ID field: {text}"),
                })
            }
        }
        (LitKind::Text(text), k) if k.is_text() => Ok(Typed::Text(text.clone())),
        (_, k) if k.is_text() => Err(mismatch(true)),
        (LitKind::Bool(b), FieldType::Boolean) => Ok(Typed::Bool(*b)),
        (LitKind::Number(n), k) if k.is_number() => Ok(Typed::Number(*n)),
        (LitKind::Date(d), FieldType::Date) => Ok(Typed::Date(*d)),
        (LitKind::DateTime(t), FieldType::Datetime) => Ok(Typed::DateTime(*t)),
        _ => Err(mismatch(false)),
    }
}

/// Whether `record` satisfies `expr`.
pub(crate) fn matches(expr: &BoundExpr, record: &Map<String, Value>) -> bool {
    let typed = |field: &str, kind: FieldType| {
        Typed::from_wire(kind, record.get(field).unwrap_or(&Value::Null))
    };
    match expr {
        BoundExpr::And(parts) => parts.iter().all(|p| matches(p, record)),
        BoundExpr::Or(parts) => parts.iter().any(|p| matches(p, record)),
        BoundExpr::Not(inner) => !matches(inner, record),
        BoundExpr::Compare {
            field,
            kind,
            op,
            value,
        } => compare(&typed(field, *kind), *kind, *op, value),
        BoundExpr::In {
            field,
            kind,
            negated,
            values,
        } => {
            let actual = typed(field, *kind);
            let found = values.iter().any(|v| compare(&actual, *kind, CmpOp::Eq, v));
            found != *negated
        }
        BoundExpr::Like { field, pattern } => match typed(field, FieldType::String) {
            Typed::Text(text) => like(&fold(&text).chars().collect::<Vec<_>>(), pattern),
            _ => false,
        },
    }
}

/// SOQL comparison. Null equals only null; `!=` is true between null and a value; the
/// ordering operators are false when either side is null.
fn compare(actual: &Typed, kind: FieldType, op: CmpOp, expected: &Typed) -> bool {
    if actual.is_null() || expected.is_null() {
        let both = actual.is_null() && expected.is_null();
        return match op {
            CmpOp::Eq => both,
            CmpOp::Ne => !both,
            _ => false,
        };
    }
    let ordering = match (kind, actual, expected) {
        // A 15-character Id is the case-sensitive prefix of the 18-character form.
        (FieldType::Id | FieldType::Reference, Typed::Text(a), Typed::Text(e)) if e.len() == 15 => {
            Some(if a.get(..15) == Some(e.as_str()) {
                Ordering::Equal
            } else {
                a.as_str().cmp(e)
            })
        }
        _ => actual.compare(expected),
    };
    let Some(ordering) = ordering else {
        return op == CmpOp::Ne;
    };
    match op {
        CmpOp::Eq => ordering == Ordering::Equal,
        CmpOp::Ne => ordering != Ordering::Equal,
        CmpOp::Lt => ordering == Ordering::Less,
        CmpOp::Le => ordering != Ordering::Greater,
        CmpOp::Gt => ordering == Ordering::Greater,
        CmpOp::Ge => ordering != Ordering::Less,
    }
}

/// Case-insensitive LIKE matching over already-folded text.
fn like(text: &[char], pattern: &[PatElem]) -> bool {
    // Classic two-row dynamic programme: reachable[j] = pattern[..i] matches text[..j].
    let mut reachable = vec![false; text.len() + 1];
    reachable[0] = true;
    for element in pattern {
        let mut next = vec![false; text.len() + 1];
        match element {
            PatElem::Many => {
                let mut seen = false;
                for j in 0..=text.len() {
                    seen |= reachable[j];
                    next[j] = seen;
                }
            }
            PatElem::One => {
                next[1..].copy_from_slice(&reachable[..text.len()]);
            }
            PatElem::Char(c) => {
                let folded: Vec<char> = c.to_lowercase().collect();
                for j in 1..=text.len() {
                    next[j] = reachable[j - 1] && folded.len() == 1 && text[j - 1] == folded[0];
                }
            }
        }
        reachable = next;
    }
    reachable[text.len()]
}

/// Runs `plan` over `records`: filter, sort, limit. Returns indices into `records`.
pub(crate) fn run(plan: &Plan, records: &[Map<String, Value>]) -> Vec<usize> {
    let mut hits: Vec<usize> = (0..records.len())
        .filter(|&i| plan.filter.as_ref().is_none_or(|f| matches(f, &records[i])))
        .collect();

    if !plan.order.is_empty() {
        hits.sort_by(|&a, &b| order(&plan.order, &records[a], &records[b]));
    }
    if let Some(limit) = plan.limit {
        hits.truncate(limit);
    }
    hits
}

fn order(keys: &[OrderKey], a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
    for key in keys {
        let left = Typed::from_wire(key.kind, a.get(&key.field).unwrap_or(&Value::Null));
        let right = Typed::from_wire(key.kind, b.get(&key.field).unwrap_or(&Value::Null));
        let ordering = match (left.is_null(), right.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if key.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if key.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, false) => {
                let natural = left.compare(&right).unwrap_or(Ordering::Equal);
                if key.descending {
                    natural.reverse()
                } else {
                    natural
                }
            }
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn org() -> OrgData {
        OrgData::builtin().expect("builtin fixtures are consistent")
    }

    fn record(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("a record is an object"),
        }
    }

    fn holds(condition: &str, value: Value) -> bool {
        let org = org();
        let expr = compile_condition(condition, &org.objects[0].def).expect(condition);
        matches(&expr, &record(value))
    }

    #[test]
    fn typed_comparisons_follow_soql() {
        let rec = json!({
            "Name": "Acme Labs",
            "Website": null,
            "NumberOfEmployees": 120,
            "Kernel_Is_B2B__c": true,
            "Kernel_Last_Funding_Date__c": "2024-03-01",
            "SystemModstamp": "2024-05-01T10:00:00.000+0000",
            "Id": "001000000000001AAA",
        });
        let table = [
            ("Name = 'acme labs'", true),
            ("Name != 'Acme Labs'", false),
            ("Name < 'b'", true),
            ("Website = null", true),
            ("Website != null", false),
            ("Website != 'x.example'", true),
            ("Website < 'x'", false),
            ("NumberOfEmployees >= 120", true),
            ("NumberOfEmployees > 120.5", false),
            ("NumberOfEmployees IN (1, 120)", true),
            ("NumberOfEmployees NOT IN (1, 120)", false),
            ("Website IN ('a', null)", true),
            ("Website NOT IN ('a')", true),
            ("Kernel_Is_B2B__c = true", true),
            ("Kernel_Is_B2B__c = false", false),
            ("Kernel_Last_Funding_Date__c > 2024-02-29", true),
            ("Kernel_Last_Funding_Date__c <= 2024-02-29", false),
            ("SystemModstamp = 2024-05-01T10:00:00Z", true),
            ("SystemModstamp = 2024-05-01T12:00:00+02:00", true),
            ("SystemModstamp > 2024-05-01T10:00:00.001Z", false),
            ("SystemModstamp >= 2024-05-01T05:00:00-05:00", true),
            ("Id = '001000000000001'", true),
            ("Id = '001000000000001aaa'", true),
            ("Id = '001000000000002AAA'", false),
            ("Name LIKE 'acme%'", true),
            ("Name LIKE '%LAB_'", true),
            ("Name LIKE 'Acme_Labs'", true),
            ("Name LIKE 'Acme'", false),
            ("NOT Name LIKE 'Acme%'", false),
            (
                "(Name = 'x' OR NumberOfEmployees = 120) AND Website = null",
                true,
            ),
            (
                "Name = 'x' OR (NumberOfEmployees = 120 AND Website != null)",
                false,
            ),
        ];
        for (condition, expected) in table {
            assert_eq!(holds(condition, rec.clone()), expected, "{condition}");
        }
    }

    #[test]
    fn like_escapes_match_literally() {
        let rec = json!({"Name": "50% off_now"});
        assert!(holds(r"Name LIKE '50\% off\_now'", rec.clone()));
        assert!(!holds(r"Name LIKE '50\%x%'", rec.clone()));
        assert!(holds("Name LIKE '50% OFF%'", rec));
    }

    #[test]
    fn escaped_strings_compare_by_their_decoded_text() {
        let rec = json!({"Name": "O'Hara \"Q\" \\ line\nnext\ttab"});
        assert!(holds(
            r#"Name = 'O\'Hara \"Q\" \\ line\nnext\ttab'"#,
            rec.clone()
        ));
        assert!(holds(r"Name LIKE 'O\u0027Hara%'", rec));
    }

    #[test]
    fn literal_type_mismatches_are_invalid_field() {
        let org = org();
        let def = &org.objects[0].def;
        let cases = [
            (
                "SystemModstamp > '2024-01-01T00:00:00Z'",
                "INVALID_FIELD",
                "type dateTime",
            ),
            (
                "SystemModstamp > 2024-01-01",
                "INVALID_FIELD",
                "type dateTime",
            ),
            (
                "Kernel_Last_Funding_Date__c > 2024-01-01T00:00:00Z",
                "INVALID_FIELD",
                "type date",
            ),
            ("NumberOfEmployees = '5'", "INVALID_FIELD", "type integer"),
            ("Name = 5", "INVALID_FIELD", "should be enclosed in quotes"),
            ("Kernel_Is_B2B__c = 'true'", "INVALID_FIELD", "type boolean"),
            (
                "Id = 'nope'",
                "INVALID_QUERY_FILTER_OPERATOR",
                "invalid ID field: nope",
            ),
            (
                "NumberOfEmployees LIKE '5%'",
                "INVALID_QUERY_FILTER_OPERATOR",
                "LIKE",
            ),
            (
                "Colour__c = 'red'",
                "INVALID_FIELD",
                "No such column 'Colour__c' on entity 'Account'",
            ),
        ];
        for (condition, code, fragment) in cases {
            let err = compile_condition(condition, def).expect_err(condition);
            assert_eq!(err.code, code, "{condition}");
            assert!(err.detail.contains(fragment), "{condition}: {}", err.detail);
        }
    }

    #[test]
    fn query_resolves_names_case_insensitively_and_keeps_describe_spelling() {
        let plan = compile_query("select id, NAME, name from ACCOUNT", &org()).expect("compiles");
        assert_eq!(plan.object, 0);
        assert_eq!(plan.select, ["Id", "Name"]);
        let err = compile_query("SELECT Id FROM Contact", &org()).expect_err("unknown object");
        assert_eq!(err.code, "INVALID_TYPE");
        assert!(
            err.detail
                .starts_with("sObject type 'Contact' is not supported.")
        );
    }

    #[test]
    fn order_by_defaults_and_nulls_placement() {
        let org = org();
        let records: Vec<_> = [
            json!({"Name": "b", "NumberOfEmployees": 2}),
            json!({"Name": null, "NumberOfEmployees": 1}),
            json!({"Name": "A", "NumberOfEmployees": 3}),
            json!({"Name": "b", "NumberOfEmployees": 1}),
        ]
        .into_iter()
        .map(record)
        .collect();
        let order = |soql: &str| {
            let plan = compile_query(soql, &org).expect(soql);
            run(&plan, &records)
        };
        assert_eq!(order("SELECT Id FROM Account ORDER BY Name"), [1, 2, 0, 3]);
        assert_eq!(
            order("SELECT Id FROM Account ORDER BY Name NULLS LAST"),
            [2, 0, 3, 1]
        );
        assert_eq!(
            order("SELECT Id FROM Account ORDER BY Name DESC"),
            [0, 3, 2, 1]
        );
        assert_eq!(
            order("SELECT Id FROM Account ORDER BY Name DESC NULLS FIRST"),
            [1, 0, 3, 2]
        );
        assert_eq!(
            order("SELECT Id FROM Account ORDER BY Name ASC, NumberOfEmployees DESC"),
            [1, 2, 0, 3]
        );
        assert_eq!(
            order("SELECT Id FROM Account WHERE Name != null ORDER BY Name LIMIT 2"),
            [2, 0]
        );
    }
}
