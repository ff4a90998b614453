//! Renders an object's metadata as the REST describe answer
//! (`GET /services/data/vXX.X/sobjects/{Object}/describe`) and the `/limits` answer.

use serde_json::{Map, Value, json};

use super::data::{FieldDef, ObjectDef};
use super::values::FieldType;

/// The describe JSON of `def`, for API version `version`.
pub(crate) fn describe(def: &ObjectDef, version: &str) -> Value {
    let base = format!("/services/data/{version}/sobjects/{}", def.name);
    let fields: Vec<Value> = def.fields.iter().map(field).collect();
    json!({
        "actionOverrides": [],
        "activateable": false,
        "childRelationships": [],
        "compactLayoutable": true,
        "createable": true,
        "custom": def.custom,
        "customSetting": false,
        "deletable": true,
        "deprecatedAndHidden": false,
        "feedEnabled": false,
        "fields": fields,
        "keyPrefix": def.key_prefix,
        "label": def.label,
        "labelPlural": def.label_plural,
        "layoutable": true,
        "mergeable": false,
        "mruEnabled": true,
        "name": def.name,
        "queryable": true,
        "recordTypeInfos": [],
        "replicateable": true,
        "retrieveable": true,
        "searchable": true,
        "triggerable": true,
        "undeletable": true,
        "updateable": true,
        "urls": {
            "describe": format!("{base}/describe"),
            "rowTemplate": format!("{base}/{{ID}}"),
            "sobject": base,
        },
    })
}

fn field(f: &FieldDef) -> Value {
    let kind = f.kind;
    let user_reference = matches!(
        f.name.as_str(),
        "OwnerId" | "CreatedById" | "LastModifiedById"
    );
    let relationship = user_reference.then(|| f.name.trim_end_matches("Id").to_string());
    let picklist: Vec<Value> = f
        .picklist
        .iter()
        .map(|value| {
            json!({"active": true, "defaultValue": false, "label": value, "validFor": null,
                   "value": value})
        })
        .collect();
    let default_value = if kind == FieldType::Boolean {
        f.default.clone()
    } else {
        Value::Null
    };
    let byte_length = if kind.is_text() { f.length * 3 } else { 0 };
    let groupable = !matches!(
        kind,
        FieldType::Double
            | FieldType::Currency
            | FieldType::Percent
            | FieldType::Datetime
            | FieldType::Textarea
    );

    let mut out = Map::new();
    let mut put = |key: &str, value: Value| {
        out.insert(key.to_string(), value);
    };
    put("autoNumber", json!(false));
    put("byteLength", json!(byte_length));
    put("calculated", json!(f.calculated));
    put("calculatedFormula", Value::Null);
    put("caseSensitive", json!(false));
    put("controllerName", Value::Null);
    put("createable", json!(f.updateable));
    put("custom", json!(f.custom));
    put("defaultValue", default_value);
    put("defaultValueFormula", Value::Null);
    put(
        "defaultedOnCreate",
        json!(f.system || kind == FieldType::Boolean || f.name == "OwnerId"),
    );
    put("dependentPicklist", json!(false));
    put("deprecatedAndHidden", json!(false));
    put("digits", json!(f.digits));
    put("externalId", json!(false));
    put("filterable", json!(true));
    put("groupable", json!(groupable));
    put("htmlFormatted", json!(false));
    put("idLookup", json!(kind == FieldType::Id));
    put("inlineHelpText", Value::Null);
    put("label", json!(f.label));
    put("length", json!(f.length));
    put("name", json!(f.name));
    put("nameField", json!(f.name == "Name"));
    put("namePointing", json!(f.name == "OwnerId"));
    put("nillable", json!(f.nillable));
    put("picklistValues", Value::Array(picklist));
    put("precision", json!(f.precision));
    put(
        "referenceTo",
        if user_reference {
            json!(["User"])
        } else {
            json!([])
        },
    );
    put(
        "relationshipName",
        relationship.map_or(Value::Null, Value::String),
    );
    put("relationshipOrder", Value::Null);
    put("restrictedPicklist", json!(f.restricted));
    put("scale", json!(f.scale));
    put("soapType", json!(kind.soap_type()));
    put(
        "sortable",
        json!(kind != FieldType::Textarea || f.length <= 255),
    );
    put("type", json!(kind.wire_name()));
    put("unique", json!(false));
    put("updateable", json!(f.updateable && !f.system));
    put("writeRequiresMasterRead", json!(false));
    Value::Object(out)
}

/// The `/limits` answer: `DailyApiRequests` from the simulator's count, the rest fixed at a
/// Developer Edition's sizes.
pub(crate) fn limits(allowance: u64, used: u64) -> Value {
    let fixed = |max: u64| json!({"Max": max, "Remaining": max});
    json!({
        "ConcurrentAsyncGetReportInstances": fixed(200),
        "ConcurrentSyncReportRuns": fixed(20),
        "DailyApiRequests": {"Max": allowance, "Remaining": allowance.saturating_sub(used)},
        "DailyAsyncApexExecutions": fixed(250_000),
        "DailyBulkApiRequests": fixed(5_000),
        "DailyBulkV2QueryJobs": fixed(10_000),
        "DailyStreamingApiEvents": fixed(10_000),
        "DataStorageMB": fixed(5),
        "FileStorageMB": fixed(20),
        "HourlyODataCallout": fixed(10_000),
        "SingleEmail": fixed(15),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::salesforce::data::OrgData;

    #[test]
    fn describe_carries_types_lengths_and_picklists() {
        let org = OrgData::builtin().expect("builtin fixtures are consistent");
        let body = describe(&org.objects[0].def, "v60.0");
        let fields = body["fields"].as_array().expect("fields array");
        let by_name = |name: &str| {
            fields
                .iter()
                .find(|f| f["name"] == name)
                .unwrap_or_else(|| panic!("{name}"))
        };
        assert_eq!(by_name("Name")["length"], 255);
        assert_eq!(by_name("Name")["nillable"], false);
        assert_eq!(by_name("Kernel_Headcount_Growth__c")["type"], "percent");
        assert_eq!(by_name("Kernel_Headcount_Growth__c")["precision"], 5);
        assert_eq!(by_name("Kernel_Headcount_Growth__c")["scale"], 2);
        assert_eq!(
            by_name("Kernel_Funding_Stage__c")["restrictedPicklist"],
            true
        );
        assert_eq!(
            by_name("Kernel_Funding_Stage__c")["picklistValues"][2]["value"],
            "Series A"
        );
        assert_eq!(by_name("Kernel_Score__c")["calculated"], true);
        assert_eq!(by_name("Kernel_Score__c")["updateable"], false);
        assert_eq!(by_name("SystemModstamp")["updateable"], false);
        assert_eq!(by_name("OwnerId")["referenceTo"], json!(["User"]));
        assert_eq!(
            body["urls"]["describe"],
            "/services/data/v60.0/sobjects/Account/describe"
        );
    }

    #[test]
    fn limits_report_remaining_calls() {
        let body = limits(100, 30);
        assert_eq!(
            body["DailyApiRequests"],
            json!({"Max": 100, "Remaining": 70})
        );
        assert_eq!(limits(10, 12)["DailyApiRequests"]["Remaining"], 0);
    }
}
