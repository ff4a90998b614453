//! An sObject's field metadata, read from `GET /sobjects/{type}/describe`: what the engine
//! checks a mapping against before any run (the field exists, is updateable, the type fits,
//! text fits the length, picklist values are allowed).
//!
//! Describe lists only the fields the integration user can see; a missing field means "no
//! access" as much as "no such field". Record-type-specific picklist subsets are not part of
//! describe and are not known here.

use serde::Deserialize;

/// The type of a field, as describe names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    /// A record id.
    Id,
    /// A lookup to another record.
    Reference,
    /// Single-line text (`length` characters).
    String,
    /// Multi-line text (`length` characters).
    Textarea,
    /// One value of a list.
    Picklist,
    /// Several values of a list, `;`-joined.
    Multipicklist,
    /// A checkbox.
    Boolean,
    /// An integer (`digits`).
    Int,
    /// A number (`precision`, `scale`).
    Double,
    /// A currency amount (`precision`, `scale`).
    Currency,
    /// A percentage (`precision`, `scale`), 12.5 meaning 12.5 %.
    Percent,
    /// A calendar date.
    Date,
    /// A point in time.
    Datetime,
    /// A time of day.
    Time,
    /// An email address.
    Email,
    /// A phone number.
    Phone,
    /// A URL.
    Url,
    /// Any other type, by its describe name (`address`, `location`, `base64`...).
    Other(String),
}

impl FieldType {
    fn from_name(name: &str) -> Self {
        match name {
            "id" => Self::Id,
            "reference" => Self::Reference,
            "string" => Self::String,
            "textarea" => Self::Textarea,
            "picklist" => Self::Picklist,
            "multipicklist" => Self::Multipicklist,
            "boolean" => Self::Boolean,
            "int" => Self::Int,
            "double" => Self::Double,
            "currency" => Self::Currency,
            "percent" => Self::Percent,
            "date" => Self::Date,
            "datetime" => Self::Datetime,
            "time" => Self::Time,
            "email" => Self::Email,
            "phone" => Self::Phone,
            "url" => Self::Url,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether values of this type are text limited by the field's `length`.
    pub fn is_text(&self) -> bool {
        matches!(
            self,
            Self::String
                | Self::Textarea
                | Self::Email
                | Self::Phone
                | Self::Url
                | Self::Picklist
                | Self::Multipicklist
        )
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|name| Self::from_name(&name))
    }
}

/// An object's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectDescribe {
    /// API name.
    pub name: String,
    /// Label.
    #[serde(default)]
    pub label: String,
    /// Whether it is a custom object.
    #[serde(default)]
    pub custom: bool,
    /// Whether it can be queried.
    #[serde(default)]
    pub queryable: bool,
    /// Whether its records can be updated.
    #[serde(default)]
    pub updateable: bool,
    /// The fields the integration user can see.
    pub fields: Vec<FieldDescribe>,
}

impl ObjectDescribe {
    /// A field by API name, compared case-insensitively as Salesforce does.
    pub fn field(&self, name: &str) -> Option<&FieldDescribe> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

/// A field's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldDescribe {
    /// API name.
    pub name: String,
    /// Label (Salesforce names it in error messages).
    #[serde(default)]
    pub label: String,
    /// Type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Most characters of a text field (0 for other types).
    #[serde(default)]
    pub length: u32,
    /// Most digits of a number, both sides of the point.
    #[serde(default)]
    pub precision: u32,
    /// Digits right of the point.
    #[serde(default)]
    pub scale: u32,
    /// Most digits of an `int`.
    #[serde(default)]
    pub digits: u32,
    /// Whether the integration user may write it.
    #[serde(default)]
    pub updateable: bool,
    /// Whether it may be set on create.
    #[serde(default)]
    pub createable: bool,
    /// Whether it may be empty.
    #[serde(default)]
    pub nillable: bool,
    /// Whether it is a formula or roll-up (never writable).
    #[serde(default)]
    pub calculated: bool,
    /// Whether it is a custom field.
    #[serde(default)]
    pub custom: bool,
    /// Whether values outside the active picklist values are refused.
    #[serde(default)]
    pub restricted_picklist: bool,
    /// The active picklist values, in describe order.
    #[serde(default, rename = "picklistValues", deserialize_with = "active_values")]
    pub picklist_values: Vec<String>,
}

impl FieldDescribe {
    /// Whether `value` is an active value of this picklist, compared exactly.
    pub fn allows_value(&self, value: &str) -> bool {
        self.picklist_values.iter().any(|v| v == value)
    }
}

#[derive(Deserialize)]
struct PicklistValue {
    value: String,
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

fn active_values<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let values = Option::<Vec<PicklistValue>>::deserialize(d)?.unwrap_or_default();
    Ok(values
        .into_iter()
        .filter(|v| v.active)
        .map(|v| v.value)
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn picklists_keep_active_values_only() {
        let field: FieldDescribe = serde_json::from_value(json!({
            "name": "Kernel_Funding_Stage__c",
            "type": "picklist",
            "restrictedPicklist": true,
            "picklistValues": [
                {"value": "Seed", "label": "Seed", "active": true},
                {"value": "Legacy", "label": "Legacy", "active": false},
                {"value": "Growth", "label": "Growth", "active": true}
            ]
        }))
        .expect("valid field");
        assert_eq!(field.picklist_values, ["Seed", "Growth"]);
        assert!(field.allows_value("Seed"));
        assert!(!field.allows_value("Legacy"));
        assert!(field.restricted_picklist);
        assert_eq!(field.field_type, FieldType::Picklist);
    }

    #[test]
    fn unknown_types_are_kept_by_name() {
        let field: FieldDescribe = serde_json::from_value(json!({
            "name": "BillingAddress", "type": "address", "picklistValues": null
        }))
        .expect("valid field");
        assert_eq!(field.field_type, FieldType::Other("address".into()));
        assert!(field.picklist_values.is_empty());
    }
}
