//! The Salesforce org simulator over raw HTTP on loopback: token flows and their failures,
//! query paging, the SOQL subset, describe, sObject Collections, limits, expiry, faults and
//! the control surface.

use std::net::SocketAddr;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kernel_sync::sim::salesforce::{
    self, DEMO_CLIENT_ID, DEMO_PRIVATE_KEY_PEM, DEMO_USER_ID, DEMO_USERNAME, Faults, OrgData,
    OrgSim, OrgSimConfig, PERSON_USER_ID,
};
use serde_json::{Value, json};

const VERSION: &str = "v60.0";

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn start(config: OrgSimConfig) -> OrgSim {
    let data = OrgData::builtin().expect("builtin org loads");
    salesforce::spawn(loopback(), config, data)
        .await
        .expect("simulator starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Signs a JWT bearer assertion with the demo key.
fn assertion(iss: &str, sub: &str, aud: &Value, exp_in_secs: i64) -> String {
    let exp = chrono::Utc::now().timestamp() + exp_in_secs;
    let claims = json!({"iss": iss, "sub": sub, "aud": aud, "exp": exp});
    let key = EncodingKey::from_rsa_pem(DEMO_PRIVATE_KEY_PEM.as_bytes()).expect("demo key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).expect("signs")
}

async fn post_token(sim: &OrgSim, form: &[(&str, &str)]) -> (u16, Value) {
    let response = client()
        .post(format!("{}/services/oauth2/token", sim.base_url()))
        .form(form)
        .send()
        .await
        .expect("token request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

/// A token through the client credentials flow.
async fn token(sim: &OrgSim) -> String {
    let (status, body) = post_token(
        sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", "demo-client-secret"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

struct Answer {
    status: u16,
    limit_info: Option<String>,
    body: Value,
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let limit_info = response
        .headers()
        .get("Sforce-Limit-Info")
        .map(|v| v.to_str().expect("ascii header").to_string());
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("json")
    };
    Answer {
        status,
        limit_info,
        body,
    }
}

async fn get(sim: &OrgSim, token: &str, path: &str) -> Answer {
    send(
        client()
            .get(format!("{}{path}", sim.base_url()))
            .bearer_auth(token),
    )
    .await
}

async fn query(sim: &OrgSim, token: &str, soql: &str, batch: Option<u32>) -> Answer {
    let mut request = client()
        .get(format!("{}/services/data/{VERSION}/query", sim.base_url()))
        .query(&[("q", soql)])
        .bearer_auth(token);
    if let Some(batch) = batch {
        request = request.header("Sforce-Query-Options", format!("batchSize={batch}"));
    }
    send(request).await
}

/// Runs a query and follows `nextRecordsUrl` to the end; returns every page.
async fn query_all_pages(sim: &OrgSim, token: &str, soql: &str, batch: Option<u32>) -> Vec<Value> {
    let first = query(sim, token, soql, batch).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let mut pages = vec![first.body];
    while let Some(next) = pages.last().and_then(|p| p["nextRecordsUrl"].as_str()) {
        let next = next.to_string();
        let answer = get(sim, token, &next).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        pages.push(answer.body);
    }
    pages
}

async fn ids(sim: &OrgSim, token: &str, soql: &str) -> Vec<String> {
    let pages = query_all_pages(sim, token, soql, None).await;
    pages
        .iter()
        .flat_map(|p| p["records"].as_array().cloned().unwrap_or_default())
        .map(|r| r["Id"].as_str().expect("Id selected").to_string())
        .collect()
}

async fn patch_collection(sim: &OrgSim, token: &str, body: &Value) -> Answer {
    send(
        client()
            .patch(format!(
                "{}/services/data/{VERSION}/composite/sobjects",
                sim.base_url()
            ))
            .bearer_auth(token)
            .json(body),
    )
    .await
}

// ----- token endpoint -----

/// The JWT bearer flow answers Salesforce's five fields, with the sim as instance and the
/// integration user in the identity URL.
#[tokio::test]
async fn jwt_bearer_flow_issues_a_token_for_the_integration_user() {
    let sim = start(OrgSimConfig::default()).await;
    let jwt = assertion(DEMO_CLIENT_ID, DEMO_USERNAME, &json!(sim.base_url()), 180);
    let (status, body) = post_token(
        &sim,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &jwt),
        ],
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["access_token", "scope", "instance_url", "id", "token_type"]
    );
    assert_eq!(body["instance_url"], sim.base_url());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["id"],
        format!("{}/id/00D000000000001AAA/{DEMO_USER_ID}", sim.base_url())
    );
    let token = body["access_token"].as_str().expect("token");
    assert!(
        token.starts_with("00D000000000001!") && token.len() > 60,
        "{token}"
    );
    assert_eq!(sim.stats().tokens_issued["jwt-bearer"], 1);
}

/// Each broken assertion gets the body Salesforce gives it.
#[tokio::test]
async fn jwt_bearer_failures_answer_the_real_oauth_errors() {
    let mut config = OrgSimConfig::default();
    config.users.insert(
        "stranger@kernel-sync.example".into(),
        "005000000000077AAA".into(),
    );
    let sim = start(config).await;
    let aud = json!(sim.base_url());

    let other_key = "-----BEGIN PRIVATE KEY-----\n".to_string();
    let cases: Vec<(String, &str, &str)> = vec![
        (
            assertion(
                DEMO_CLIENT_ID,
                DEMO_USERNAME,
                &json!("https://login.salesforce.com"),
                180,
            ),
            "invalid_grant",
            "audience is invalid",
        ),
        (
            assertion(
                DEMO_CLIENT_ID,
                DEMO_USERNAME,
                &json!("login.salesforce.com"),
                180,
            ),
            "invalid_grant",
            "audience is invalid",
        ),
        (
            assertion(DEMO_CLIENT_ID, DEMO_USERNAME, &aud, -10),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            assertion(DEMO_CLIENT_ID, DEMO_USERNAME, &aud, 3600),
            "invalid_grant",
            "invalid assertion",
        ),
        (
            assertion("unknown-app", DEMO_USERNAME, &aud, 180),
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            assertion(DEMO_CLIENT_ID, "nobody@kernel-sync.example", &aud, 180),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        (
            assertion(DEMO_CLIENT_ID, "stranger@kernel-sync.example", &aud, 180),
            "invalid_grant",
            "user hasn't approved this consumer",
        ),
        ("not.a.jwt".into(), "invalid_grant", "invalid assertion"),
        (other_key, "invalid_grant", "invalid assertion"),
    ];
    for (jwt, error, description) in cases {
        let (status, body) = post_token(
            &sim,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &jwt),
            ],
        )
        .await;
        assert_eq!(status, 400, "{description}");
        assert_eq!(
            body,
            json!({"error": error, "error_description": description})
        );
    }

    // A tampered signature is refused too.
    let good = assertion(DEMO_CLIENT_ID, DEMO_USERNAME, &aud, 180);
    let tampered = format!("{}AAAA", &good[..good.len() - 4]);
    let (status, body) = post_token(
        &sim,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &tampered),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some("invalid assertion"))
    );
    assert!(sim.stats().tokens_issued.is_empty());
}

