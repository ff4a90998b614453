//! What the engine asks Kernel for: the three POST bodies of the contract, checked against the
//! input rule of the API before any request is spent, and the execution id Kernel answers with.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::KernelError;

/// Kernel's name for one asynchronous enrichment job. The contract types it as a JSON number;
/// only integral values are accepted (see [`crate::kernel::answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecutionId(pub u64);

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The company inputs of one record, as read from the CRM. Blank strings count as missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompanyInputs {
    /// The company name.
    pub name: Option<String>,
    /// The company website, in any form (`example.example`, `https://www.example.example/`).
    pub website: Option<String>,
    /// The LinkedIn company page.
    pub linkedin_url: Option<String>,
    /// The domain of a contact's email address, sent as context.
    pub email_domain: Option<String>,
}

/// Which CRM record an enrichment is for: it selects one of the three POST bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRef {
    /// A Salesforce record id (`salesforceId`).
    Salesforce(String),
    /// A Dynamics 365 record id (`dynamicsId`).
    Dynamics(String),
    /// No CRM record: the website alone.
    WebsiteOnly,
}

/// One POST body, already checked against the input rule of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrichmentRequest {
    record: RecordRef,
    name: Option<String>,
    website: Option<String>,
    linkedin_url: Option<String>,
    email_domain: Option<String>,
    force: bool,
}

impl EnrichmentRequest {
    /// A request for a Salesforce record: needs `linkedin_url`, or `name` and `website`.
    ///
    /// # Errors
    ///
    /// [`KernelError::InvalidInput`] naming the missing fields (or an empty record id).
    pub fn for_salesforce(
        id: impl Into<String>,
        inputs: CompanyInputs,
        force: bool,
    ) -> Result<Self, KernelError> {
        let id = clean(Some(id.into()));
        let Some(id) = id else {
            return Err(missing("(no id)", "salesforceId"));
        };
        Self::checked(RecordRef::Salesforce(id), inputs, force)
    }

    /// A request for a Dynamics 365 record: the same input rule as Salesforce.
    ///
    /// # Errors
    ///
    /// [`KernelError::InvalidInput`] naming the missing fields (or an empty record id).
    pub fn for_dynamics(
        id: impl Into<String>,
        inputs: CompanyInputs,
        force: bool,
    ) -> Result<Self, KernelError> {
        let id = clean(Some(id.into()));
        let Some(id) = id else {
            return Err(missing("(no id)", "dynamicsId"));
        };
        Self::checked(RecordRef::Dynamics(id), inputs, force)
    }

    /// A request without a CRM record: needs `website` (the body the contract keys on it).
    ///
    /// # Errors
    ///
    /// [`KernelError::InvalidInput`] when the website is missing.
    pub fn for_website(inputs: CompanyInputs, force: bool) -> Result<Self, KernelError> {
        let inputs = CompanyInputs {
            name: clean(inputs.name),
            website: clean(inputs.website),
            linkedin_url: clean(inputs.linkedin_url),
            email_domain: clean(inputs.email_domain),
        };
        if inputs.website.is_none() {
            return Err(missing("website-only record", "website"));
        }
        Ok(Self::from_clean(RecordRef::WebsiteOnly, inputs, force))
    }

    fn checked(record: RecordRef, inputs: CompanyInputs, force: bool) -> Result<Self, KernelError> {
        let inputs = CompanyInputs {
            name: clean(inputs.name),
            website: clean(inputs.website),
            linkedin_url: clean(inputs.linkedin_url),
            email_domain: clean(inputs.email_domain),
        };

        // The rule of the contract: linkedinUrl, or both name and website.
        if inputs.linkedin_url.is_none() {
            let mut absent = Vec::new();
            if inputs.name.is_none() {
                absent.push("name");
            }
            if inputs.website.is_none() {
                absent.push("website");
            }
            if !absent.is_empty() {
                let id = match &record {
                    RecordRef::Salesforce(id) | RecordRef::Dynamics(id) => id.as_str(),
                    RecordRef::WebsiteOnly => "website-only record",
                };
                return Err(missing(
                    id,
                    &format!("linkedinUrl and {}", absent.join(" and ")),
                ));
            }
        }

        Ok(Self::from_clean(record, inputs, force))
    }

    fn from_clean(record: RecordRef, inputs: CompanyInputs, force: bool) -> Self {
        Self {
            record,
            name: inputs.name,
            website: inputs.website,
            linkedin_url: inputs.linkedin_url,
            email_domain: inputs.email_domain,
            force,
        }
    }

    /// The record this request is for.
    #[must_use]
    pub fn record(&self) -> &RecordRef {
        &self.record
    }

    /// Whether the request bypasses Kernel's "recently enriched" check.
    #[must_use]
    pub fn force(&self) -> bool {
        self.force
    }

