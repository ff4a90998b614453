//! Conversions, policies and describe checks, each against a small describe built in JSON.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::config::ConfidenceGate;

fn describe() -> ObjectDescribe {
    serde_json::from_value(json!({
        "name": "Account",
        "fields": [
            {"name": "Industry", "type": "picklist", "updateable": true,
             "picklistValues": [{"value": "Technology", "active": true},
                                {"value": "Finance", "active": true}]},
            {"name": "Kernel_Funding_Stage__c", "type": "picklist", "updateable": true,
             "restrictedPicklist": true,
             "picklistValues": [{"value": "Seed", "active": true}]},
            {"name": "Kernel_Description__c", "type": "textarea", "length": 20, "updateable": true},
            {"name": "Kernel_Technologies__c", "type": "string", "length": 255, "updateable": true},
            {"name": "NumberOfEmployees", "type": "int", "updateable": true},
            {"name": "Kernel_Headcount_Growth__c", "type": "percent", "precision": 5, "scale": 2,
             "updateable": true},
            {"name": "Kernel_Is_B2B__c", "type": "boolean", "updateable": true},
            {"name": "Kernel_Last_Funding_Date__c", "type": "date", "updateable": true},
            {"name": "Kernel_Open_Roles__c", "type": "double", "precision": 6, "scale": 0,
             "updateable": true},
            {"name": "Kernel_Score__c", "type": "double", "updateable": false, "calculated": true}
        ]
    }))
    .expect("test describe decodes")
}

fn mapping(target: &str, source: &str, convert: Conversion) -> FieldMapping {
    let source = if source.starts_with('/') {
        Source::Pointer(source.to_owned())
    } else {
        Source::Key(source.to_owned())
    };
    FieldMapping {
        target: target.to_owned(),
        source,
        convert,
        picklist_map: BTreeMap::new(),
        overwrite: Overwrite::IfEmpty,
        confidence: None,
        max_length: None,
        separator: ", ".to_owned(),
    }
}

fn payload(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test payloads are objects, not {other}"),
    }
}

#[test]
fn every_conversion_produces_the_salesforce_value() {
    let mut industry = mapping("Industry", "industry", Conversion::Picklist);
    industry
        .picklist_map
        .insert("Software".into(), "Technology".into());
    let fields = vec![
        industry,
        mapping("NumberOfEmployees", "headcount", Conversion::Integer),
        mapping(
            "Kernel_Headcount_Growth__c",
            "headcountGrowth",
            Conversion::Percent,
        ),
        mapping("Kernel_Is_B2B__c", "isB2B", Conversion::Boolean),
        mapping(
            "Kernel_Last_Funding_Date__c",
            "lastFundingDate",
            Conversion::Date,
        ),
        mapping("Kernel_Technologies__c", "technologies", Conversion::Text),
        mapping(
            "Kernel_Open_Roles__c",
            "/signals/openRoles",
            Conversion::Number,
        ),
    ];
    let got = propose(
        &fields,
        &describe(),
        &payload(json!({
            "industry": "Software",
            "headcount": 118.6,
            "headcountGrowth": 0.18913,
            "isB2B": "yes",
            "lastFundingDate": "2025-12-28T00:00:00Z",
            "technologies": ["AWS", "Stripe"],
            "signals": {"openRoles": 12}
        })),
    );
    assert_eq!(
        Value::Object(got.values),
        json!({
            "Industry": "Technology",
            "NumberOfEmployees": 119,
            "Kernel_Headcount_Growth__c": 18.91,
            "Kernel_Is_B2B__c": true,
            "Kernel_Last_Funding_Date__c": "2025-12-28",
            "Kernel_Technologies__c": "AWS, Stripe",
            "Kernel_Open_Roles__c": 12
        })
    );
    assert!(got.notes.is_empty(), "{:?}", got.notes);
}

#[test]
fn nulls_are_not_found_yet_and_are_left_out() {
    let fields = vec![mapping(
        "NumberOfEmployees",
        "headcount",
        Conversion::Integer,
    )];
    let got = propose(&fields, &describe(), &payload(json!({"headcount": null})));
    assert!(got.values.is_empty());
    let got = propose(&fields, &describe(), &payload(json!({})));
    assert!(got.values.is_empty());
}

#[test]
fn long_text_is_cut_to_the_field_length_with_a_note() {
    let fields = vec![mapping(
        "Kernel_Description__c",
        "description",
        Conversion::Text,
    )];
    let got = propose(
        &fields,
        &describe(),
        &payload(json!({"description": "Irongate Diagnostics is a healthcare company"})),
    );
    assert_eq!(
        got.values["Kernel_Description__c"],
        json!("Irongate Diagnostics")
    );
    assert_eq!(
        got.notes,
        vec!["Kernel_Description__c: text of 44 characters cut to 20"]
    );
}

