//! The Salesforce client against the simulated org over real HTTP on loopback: the three
//! OAuth flows and their failures, token renewal (mid-paging and under concurrency), paging
//! with several batch sizes, Collections outcomes, error classification, the SOQL builder's
//! escaping against the simulator's parser, describe metadata and API usage.

use std::net::SocketAddr;
use std::time::Duration;

use kernel_sync::salesforce::soql::{self, Select};
use kernel_sync::salesforce::{
    ApiUsage, AuthSettings, ErrorKind, FieldType, RecordOutcome, RecordUpdate, RetryPolicy,
    SalesforceClient, SalesforceError, SalesforceSettings,
};
use kernel_sync::sim::salesforce::{
    self as sim, DEMO_CLIENT_ID, DEMO_ORG_ID, DEMO_PRIVATE_KEY_PEM, DEMO_USER_ID, DEMO_USERNAME,
    Faults, OrgData, OrgSim, OrgSimConfig,
};
use secrecy::SecretString;
use serde_json::{Map, Value, json};

async fn start(config: OrgSimConfig) -> OrgSim {
    let data = OrgData::builtin().expect("the builtin org loads");
    sim::spawn(SocketAddr::from(([127, 0, 0, 1], 0)), config, data)
        .await
        .expect("the simulator starts")
}

fn jwt() -> AuthSettings {
    AuthSettings::JwtBearer {
        client_id: DEMO_CLIENT_ID.into(),
        username: DEMO_USERNAME.into(),
        audience: None,
        private_key_pem: SecretString::from(DEMO_PRIVATE_KEY_PEM),
    }
}

fn client_credentials(client_id: &str, secret: &str) -> AuthSettings {
    AuthSettings::ClientCredentials {
        client_id: client_id.into(),
        client_secret: SecretString::from(secret),
    }
}

fn refresh(token: &str) -> AuthSettings {
    AuthSettings::RefreshToken {
        client_id: DEMO_CLIENT_ID.into(),
        client_secret: None,
        refresh_token: SecretString::from(token),
    }
}

fn settings(sim: &OrgSim, auth: AuthSettings) -> SalesforceSettings {
    SalesforceSettings {
        login_url: sim.base_url().parse().expect("the simulator's url parses"),
        api_version: "62.0".into(),
        auth,
        query_batch_size: 2000,
        request_timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            max_attempts: 3,
            first_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
    }
}

fn client(sim: &OrgSim, auth: AuthSettings) -> SalesforceClient {
    SalesforceClient::new(settings(sim, auth)).expect("valid settings")
}

fn fields(value: &Value) -> Map<String, Value> {
    value.as_object().cloned().expect("a json object")
}

fn issued(sim: &OrgSim, flow: &str) -> u64 {
    sim.stats().tokens_issued.get(flow).copied().unwrap_or(0)
}

fn api_calls(sim: &OrgSim, endpoint: &str) -> u64 {
    sim.stats().api_calls.get(endpoint).copied().unwrap_or(0)
}

/// Every flow logs in as the integration user and reads its ids from the token's `id` URL.
#[tokio::test]
async fn each_flow_logs_in_as_the_integration_user() {
    let sim = start(OrgSimConfig::default()).await;
    let flows = [
        ("jwt-bearer", jwt()),
        (
            "client_credentials",
            client_credentials(DEMO_CLIENT_ID, "demo-client-secret"),
        ),
        ("refresh_token", refresh("demo-refresh-token")),
    ];

    for (flow, auth) in flows {
        let client = client(&sim, auth);
        let identity = client
            .identity()
            .await
            .unwrap_or_else(|e| panic!("{flow}: {e}"));

        assert_eq!(identity.user_id, DEMO_USER_ID, "{flow}");
        assert_eq!(identity.org_id, DEMO_ORG_ID, "{flow}");
        assert_eq!(
            identity.instance_url.as_str().trim_end_matches('/'),
            sim.base_url()
        );
        let page = client.query("SELECT Id FROM Lead LIMIT 1").await;
        assert_eq!(page.map(|p| p.records.len()).ok(), Some(1), "{flow}");
        assert_eq!(issued(&sim, flow), 1, "{flow}");
    }
}

