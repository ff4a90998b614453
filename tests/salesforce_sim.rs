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
            json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"})
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
        "select id, name, systemmodstamp, kernel_is_b2b__c from account where id = '001000000000001AAA'",
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
            {"attributes": {"type": "Account"}, "id": "001000000000002AAA", "Colour__c": "red"},
            {"attributes": {"type": "Account"}, "id": "001000000000003AAA", "Kernel_Score__c": 5},
            {"attributes": {"type": "Account"}, "id": "001000000000004AAA", "NumberOfEmployees": "many"},
            {"attributes": {"type": "Account"}, "id": "001000000000005AAA", "BillingCountry": "x".repeat(81)},
            {"attributes": {"type": "Account"}, "id": "001000000000006AAA", "Kernel_Funding_Stage__c": "Public"},
            {"attributes": {"type": "Account"}, "id": "001000000000007AAA", "Kernel_Founded_Year__c": 1950},
            {"attributes": {"type": "Account"}, "id": "001000000000010AAA", "Industry": "Retail"},
            {"attributes": {"type": "Account"}, "id": "001000000000999AAA", "Industry": "Retail"},
            {"attributes": {"type": "Account"}, "id": "00Q000000000001AAA", "Industry": "Retail"},
            {"attributes": {"type": "Account"}, "id": "001000000000008AAA", "Industry": "Not A Real Industry"},
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
            {"attributes": {"type": "Account"}, "id": "001000000000001AAA", "Industry": "Retail"},
            {"attributes": {"type": "Account"}, "id": "001000000000002AAA", "Kernel_Founded_Year__c": 1900},
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
