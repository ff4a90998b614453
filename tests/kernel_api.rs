//! The Kernel client, its budget and the simulator, end to end over loopback HTTP: every
//! status and error kind, retries, the limits under load, and the OpenAPI contract.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use kernel_sync::kernel::{
    CadenceSettings, CompanyInputs, EnrichmentRequest, ErrorKind, ExecutionId, KernelClient,
    KernelError, KernelSettings, PollAnswer, PollDecision, PollStatus, RetryPolicy, SubmitStatus,
    next_poll,
};
use kernel_sync::sim::kernel::{
    Catalogue, FaultConfig, GET_ENRICHMENT, KernelSim, KernelSimConfig, POST_ENRICHMENT, SimKey,
    spawn,
};
use secrecy::SecretString;
use serde_json::Value;
use tokio::time::Instant;

const IRONGATE: &str = "irongate-diagnostics.example";

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("test constants are non-zero")
}

async fn start_sim(config: KernelSimConfig) -> KernelSim {
    spawn(
        "127.0.0.1:0".parse().expect("a literal address"),
        config,
        Catalogue::builtin(),
    )
    .await
    .expect("the simulator binds a loopback port")
}

/// A quick simulator: enrichment in hundreds of milliseconds, a rate tests do not wait on.
fn quick() -> KernelSimConfig {
    KernelSimConfig {
        requests_per_second: 100,
        ..KernelSimConfig::fast_for_tests()
    }
}

/// Client settings for `sim` at a rate matching [`quick`], with short retries.
fn settings(sim: &KernelSim) -> KernelSettings {
    KernelSettings {
        requests_per_second: nz(100),
        request_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            attempts: nz(3),
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
        },
        max_retry_after: Duration::from_millis(50),
        ..KernelSettings::new(sim.base_url(), SecretString::from(sim.api_key().to_owned()))
    }
}

fn client(settings: KernelSettings) -> KernelClient {
    KernelClient::new(settings).expect("test settings are valid")
}

fn inputs(name: &str, website: &str) -> CompanyInputs {
    CompanyInputs {
        name: Some(name.to_owned()),
        website: Some(website.to_owned()),
        linkedin_url: None,
        email_domain: None,
    }
}

fn irongate(id: &str) -> EnrichmentRequest {
    let given = inputs(
        "Irongate Diagnostics",
        "https://www.irongate-diagnostics.example",
    );
    EnrichmentRequest::for_salesforce(id, given, false).expect("irongate has name and website")
}

