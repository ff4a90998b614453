//! Parses every public Salesforce response sample of the project's reference folder with the
//! client's own types. The folder lives beside the repository (`../shared/reference`), as in
//! CI; the samples are read at test time, never copied into the repository. A checkout that
//! does not sit beside `shared/` (a git worktree elsewhere) names the folder in
//! `KERNEL_SYNC_SHARED_DIR`.

use serde_json::Value;

use super::describe::{FieldType, ObjectDescribe};
use super::error::{ErrorKind, SalesforceError};
use super::model::{
    ApiErrorBody, Identity, Limits, OAuthErrorBody, RawQueryPage, RecordOutcome, SaveResult,
    parse_date, parse_datetime,
};
use super::soql::check_record_id;

const SAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/reference/salesforce-samples"
);

/// The samples folder: beside the clone, or below `KERNEL_SYNC_SHARED_DIR` when set.
fn samples_dir() -> String {
    match std::env::var("KERNEL_SYNC_SHARED_DIR") {
        Ok(shared) => format!("{shared}/reference/salesforce-samples"),
        Err(_) => SAMPLES.to_owned(),
    }
}

fn sample(name: &str) -> String {
    let path = format!("{}/{name}", samples_dir());
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the salesforce sample {path}: {e}; the reference folder `shared/` must \
             sit beside the repository clone, or be named in KERNEL_SYNC_SHARED_DIR"
        )
    })
}

fn json<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&sample(name)).unwrap_or_else(|e| panic!("sample {name}: {e}"))
}

/// Reads an OAuth error sample and builds the client's error from it.
fn oauth(name: &str, grant: &str) -> SalesforceError {
    let body: OAuthErrorBody = json(name);
    let hint = super::error::oauth_hint(grant, &body.error, &body.error_description);
    SalesforceError::OAuth {
        endpoint: "https://login.salesforce.com/services/oauth2/token".into(),
        status: 400,
        error: body.error,
        description: body.error_description,
        hint,
    }
}

/// Reads a REST error sample and classifies its first entry.
fn rest_error(name: &str, status: u16) -> (ApiErrorBody, ErrorKind) {
    let mut errors: Vec<ApiErrorBody> = json(name);
    assert!(!errors.is_empty(), "{name} holds at least one error");
    let first = errors.remove(0);
    let kind = SalesforceError::Api {
        method: "GET".into(),
        path: "/services/data/v62.0/query".into(),
        status,
        code: first.error_code.clone(),
        message: first.message.clone(),
        fields: first.fields.clone(),
    }
    .kind();
    (first, kind)
}

/// Every string field of a JSON object whose name ends with `date`/`modstamp`/`covered`
/// parses as a Salesforce datetime.
fn assert_datetimes(value: &Value) -> usize {
    let mut seen = 0;
    if let Value::Object(map) = value {
        for (key, v) in map {
            let key = key.to_ascii_lowercase();
            let timestamp = key.ends_with("date")
                || key.ends_with("modstamp")
                || key.ends_with("available")
                || key.ends_with("covered");
            if let (true, Some(s)) = (timestamp, v.as_str()) {
                assert!(parse_datetime(s).is_ok(), "{key}: {s}");
                seen += 1;
            }
            seen += assert_datetimes(v);
        }
    }
    if let Value::Array(items) = value {
        seen += items.iter().map(assert_datetimes).sum::<usize>();
    }
    seen
}

#[test]
fn bulk2_query_job_airbyte() {
    let job: Value = json("bulk2-query-job-airbyte.json");
    assert_eq!(assert_datetimes(&job), 2);
    assert!(check_record_id(job["id"].as_str().unwrap_or_default()).is_ok());
}

#[test]
fn bulk2_query_job_created_docs() {
    let job: Value = json("bulk2-query-job-created-docs.json");
    assert_eq!(assert_datetimes(&job), 2);
}

#[test]
fn collections_update_allornone_rollback() {
    let results: Vec<SaveResult> = json("collections-update-allornone-rollback.json");
    let outcomes: Vec<RecordOutcome> = results.into_iter().map(Into::into).collect();
    // The rolled-back record would succeed on its own: sending it again is right.
    assert!(matches!(&outcomes[0], RecordOutcome::Retryable { code, .. }
            if code == "ALL_OR_NONE_OPERATION_ROLLED_BACK"));
    assert_eq!(
        outcomes[1],
        RecordOutcome::Rejected {
            status_code: "MALFORMED_ID".into(),
            message: "Contact ID: id value of incorrect type: 001xx000003DGb2999".into(),
            fields: vec!["Id".into()],
        }
    );
}

