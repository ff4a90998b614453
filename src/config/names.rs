//! Names the configuration refers to: Salesforce API names, object sync names, environment
//! variable names, and which Salesforce fields hold personal data.

/// What a Salesforce API name looks like, for error messages.
pub(crate) const API_NAME_HELP: &str = "expected a Salesforce API name: letters, digits and single \
     underscores, starting with a letter, with an optional namespace prefix and suffix \
     (e.g. Industry, Kernel_Score__c, acme__Tier__c)";

/// Suffixes of custom API names: custom objects and fields, events, external objects, custom
/// metadata, big objects.
const API_NAME_SUFFIXES: [&str; 5] = ["c", "e", "x", "mdt", "b"];

/// Whether `name` is shaped like a Salesforce API name (`Account`, `Kernel_Score__c`,
/// `acme__Tier__c`). Existence is checked against describe metadata by the engine.
pub(crate) fn is_api_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split("__").collect();
    let (body, suffix) = match parts.as_slice() {
        [body] => (vec![*body], None),
        [body, suffix] if API_NAME_SUFFIXES.contains(suffix) => (vec![*body], Some(*suffix)),
        [namespace, body, suffix] if API_NAME_SUFFIXES.contains(suffix) => {
            (vec![*namespace, *body], Some(*suffix))
        }
        _ => return false,
    };
    let body_ok = |part: &str| {
        part.starts_with(|c: char| c.is_ascii_alphabetic())
            && !part.ends_with('_')
            && !part.contains("__")
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    name.len() <= 80 && body.into_iter().all(body_ok) && suffix.is_none_or(|s| !s.is_empty())
}

/// Whether `name` is a valid object sync name: `[a-z0-9_-]+`, at most 64 characters.
pub(crate) fn is_sync_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Whether `name` is a portable environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_env_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The Salesforce objects whose records are people.
const PERSON_OBJECTS: [&str; 3] = ["Lead", "Contact", "User"];

/// Standard fields that name a person wherever they appear.
const PERSON_NAME_FIELDS: [&str; 5] = [
    "FirstName",
    "LastName",
    "MiddleName",
    "Suffix",
    "Salutation",
];

/// Why a field is personal data, and so may not be sent to Kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PersonalField {
    /// A person's name.
    Name,
    /// An email address: only its domain may be sent, through `inputs.email`.
    Email,
    /// A phone or fax number.
    Phone,
    /// A person's job title.
    Title,
    /// A date of birth.
    Birthdate,
}

impl PersonalField {
    /// The kind of data, as said in a message: "a person's name".
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Name => "a person's name",
            Self::Email => "an email address",
            Self::Phone => "a phone number",
            Self::Title => "a person's job title",
            Self::Birthdate => "a date of birth",
        }
    }
}

/// Classifies `object.field` by its name alone (see [`is_personal_field_name`]).
pub(crate) fn personal_field(object: &str, field: &str) -> Option<PersonalField> {
    let lower = field.to_ascii_lowercase();
    if PERSON_NAME_FIELDS.contains(&field) || (field == "Name" && PERSON_OBJECTS.contains(&object))
    {
        return Some(PersonalField::Name);
    }
    if lower.contains("email") {
        return Some(PersonalField::Email);
    }
    if lower.contains("phone") || field == "Fax" {
        return Some(PersonalField::Phone);
    }
    match field {
        "Title" => Some(PersonalField::Title),
        "Birthdate" => Some(PersonalField::Birthdate),
        _ => None,
    }
}

/// Whether the field `field` of the Salesforce object `object` holds personal data, judged by
/// its name alone: person names (`FirstName`, `LastName`, `MiddleName`, `Suffix`,
/// `Salutation`, and `Name` on Lead, Contact and User), any field whose name contains `Email`
/// or `Phone` (standard or custom, e.g. `MobilePhone`, `PersonEmail`, `Billing_Email__c`),
/// `Fax`, `Title` and `Birthdate`.
///
/// The configuration rejects such fields as Kernel inputs, except an email field under
/// `inputs.email`, of which only the domain is sent. A field typed `email` or `phone` in the
/// org's describe metadata is personal too whatever its name: that second check needs the org
/// and belongs to the engine's `check` command.
#[must_use]
pub fn is_personal_field_name(object: &str, field: &str) -> bool {
    personal_field(object, field).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names() {
        let valid = [
            "Account",
            "Industry",
            "Kernel_Score__c",
            "acme__Tier__c",
            "Region__mdt",
            "A1",
        ];
        for name in valid {
            assert!(is_api_name(name), "{name}");
        }
        let invalid = [
            "",
            "1Account",
            "Kernel Score",
            "Kernel__Score",
            "Kernel_Score__",
            "Score_",
            "a__b__c__d",
            "Name;",
            "_Name",
            "Account.Name",
            "a___c",
            "Kernel_Score__z",
        ];
        for name in invalid {
            assert!(!is_api_name(name), "{name}");
        }
    }

    #[test]
    fn sync_and_env_names() {
        assert!(is_sync_name("accounts") && is_sync_name("prospect-companies_2"));
        assert!(!is_sync_name("Accounts") && !is_sync_name("") && !is_sync_name("a b"));
        assert!(is_env_name("KERNEL_API_KEY") && is_env_name("_K1"));
        assert!(!is_env_name("1KEY") && !is_env_name("sk-live-123") && !is_env_name(""));
    }

    #[test]
    fn personal_fields_table() {
        use PersonalField::*;
        let cases = [
            ("Lead", "FirstName", Some(Name)),
            ("Account", "LastName", Some(Name)),
            ("Lead", "Name", Some(Name)),
            ("Contact", "Name", Some(Name)),
            ("User", "Name", Some(Name)),
            ("Account", "Name", None),
            ("Prospect_Company__c", "Name", None),
            ("Lead", "Company", None),
            ("Lead", "Email", Some(Email)),
            ("Account", "PersonEmail", Some(Email)),
            ("Account", "Billing_Email__c", Some(Email)),
            ("Lead", "Phone", Some(Phone)),
            ("Lead", "MobilePhone", Some(Phone)),
            ("Contact", "HomePhone", Some(Phone)),
            ("Contact", "OtherPhone", Some(Phone)),
            ("Lead", "Fax", Some(Phone)),
            ("Account", "Support_Phone__c", Some(Phone)),
            ("Lead", "Title", Some(Title)),
            ("Contact", "Birthdate", Some(Birthdate)),
            ("Account", "Website", None),
            ("Account", "Kernel_LinkedIn_URL__c", None),
        ];
        for (object, field, expected) in cases {
            assert_eq!(personal_field(object, field), expected, "{object}.{field}");
            assert_eq!(is_personal_field_name(object, field), expected.is_some());
        }
    }
}
