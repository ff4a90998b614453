//! The simulated org's content: objects with their describe metadata, validation rules and
//! records, loaded from the compact fixture form under `fixtures/org/`.
//!
//! The fixture layout is `describe/<Object>.json` (one object per file, the compact form
//! below) and `records/<Object>.json` (an array of records in Salesforce's wire form). Every
//! object gets the system fields (`Id`, `CreatedDate`, `LastModifiedDate`, `SystemModstamp`,
//! `CreatedById`, `LastModifiedById`, `OwnerId`, `IsDeleted`) without listing them.
//!
//! A validation rule's condition is written in the WHERE syntax of the simulator's SOQL subset
//! (`Kernel_Founded_Year__c < 1970`) and fails the write when it evaluates to true, as a
//! Salesforce validation rule formula does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::soql::{self, BoundExpr};
use super::values::{self, FieldType};

/// The user who last modified the fixture records, and the default author of control-surface
/// edits: a person, not the integration user.
pub const PERSON_USER_ID: &str = "005000000000001AAA";

/// Why the org's fixtures could not be loaded. Every variant is fatal: the simulator does not
/// start with a partial org.
#[derive(Debug, thiserror::Error)]
pub enum SimDataError {
    /// A fixture file or directory could not be read.
    #[error("cannot read org fixture {path}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// A fixture file is not JSON of the expected shape.
    #[error("org fixture {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON failure, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A fixture parses but says something inconsistent.
    #[error("org fixture {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and, when known, how to fix it.
        reason: String,
    },
}

/// One field of an object, resolved from the compact fixture form.
#[derive(Debug, Clone)]
pub(crate) struct FieldDef {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) kind: FieldType,
    pub(crate) length: u32,
    pub(crate) digits: u32,
    pub(crate) precision: u32,
    pub(crate) scale: u32,
    pub(crate) nillable: bool,
    pub(crate) updateable: bool,
    pub(crate) calculated: bool,
    pub(crate) custom: bool,
    pub(crate) picklist: Vec<String>,
    pub(crate) restricted: bool,
    pub(crate) default: Value,
    /// Set by the server (system fields), never written through the API.
    pub(crate) system: bool,
}

/// A validation rule: when `condition` is true for the record as it would be saved, the write
/// fails with `FIELD_CUSTOM_VALIDATION_EXCEPTION`.
#[derive(Debug, Clone)]
pub(crate) struct ValidationRule {
    pub(crate) name: String,
    pub(crate) condition: BoundExpr,
    pub(crate) message: String,
    pub(crate) error_field: Option<String>,
}

/// One sObject type: its describe metadata, validation rules and records.
#[derive(Debug, Clone)]
pub(crate) struct ObjectDef {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) label_plural: String,
    pub(crate) key_prefix: String,
    pub(crate) custom: bool,
    pub(crate) fields: Vec<FieldDef>,
    pub(crate) rules: Vec<ValidationRule>,
}