#[test]
fn collections_update_partial_failure() {
    let results: Vec<SaveResult> = json("collections-update-partial-failure.json");
    assert!(results[1].id.is_none(), "a failed entry may lack its id");
    let outcomes: Vec<RecordOutcome> = results.into_iter().map(Into::into).collect();
    assert_eq!(outcomes[0], RecordOutcome::Written);
    assert!(
        matches!(&outcomes[1], RecordOutcome::Rejected { status_code, fields, .. }
            if status_code == "MALFORMED_ID" && fields == &["Id"])
    );
}

#[test]
fn collections_update_request() {
    let request: Value = json("collections-update-request.json");
    assert_eq!(request["allOrNone"], Value::Bool(false));
    let records = request["records"].as_array().map(Vec::len);
    assert_eq!(records, Some(2));
    // The client writes the same shape: attributes.type, id, then the fields.
    let update = super::model::RecordUpdate {
        object_type: "Account".into(),
        id: "001xx000003DGb2AAG".into(),
        fields: serde_json::json!({"NumberOfEmployees": 27000})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    assert_eq!(super::client::update_json(&update), request["records"][0]);
}

#[test]
fn collections_update_success() {
    let results: Vec<SaveResult> = json("collections-update-success.json");
    let outcomes: Vec<RecordOutcome> = results.into_iter().map(Into::into).collect();
    assert_eq!(outcomes, [RecordOutcome::Written, RecordOutcome::Written]);
}

#[test]
fn composite_allornone_failure_camel() {
    let composite: Value = json("composite-allornone-failure-camel.json");
    let bodies: Vec<Vec<ApiErrorBody>> = composite["compositeResponse"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    serde_json::from_value(e["body"].clone()).unwrap_or_else(|e| panic!("{e}"))
                })
                .collect()
        })
        .unwrap_or_default();
    let codes: Vec<&str> = bodies.iter().map(|b| b[0].error_code.as_str()).collect();
    assert_eq!(codes, ["PROCESSING_HALTED", "INVALID_FIELD"]);
}

#[test]
fn describe_merchandise_camel() {
    let describe: ObjectDescribe = json("describe-merchandise-camel.json");
    assert_eq!(describe.name, "Merchandise__c");
    assert!(describe.custom);
    let price = describe.field("price__c").expect("Price__c is described");
    assert_eq!(price.field_type, FieldType::Currency);
    assert_eq!((price.precision, price.scale), (18, 2));
    let description = describe
        .field("Description__c")
        .expect("Description__c is described");
    assert_eq!(description.field_type, FieldType::String);
    assert_eq!(description.length, 100);
    let id = describe.field("Id").expect("Id is described");
    assert!(!id.updateable);
}

#[test]
fn describe_whizbang_restforce() {
    let describe: ObjectDescribe = json("describe-whizbang-restforce.json");
    assert_eq!(describe.name, "Whizbang");
    let picklists: Vec<_> = describe
        .fields
        .iter()
        .filter(|f| f.field_type == FieldType::Picklist)
        .collect();
    assert!(!picklists.is_empty());
    assert!(picklists.iter().any(|f| !f.picklist_values.is_empty()));
    assert!(
        describe
            .fields
            .iter()
            .any(|f| f.field_type == FieldType::Multipicklist && f.length == 4099)
    );
    assert!(
        describe
            .fields
            .iter()
            .any(|f| f.field_type == FieldType::Textarea && f.length == 32768)
    );
    assert!(
        describe
            .fields
            .iter()
            .any(|f| f.field_type == FieldType::Percent)
    );
}

#[test]
fn error_field_filter_validation() {
    let (error, kind) = rest_error("error-field-filter-validation.json", 400);
    assert_eq!(error.error_code, "FIELD_FILTER_VALIDATION_EXCEPTION");
    assert_eq!(error.fields, ["ReferenceAccountFilter__c"]);
    assert_eq!(kind, ErrorKind::Permanent);
}

#[test]
fn error_invalid_field_for_insert_update() {
    let (error, kind) = rest_error("error-invalid-field-for-insert-update.json", 400);
    assert_eq!(error.error_code, "INVALID_FIELD_FOR_INSERT_UPDATE");
    assert_eq!(error.fields, ["IsClosedOnCreate"]);
    assert_eq!(kind, ErrorKind::Permanent);
}

#[test]
fn error_invalid_field_on_write_restforce() {
    let (error, kind) = rest_error("error-invalid-field-on-write-restforce.json", 400);
    assert_eq!(error.error_code, "INVALID_FIELD");
    assert!(
        error.fields.is_empty(),
        "a missing fields key reads as empty"
    );
    assert_eq!(kind, ErrorKind::Permanent);
}