/// Each refusal of the token endpoint is an auth error that says what to fix, and is not
/// retried.
#[tokio::test]
async fn auth_failures_say_what_to_fix() {
    let strict = OrgSimConfig {
        jwt_max_lifetime_secs: 60,
        ..OrgSimConfig::default()
    };
    let unapproved = {
        let mut config = OrgSimConfig::default();
        config.clients[0].approved_users.clear();
        config
    };
    let cases: Vec<(&str, OrgSimConfig, AuthSettings, &str)> = vec![
        (
            "wrong audience",
            OrgSimConfig::default(),
            (AuthSettings::JwtBearer {
                client_id: DEMO_CLIENT_ID.into(),
                username: DEMO_USERNAME.into(),
                audience: Some("https://test.salesforce.com".into()),
                private_key_pem: SecretString::from(DEMO_PRIVATE_KEY_PEM),
            }),
            "set salesforce.auth.audience",
        ),
        // The simulator allows 60 s of lifetime; the client's assertion asks for almost
        // three minutes, as a server whose clock runs ahead would see it.
        ("assertion refused", strict, (jwt()), "this machine's clock"),
        ("user not approved", unapproved, (jwt()), "pre-authorize"),
        (
            "unknown client (jwt)",
            OrgSimConfig::default(),
            (AuthSettings::JwtBearer {
                client_id: "no-such-client".into(),
                username: DEMO_USERNAME.into(),
                audience: None,
                private_key_pem: SecretString::from(DEMO_PRIVATE_KEY_PEM),
            }),
            "check salesforce.auth.client_id",
        ),
        (
            "unknown client (client credentials)",
            OrgSimConfig::default(),
            (client_credentials("no-such-client", "demo-client-secret")),
            "check salesforce.auth.client_id",
        ),
        (
            "bad secret",
            OrgSimConfig::default(),
            (client_credentials(DEMO_CLIENT_ID, "wrong-secret")),
            "client secret",
        ),
        (
            "revoked refresh token",
            OrgSimConfig::default(),
            (refresh("not-a-known-refresh-token")),
            "update salesforce.auth.refresh_token",
        ),
    ];

    for (name, config, auth, fix) in cases {
        let sim = start(config).await;
        let client = client(&sim, auth);

        let error = client.identity().await.expect_err(name);

        assert_eq!(error.kind(), ErrorKind::Auth, "{name}: {error}");
        let message = error.to_string();
        assert!(message.contains(fix), "{name}: {message}");
        assert!(
            !message.contains("demo-client-secret"),
            "{name}: secret in {message}"
        );
        assert!(
            !message.contains("wrong-secret"),
            "{name}: secret in {message}"
        );
        assert!(!message.contains("PRIVATE KEY"), "{name}: key in {message}");
        assert_eq!(sim.stats().tokens_issued.values().sum::<u64>(), 0, "{name}");
    }
}

/// A token that dies after each call is renewed in the middle of paging, and no page is lost.
#[tokio::test]
async fn expiry_in_the_middle_of_paging() {
    let config = OrgSimConfig {
        token_max_calls: Some(1),
        ..OrgSimConfig::default()
    };
    let sim = start(config).await;
    let client = SalesforceClient::new(SalesforceSettings {
        query_batch_size: 200,
        ..settings(&sim, jwt())
    })
    .expect("valid settings");

    let records = client
        .query_all_pages("SELECT Id, Name FROM Account")
        .await
        .expect("all pages");

    assert_eq!(records.len(), 260);
    let stats = sim.stats();
    assert_eq!(stats.api_calls.get("query").copied(), Some(1));
    assert_eq!(stats.api_calls.get("queryMore").copied(), Some(1));
    // The first page on the first token; the second page renews it once.
    assert_eq!(issued(&sim, "jwt-bearer"), 2);
    assert_eq!(client.tokens_issued(), 2);
}