/// A configured extra audience (the real login host) is accepted.
#[tokio::test]
async fn jwt_bearer_accepts_a_configured_login_audience() {
    let config = OrgSimConfig {
        jwt_extra_audiences: vec!["https://login.salesforce.com".into()],
        ..OrgSimConfig::default()
    };
    let sim = start(config).await;
    let jwt = assertion(
        DEMO_CLIENT_ID,
        DEMO_USERNAME,
        &json!("https://login.salesforce.com"),
        120,
    );
    let (status, body) = post_token(
        &sim,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &jwt),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Client credentials in the body or in a Basic header; wrong ones get the real bodies.
#[tokio::test]
async fn client_credentials_flow_and_its_failures() {
    let sim = start(OrgSimConfig::default()).await;

    let (status, body) = post_token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", "demo-client-secret"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for key in [
        "access_token",
        "signature",
        "scope",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    ] {
        assert!(body.get(key).is_some(), "{key} missing from {body}");
    }
    assert!(
        body["issued_at"].as_str().is_some_and(|s| s.len() == 13),
        "{body}"
    );

    let basic = client()
        .post(format!("{}/services/oauth2/token", sim.base_url()))
        .basic_auth(DEMO_CLIENT_ID, Some("demo-client-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("request");
    assert_eq!(basic.status().as_u16(), 200);

    let (status, body) = post_token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", "wrong"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_client", "error_description": "invalid client credentials"})
    );

    let (status, body) = post_token(
        &sim,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "unknown-app"),
            ("client_secret", "demo-client-secret"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_client_id", "error_description": "client identifier invalid"})
    );
    assert_eq!(sim.stats().tokens_issued["client_credentials"], 2);
}

/// The refresh token grant, an unknown refresh token, and unsupported grants.
#[tokio::test]
async fn refresh_token_flow_and_unsupported_grants() {
    let sim = start(OrgSimConfig::default()).await;

    let (status, body) = post_token(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DEMO_CLIENT_ID),
            ("refresh_token", "demo-refresh-token"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "no rotation: {body}");

    let (status, body) = post_token(
        &sim,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", DEMO_CLIENT_ID),
            ("refresh_token", "revoked"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "expired access/refresh token"})
    );

    for grant in ["password", "authorization_code", ""] {
        let (status, body) = post_token(&sim, &[("grant_type", grant)]).await;
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"error": "unsupported_grant_type",
                   "error_description": "grant type not supported"})
        );
    }

    // A JSON body is not a form: Salesforce sees no grant type.
    let response = client()
        .post(format!("{}/services/oauth2/token", sim.base_url()))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "unsupported_grant_type");
}