#[test]
fn error_invalid_session() {
    let (error, kind) = rest_error("error-invalid-session.json", 401);
    assert_eq!(error.error_code, "INVALID_SESSION_ID");
    assert_eq!(
        super::error::classify_api(401, &error.error_code, &error.message),
        super::error::Disposition::Reauthenticate
    );
    // Only reaches a caller after one renewal failed.
    assert_eq!(kind, ErrorKind::Auth);
}

#[test]
fn error_invalid_type_soql() {
    let (error, kind) = rest_error("error-invalid-type-soql.json", 400);
    assert_eq!(error.error_code, "INVALID_TYPE");
    assert!(error.message.contains("ERROR at Row:1:Column:105"));
    assert_eq!(kind, ErrorKind::Permanent);
}

#[test]
fn error_invalid_type_tooling() {
    let (error, kind) = rest_error("error-invalid-type-tooling.json", 400);
    assert_eq!(error.message, "sObject type 'ApexClass' is not supported.");
    assert_eq!(kind, ErrorKind::Permanent);
}

#[test]
fn error_malformed_id_docs() {
    let (error, kind) = rest_error("error-malformed-id-docs.json", 400);
    assert_eq!(error.error_code, "MALFORMED_ID");
    assert_eq!(error.fields, ["Id"]);
    assert_eq!(kind, ErrorKind::Permanent);
}

#[test]
fn error_not_found_docs() {
    let (error, kind) = rest_error("error-not-found-docs.json", 404);
    assert_eq!(error.error_code, "NOT_FOUND");
    assert_eq!(kind, ErrorKind::Permanent);
}

#[test]
fn limits() {
    let limits: Limits = json("limits.json");
    let daily = limits
        .daily_api_requests()
        .expect("DailyApiRequests is present");
    assert_eq!((daily.max, daily.remaining), (15000, 14998));
    assert!(limits.get("DataStorageMB").is_some());
}

#[test]
fn oauth_error_audience_invalid() {
    let error = oauth("oauth-error-audience-invalid.json", "jwt-bearer");
    assert_eq!(error.kind(), ErrorKind::Auth);
    assert!(
        error.to_string().contains("set salesforce.auth.audience"),
        "{error}"
    );
}

#[test]
fn oauth_error_authentication_failure_invalid_password_restforce() {
    let error = oauth(
        "oauth-error-authentication-failure-invalid-password-restforce.json",
        "password",
    );
    assert_eq!(error.kind(), ErrorKind::Auth);
    assert!(
        error
            .to_string()
            .contains("authentication failure - Invalid Password"),
        "{error}"
    );
}

#[test]
fn oauth_error_authentication_failure() {
    let error = oauth(
        "oauth-error-authentication-failure.json",
        "client_credentials",
    );
    assert!(
        error
            .to_string()
            .contains("check salesforce.auth.client_id"),
        "{error}"
    );
}

#[test]
fn oauth_error_client_credentials_wrong_domain() {
    let error = oauth(
        "oauth-error-client-credentials-wrong-domain.json",
        "client_credentials",
    );
    assert!(error.to_string().contains("My Domain URL"), "{error}");
}

#[test]
fn oauth_error_expired_refresh_token_restforce() {
    let error = oauth(
        "oauth-error-expired-refresh-token-restforce.json",
        "refresh_token",
    );
    assert!(
        error
            .to_string()
            .contains("update salesforce.auth.refresh_token"),
        "{error}"
    );
}

#[test]
fn oauth_error_invalid_assertion() {
    let error = oauth("oauth-error-invalid-assertion.json", "jwt-bearer");
    assert!(
        error.to_string().contains("salesforce.auth.private_key"),
        "{error}"
    );
}

#[test]
fn oauth_error_unsupported_grant_type() {
    let error = oauth("oauth-error-unsupported-grant-type.json", "jwt-bearer");
    assert!(
        error.to_string().contains("salesforce.login_url"),
        "{error}"
    );
}

#[test]
fn oauth_error_user_not_approved() {
    let error = oauth("oauth-error-user-not-approved.json", "jwt-bearer");
    assert!(
        error
            .to_string()
            .contains("pre-authorize the integration user"),
        "{error}"
    );
}

#[test]
fn query_empty() {
    let page = json::<RawQueryPage>("query-empty.json")
        .into_page()
        .expect("valid page");
    assert!(page.done && page.records.is_empty() && page.total_size == 0);
}