/// Paging honours the batch size hint: 460 accounts are 3, 2 or 1 pages.
#[tokio::test]
async fn paging_with_several_batch_sizes() {
    let sim = start(OrgSimConfig::default()).await;
    for i in 0..200 {
        let name = format!("Paging Fixture {i:03}");
        sim.insert("Account", &fields(&json!({"Name": name})), None)
            .expect("insert");
    }

    for (batch, pages) in [(200, 3), (300, 2), (2000, 1)] {
        let client = SalesforceClient::new(SalesforceSettings {
            query_batch_size: batch,
            ..settings(&sim, jwt())
        })
        .expect("valid settings");
        let soql = Select::new("Account")
            .and_then(|s| s.fields(["Name", "SystemModstamp"]))
            .expect("valid names")
            .order_by_modstamp()
            .build();

        let mut page = client.query(&soql).await.expect("first page");
        let mut seen = page.records.len();
        let mut count = 1;
        let mut ids: Vec<String> = page.records.iter().map(|r| r.id.clone()).collect();
        while let Some(next) = page.next_records_url.clone() {
            assert!(!page.done);
            page = client.query_more(&next).await.expect("next page");
            seen += page.records.len();
            ids.extend(page.records.iter().map(|r| r.id.clone()));
            count += 1;
        }

        assert_eq!(page.total_size, 460, "batch {batch}");
        assert_eq!(seen, 460, "batch {batch}");
        assert_eq!(count, pages, "batch {batch}");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 460, "batch {batch}: every record once");
    }
}

/// Concurrent callers that hit an expired token together trigger one renewal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_renew_once() {
    let sim = start(OrgSimConfig::default()).await;
    let client = client(&sim, jwt());
    client.limits().await.expect("first call");
    assert_eq!(issued(&sim, "jwt-bearer"), 1);

    sim.revoke_tokens();
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.query("SELECT Id FROM Lead LIMIT 5").await })
        })
        .collect();
    for call in calls {
        let page = call
            .await
            .expect("task joins")
            .expect("query after renewal");
        assert_eq!(page.records.len(), 5);
    }

    assert_eq!(
        issued(&sim, "jwt-bearer"),
        2,
        "one renewal for twelve callers"
    );
    assert_eq!(client.tokens_issued(), 2);
}

/// The same with tokens that wear out after N calls: twelve callers on a token with five
/// calls left make one renewal between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_renew_once_when_tokens_wear_out() {
    let config = OrgSimConfig {
        token_max_calls: Some(20),
        ..OrgSimConfig::default()
    };
    let sim = start(config).await;
    let client = client(&sim, jwt());
    for _ in 0..15 {
        client.limits().await.expect("calls on the first token");
    }

    let calls: Vec<_> = (0..12)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.limits().await })
        })
        .collect();
    for call in calls {
        call.await
            .expect("task joins")
            .expect("limits after renewal");
    }

    assert_eq!(
        issued(&sim, "jwt-bearer"),
        2,
        "one renewal for twelve callers"
    );
    assert_eq!(api_calls(&sim, "limits"), 15 + 12);
}

/// A token refused right after it was issued is an auth error, not a loop.
#[tokio::test]
async fn a_token_refused_at_once_is_an_auth_error() {
    let config = OrgSimConfig {
        token_max_calls: Some(0),
        ..OrgSimConfig::default()
    };
    let sim = start(config).await;
    let client = client(&sim, jwt());

    let error = client.limits().await.expect_err("no token works");

    assert!(
        matches!(error, SalesforceError::SessionRejected { .. }),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Auth);
    assert_eq!(issued(&sim, "jwt-bearer"), 2, "one renewal, then give up");
}