    /// The same request with `force` set: Kernel then starts a fresh execution even when the
    /// record was enriched in the last 14 days.
    #[must_use]
    pub fn with_force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// The JSON body sent to `POST /api/v1/inbound/enrichment`: contract names in camelCase,
    /// absent inputs left out, `force` only when set, `emailDomain` as context.
    #[must_use]
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        match &self.record {
            RecordRef::Salesforce(id) => {
                body.insert("salesforceId".into(), Value::String(id.clone()));
            }
            RecordRef::Dynamics(id) => {
                body.insert("dynamicsId".into(), Value::String(id.clone()));
            }
            RecordRef::WebsiteOnly => {}
        }
        let optional = [
            ("name", &self.name),
            ("website", &self.website),
            ("linkedinUrl", &self.linkedin_url),
            ("emailDomain", &self.email_domain),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                body.insert(key.into(), Value::String(value.clone()));
            }
        }
        if self.force {
            body.insert("force".into(), Value::Bool(true));
        }
        Value::Object(body)
    }
}

fn clean(value: Option<String>) -> Option<String> {
    let value = value?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        None
    } else {
        Some(trimmed.to_owned())
    }
}

fn missing(record: &str, fields: &str) -> KernelError {
    KernelError::InvalidInput {
        record: record.to_owned(),
        missing: fields.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kernel::ErrorKind;

    fn inputs(name: &str, website: &str, linkedin: &str) -> CompanyInputs {
        let some = |s: &str| {
            if s.is_empty() {
                None
            } else {
                Some(s.to_owned())
            }
        };
        CompanyInputs {
            name: some(name),
            website: some(website),
            linkedin_url: some(linkedin),
            email_domain: None,
        }
    }

    #[test]
    fn input_rule_table() {
        let linkedin = "https://www.linkedin.com/company/irongate-diagnostics";
        let table = [
            (inputs("Irongate", "irongate-diagnostics.example", ""), None),
            (inputs("", "", linkedin), None),
            (inputs("Irongate", "", ""), Some("linkedinUrl and website")),
            (
                inputs("", "irongate-diagnostics.example", ""),
                Some("linkedinUrl and name"),
            ),
            (inputs("", "", ""), Some("linkedinUrl and name and website")),
            (
                inputs("  ", "\t", " "),
                Some("linkedinUrl and name and website"),
            ),
        ];
        for (given, want) in table {
            let got = EnrichmentRequest::for_salesforce("001A", given.clone(), false);
            match (got, want) {
                (Ok(_), None) => {}
                (Err(KernelError::InvalidInput { missing, record }), Some(want)) => {
                    assert_eq!(missing, want, "{given:?}");
                    assert_eq!(record, "001A");
                }
                (got, want) => panic!("{given:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn empty_ids_and_missing_websites_are_refused() {
        let ok = inputs("Irongate", "irongate-diagnostics.example", "");
        let error = EnrichmentRequest::for_salesforce(" ", ok.clone(), false).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert!(error.to_string().contains("salesforceId"), "{error}");

        let error = EnrichmentRequest::for_dynamics("", ok, false).unwrap_err();
        assert!(error.to_string().contains("dynamicsId"), "{error}");

        let error = EnrichmentRequest::for_website(inputs("Irongate", "", ""), false).unwrap_err();
        assert!(error.to_string().contains("website"), "{error}");
    }

    #[test]
    fn bodies_use_contract_names() {
        let mut given = inputs(" Irongate ", "irongate-diagnostics.example", "");
        given.email_domain = Some("irongate-diagnostics.example".into());

        let request = EnrichmentRequest::for_salesforce("001A", given.clone(), true).unwrap();
        assert_eq!(
            request.body(),
            json!({"salesforceId": "001A", "name": "Irongate",
                   "website": "irongate-diagnostics.example",
                   "emailDomain": "irongate-diagnostics.example", "force": true})
        );

        let request = EnrichmentRequest::for_dynamics("guid-1", given.clone(), false).unwrap();
        assert_eq!(request.body()["dynamicsId"], "guid-1");
        assert!(request.body().get("force").is_none());

        let request = EnrichmentRequest::for_website(given, false).unwrap();
        assert!(request.body().get("salesforceId").is_none());
        assert_eq!(request.body()["website"], "irongate-diagnostics.example");
        assert!(request.with_force(true).body()["force"].as_bool().unwrap());
    }

    #[test]
    fn execution_id_is_a_json_number() {
        let id = ExecutionId(9_007_199_254_740_993);
        assert_eq!(serde_json::to_string(&id).unwrap(), "9007199254740993");
        assert_eq!(
            serde_json::from_str::<ExecutionId>("42").unwrap(),
            ExecutionId(42)
        );
        assert_eq!(id.to_string(), "9007199254740993");
    }
}