#[test]
fn restricted_picklists_refuse_unknown_values_and_others_take_them() {
    let stage = vec![mapping(
        "Kernel_Funding_Stage__c",
        "fundingStage",
        Conversion::Picklist,
    )];
    let got = propose(
        &stage,
        &describe(),
        &payload(json!({"fundingStage": "Public"})),
    );
    assert!(got.values.is_empty());
    assert!(
        got.notes[0].contains("not a value of the restricted picklist"),
        "{:?}",
        got.notes
    );

    let industry = vec![mapping("Industry", "industry", Conversion::Picklist)];
    let got = propose(
        &industry,
        &describe(),
        &payload(json!({"industry": "Robotics"})),
    );
    assert_eq!(got.values["Industry"], json!("Robotics"));
    let got = propose(
        &industry,
        &describe(),
        &payload(json!({"industry": "finance"})),
    );
    assert_eq!(
        got.values["Industry"],
        json!("Finance"),
        "matched case-insensitively"
    );
}

#[test]
fn the_confidence_gate_holds_back_unsure_values() {
    let mut industry = mapping("Industry", "industry", Conversion::Picklist);
    industry.confidence = Some(ConfidenceGate {
        source: Source::Key("industryConfidence".into()),
        min: 0.7,
    });
    let fields = vec![industry];
    let sure = payload(json!({"industry": "Finance", "industryConfidence": 0.91}));
    assert_eq!(propose(&fields, &describe(), &sure).values.len(), 1);
    let unsure = payload(json!({"industry": "Finance", "industryConfidence": 0.42}));
    assert!(propose(&fields, &describe(), &unsure).values.is_empty());
    let unknown = payload(json!({"industry": "Finance"}));
    assert!(propose(&fields, &describe(), &unknown).values.is_empty());
}

#[test]
fn bad_values_are_left_out_with_the_reason() {
    let fields = vec![
        mapping("NumberOfEmployees", "headcount", Conversion::Integer),
        mapping("Kernel_Is_B2B__c", "isB2B", Conversion::Boolean),
        mapping(
            "Kernel_Last_Funding_Date__c",
            "lastFundingDate",
            Conversion::Date,
        ),
    ];
    let got = propose(
        &fields,
        &describe(),
        &payload(json!({"headcount": "about fifty", "isB2B": "maybe", "lastFundingDate": "soon"})),
    );
    assert!(got.values.is_empty());
    assert_eq!(got.notes.len(), 3, "{:?}", got.notes);
}

/// The overwrite policies, as a table: policy, current, proposed, last written, decision.
#[test]
fn overwrite_policies() {
    let v = |s: &str| json!(s);
    type Case = (Overwrite, Option<Value>, Value, Option<Value>, Decision);
    let cases: Vec<Case> = vec![
        (Overwrite::Always, None, v("A"), None, Decision::Write),
        (
            Overwrite::Always,
            Some(v("person")),
            v("A"),
            Some(v("old")),
            Decision::Write,
        ),
        (
            Overwrite::Always,
            Some(v("A")),
            v("A"),
            None,
            Decision::Unchanged,
        ),
        (Overwrite::IfEmpty, None, v("A"), None, Decision::Write),
        (
            Overwrite::IfEmpty,
            Some(v("")),
            v("A"),
            None,
            Decision::Write,
        ),
        (
            Overwrite::IfEmpty,
            Some(v("old")),
            v("A"),
            Some(v("old")),
            Decision::Write,
        ),
        (
            Overwrite::IfEmpty,
            Some(v("person")),
            v("A"),
            Some(v("old")),
            Decision::KeepPersonEdit,
        ),
        (
            Overwrite::IfEmpty,
            Some(v("person")),
            v("A"),
            None,
            Decision::KeepPersonEdit,
        ),
        (Overwrite::Never, None, v("A"), None, Decision::Write),
        (
            Overwrite::Never,
            None,
            v("A"),
            Some(v("old")),
            Decision::KeepFilled,
        ),
        (
            Overwrite::Never,
            Some(v("old")),
            v("A"),
            Some(v("old")),
            Decision::KeepFilled,
        ),
        (
            Overwrite::Never,
            Some(json!(120.0)),
            json!(120),
            None,
            Decision::Unchanged,
        ),
    ];
    for (policy, current, proposed, last, expected) in cases {
        let got = decide(policy, current.as_ref(), &proposed, last.as_ref());
        assert_eq!(
            got, expected,
            "{policy:?} current={current:?} last={last:?}"
        );
    }
}

#[test]
fn mappings_are_checked_against_describe() {
    let mut stage = mapping(
        "Kernel_Funding_Stage__c",
        "fundingStage",
        Conversion::Picklist,
    );
    stage.picklist_map.insert("Public".into(), "Listed".into());
    let fields = vec![
        mapping("Industry", "industry", Conversion::Picklist),
        mapping("Missing__c", "x", Conversion::Text),
        mapping("Kernel_Score__c", "score", Conversion::Number),
        mapping("Kernel_Is_B2B__c", "isB2B", Conversion::Date),
        stage,
    ];
    let problems = check_mapping(&fields, &describe());
    assert_eq!(
        problems,
        vec![
            "field Account.Missing__c does not exist (or the integration user cannot see it): \
             create it or grant field-level security",
            "field Account.Kernel_Score__c is not updateable by the integration user: grant edit \
             access in its field-level security, or map another field",
            "field Account.Kernel_Is_B2B__c is of type boolean and cannot take a date value: use \
             one of boolean",
            "field Account.Kernel_Funding_Stage__c is a restricted picklist without the value \
             `Listed` named in the mapping's value map",
        ]
    );
}