#[test]
fn query_last_page() {
    let page = json::<RawQueryPage>("query-last-page.json")
        .into_page()
        .expect("valid page");
    assert!(page.done);
    assert_eq!(page.next_records_url, None);
    assert_eq!(
        page.records[0].id, "foo",
        "id taken from attributes.url without an Id field"
    );
    assert_eq!(page.records[0].text("Text_Label"), Some("Last Page"));
}

#[test]
fn query_relationships_and_types() {
    let page = json::<RawQueryPage>("query-relationships-and-types.json")
        .into_page()
        .expect("valid page");
    let record = &page.records[0];
    assert_eq!(record.object_type, "Whizbang");
    assert_eq!(record.get("Checkbox_Label"), Some(&Value::Bool(false)));
    assert!(record.datetime("DateTime_Label").is_some());
    let date = record.text("Date_Label").map(parse_date);
    assert!(matches!(date, Some(Ok(_))));
    assert_eq!(record.text("Picklist_Multiselect_Label"), Some("four;six"));
    assert_eq!(
        record.get("ParentWhizbang__r").and_then(|p| p.get("Name")),
        Some(&Value::from("Parent Whizbang"))
    );
    assert!(
        record
            .get("Whizbangs__r")
            .and_then(|c| c.get("records"))
            .is_some()
    );
}

#[test]
fn query_with_nextrecordsurl() {
    let page = json::<RawQueryPage>("query-with-nextRecordsUrl.json")
        .into_page()
        .expect("valid page");
    assert!(!page.done);
    assert_eq!(
        page.next_records_url.as_deref(),
        Some("/services/data/v26.0/query/01gD")
    );
    assert_eq!(page.total_size, 2);
}

#[test]
fn sobject_get_deleted() {
    let deleted: Value = json("sobject-get-deleted.json");
    assert_eq!(assert_datetimes(&deleted), 3);
    assert!(
        check_record_id(
            deleted["deletedRecords"][0]["id"]
                .as_str()
                .unwrap_or_default()
        )
        .is_ok()
    );
}

#[test]
fn sobject_get_updated() {
    let updated: Value = json("sobject-get-updated.json");
    assert_eq!(assert_datetimes(&updated), 1);
    let ids = updated["ids"].as_array().cloned().unwrap_or_default();
    assert_eq!(ids.len(), 7);
    assert!(
        ids.iter()
            .all(|id| check_record_id(id.as_str().unwrap_or_default()).is_ok())
    );
}

/// Token answers: the fields the client reads are there and the identity URL splits.
fn token(name: &str) -> Identity {
    let answer: Value = json(name);
    let access_token = answer["access_token"].as_str();
    assert!(
        access_token.is_some_and(|t| !t.is_empty()),
        "{name} has an access token"
    );
    let instance = answer["instance_url"].as_str().unwrap_or_default();
    let instance = url::Url::parse(instance).unwrap_or_else(|_| {
        url::Url::parse("https://placeholder.example").expect("a valid fallback url")
    });
    Identity::from_id_url(answer["id"].as_str().unwrap_or_default(), instance)
        .unwrap_or_else(|| panic!("{name}: id is not an identity url"))
}

#[test]
fn token_client_credentials_help_placeholders() {
    let identity = token("token-client-credentials-help-placeholders.json");
    assert_eq!(identity.user_id, "00gfd000000fsdghjr");
}

#[test]
fn token_jwt() {
    let identity = token("token-jwt.json");
    assert_eq!(identity.org_id, "00Dxx0000001gPLEAY");
    assert_eq!(identity.user_id, "005xx000001SwiUAAS");
    assert_eq!(
        identity.instance_url.as_str(),
        "https://yourinstance.salesforce.com/"
    );
}

#[test]
fn token_password_restforce() {
    let identity = token("token-password-restforce.json");
    assert_eq!(identity.user_id, "005x00000012Q9P");
}

#[test]
fn token_refresh_restforce() {
    let identity = token("token-refresh-restforce.json");
    assert_eq!(
        (identity.org_id.as_str(), identity.user_id.as_str()),
        ("foo", "bar")
    );
}

#[test]
fn every_sample_has_a_test() {
    let source = include_str!("samples.rs");
    let dir = samples_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "cannot list {dir}: {e}; shared/ must sit beside the clone or be named in \
                KERNEL_SYNC_SHARED_DIR"
        )
    });
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".json") {
            let test = format!("fn {}()", stem.replace('-', "_").to_ascii_lowercase());
            assert!(source.contains(&test), "sample {name} has no test `{test}`");
        }
    }
}