/// Mixed outcomes of one Collections call, matched by position.
#[tokio::test]
async fn collections_update_with_mixed_outcomes() {
    let sim = start(OrgSimConfig::default()).await;
    let client = client(&sim, jwt());
    let accounts = client
        .query("SELECT Id FROM Account ORDER BY Id LIMIT 6")
        .await
        .expect("accounts")
        .records;
    let lead = client
        .query("SELECT Id FROM Lead LIMIT 1")
        .await
        .expect("lead")
        .records;
    let id = |i: usize| accounts[i].id.clone();
    sim.delete("Account", &id(4)).expect("delete");

    let update = |object: &str, id: String, values: Value| RecordUpdate {
        object_type: object.into(),
        id,
        fields: fields(&values),
    };
    let updates = vec![
        update(
            "Account",
            id(0),
            json!({"Kernel_Technologies__c": "Rust; Postgres"}),
        ),
        update(
            "Lead",
            lead[0].id.clone(),
            json!({"Kernel_Headcount_Growth__c": 12.5}),
        ),
        update("Account", id(1), json!({"Kernel_Founded_Year__c": 1960})),
        update(
            "Account",
            id(2),
            json!({"Kernel_Description__c": "x".repeat(300)}),
        ),
        update(
            "Account",
            id(3),
            json!({"Kernel_Funding_Stage__c": "Public"}),
        ),
        update("Account", id(4), json!({"Kernel_Technologies__c": "Go"})),
        update(
            "Account",
            "not-an-id".into(),
            json!({"Kernel_Technologies__c": "Go"}),
        ),
        update(
            "Account",
            id(5),
            json!({"Kernel_Funding_Stage__c": "Series A"}),
        ),
    ];

    let outcomes = client.update(&updates).await.expect("one collections call");

    assert_eq!(outcomes.len(), updates.len());
    assert_eq!(outcomes[0], RecordOutcome::Written);
    assert_eq!(outcomes[1], RecordOutcome::Written);
    let rejected = |i: usize| match &outcomes[i] {
        RecordOutcome::Rejected {
            status_code,
            fields,
            ..
        } => (status_code.clone(), fields.clone()),
        other => panic!("outcome {i}: expected rejected, got {other:?}"),
    };
    assert_eq!(
        rejected(2),
        (
            "FIELD_CUSTOM_VALIDATION_EXCEPTION".into(),
            vec!["Kernel_Founded_Year__c".into()]
        )
    );
    assert_eq!(
        rejected(3),
        (
            "STRING_TOO_LONG".into(),
            vec!["Kernel_Description__c".into()]
        )
    );
    assert_eq!(rejected(4).0, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    assert_eq!(outcomes[5], RecordOutcome::Gone);
    assert_eq!(rejected(6).0, "INVALID_UPDATE");
    assert_eq!(outcomes[7], RecordOutcome::Written);
    assert_eq!(
        api_calls(&sim, "composite/sobjects"),
        1,
        "both types in one call"
    );

    let stored = sim.record("Account", &id(0)).expect("record");
    assert_eq!(stored["Kernel_Technologies__c"], "Rust; Postgres");
    assert_eq!(stored["LastModifiedById"], DEMO_USER_ID);
    let stored = sim.record("Account", &id(1)).expect("record");
    assert_ne!(stored.get("Kernel_Founded_Year__c"), Some(&json!(1960)));
}

/// A locked row is retryable; the same values go through once the lock is gone.
#[tokio::test]
async fn locked_rows_are_retryable() {
    let sim = start(OrgSimConfig::default()).await;
    let client = client(&sim, jwt());
    let account = client
        .query("SELECT Id FROM Account LIMIT 1")
        .await
        .expect("account")
        .records;
    let updates = [RecordUpdate {
        object_type: "Account".into(),
        id: account[0].id.clone(),
        fields: fields(&json!({"Kernel_Open_Roles__c": 4})),
    }];

    sim.set_faults(Faults {
        lock_row_share: 1.0,
        ..Faults::default()
    })
    .expect("faults");
    let outcomes = client.update(&updates).await.expect("call succeeds");
    assert!(
        matches!(&outcomes[0],
            RecordOutcome::Retryable { code, .. } if code == "UNABLE_TO_LOCK_ROW"),
        "{outcomes:?}"
    );

    sim.set_faults(Faults::default()).expect("faults");
    let outcomes = client.update(&updates).await.expect("call succeeds");
    assert_eq!(outcomes, [RecordOutcome::Written]);
}

/// Chunks of 200: 450 updates are three calls, and every outcome lands at its index.
#[tokio::test]
async fn large_updates_are_chunked() {
    let sim = start(OrgSimConfig::default()).await;
    let client = client(&sim, jwt());
    let accounts = client
        .query_all_pages("SELECT Id FROM Account")
        .await
        .expect("accounts");
    let leads = client
        .query_all_pages("SELECT Id FROM Lead")
        .await
        .expect("leads");
    let mut updates = Vec::new();
    for (i, record) in accounts.iter().chain(leads.iter()).enumerate() {
        // Every tenth update is refused by the describe: a restricted picklist value.
        let stage = if i % 10 == 0 { "Public" } else { "Seed" };
        updates.push(RecordUpdate {
            object_type: record.object_type.clone(),
            id: record.id.clone(),
            fields: fields(&json!({"Kernel_Funding_Stage__c": stage})),
        });
    }

    let outcomes = client.update(&updates).await.expect("updates");

    assert_eq!(outcomes.len(), 440);
    assert_eq!(api_calls(&sim, "composite/sobjects"), 3);
    for (i, outcome) in outcomes.iter().enumerate() {
        if i % 10 == 0 {
            assert!(
                matches!(outcome, RecordOutcome::Rejected { .. }),
                "{i}: {outcome:?}"
            );
        } else {
            assert_eq!(outcome, &RecordOutcome::Written, "{i}");
        }
    }
}

/// The error classification over the wire.
#[tokio::test]
async fn errors_are_classified() {
    let sim = start(OrgSimConfig::default()).await;
    let client = client(&sim, jwt());

    let permanent = [
        ("SELEC Id FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id, No_Such_Field__c FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM No_Such_Object__c", "INVALID_TYPE"),
    ];
    for (soql, code) in permanent {
        let before = api_calls(&sim, "query");
        let error = client.query(soql).await.expect_err(soql);
        assert_eq!(error.kind(), ErrorKind::Permanent, "{soql}: {error}");
        assert_eq!(error.code(), Some(code), "{soql}");
        assert_eq!(api_calls(&sim, "query"), before + 1, "{soql}: not retried");
    }

    let error = client
        .describe("No_Such_Object__c")
        .await
        .expect_err("unknown object");
    assert_eq!(error.kind(), ErrorKind::Permanent, "{error}");
    let error = client
        .describe("Account; DROP")
        .await
        .expect_err("bad name");
    assert!(matches!(error, SalesforceError::Soql(_)), "{error:?}");

    // Transient faults are retried until the attempts are spent.
    sim.set_faults(Faults {
        unavailable_share: 1.0,
        ..Faults::default()
    })
    .expect("faults");
    let before = api_calls(&sim, "limits");
    let error = client.limits().await.expect_err("always unavailable");
    assert_eq!(error.kind(), ErrorKind::Retryable, "{error}");
    assert_eq!(error.code(), Some("SERVER_UNAVAILABLE"));
    assert_eq!(api_calls(&sim, "limits"), before + 3);

    // A server that is gone is a retryable transport error.
    sim.set_faults(Faults::default()).expect("faults");
    sim.shutdown().await;
    let error = client.limits().await.expect_err("nobody listens");
    assert!(
        matches!(error, SalesforceError::Transport { .. }),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

/// A spent daily allowance stops the run at once, without retries.
#[tokio::test]
async fn request_limit_exceeded_is_daily_limit() {
    let config = OrgSimConfig {
        daily_api_allowance: 3,
        ..OrgSimConfig::default()
    };
    let sim = start(config).await;
    let client = client(&sim, jwt());
    for _ in 0..3 {
        client.limits().await.expect("within the allowance");
    }

    let error = client.limits().await.expect_err("allowance spent");

    assert_eq!(error.kind(), ErrorKind::DailyLimitExceeded, "{error}");
    assert_eq!(error.code(), Some("REQUEST_LIMIT_EXCEEDED"));
    assert_eq!(api_calls(&sim, "limits"), 4, "not retried");
    assert_eq!(client.api_usage(), Some(ApiUsage { used: 3, max: 3 }));
}

/// `Sforce-Limit-Info` of every answer updates the known usage; `/limits` agrees.
#[tokio::test]
async fn usage_from_limit_info() {
    let config = OrgSimConfig {
        api_usage_start: 1000,
        ..OrgSimConfig::default()
    };
    let sim = start(config).await;
    let client = client(&sim, jwt());
    assert_eq!(client.api_usage(), None);

    client.query("SELECT Id FROM Lead").await.expect("query");
    assert_eq!(
        client.api_usage(),
        Some(ApiUsage {
            used: 1001,
            max: 15_000
        })
    );
    let other = client.clone();
    let limits = other.limits().await.expect("limits");

    assert_eq!(
        client.api_usage(),
        Some(ApiUsage {
            used: 1002,
            max: 15_000
        })
    );
    let daily = limits.daily_api_requests().expect("DailyApiRequests");
    assert_eq!(daily.max, 15_000);
    assert!(daily.remaining <= 15_000 - 1001, "{daily:?}");
}

/// Describe gives the metadata the engine validates mappings with.
#[tokio::test]
async fn describe_driven_field_metadata() {
    let sim = start(OrgSimConfig::default()).await;
    let client = client(&sim, jwt());

    let account = client.describe("Account").await.expect("describe Account");
    assert_eq!(account.name, "Account");
    let field = |name: &str| {
        account
            .field(name)
            .unwrap_or_else(|| panic!("{name} described"))
    };

    let id = field("Id");
    assert_eq!(id.field_type, FieldType::Id);
    assert!(!id.updateable);
    let stage = field("kernel_funding_stage__c");
    assert_eq!(stage.field_type, FieldType::Picklist);
    assert!(stage.restricted_picklist);
    assert!(stage.allows_value("Series A"));
    assert!(!stage.allows_value("Public"));
    let industry = field("Industry");
    assert!(!industry.restricted_picklist);
    assert!(industry.allows_value("Food & Beverage"));
    assert_eq!(industry.picklist_values.len(), 32);
    let growth = field("Kernel_Headcount_Growth__c");
    assert_eq!(
        (growth.field_type.clone(), growth.precision, growth.scale),
        (FieldType::Percent, 5, 2)
    );
    let employees = field("NumberOfEmployees");
    assert_eq!(
        (employees.field_type.clone(), employees.digits),
        (FieldType::Int, 8)
    );
    let score = field("Kernel_Score__c");
    assert!(score.calculated && !score.updateable);
    let b2b = field("Kernel_Is_B2B__c");
    assert!(b2b.field_type == FieldType::Boolean && !b2b.nillable);
    assert_eq!(field("Name").length, 255);
    assert!(!field("Name").nillable);

    let custom = client
        .describe("Prospect_Company__c")
        .await
        .expect("describe custom object");
    assert!(custom.custom);
    assert_eq!(custom.field("Summary__c").map(|f| f.length), Some(80));
    assert_eq!(
        custom.field("Region__c").map(|f| f.picklist_values.len()),
        Some(3)
    );
}

/// Reading back by id: chunks under the URL limit, unknown and deleted ids simply absent.
#[tokio::test]
async fn read_by_ids_in_chunks() {
    let sim = start(OrgSimConfig::default()).await;
    let client = client(&sim, jwt());
    let accounts = client
        .query_all_pages("SELECT Id FROM Account")
        .await
        .expect("accounts");
    let mut ids: Vec<String> = accounts.iter().map(|r| r.id.clone()).collect();
    sim.delete("Account", &ids[0]).expect("delete");
    ids.push("001999999999999AAA".into());
    ids.push(ids[1].clone());
    let queries_before = sim.stats().queries.len();

    let records = client
        .read_by_ids("Account", &["Name", "Kernel_Funding_Stage__c"], &ids)
        .await
        .expect("read back");

    assert_eq!(records.len(), 259, "live accounts, each once");
    assert!(records.iter().all(|r| r.text("Name").is_some()));
    assert!(!records.iter().any(|r| r.id == ids[0]));
    let queries = &sim.stats().queries[queries_before..];
    assert_eq!(
        queries.len(),
        2,
        "261 distinct ids make two queries of at most 200"
    );
    assert!(queries.iter().all(|q| q.contains("Id IN (")));

    let error = client
        .read_by_ids("Account", &["Name"], &["x' OR Id != '".into()])
        .await;
    assert!(matches!(error, Err(SalesforceError::Soql(_))), "{error:?}");
}

/// The builder's harvest query runs on the simulator and finds changes by SystemModstamp.
#[tokio::test]
async fn harvest_query_finds_new_and_changed_records() {
    let sim = start(OrgSimConfig::default()).await;
    let client = client(&sim, jwt());
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    let new_id = sim
        .insert(
            "Account",
            &fields(&json!({"Name": "Harbourline Freight", "Type": "Prospect"})),
            None,
        )
        .expect("insert");

    let soql = Select::new("Account")
        .and_then(|s| s.fields(["Name", "Website", "SystemModstamp", "LastModifiedById"]))
        .and_then(|s| s.filter("Type = 'Prospect' OR Type = null"))
        .expect("valid query")
        .modified_since(since)
        .order_by_modstamp()
        .limit(100)
        .build();
    let page = client.query(&soql).await.expect("harvest");

    let ids: Vec<&str> = page.records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [new_id.as_str()]);
    assert!(
        page.records[0]
            .datetime("SystemModstamp")
            .is_some_and(|t| t >= since - chrono::Duration::seconds(1))
    );
}

/// Any string stored in a record is found by an equality filter built with `quote`.
#[test]
fn quoted_strings_find_their_record() {
    use proptest::prelude::*;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let sim = runtime.block_on(start(OrgSimConfig::default()));
    let client = client(&sim, jwt());

    let chars = prop_oneof![
        4 => any::<char>(),
        1 => prop::sample::select(vec![
            '\'', '"', '\\', '\n', '\r', '\t', '\u{8}', '\u{c}', '%', '_', ' ', '(', ')'
        ]),
    ];
    let names = prop::collection::vec(chars, 1..40).prop_map(|c| c.into_iter().collect::<String>());
    let config = ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    };

    proptest!(config, |(name in names)| {
        let inserted = sim.insert("Account", &fields(&json!({"Name": name.clone()})), None);
        // The simulator refuses what Salesforce refuses (a blank name); nothing to look for.
        prop_assume!(inserted.is_ok());
        let id = inserted.unwrap_or_default();

        let soql = format!("SELECT Id, Name FROM Account WHERE Name = {}", soql::quote(&name));
        let page = runtime.block_on(client.query(&soql));
        let page = page.map_err(|e| TestCaseError::fail(format!("{soql:?}: {e}")))?;

        prop_assert!(page.records.iter().any(|r| r.id == id), "{:?} not found by {:?}", name, soql);
        for record in &page.records {
            prop_assert_eq!(record.get("Name"), Some(&Value::String(name.clone())));
        }
    });
}

/// A `nextRecordsUrl` that would send the token to another host or path is refused.
#[tokio::test]
async fn query_more_stays_on_the_instance() {
    let sim = start(OrgSimConfig::default()).await;
    let client = client(&sim, jwt());
    let elsewhere = [
        "https://collector.example/services/data/v62.0/query/01gD-200".to_owned(),
        "/services/oauth2/token".to_owned(),
        "/services/data/v62.0/../../__sim/stats".to_owned(),
        format!("{}/__sim/stats", sim.base_url()),
    ];

    for next in elsewhere {
        let error = client.query_more(&next).await.expect_err(&next);
        assert!(
            matches!(error, SalesforceError::Unexpected { .. }),
            "{next}: {error:?}"
        );
    }
    assert_eq!(api_calls(&sim, "queryMore"), 0);

    // The same locator as an absolute URL on the instance is fine.
    let client = SalesforceClient::new(SalesforceSettings {
        query_batch_size: 200,
        ..settings(&sim, jwt())
    })
    .expect("valid settings");
    let page = client
        .query("SELECT Id FROM Account")
        .await
        .expect("first page");
    let next = page.next_records_url.expect("a second page");
    let page = client
        .query_more(&format!("{}{next}", sim.base_url()))
        .await
        .expect("second page");
    assert_eq!(page.records.len(), 60);
}