// ----- query -----

/// Paging honours batchSize (clamped to 200..=2000), and locators serve the result as it was
/// at query time.
#[tokio::test]
async fn query_pages_follow_batch_size_and_snapshot_the_result() {
    let sim = start(OrgSimConfig::default()).await;
    let token = token(&sim).await;
    let soql = "SELECT Id, Name FROM Account ORDER BY Id";

    for (batch, sizes) in [
        (None, vec![260]),
        (Some(200), vec![200, 60]),
        (Some(100), vec![200, 60]),
        (Some(250), vec![250, 10]),
        (Some(5000), vec![260]),
    ] {
        let pages = query_all_pages(&sim, &token, soql, batch).await;
        let got: Vec<usize> = pages
            .iter()
            .map(|p| p["records"].as_array().expect("records").len())
            .collect();
        assert_eq!(got, sizes, "batch {batch:?}");
        for page in &pages {
            assert_eq!(page["totalSize"], 260);
        }
        assert_eq!(pages.last().expect("a page")["done"], true);
        assert!(
            pages
                .last()
                .expect("a page")
                .get("nextRecordsUrl")
                .is_none()
        );
    }

    // The second page still comes from the snapshot after a record is deleted.
    let first = query(&sim, &token, soql, Some(200)).await;
    assert_eq!(first.body["done"], false);
    let next = first.body["nextRecordsUrl"]
        .as_str()
        .expect("next")
        .to_string();
    assert!(
        next.starts_with(&format!("/services/data/{VERSION}/query/01g")),
        "{next}"
    );
    sim.delete("Account", "001000000000260AAA").expect("delete");
    let second = get(&sim, &token, &next).await;
    let last = second.body["records"]
        .as_array()
        .expect("records")
        .last()
        .cloned();
    assert_eq!(last.expect("a record")["Id"], "001000000000260AAA");
    let fresh = query(&sim, &token, soql, None).await;
    assert_eq!(fresh.body["totalSize"], 259);

    let bogus = get(
        &sim,
        &token,
        &format!("/services/data/{VERSION}/query/01gNOPE-200"),
    )
    .await;
    assert_eq!(bogus.status, 400);
    assert_eq!(bogus.body[0]["errorCode"], "INVALID_QUERY_LOCATOR");
}

/// Records carry attributes and the describe's spelling of each selected field.
#[tokio::test]
async fn query_records_have_attributes_and_describe_spelling() {
    let sim = start(OrgSimConfig::default()).await;
    let token = token(&sim).await;
    let answer = query(
        &sim,
        &token,
        "select id, name, systemmodstamp, kernel_is_b2b__c from account \
         where id = '001000000000001AAA'",
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body,
        json!({
            "totalSize": 1,
            "done": true,
            "records": [{
                "attributes": {
                    "type": "Account",
                    "url": format!("/services/data/{VERSION}/sobjects/Account/001000000000001AAA"),
                },
                "Id": "001000000000001AAA",
                "Name": "Irongate Diagnostics",
                "SystemModstamp": "2026-11-02T09:00:00.000+0000",
                "Kernel_Is_B2B__c": false,
            }],
        })
    );
    assert!(
        answer
            .limit_info
            .is_some_and(|h| h.starts_with("api-usage="))
    );
}

// ----- describe -----

/// Describe answers the real shape with the fixture's types and picklists; unknown objects
/// are NOT_FOUND.
#[tokio::test]
async fn describe_answers_field_metadata() {
    let sim = start(OrgSimConfig::default()).await;
    let token = token(&sim).await;

    let answer = get(
        &sim,
        &token,
        &format!("/services/data/{VERSION}/sobjects/Prospect_Company__c/describe"),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["name"], "Prospect_Company__c");
    assert_eq!(answer.body["label"], "Prospect Company");
    assert_eq!(answer.body["custom"], true);
    let fields = answer.body["fields"].as_array().expect("fields");
    let summary = fields
        .iter()
        .find(|f| f["name"] == "Summary__c")
        .expect("Summary__c");
    assert_eq!(
        (summary["type"].as_str(), summary["length"].as_u64()),
        (Some("string"), Some(80))
    );
    assert_eq!(summary["updateable"], true);
    assert_eq!(summary["custom"], true);
    let region = fields
        .iter()
        .find(|f| f["name"] == "Region__c")
        .expect("Region__c");
    let values: Vec<&str> = region["picklistValues"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v["value"].as_str().expect("value"))
        .collect();
    assert_eq!(values, ["AMER", "EMEA", "APAC"]);

    let missing = get(
        &sim,
        &token,
        &format!("/services/data/{VERSION}/sobjects/Contact/describe"),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        json!([{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}])
    );
}

// ----- sObject Collections -----