/// Polls every 40 ms until the execution ends; answers every poll seen.
async fn poll_to_end(client: &KernelClient, id: ExecutionId) -> Vec<PollAnswer> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let answer = client
            .poll(id)
            .await
            .expect("polls succeed against a quiet simulator");
        let done = answer.status.is_terminal();
        seen.push(answer);
        if done {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "execution {id} did not end: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

/// Submit, processing, fast-success and complete, with the catalogue's values.
#[tokio::test]
async fn an_execution_fills_fast_then_slow_fields_from_the_catalogue() {
    let sim = start_sim(quick()).await;
    let client = client(settings(&sim));

    let answer = client.submit(&irongate("001IRON")).await.unwrap();
    assert_eq!(answer.status, SubmitStatus::Starting);
    let seen = poll_to_end(&client, answer.execution_id).await;

    let catalogue = Catalogue::builtin();
    let company = catalogue.company(IRONGATE).unwrap();
    let first = &seen[0];
    assert_eq!(first.status, PollStatus::Processing);
    assert_eq!(first.record_id.as_deref(), Some("001IRON"));
    assert!(first.fields.values().all(Value::is_null), "{first:?}");

    let fast = seen
        .iter()
        .find(|a| a.status == PollStatus::FastSuccess)
        .expect("fast-success");
    for name in catalogue.fast_fields() {
        assert_eq!(fast.fields[name], company[name], "{name}");
    }
    for name in catalogue.slow_fields() {
        assert_eq!(fast.fields[name], Value::Null, "{name}");
    }

    let last = seen.last().unwrap();
    assert_eq!(last.status, PollStatus::Complete);
    let keys: Vec<&String> = last.fields.keys().collect();
    let want: Vec<&String> = catalogue
        .fast_fields()
        .iter()
        .chain(catalogue.slow_fields())
        .collect();
    assert_eq!(keys, want);
    for name in want {
        assert_eq!(last.fields[name], company[name], "{name}");
    }
}

/// A running record answers in_progress, a finished one cached, force starts anew.
#[tokio::test]
async fn repeats_answer_in_progress_then_cached_and_force_starts_anew() {
    let sim = start_sim(quick()).await;
    let client = client(settings(&sim));
    let request = irongate("001REPEAT");

    let first = client.submit(&request).await.unwrap();
    let again = client.submit(&request).await.unwrap();
    assert_eq!(again.status, SubmitStatus::InProgress);
    assert_eq!(again.execution_id, first.execution_id);

    poll_to_end(&client, first.execution_id).await;
    let cached = client.submit(&request).await.unwrap();
    assert_eq!(cached.status, SubmitStatus::Cached);
    assert_eq!(cached.execution_id, first.execution_id);
    let at_once = client.poll(cached.execution_id).await.unwrap();
    assert_eq!(at_once.status, PollStatus::Complete);

    let forced = client
        .submit(&request.clone().with_force(true))
        .await
        .unwrap();
    assert_eq!(forced.status, SubmitStatus::Starting);
    assert_ne!(forced.execution_id, first.execution_id);

    let stats = sim.stats();
    assert_eq!(stats.executions_by_record["001REPEAT"], 2);
    assert_eq!(stats.posts_by_record["001REPEAT"], 4);
    assert_eq!(stats.post_bodies, 4);
}

/// Unknown companies complete with the same keys, all null; LinkedIn alone finds a company.
#[tokio::test]
async fn unknown_companies_complete_null_and_linkedin_alone_is_enough() {
    let sim = start_sim(quick()).await;
    let client = client(settings(&sim));

    let unknown = EnrichmentRequest::for_salesforce(
        "001UNKNOWN",
        inputs("Nobody Known", "nobody-known.example"),
        false,
    )
    .unwrap();
    let linkedin_only = EnrichmentRequest::for_salesforce(
        "001LINKED",
        CompanyInputs {
            linkedin_url: Some("https://www.linkedin.com/company/irongate-diagnostics".into()),
            ..CompanyInputs::default()
        },
        false,
    )
    .unwrap();

    let unknown = client.submit(&unknown).await.unwrap();
    let linked = client.submit(&linkedin_only).await.unwrap();
    let unknown = poll_to_end(&client, unknown.execution_id)
        .await
        .pop()
        .unwrap();
    let linked = poll_to_end(&client, linked.execution_id)
        .await
        .pop()
        .unwrap();

    assert_eq!(unknown.status, PollStatus::Complete);
    assert_eq!(unknown.fields.len(), linked.fields.len());
    assert!(unknown.fields.values().all(Value::is_null));
    assert_eq!(linked.fields["country"], "Germany");
}

/// The input rule is checked before a request is spent.
#[tokio::test]
async fn invalid_input_spends_no_request() {
    let sim = start_sim(quick()).await;
    let error = EnrichmentRequest::for_salesforce(
        "001HALF",
        CompanyInputs {
            name: Some("Half Known".into()),
            ..CompanyInputs::default()
        },
        false,
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.to_string().contains("website"), "{error}");
    assert_eq!(sim.stats().total_requests(), 0);
}

/// A 400 is the request's fault, with Kernel's message.
#[tokio::test]
async fn a_rejected_request_keeps_kernels_message() {
    let sim = start_sim(quick()).await;
    let client = client(settings(&sim));

    let request =
        EnrichmentRequest::for_salesforce("001BAD", inputs("Bad Site", "not a website"), false)
            .unwrap();
    let error = client.submit(&request).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert!(
        error.to_string().contains("website is not a domain or URL"),
        "{error}"
    );
    assert_eq!(sim.stats().requests_with(POST_ENRICHMENT, 400), 1);
}

/// 401 stops at once, and the key shows nowhere.
#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_never_printed() {
    let sim = start_sim(quick()).await;
    let secret = "wrong-kernel-key-4f9a";
    let client = client(KernelSettings {
        api_key: SecretString::from(secret.to_owned()),
        ..settings(&sim)
    });

    let error = client.submit(&irongate("001KEY")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert!(error.kind().needs_operator());
    let poll_error = client.poll(ExecutionId(1)).await.unwrap_err();
    assert_eq!(poll_error.kind(), ErrorKind::Unauthorized);
    for text in [
        error.to_string(),
        format!("{error:?}"),
        format!("{client:?}"),
    ] {
        assert!(!text.contains(secret), "{text}");
    }
    // One attempt each: an operator problem is not retried.
    assert_eq!(sim.stats().total_requests(), 2);
}

/// An unknown execution (400) and a failed one (500) both poll as Failed.
#[tokio::test]
async fn unknown_and_failed_executions_poll_as_failed() {
    let sim = start_sim(KernelSimConfig {
        execution_error_share: 1.0,
        ..quick()
    })
    .await;
    let client = client(settings(&sim));

    let unknown = client.poll(ExecutionId(42)).await.unwrap();
    assert_eq!(unknown.status, PollStatus::Failed);
    assert!(unknown.message.unwrap().contains("42"));

    let answer = client.submit(&irongate("001FAIL")).await.unwrap();
    let last = poll_to_end(&client, answer.execution_id)
        .await
        .pop()
        .unwrap();
    assert_eq!(last.status, PollStatus::Failed);
    assert_eq!(last.message.as_deref(), Some("enrichment workflow failed"));
    assert!(sim.stats().requests_with(GET_ENRICHMENT, 500) >= 1);

    // A failed execution is not cached: the next POST starts a new one.
    let again = client.submit(&irongate("001FAIL")).await.unwrap();
    assert_eq!(again.status, SubmitStatus::Starting);
}

fn faulty(faults: &FaultConfig) -> KernelSimConfig {
    KernelSimConfig {
        faults: FaultConfig {
            rate_limit_burst_len: 1,
            ..faults.clone()
        },
        ..quick()
    }
}

/// 502/503/504 on every attempt end as a transient error after the attempts allowed.
#[tokio::test]
async fn gateway_errors_are_retried_then_transient() {
    let sim = start_sim(faulty(&FaultConfig {
        server_error_share: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    let client = client(settings(&sim));

    let error = client.submit(&irongate("001GW")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient);
    assert!(
        matches!(error, KernelError::Unavailable { attempts: 3, .. }),
        "{error:?}"
    );
    let stats = sim.stats();
    let gateway: u64 = [502, 503, 504]
        .iter()
        .map(|s| stats.requests_with(POST_ENRICHMENT, *s))
        .sum();
    assert_eq!(gateway, 3);
    assert_eq!(stats.executions_created, 0);
}

/// With half the answers failing, retries carry every call through.
#[tokio::test]
async fn retries_recover_from_intermittent_gateway_errors() {
    let sim = start_sim(faulty(&FaultConfig {
        server_error_share: 0.5,
        ..FaultConfig::default()
    }))
    .await;
    let client = client(KernelSettings {
        retry: RetryPolicy {
            attempts: nz(12),
            first_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        ..settings(&sim)
    });

    for i in 0..10 {
        let answer = client
            .submit(&irongate(&format!("001FLAKY{i}")))
            .await
            .unwrap();
        assert_eq!(answer.status, SubmitStatus::Starting);
    }
    let stats = sim.stats();
    assert_eq!(stats.requests_with(POST_ENRICHMENT, 200), 10);
    assert!(stats.total_requests() > 10, "{stats:?}");
}

/// 429 on every attempt: the client waits the (capped) Retry-After, then gives up.
#[tokio::test]
async fn rate_limiting_is_waited_out_within_the_cap_then_reported() {
    let sim = start_sim(faulty(&FaultConfig {
        rate_limit_burst_share: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    let client = client(settings(&sim));

    let start = Instant::now();
    let error = client.submit(&irongate("001SLOW")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert!(error.is_transient());
    // Two capped waits of 50 ms (not the 1 s asked for) between three attempts.
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
    assert!(client.budget().is_rate_limited());
    assert_eq!(sim.stats().requests_with(POST_ENRICHMENT, 429), 3);
}

/// A client faster than Kernel allows is slowed by 429s and still gets every answer.
#[tokio::test]
async fn a_client_faster_than_the_limit_recovers_from_429() {
    let sim = start_sim(KernelSimConfig {
        requests_per_second: 4,
        ..quick()
    })
    .await;
    let client = client(KernelSettings {
        max_retry_after: Duration::from_secs(2),
        retry: RetryPolicy {
            attempts: nz(6),
            ..settings(&sim).retry
        },
        ..settings(&sim)
    });

    let mut calls = Vec::new();
    for i in 0..8 {
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            client.submit(&irongate(&format!("001F{i}"))).await
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status, SubmitStatus::Starting);
    }
    assert!(sim.stats().requests_with(POST_ENRICHMENT, 429) >= 1);
    assert!(
        !client.budget().is_rate_limited(),
        "the episode ends with an accepted request"
    );
}

/// An answer held past the client's timeout is a transient transport error.
#[tokio::test]
async fn timeouts_are_transient() {
    let sim = start_sim(faulty(&FaultConfig {
        timeout_share: 1.0,
        timeout_hold_secs: 5.0,
        ..FaultConfig::default()
    }))
    .await;
    let client = client(KernelSettings {
        request_timeout: Duration::from_millis(200),
        retry: RetryPolicy {
            attempts: nz(2),
            ..settings(&sim).retry
        },
        ..settings(&sim)
    });

    let error = client.submit(&irongate("001HOLD")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient);
    let KernelError::Transport {
        source, attempts, ..
    } = &error
    else {
        panic!("expected a transport error, got {error:?}");
    };
    assert!(source.is_timeout(), "{source:?}");
    assert_eq!(*attempts, 2);
}

/// Slow answers inside the timeout are simply slow.
#[tokio::test]
async fn slow_answers_succeed() {
    let sim = start_sim(faulty(&FaultConfig {
        slow_share: 1.0,
        slow_delay_secs: 0.3,
        ..FaultConfig::default()
    }))
    .await;
    let client = client(settings(&sim));

    let start = Instant::now();
    let answer = client.submit(&irongate("001LAG")).await.unwrap();
    assert_eq!(answer.status, SubmitStatus::Starting);
    assert!(start.elapsed() >= Duration::from_millis(300));
}

/// A truncated body is a decode error naming the endpoint, the status and an excerpt.
#[tokio::test]
async fn malformed_bodies_are_decode_errors() {
    let sim = start_sim(faulty(&FaultConfig {
        malformed_share: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    let client = client(KernelSettings {
        retry: RetryPolicy {
            attempts: nz(2),
            ..settings(&sim).retry
        },
        ..settings(&sim)
    });

    let error = client.submit(&irongate("001GARBLE")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Decode);
    let text = error.to_string();
    for needle in ["POST enrichment", "http 200", "invalid JSON", "{\"status\""] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
    // The retry found the execution the first attempt started.
    assert_eq!(sim.stats().executions_created, 1);
}

/// Beyond the processing cap a new execution gets 429; repeats still answer.
#[tokio::test]
async fn the_processing_cap_answers_429() {
    let sim = start_sim(KernelSimConfig {
        max_processing: 2,
        retry_after_secs: 0,
        fast_after_secs: 5.0,
        complete_after_secs: 5.0,
        ..quick()
    })
    .await;
    let client = client(KernelSettings {
        retry: RetryPolicy {
            attempts: nz(1),
            ..settings(&sim).retry
        },
        ..settings(&sim)
    });

    client.submit(&irongate("001CAP1")).await.unwrap();
    client.submit(&irongate("001CAP2")).await.unwrap();
    let error = client.submit(&irongate("001CAP3")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    let repeat = client.submit(&irongate("001CAP1")).await.unwrap();
    assert_eq!(repeat.status, SubmitStatus::InProgress);
    assert_eq!(sim.stats().max_processing(), 2);
}

/// The stats endpoint serves the same counters as the handle, and keys are labels only.
#[tokio::test]
async fn stats_are_served_over_http() {
    let sim = start_sim(KernelSimConfig {
        api_keys: vec![SimKey("first-key".into()), SimKey("second-key".into())],
        ..quick()
    })
    .await;
    let client = client(settings(&sim));
    client.submit(&irongate("001STATS")).await.unwrap();

    let url = sim.base_url().join("__sim/stats").unwrap();
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    assert!(!text.contains("first-key"), "{text}");
    let served: kernel_sync::sim::kernel::KernelSimStats = serde_json::from_str(&text).unwrap();
    assert_eq!(served, sim.stats());
    assert_eq!(served.keys["key-0"].executions_created, 1);
    assert_eq!(served.keys["key-1"].executions_created, 0);
}

/// 1,000 submissions through the budget, each polled to its end by the cadence.
///
/// Kernel's 5 requests/s would make this take minutes, so the simulator and the client both
/// run at 200 requests/s with 50 slots and enrichment in tens of milliseconds; the invariants
/// asserted are the same: the simulator never saw more than the limit in any one-second
/// window, never more executions processing than the slot cap, and never answered 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_submissions_stay_inside_the_limits() {
    const RATE: u32 = 200;
    const SLOTS: u32 = 50;
    const RECORDS: usize = 1000;

    let sim = start_sim(KernelSimConfig {
        requests_per_second: RATE,
        max_processing: SLOTS,
        fast_after_secs: 0.015,
        complete_after_secs: 0.03,
        ..KernelSimConfig::fast_for_tests()
    })
    .await;
    let client = client(KernelSettings {
        requests_per_second: nz(RATE),
        max_in_flight: nz(SLOTS),
        ..settings(&sim)
    });
    let cadence = CadenceSettings {
        first: Duration::from_millis(40),
        factor: 1.5,
        max_interval: Duration::from_millis(100),
        jitter: 0.2,
        give_up_after: Duration::from_secs(30),
    };
    let freed = Arc::new(tokio::sync::Notify::new());
    let domains: Vec<String> = Catalogue::builtin().domains().map(str::to_owned).collect();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..RECORDS {
        let (client, freed, cadence) = (client.clone(), Arc::clone(&freed), cadence.clone());
        let website = if i % 10 == 9 {
            format!("unknown-{i}.example")
        } else {
            domains[i % domains.len()].clone()
        };
        tasks.spawn(async move {
            // Wait for a free slot.
            loop {
                let notified = freed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if client.budget().try_take_slot() {
                    break;
                }
                notified.await;
            }

            let request = EnrichmentRequest::for_salesforce(
                format!("a0X{i:06}"),
                inputs("Co", &website),
                false,
            )
            .unwrap();
            let submitted = client.submit(&request).await.unwrap();
            let started = Instant::now();
            let (mut polls, mut last) = (0, PollStatus::Processing);
            while !last.is_terminal() {
                let sample = f64::from(u32::try_from(i % 97).unwrap()) / 97.0;
                match next_poll(started.elapsed(), polls, last, &cadence, sample) {
                    PollDecision::After(wait) => tokio::time::sleep(wait).await,
                    PollDecision::GiveUp => panic!("record {i} timed out"),
                }
                last = client.poll(submitted.execution_id).await.unwrap().status;
                polls += 1;
            }

            client.budget().release_slot();
            freed.notify_waiters();
            last
        });
    }
    let mut complete = 0;
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap(), PollStatus::Complete);
        complete += 1;
    }

    let stats = sim.stats();
    assert_eq!(complete, RECORDS);
    assert_eq!(stats.executions_created, RECORDS as u64);
    assert!(
        stats.max_requests_in_one_second() <= u64::from(RATE),
        "{}",
        stats.max_requests_in_one_second()
    );
    assert!(
        stats.max_processing() <= u64::from(SLOTS),
        "{}",
        stats.max_processing()
    );
    assert_eq!(stats.requests_with(POST_ENRICHMENT, 429), 0);
    assert_eq!(stats.requests_with(GET_ENRICHMENT, 429), 0);
    assert_eq!(client.budget().open(), 0);
}

mod contract {
    //! Every body the client builds validates against the POST request schema of the
    //! reference OpenAPI document, and every simulator answer against its response schema.

    use serde_json::{Value, json};

    use super::*;

    /// The reference document lives outside the repo, in `shared/` beside the clone;
    /// `KERNEL_SYNC_SHARED_DIR` points elsewhere (a git worktree, for instance).
    fn openapi() -> Value {
        let shared = std::env::var("KERNEL_SYNC_SHARED_DIR")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared").to_owned());
        let path = format!("{shared}/reference/kernel-inbound-openapi.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "the contract test needs {path} ({error}): check out the shared/ folder beside \
                 the crate, or set KERNEL_SYNC_SHARED_DIR to it"
            )
        });
        serde_json::from_str(&text).expect("the reference OpenAPI document is JSON")
    }

    fn operation(openapi: &Value, method: &str) -> Value {
        openapi["paths"]["/api/v1/inbound/enrichment"][method].clone()
    }

    fn validator(schema: &Value) -> jsonschema::Validator {
        jsonschema::validator_for(schema).expect("the contract schemas compile")
    }

    /// The GET schemas put `additionalProperties: false` in one `allOf` branch and allow any
    /// property in the other, which taken literally forbids the dynamic fields the contract
    /// promises. We read it as "dynamic fields allowed": the closed branch still checks its
    /// own properties' types and requirements, but stops forbidding the other's.
    fn allow_dynamic_fields(schema: &mut Value) {
        match schema {
            Value::Object(object) => {
                if let Some(Value::Array(branches)) = object.get_mut("allOf") {
                    let open = branches.iter().any(|b| {
                        b.get("additionalProperties")
                            .is_some_and(|a| *a != Value::Bool(false))
                    });
                    if open {
                        for branch in branches.iter_mut() {
                            let closed = Some(&Value::Bool(false));
                            if let Some(branch) = branch.as_object_mut()
                                && branch.get("additionalProperties") == closed
                            {
                                branch.remove("additionalProperties");
                            }
                        }
                    }
                }
                for value in object.values_mut() {
                    allow_dynamic_fields(value);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(allow_dynamic_fields),
            _ => {}
        }
    }

    fn response_schema(operation: &Value, status: u16) -> Value {
        operation["responses"][status.to_string()]["content"]["application/json"]["schema"].clone()
    }

    fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: {instance} is invalid: {errors:?}"
        );
    }

    #[test]
    fn every_request_body_the_client_builds_validates() {
        let post = operation(&openapi(), "post");
        let schema = post["requestBody"]["content"]["application/json"]["schema"].clone();
        let validator = validator(&schema);

        let full = CompanyInputs {
            name: Some("Irongate Diagnostics".into()),
            website: Some("irongate-diagnostics.example".into()),
            linkedin_url: Some("https://www.linkedin.com/company/irongate-diagnostics".into()),
            email_domain: Some("irongate-diagnostics.example".into()),
        };
        let linkedin_only = CompanyInputs {
            linkedin_url: full.linkedin_url.clone(),
            ..CompanyInputs::default()
        };
        let named = CompanyInputs {
            linkedin_url: None,
            email_domain: None,
            ..full.clone()
        };
        for force in [false, true] {
            for given in [&full, &linkedin_only, &named] {
                let bodies = [
                    EnrichmentRequest::for_salesforce("001A", given.clone(), force),
                    EnrichmentRequest::for_dynamics("9f1c-guid", given.clone(), force),
                    EnrichmentRequest::for_website(given.clone(), force),
                ];
                for request in bodies.into_iter().flatten() {
                    assert_valid(&validator, &request.body(), "request body");
                }
            }
        }
        // The schema does bite: a body with none of the three keys is refused.
        assert!(!validator.is_valid(&json!({"name": "Irongate"})));
    }

    /// Raw answers of the simulator, by status, for each method.
    async fn raw(request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    #[tokio::test]
    async fn every_simulator_answer_validates() {
        let openapi = openapi();
        let post = operation(&openapi, "post");
        let mut get = operation(&openapi, "get");
        let literal_get = validator(&response_schema(&get, 200));
        allow_dynamic_fields(&mut get);

        let sim = start_sim(quick()).await;
        let failing = start_sim(KernelSimConfig {
            execution_error_share: 1.0,
            ..quick()
        })
        .await;
        let http = reqwest::Client::new();
        let url = |sim: &KernelSim| sim.base_url().join("api/v1/inbound/enrichment").unwrap();
        let send_post = |sim: &KernelSim, body: Value| {
            http.post(url(sim))
                .header("x-api-key", sim.api_key())
                .json(&body)
        };
        let send_get = |sim: &KernelSim, id: &Value| {
            http.get(url(sim))
                .header("x-api-key", sim.api_key())
                .query(&[("executionId", id)])
        };
        let mut answers: Vec<(&str, u16, Value)> = Vec::new();

        // POST: starting, in_progress, then 400.
        let body = irongate("001CONTRACT").body();
        let (status, started) = raw(send_post(&sim, body.clone())).await;
        answers.push(("post", status, started.clone()));
        let (status, repeat) = raw(send_post(&sim, body.clone())).await;
        assert_eq!(repeat["status"], "in_progress");
        answers.push(("post", status, repeat));
        let (status, bad) = raw(send_post(&sim, json!({"name": "x"}))).await;
        assert_eq!(status, 400);
        answers.push(("post", status, bad));

        // GET: processing, fast-success, complete, then cached on a repeat POST.
        let id = started["executionId"].clone();
        let mut statuses = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while statuses.last().is_none_or(|s| s != "complete") {
            let (status, answer) = raw(send_get(&sim, &id)).await;
            statuses.push(answer["status"].as_str().unwrap().to_owned());
            answers.push(("get", status, answer));
            assert!(Instant::now() < deadline, "{statuses:?}");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        for want in ["processing", "fast-success", "complete"] {
            assert!(
                statuses.iter().any(|s| s == want),
                "{want} not seen in {statuses:?}"
            );
        }
        let (status, cached) = raw(send_post(&sim, body.clone())).await;
        assert_eq!(cached["status"], "cached");
        answers.push(("post", status, cached));

        // GET: an unknown execution (400) and a failed one (500).
        let (status, unknown) = raw(send_get(&sim, &json!(1))).await;
        assert_eq!(status, 400);
        answers.push(("get", status, unknown));
        let (_, failed_start) = raw(send_post(&failing, body)).await;
        // The execution fails once its delay has passed: look until it does.
        let deadline = Instant::now() + Duration::from_secs(5);
        let (status, failed) = loop {
            let (status, answer) = raw(send_get(&failing, &failed_start["executionId"])).await;
            if status != 200 {
                break (status, answer);
            }
            assert!(
                Instant::now() < deadline,
                "the execution never failed: {answer}"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        };
        assert_eq!(status, 500);
        answers.push(("get", status, failed));

        for (method, status, answer) in &answers {
            let operation = if *method == "post" { &post } else { &get };
            let validator = validator(&response_schema(operation, *status));
            assert_valid(&validator, answer, &format!("{method} {status}"));
        }

        // The relaxation above is needed: read literally, a complete answer is refused.
        let complete = answers
            .iter()
            .find(|(_, _, a)| a["status"] == "complete")
            .unwrap();
        assert!(!literal_get.is_valid(&complete.2));
    }
}