impl ObjectDef {
    /// The field named `name`, compared case-insensitively as Salesforce does.
    pub(crate) fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// An object together with its records, in insertion order.
#[derive(Debug, Clone)]
pub(crate) struct ObjectData {
    pub(crate) def: ObjectDef,
    pub(crate) records: Vec<Map<String, Value>>,
}

/// The content of a simulated org: objects, describe metadata, validation rules and records.
#[derive(Debug, Clone)]
pub struct OrgData {
    pub(crate) objects: Vec<ObjectData>,
}

/// The compact describe form of one object, as written in `fixtures/org/describe/`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ObjectSpec {
    name: String,
    label: String,
    label_plural: String,
    key_prefix: String,
    #[serde(default)]
    custom: bool,
    fields: Vec<FieldSpec>,
    #[serde(default)]
    validation_rules: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FieldSpec {
    name: String,
    #[serde(rename = "type")]
    kind: FieldType,
    label: Option<String>,
    length: Option<u32>,
    digits: Option<u32>,
    precision: Option<u32>,
    scale: Option<u32>,
    nillable: Option<bool>,
    updateable: Option<bool>,
    #[serde(default)]
    calculated: bool,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    restricted: bool,
    default: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleSpec {
    name: String,
    condition: String,
    message: String,
    error_field: Option<String>,
}

/// The built-in demo org, compiled into the binary.
const BUILTIN: [(&str, &str, &str); 3] = [
    (
        "Account",
        include_str!("../../../fixtures/org/describe/Account.json"),
        include_str!("../../../fixtures/org/records/Account.json"),
    ),
    (
        "Lead",
        include_str!("../../../fixtures/org/describe/Lead.json"),
        include_str!("../../../fixtures/org/records/Lead.json"),
    ),
    (
        "Prospect_Company__c",
        include_str!("../../../fixtures/org/describe/Prospect_Company__c.json"),
        include_str!("../../../fixtures/org/records/Prospect_Company__c.json"),
    ),
];

impl OrgData {
    /// The demo org shipped in `fixtures/org/`: Account, Lead and Prospect_Company__c.
    ///
    /// # Errors
    ///
    /// Fails only if the compiled-in fixtures are inconsistent, which the unit tests rule out.
    pub fn builtin() -> Result<Self, SimDataError> {
        let mut objects = Vec::new();
        for (name, describe, records) in BUILTIN {
            let describe_path = PathBuf::from(format!("fixtures/org/describe/{name}.json"));
            let records_path = PathBuf::from(format!("fixtures/org/records/{name}.json"));
            objects.push(load_object(
                &describe_path,
                describe,
                Some((&records_path, records)),
            )?);
        }
        Ok(Self { objects })
    }

    /// Loads an org from a directory laid out like `fixtures/org/`: every
    /// `describe/<Object>.json` defines an object, and `records/<Object>.json`, when present,
    /// holds its records.
    ///
    /// # Errors
    ///
    /// Fails when a file cannot be read or parsed, a record has a field the describe does not
    /// know or a value of the wrong type, or a validation rule does not parse.
    pub fn load_dir(dir: &Path) -> Result<Self, SimDataError> {
        let describe_dir = dir.join("describe");
        let read_dir = |path: &Path| {
            std::fs::read_dir(path).map_err(|source| SimDataError::Read {
                path: path.to_path_buf(),
                source,
            })
        };

        let mut describe_files = Vec::new();
        for entry in read_dir(&describe_dir)? {
            let entry = entry.map_err(|source| SimDataError::Read {
                path: describe_dir.clone(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|ext| ext == "json") {
                describe_files.push(path);
            }
        }
        // Sorted so that object order (and the describe-global order) is stable.
        describe_files.sort();

        let mut objects = Vec::new();
        for describe_path in describe_files {
            let describe = read_text(&describe_path)?;
            let Some(stem) = describe_path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let records_path = dir.join("records").join(format!("{stem}.json"));
            let records = if records_path.exists() {
                Some(read_text(&records_path)?)
            } else {
                None
            };
            let records = records
                .as_deref()
                .map(|text| (records_path.as_path(), text));
            objects.push(load_object(&describe_path, &describe, records)?);
        }

        if objects.is_empty() {
            return Err(SimDataError::Invalid {
                path: describe_dir,
                reason: "no describe/<Object>.json file found; add at least one object".into(),
            });
        }
        Ok(Self { objects })
    }

    /// The names of the objects in the org.
    pub fn object_names(&self) -> Vec<String> {
        self.objects.iter().map(|o| o.def.name.clone()).collect()
    }

    /// The index of the object named `name` (case-insensitive).
    pub(crate) fn object_index(&self, name: &str) -> Option<usize> {
        self.objects
            .iter()
            .position(|o| o.def.name.eq_ignore_ascii_case(name))
    }
}

fn read_text(path: &Path) -> Result<String, SimDataError> {
    std::fs::read_to_string(path).map_err(|source| SimDataError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn load_object(
    describe_path: &Path,
    describe: &str,
    records: Option<(&Path, &str)>,
) -> Result<ObjectData, SimDataError> {
    let spec: ObjectSpec =
        serde_json::from_str(describe).map_err(|source| SimDataError::Parse {
            path: describe_path.to_path_buf(),
            source,
        })?;
    let def = resolve_object(describe_path, spec)?;

    let mut loaded = Vec::new();
    if let Some((path, text)) = records {
        let raw: Vec<Map<String, Value>> =
            serde_json::from_str(text).map_err(|source| SimDataError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        for (index, record) in raw.into_iter().enumerate() {
            let record =
                normalise_fixture_record(&def, record).map_err(|reason| SimDataError::Invalid {
                    path: path.to_path_buf(),
                    reason: format!("record {index}: {reason}"),
                })?;
            loaded.push(record);
        }
    }
    Ok(ObjectData {
        def,
        records: loaded,
    })
}

fn resolve_object(path: &Path, spec: ObjectSpec) -> Result<ObjectDef, SimDataError> {
    let invalid = |reason: String| SimDataError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    if spec.key_prefix.len() != 3 || !spec.key_prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(invalid(format!(
            "keyPrefix '{}' of {} must be 3 letters or digits, like '001'",
            spec.key_prefix, spec.name
        )));
    }

    let mut fields = system_fields();
    for field in spec.fields {
        if fields
            .iter()
            .any(|f: &FieldDef| f.name.eq_ignore_ascii_case(&field.name))
        {
            return Err(invalid(format!(
                "field {} of {} is listed twice",
                field.name, spec.name
            )));
        }
        fields.push(resolve_field(field).map_err(invalid)?);
    }

    let mut def = ObjectDef {
        name: spec.name,
        label: spec.label,
        label_plural: spec.label_plural,
        key_prefix: spec.key_prefix,
        custom: spec.custom,
        fields,
        rules: Vec::new(),
    };
    for rule in spec.validation_rules {
        let condition = soql::compile_condition(&rule.condition, &def).map_err(|err| {
            invalid(format!(
                "validation rule {}: {}",
                rule.name,
                err.render(&rule.condition)
            ))
        })?;
        if let Some(field) = &rule.error_field
            && def.field(field).is_none()
        {
            return Err(invalid(format!(
                "validation rule {} names errorField {field}, which {} does not have",
                rule.name, def.name
            )));
        }
        def.rules.push(ValidationRule {
            name: rule.name,
            condition,
            message: rule.message,
            error_field: rule.error_field,
        });
    }
    Ok(def)
}

fn resolve_field(spec: FieldSpec) -> Result<FieldDef, String> {
    let kind = spec.kind;
    if kind.is_text() && kind != FieldType::Picklist && spec.length.is_none() {
        return Err(format!(
            "field {} of type {} needs a length",
            spec.name,
            kind.wire_name()
        ));
    }
    if kind == FieldType::Picklist && spec.values.is_empty() {
        return Err(format!("picklist field {} needs values", spec.name));
    }
    let length = match kind {
        FieldType::Picklist => spec.length.unwrap_or(255),
        FieldType::Id | FieldType::Reference => 18,
        _ => spec.length.unwrap_or(0),
    };
    let nillable = spec.nillable.unwrap_or(kind != FieldType::Boolean);
    let default = match spec.default {
        Some(value) => value,
        None if kind == FieldType::Boolean => Value::Bool(false),
        None => Value::Null,
    };
    let custom = spec.name.ends_with("__c");
    let label = spec.label.unwrap_or_else(|| default_label(&spec.name));

    Ok(FieldDef {
        label,
        kind,
        length,
        digits: spec
            .digits
            .unwrap_or(if kind == FieldType::Int { 9 } else { 0 }),
        precision: spec
            .precision
            .unwrap_or(if kind.is_number() && kind != FieldType::Int {
                18
            } else {
                0
            }),
        scale: spec.scale.unwrap_or(0),
        nillable,
        updateable: spec.updateable.unwrap_or(!spec.calculated),
        calculated: spec.calculated,
        custom,
        picklist: spec.values,
        restricted: spec.restricted,
        default,
        system: false,
        name: spec.name,
    })
}

/// A readable label from an API name: `Kernel_Open_Roles__c` becomes `Kernel Open Roles`.
fn default_label(name: &str) -> String {
    name.trim_end_matches("__c").replace('_', " ")
}

fn system_fields() -> Vec<FieldDef> {
    let field = |name: &str, label: &str, kind: FieldType, nillable: bool| FieldDef {
        name: name.to_string(),
        label: label.to_string(),
        kind,
        length: if matches!(kind, FieldType::Id | FieldType::Reference) {
            18
        } else {
            0
        },
        digits: 0,
        precision: 0,
        scale: 0,
        nillable,
        updateable: false,
        calculated: false,
        custom: false,
        picklist: Vec::new(),
        restricted: false,
        default: if kind == FieldType::Boolean {
            Value::Bool(false)
        } else {
            Value::Null
        },
        system: true,
    };
    let mut owner = field("OwnerId", "Owner ID", FieldType::Reference, false);
    // Owners can be reassigned through the API; every other system field is the server's.
    owner.updateable = true;
    owner.system = false;
    vec![
        field("Id", "Record ID", FieldType::Id, false),
        field("IsDeleted", "Deleted", FieldType::Boolean, false),
        field("CreatedDate", "Created Date", FieldType::Datetime, false),
        field("CreatedById", "Created By ID", FieldType::Reference, false),
        field(
            "LastModifiedDate",
            "Last Modified Date",
            FieldType::Datetime,
            false,
        ),
        field(
            "LastModifiedById",
            "Last Modified By ID",
            FieldType::Reference,
            false,
        ),
        field(
            "SystemModstamp",
            "System Modstamp",
            FieldType::Datetime,
            false,
        ),
        owner,
    ]
}

/// Checks a fixture record against the describe and fills every field the record leaves out
/// with its default, so that queries see every field of the describe.
fn normalise_fixture_record(
    def: &ObjectDef,
    mut raw: Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    for key in raw.keys() {
        if def.field(key).is_none() {
            return Err(format!(
                "field {key} is not in the describe of {}; add it to describe/{}.json",
                def.name, def.name
            ));
        }
    }
    let id = match raw.get("Id") {
        Some(Value::String(id)) if values::is_valid_id(id) && id.starts_with(&def.key_prefix) => {
            id.clone()
        }
        _ => {
            return Err(format!(
                "needs an 18-character Id starting with {}",
                def.key_prefix
            ));
        }
    };
    let modified_by = raw
        .get("LastModifiedById")
        .and_then(Value::as_str)
        .unwrap_or(PERSON_USER_ID)
        .to_string();

    let mut record = Map::new();
    for field in &def.fields {
        let value = raw.remove(&field.name).unwrap_or(Value::Null);
        let value = match (&value, field.name.as_str()) {
            (Value::Null, "CreatedById" | "OwnerId" | "LastModifiedById") => {
                Value::String(modified_by.clone())
            }
            (Value::Null, _) => field.default.clone(),
            _ => values::check_value(field, &value).map_err(|problem| {
                format!("record {id}, field {}: {}", field.name, problem.message)
            })?,
        };
        record.insert(field.name.clone(), value);
    }
    for stamp in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
        if record.get(stamp).is_none_or(Value::is_null) {
            return Err(format!("record {id} needs {stamp}"));
        }
    }
    derive_fields(def, &mut record);
    Ok(record)
}

/// Fields Salesforce computes from others: a Lead's `Name` is its first and last name.
pub(crate) fn derive_fields(def: &ObjectDef, record: &mut Map<String, Value>) {
    if def.name != "Lead" {
        return;
    }
    let part = |key: &str| {
        record
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let full = [part("FirstName"), part("LastName")]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let value = if full.is_empty() {
        Value::Null
    } else {
        Value::String(full)
    };
    record.insert("Name".into(), value);
}

/// A count of records per object, for logs and the control surface.
pub(crate) fn record_counts(data: &OrgData) -> BTreeMap<String, usize> {
    data.objects
        .iter()
        .map(|o| (o.def.name.clone(), o.records.len()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_org_loads_every_object_with_system_fields() {
        let org = OrgData::builtin().expect("builtin fixtures are consistent");
        assert_eq!(
            org.object_names(),
            ["Account", "Lead", "Prospect_Company__c"]
        );
        for object in &org.objects {
            for name in [
                "Id",
                "SystemModstamp",
                "LastModifiedById",
                "OwnerId",
                "IsDeleted",
            ] {
                assert!(
                    object.def.field(name).is_some(),
                    "{} lacks {name}",
                    object.def.name
                );
            }
            assert!(!object.records.is_empty());
        }
        let counts = record_counts(&org);
        assert_eq!(counts["Account"], 260);
    }

    #[test]
    fn fixture_records_gain_defaults_and_derived_names() {
        let org = OrgData::builtin().expect("builtin fixtures are consistent");
        let account = &org.objects[0].records[0];
        assert_eq!(account["Kernel_Is_B2B__c"], Value::Bool(false));
        assert_eq!(account["NumberOfEmployees"], Value::Null);
        assert_eq!(account["OwnerId"], Value::String(PERSON_USER_ID.into()));
        let lead = &org.objects[1].records[0];
        assert_eq!(lead["Name"], Value::String("Jonas Jansky".into()));
    }

    #[test]
    fn load_dir_reads_the_fixture_layout_and_rejects_unknown_fields() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/org");
        let org = OrgData::load_dir(&root).expect("fixtures/org loads");
        assert_eq!(org.objects.len(), 3);

        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("describe")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("records")).expect("mkdir");
        let describe = r#"{"name":"Thing__c","label":"Thing","labelPlural":"Things",
            "keyPrefix":"a05","fields":[{"name":"Name","type":"string","length":10}]}"#;
        std::fs::write(dir.path().join("describe/Thing__c.json"), describe).expect("write");
        let records = r#"[{"Id":"a05000000000001AAA","Colour__c":"red",
            "CreatedDate":"2024-01-01T00:00:00.000+0000"}]"#;
        std::fs::write(dir.path().join("records/Thing__c.json"), records).expect("write");
        let err = OrgData::load_dir(dir.path()).expect_err("unknown field is refused");
        assert!(err.to_string().contains("Colour__c"), "{err}");
    }

    #[test]
    fn broken_validation_rule_is_reported_with_its_name() {
        let spec: ObjectSpec = serde_json::from_str(
            r#"{"name":"T__c","label":"T","labelPlural":"Ts","keyPrefix":"a09","fields":[],
            "validationRules":[{"name":"Bad","condition":"Nope__c <","message":"m"}]}"#,
        )
        .expect("spec parses");
        let err = resolve_object(Path::new("T__c.json"), spec).expect_err("rule is refused");
        assert!(err.to_string().contains("validation rule Bad"), "{err}");
    }
}