/// One Collections entry updating `field` of the Account `id`.
fn account(id: &str, field: &str, value: &Value) -> Value {
    json!({"attributes": {"type": "Account"}, "id": id, field: value})
}

/// One call with every per-record outcome, in request order and in the real shapes; the good
/// records are written and stamped with the token's user.
#[tokio::test]
async fn collections_update_reports_mixed_outcomes() {
    let sim = start(OrgSimConfig::default()).await;
    let token = token(&sim).await;
    sim.delete("Account", "001000000000010AAA").expect("delete");
    let before = sim.record("Account", "001000000000001AAA").expect("record");

    let body = json!({
        "allOrNone": false,
        "records": [
            {"attributes": {"type": "Account"}, "id": "001000000000001AAA",
             "Kernel_Funding_Stage__c": "Series A", "NumberOfEmployees": 120,
             "Kernel_Headcount_Growth__c": 12.345, "Kernel_Last_Funding_Date__c": "2024-03-01"},
            account("001000000000002AAA", "Colour__c", &json!("red")),
            account("001000000000003AAA", "Kernel_Score__c", &json!(5)),
            account("001000000000004AAA", "NumberOfEmployees", &json!("many")),
            account("001000000000005AAA", "BillingCountry", &json!("x".repeat(81))),
            account("001000000000006AAA", "Kernel_Funding_Stage__c", &json!("Public")),
            account("001000000000007AAA", "Kernel_Founded_Year__c", &json!(1950)),
            account("001000000000010AAA", "Industry", &json!("Retail")),
            account("001000000000999AAA", "Industry", &json!("Retail")),
            account("00Q000000000001AAA", "Industry", &json!("Retail")),
            account("001000000000008AAA", "Industry", &json!("Not A Real Industry")),
        ],
    });
    let answer = patch_collection(&sim, &token, &body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let results = answer.body.as_array().expect("array");
    assert_eq!(results.len(), 11);

    assert_eq!(
        results[0],
        json!({"id": "001000000000001AAA", "success": true, "errors": []})
    );
    let code = |i: usize| {
        results[i]["errors"][0]["statusCode"]
            .as_str()
            .expect("statusCode")
    };
    let fields = |i: usize| results[i]["errors"][0]["fields"].clone();
    assert_eq!(code(1), "INVALID_FIELD");
    assert_eq!(
        results[1]["errors"][0]["message"],
        "No such column 'Colour__c' on sobject of type Account"
    );
    assert_eq!(code(2), "INVALID_FIELD_FOR_INSERT_UPDATE");
    assert_eq!(fields(2), json!(["Kernel_Score__c"]));
    assert_eq!(code(3), "INVALID_TYPE_ON_FIELD_IN_RECORD");
    assert_eq!(code(4), "STRING_TOO_LONG");
    assert_eq!(fields(4), json!(["BillingCountry"]));
    assert_eq!(code(5), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    assert_eq!(
        results[5]["errors"][0]["message"],
        "Funding Stage: bad value for restricted picklist field: Public"
    );
    assert_eq!(
        results[6]["errors"][0],
        json!({"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
               "message": "Founded year cannot be before 1970",
               "fields": ["Kernel_Founded_Year__c"]})
    );
    assert_eq!(code(7), "ENTITY_IS_DELETED");
    assert_eq!(code(8), "INVALID_CROSS_REFERENCE_KEY");
    assert_eq!(code(9), "MALFORMED_ID");
    assert!(
        results[9].get("id").is_none(),
        "a malformed id is not echoed"
    );
    assert_eq!(results[10]["success"], true, "Industry is not restricted");
    for failed in &results[1..10] {
        assert_eq!(failed["success"], false);
    }

    let after = sim.record("Account", "001000000000001AAA").expect("record");
    assert_eq!(after["Kernel_Funding_Stage__c"], "Series A");
    assert_eq!(after["Kernel_Headcount_Growth__c"], 12.35);
    assert_eq!(after["LastModifiedById"], DEMO_USER_ID);
    assert_eq!(after["SystemModstamp"], after["LastModifiedDate"]);
    let stamp = after["SystemModstamp"].as_str().expect("stamp");
    assert!(stamp.ends_with("+0000") && stamp.len() == 28, "{stamp}");
    assert!(stamp > before["SystemModstamp"].as_str().expect("stamp"));
    let untouched = sim.record("Account", "001000000000002AAA").expect("record");
    assert_eq!(untouched["LastModifiedById"], PERSON_USER_ID);

    let stats = sim.stats();
    assert_eq!(stats.records_written.get("001000000000001AAA"), Some(&1));
    assert_eq!(stats.records_written.get("001000000000002AAA"), None);
}

/// With allOrNone, one failure rolls everything back.
#[tokio::test]
async fn collections_update_all_or_none_rolls_back() {
    let sim = start(OrgSimConfig::default()).await;
    let token = token(&sim).await;
    let body = json!({
        "allOrNone": true,
        "records": [
            account("001000000000001AAA", "Industry", &json!("Retail")),
            account("001000000000002AAA", "Kernel_Founded_Year__c", &json!(1900)),
        ],
    });
    let answer = patch_collection(&sim, &token, &body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body[0]["id"], "001000000000001AAA");
    assert_eq!(answer.body[0]["success"], false);
    assert_eq!(
        answer.body[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(
        answer.body[1]["errors"][0]["statusCode"],
        "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    );
    let record = sim.record("Account", "001000000000001AAA").expect("record");
    assert_eq!(record["Industry"], Value::Null);
}

// ----- SOQL subset over HTTP -----

/// Every supported construct, checked against ids computed from the fixtures' own values.
#[tokio::test]
async fn soql_subset_filters_orders_and_limits() {
    let sim = start(OrgSimConfig::default()).await;
    let token = token(&sim).await;

    // Give a few records values the fixtures leave empty, as a person would.
    let edits = [
        (
            "001000000000001AAA",
            json!({"NumberOfEmployees": 50, "Name": "O'Hara \"Quoted\" \\ Labs"}),
        ),
        (
            "001000000000002AAA",
            json!({"NumberOfEmployees": 500, "Kernel_Is_B2B__c": true,
            "Kernel_Last_Funding_Date__c": "2024-01-01", "Name": "Line\nBreak\tTab Co"}),
        ),
        (
            "001000000000003AAA",
            json!({"NumberOfEmployees": 5000, "Kernel_Is_B2B__c": true,
            "Kernel_Last_Funding_Date__c": "2023-06-30", "Name": "Caf\u{e9} 100% Real_Name"}),
        ),
    ];
    for (id, fields) in edits {
        let fields = fields.as_object().expect("object").clone();
        sim.edit("Account", id, &fields, None).expect("edit");
    }

    let one = |id: &str| vec![id.to_string()];
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "SELECT Id FROM Account WHERE NumberOfEmployees = 500",
            one("001000000000002AAA"),
        ),
        (
            "SELECT Id FROM Account WHERE NumberOfEmployees > 50 ORDER BY NumberOfEmployees DESC",
            vec!["001000000000003AAA".into(), "001000000000002AAA".into()],
        ),
        (
            "SELECT Id FROM Account WHERE NumberOfEmployees >= 50 AND NumberOfEmployees <= 500 \
          ORDER BY NumberOfEmployees",
            vec!["001000000000001AAA".into(), "001000000000002AAA".into()],
        ),
        (
            "SELECT Id FROM Account WHERE NumberOfEmployees < 500 AND NumberOfEmployees != null",
            one("001000000000001AAA"),
        ),
        (
            "SELECT Id FROM Account WHERE NumberOfEmployees IN (50, 5000) ORDER BY Id",
            vec!["001000000000001AAA".into(), "001000000000003AAA".into()],
        ),
        (
            "SELECT Id FROM Account WHERE NumberOfEmployees NOT IN (50, 5000) \
             AND NumberOfEmployees != null",
            one("001000000000002AAA"),
        ),
        (
            "SELECT Id FROM Account WHERE Kernel_Is_B2B__c = true \
             AND NOT Kernel_Last_Funding_Date__c < 2024-01-01",
            one("001000000000002AAA"),
        ),
        (
            "SELECT Id FROM Account WHERE Kernel_Last_Funding_Date__c = 2023-06-30",
            one("001000000000003AAA"),
        ),
        (
            "SELECT Id FROM Account WHERE (NumberOfEmployees = 50 OR NumberOfEmployees = 5000) \
             AND Kernel_Is_B2B__c = false",
            one("001000000000001AAA"),
        ),
        (
            r#"SELECT Id FROM Account WHERE Name = 'o\'hara \"quoted\" \\ labs'"#,
            one("001000000000001AAA"),
        ),
        (
            r"SELECT Id FROM Account WHERE Name = 'Line\nBreak\tTab Co'",
            one("001000000000002AAA"),
        ),
        (
            r"SELECT Id FROM Account WHERE Name = 'Caf\u00e9 100% Real_Name'",
            one("001000000000003AAA"),
        ),
        (
            r"SELECT Id FROM Account WHERE Name LIKE '%100\% Real\_%'",
            one("001000000000003AAA"),
        ),
        (
            "SELECT Id FROM Account WHERE Name LIKE 'caf_ 1%'",
            one("001000000000003AAA"),
        ),
        // The person's edit moved this record's SystemModstamp away from its fixture value.
        (
            "SELECT Id FROM Account WHERE SystemModstamp = 2026-11-02T09:07:01Z",
            vec![],
        ),
        (
            "SELECT Id FROM Account WHERE CreatedDate = 2026-11-02T10:07:01+01:00",
            one("001000000000002AAA"),
        ),
        (
            "SELECT Id FROM Account WHERE CreatedDate > 2026-11-02T09:07:00.999Z \
             AND CreatedDate < 2026-11-02T09:07:01.001Z",
            one("001000000000002AAA"),
        ),
        (
            "SELECT Id FROM Account ORDER BY NumberOfEmployees DESC NULLS LAST, Id LIMIT 2",
            vec!["001000000000003AAA".into(), "001000000000002AAA".into()],
        ),
        (
            "SELECT Id FROM Account WHERE Id IN ('001000000000004AAA', '001000000000005') \
             ORDER BY Id DESC",
            vec!["001000000000005AAA".into(), "001000000000004AAA".into()],
        ),
        (
            "select id from ACCOUNT where ID = '001000000000006AAA' limit 1",
            one("001000000000006AAA"),
        ),
    ];
    for (soql, expected) in cases {
        assert_eq!(ids(&sim, &token, soql).await, expected, "{soql}");
    }

    // Nulls sort first ascending by default: the 257 accounts without a headcount lead.
    let ordered = ids(
        &sim,
        &token,
        "SELECT Id FROM Account ORDER BY NumberOfEmployees, Id",
    )
    .await;
    assert_eq!(ordered.len(), 260);
    assert_eq!(
        &ordered[257..],
        [
            "001000000000001AAA",
            "001000000000002AAA",
            "001000000000003AAA"
        ]
    );
    assert_eq!(ordered[0], "001000000000004AAA");

    assert_eq!(sim.stats().queries.len(), 21);
}

/// Wrong queries answer 400 with the REST error array and Salesforce's caret messages.
#[tokio::test]
async fn soql_errors_have_the_real_shape() {
    let sim = start(OrgSimConfig::default()).await;
    let token = token(&sim).await;

    let answer = query(&sim, &token, "SELECT Id FROM Account WHERE", None).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.body,
        json!([{
            "message": "\nSELECT Id FROM Account WHERE\n                            ^\n\
                        ERROR at Row:1:Column:29\nunexpected token: <EOF>",
            "errorCode": "MALFORMED_QUERY",
        }])
    );

    let answer = query(&sim, &token, "SELECT Id, Colour__c FROM Account", None).await;
    assert_eq!(answer.body[0]["errorCode"], "INVALID_FIELD");
    let message = answer.body[0]["message"].as_str().expect("message");
    assert!(
        message
            .contains("ERROR at Row:1:Column:12\nNo such column 'Colour__c' on entity 'Account'."),
        "{message}"
    );

    let answer = query(&sim, &token, "SELECT Id FROM Contact", None).await;
    assert_eq!(answer.body[0]["errorCode"], "INVALID_TYPE");
    let message = answer.body[0]["message"].as_str().expect("message");
    assert!(
        message.contains("sObject type 'Contact' is not supported."),
        "{message}"
    );

    let answer = query(
        &sim,
        &token,
        "SELECT Id FROM Account WHERE SystemModstamp > '2024-01-01'",
        None,
    )
    .await;
    assert_eq!(answer.body[0]["errorCode"], "INVALID_FIELD");
    let message = answer.body[0]["message"].as_str().expect("message");
    assert!(
        message.ends_with(
            "value of filter criterion for field 'SystemModstamp' must be of type dateTime and \
         should not be enclosed in quotes"
        ),
        "{message}"
    );

    let answer = query(
        &sim,
        &token,
        "SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'",
        None,
    )
    .await;
    assert_eq!(answer.body[0]["errorCode"], "MALFORMED_QUERY");

    let answer = query(
        &sim,
        &token,
        r"SELECT Id FROM Account WHERE Name = 'a\qb'",
        None,
    )
    .await;
    assert_eq!(answer.body[0]["errorCode"], "MALFORMED_QUERY");

    let answer = send(
        client()
            .get(format!("{}/services/data/{VERSION}/query", sim.base_url()))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(answer.body[0]["errorCode"], "MALFORMED_QUERY");
}

// ----- limits, expiry, faults -----

/// Every REST call is counted in Sforce-Limit-Info and /limits; a spent allowance answers
/// 403 REQUEST_LIMIT_EXCEEDED.
#[tokio::test]
async fn api_usage_is_counted_and_the_allowance_enforced() {
    let config = OrgSimConfig {
        daily_api_allowance: 5,
        api_usage_start: 1,
        ..OrgSimConfig::default()
    };
    let sim = start(config).await;
    let token = token(&sim).await;

    let limits = get(&sim, &token, &format!("/services/data/{VERSION}/limits")).await;
    assert_eq!(limits.status, 200);
    assert_eq!(limits.limit_info.as_deref(), Some("api-usage=2/5"));
    assert_eq!(
        limits.body["DailyApiRequests"],
        json!({"Max": 5, "Remaining": 3})
    );

    for expected in ["api-usage=3/5", "api-usage=4/5", "api-usage=5/5"] {
        let answer = query(&sim, &token, "SELECT Id FROM Lead LIMIT 1", None).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.limit_info.as_deref(), Some(expected));
    }
    let refused = query(&sim, &token, "SELECT Id FROM Lead LIMIT 1", None).await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    assert_eq!(refused.limit_info.as_deref(), Some("api-usage=5/5"));

    let stats = sim.stats();
    assert_eq!(stats.api_usage, 5);
    assert_eq!(stats.api_calls["query"], 4);
    assert_eq!(stats.api_calls["limits"], 1);
}

/// A token that has served its calls dies, even in the middle of paging; a new token reads
/// the rest of the pages.
#[tokio::test]
async fn token_expires_after_its_calls_even_mid_paging() {
    let config = OrgSimConfig {
        token_max_calls: Some(2),
        ..OrgSimConfig::default()
    };
    let sim = start(config).await;
    let first_token = token(&sim).await;

    let first = query(
        &sim,
        &first_token,
        "SELECT Id FROM Account ORDER BY Id",
        Some(100),
    )
    .await;
    let next = first.body["nextRecordsUrl"]
        .as_str()
        .expect("more pages")
        .to_string();
    assert_eq!(
        get(
            &sim,
            &first_token,
            &format!("/services/data/{VERSION}/limits")
        )
        .await
        .status,
        200
    );

    let expired = get(&sim, &first_token, &next).await;
    assert_eq!(expired.status, 401);
    assert_eq!(
        expired.body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    assert_eq!(expired.limit_info, None);

    let second_token = token(&sim).await;
    let rest = get(&sim, &second_token, &next).await;
    assert_eq!(rest.status, 200);
    assert_eq!(rest.body["records"].as_array().expect("records").len(), 60);

    let none =
        send(client().get(format!("{}/services/data/{VERSION}/limits", sim.base_url()))).await;
    assert_eq!(none.status, 401);
    sim.revoke_tokens();
    assert_eq!(
        get(
            &sim,
            &second_token,
            &format!("/services/data/{VERSION}/limits")
        )
        .await
        .status,
        401
    );
}

/// Injected faults: a 503 on every call, a row lock on every record, then none.
#[tokio::test]
async fn faults_inject_unavailability_and_row_locks() {
    let sim = start(OrgSimConfig::default()).await;
    let token = token(&sim).await;

    sim.set_faults(Faults {
        unavailable_share: 1.0,
        ..Faults::default()
    })
    .expect("valid");
    let answer = query(&sim, &token, "SELECT Id FROM Lead", None).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.body[0]["errorCode"], "SERVER_UNAVAILABLE");

    sim.set_faults(Faults {
        lock_row_share: 1.0,
        ..Faults::default()
    })
    .expect("valid");
    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Lead"}, "id": "00Q000000000001AAA", "Country": "Norway"},
    ]});
    let answer = patch_collection(&sim, &token, &body).await;
    assert_eq!(
        answer.body,
        json!([{"id": "00Q000000000001AAA", "success": false, "errors": [{
            "statusCode": "UNABLE_TO_LOCK_ROW",
            "message": "unable to obtain exclusive access to this record or 1 records: \
                        00Q000000000001AAA",
            "fields": [],
        }]}])
    );
    assert_eq!(
        sim.record("Lead", "00Q000000000001AAA").expect("lead")["Country"],
        Value::Null
    );

    let bad = sim.set_faults(Faults {
        latency_share: 2.0,
        ..Faults::default()
    });
    assert!(bad.is_err());

    // The same through the control surface, and a half share over many records.
    let url = format!("{}/__sim/faults", sim.base_url());
    let response = client()
        .put(&url)
        .json(&json!({"lock_row_share": 0.5}))
        .send()
        .await
        .expect("put");
    assert_eq!(response.status().as_u16(), 200);
    let records: Vec<Value> = (1..=100)
        .map(|n| {
            json!({"attributes": {"type": "Lead"}, "id": format!("00Q{n:012}AAA"),
                   "Country": "Chile"})
        })
        .collect();
    let answer = patch_collection(&sim, &token, &json!({"records": records})).await;
    let locked = answer
        .body
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["success"] == false)
        .count();
    assert!(
        (25..=75).contains(&locked),
        "{locked} of 100 locked at share 0.5"
    );
    let response = client()
        .put(&url)
        .json(&json!({"lock_row_share": -1}))
        .send()
        .await
        .expect("put");
    assert_eq!(response.status().as_u16(), 400);
}

// ----- control surface -----

/// Records added and edited as a person appear to queries with the person as last modifier;
/// deletes hide them and make writes fail; stats are served over HTTP.
#[tokio::test]
async fn control_surface_writes_as_a_person_and_reports_stats() {
    let sim = start(OrgSimConfig::default()).await;
    let token = token(&sim).await;
    let base = sim.base_url().to_string();

    let created = client()
        .post(format!(
            "{base}/__sim/records/Prospect_Company__c?as=005000000000002AAA"
        ))
        .json(
            &json!({"Name": "Quillfield Analytics", "Website__c": "https://quillfield.example",
                      "Region__c": "APAC"}),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(created.status().as_u16(), 201);
    let created: Value = created.json().await.expect("json");
    assert_eq!(created["id"], "a01000000000041AAA");

    let answer = query(
        &sim,
        &token,
        "SELECT Id, Name, LastModifiedById, CreatedById FROM Prospect_Company__c \
         WHERE Region__c = 'APAC' AND Name LIKE 'Quill%'",
        None,
    )
    .await;
    assert_eq!(answer.body["totalSize"], 1);
    assert_eq!(
        answer.body["records"][0]["LastModifiedById"],
        "005000000000002AAA"
    );

    let edited = client()
        .patch(format!(
            "{base}/__sim/records/Prospect_Company__c/a01000000000041AAA"
        ))
        .json(&json!({"Summary__c": "Analytics for quills"}))
        .send()
        .await
        .expect("edit");
    assert_eq!(edited.status().as_u16(), 204);
    let raw: Value = client()
        .get(format!(
            "{base}/__sim/records/Prospect_Company__c/a01000000000041AAA"
        ))
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("json");
    assert_eq!(raw["Summary__c"], "Analytics for quills");
    assert_eq!(raw["LastModifiedById"], PERSON_USER_ID);
    assert_eq!(raw["IsDeleted"], false);

    let refused = client()
        .patch(format!("{base}/__sim/records/Account/001000000000001AAA"))
        .json(&json!({"Kernel_Founded_Year__c": 1900, "Name": null}))
        .send()
        .await
        .expect("edit");
    assert_eq!(refused.status().as_u16(), 400);
    let errors: Value = refused.json().await.expect("json");
    let codes: Vec<&str> = errors
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["errorCode"].as_str().expect("code"))
        .collect();
    assert_eq!(codes, ["REQUIRED_FIELD_MISSING"]);

    let deleted = client()
        .delete(format!(
            "{base}/__sim/records/Prospect_Company__c/a01000000000041AAA"
        ))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status().as_u16(), 204);
    let answer = query(
        &sim,
        &token,
        "SELECT Id FROM Prospect_Company__c WHERE Region__c = 'APAC' AND Name LIKE 'Quill%'",
        None,
    )
    .await;
    assert_eq!(answer.body["totalSize"], 0);
    let body = json!({"records": [
        {"attributes": {"type": "Prospect_Company__c"}, "id": "a01000000000041AAA", "B2B__c": true},
    ]});
    let answer = patch_collection(&sim, &token, &body).await;
    assert_eq!(
        answer.body[0]["errors"][0]["statusCode"],
        "ENTITY_IS_DELETED"
    );

    let missing = client()
        .get(format!("{base}/__sim/records/Contact/003000000000001AAA"))
        .send()
        .await
        .expect("read");
    assert_eq!(missing.status().as_u16(), 404);

    let stats: Value = client()
        .get(format!("{base}/__sim/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["api_calls"]["query"], 2);
    assert_eq!(stats["api_calls"]["composite/sobjects"], 1);
    assert_eq!(stats["tokens_issued"]["client_credentials"], 1);
    assert_eq!(stats["queries"].as_array().expect("queries").len(), 2);
    assert!(
        stats["queries"][0]
            .as_str()
            .expect("soql")
            .starts_with("SELECT Id, Name, LastModifiedById")
    );
}

/// A record added in process shows up for the next harvest-style query; in-process errors
/// name the status codes.
#[tokio::test]
async fn in_process_helpers_mirror_the_control_surface() {
    let sim = start(OrgSimConfig::default()).await;
    let token = token(&sim).await;
    let fields = json!({"LastName": "Varga", "FirstName": "Ilona", "Company": "Tessellate Works",
        "Email": "ilona.varga@tessellate.example"});
    let id = sim
        .insert("Lead", fields.as_object().expect("object"), None)
        .expect("insert");

    let answer = query(
        &sim,
        &token,
        &format!("SELECT Name, Email FROM Lead WHERE Id = '{id}'"),
        None,
    )
    .await;
    assert_eq!(answer.body["records"][0]["Name"], "Ilona Varga");

    let bad = json!({"Email": "not-an-email", "Kernel_Funding_Stage__c": "Public"});
    let err = sim
        .edit("Lead", &id, bad.as_object().expect("object"), None)
        .expect_err("refused");
    assert_eq!(
        err.status_codes(),
        [
            "INVALID_EMAIL_ADDRESS",
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        ]
    );
    assert!(sim.delete("Lead", "00Q000000000999AAA").is_err());
    sim.shutdown().await;
}
