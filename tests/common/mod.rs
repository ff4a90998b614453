//! What the end-to-end tests share: both simulators on loopback, a deployment folder written
//! for them, an engine built from it, and expected values computed from the fixtures.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kernel_sync::pipeline::Engine;
use kernel_sync::pipeline::driver::CountsHandle;
use kernel_sync::pipeline::scheduler::PassReport;
use kernel_sync::sim::kernel::{Catalogue, KernelSim, KernelSimConfig};
use kernel_sync::sim::salesforce::{OrgData, OrgSim, OrgSimConfig};
use kernel_sync::store::{ItemState, WorkItem};
use serde_json::{Map, Value};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures");

/// How a test world differs from the shipped demo.
pub struct Setup {
    pub kernel: KernelSimConfig,
    pub org: OrgSimConfig,
    /// Text replacements in the demo deployment file (`from`, `to`).
    pub edits: Vec<(String, String)>,
    /// Mapping files written instead of the shipped ones (file name, text).
    pub mappings: Vec<(String, String)>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            kernel: quick_kernel(),
            org: OrgSimConfig::default(),
            edits: vec![
                (
                    "max_interval = \"3s\"".into(),
                    "max_interval = \"1s\"".into(),
                ),
                ("jitter = 0.2".into(), "jitter = 0.0".into()),
            ],
            mappings: Vec::new(),
        }
    }
}

/// Enrichment in under a second, no faults, a rate high enough for hundreds of records.
pub fn quick_kernel() -> KernelSimConfig {
    KernelSimConfig {
        requests_per_second: 200,
        fast_after_secs: 0.3,
        complete_after_secs: 0.6,
        delay_jitter: 0.0,
        execution_error_share: 0.0,
        ..KernelSimConfig::default()
    }
}

/// Both simulators and the folder holding the deployment, mappings, keys and store.
pub struct World {
    pub org: OrgSim,
    pub kernel: KernelSim,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

pub fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{path}")).expect("fixtures ship with the crate")
}

pub async fn start(setup: Setup) -> World {
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    let org = kernel_sync::sim::salesforce::spawn(
        any,
        setup.org,
        OrgData::builtin().expect("builtin org"),
    )
    .await
    .expect("org simulator starts");
    let kernel = kernel_sync::sim::kernel::spawn(any, setup.kernel, Catalogue::builtin())
        .await
        .expect("kernel simulator starts");
    let dir = tempfile::tempdir().expect("temp dir");

    let mut deployment = fixture("demo/kernel-sync.toml")
        .replace("{login_url}", org.base_url().trim_end_matches('/'))
        .replace(
            "{kernel_url}",
            kernel.base_url().as_str().trim_end_matches('/'),
        );
    for (from, to) in &setup.edits {
        assert!(
            deployment.contains(from.as_str()),
            "deployment has no `{from}`"
        );
        deployment = deployment.replace(from.as_str(), to);
    }
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write("kernel-sync.toml", &deployment);
    for name in ["account.toml", "lead.toml", "prospect_company.toml"] {
        write(name, &fixture(&format!("mappings/{name}")));
    }
    for (name, text) in &setup.mappings {
        write(name, text);
    }
    write(
        "demo-private-key.pem",
        &fixture("auth/demo-private-key.pem"),
    );
    write(
        "demo-kernel-api-key",
        kernel_sync::sim::kernel::DEMO_API_KEY,
    );
    let config = dir.path().join("kernel-sync.toml");
    World {
        org,
        kernel,
        dir,
        config,
    }
}

impl World {
    pub async fn engine(&self) -> Engine {
        let settings = kernel_sync::cli::load_settings(&self.config).expect("settings load");
        kernel_sync::cli::connect(settings)
            .await
            .expect("engine connects")
    }

    /// Every record of an object as the org stores it now, by Id.
    pub fn snapshot(&self, object: &str) -> HashMap<String, Map<String, Value>> {
        fixture_records(object)
            .into_iter()
            .map(|r| {
                let id = r["Id"].as_str().unwrap().to_owned();
                let now = self.org.record(object, &id).unwrap();
                (id, now)
            })
            .collect()
    }

    pub fn post_bodies(&self) -> u64 {
        self.kernel.stats().post_bodies
    }

    pub fn records_written(&self) -> u64 {
        self.org.stats().records_written.values().sum()
    }
}

/// One pass over `names`, bounded by `max_wait`.
pub async fn pass(engine: &Engine, names: &[&str], max_wait: Duration) -> PassReport {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    engine
        .run_pass(&names, Some(max_wait), rx, CountsHandle::default())
        .await
        .expect("pass runs")
}

/// Every work item of an object sync, by record Id.
pub async fn items(engine: &Engine, name: &str) -> HashMap<String, WorkItem> {
    let mut all = HashMap::new();
    for state in [
        ItemState::Pending,
        ItemState::Submitting,
        ItemState::Open,
        ItemState::Writing,
        ItemState::Written,
        ItemState::Skipped,
        ItemState::Parked,
        ItemState::Dropped,
    ] {
        for item in engine
            .store
            .items_in_state(name, state, 10_000)
            .await
            .unwrap()
        {
            all.insert(item.record_id.clone(), item);
        }
    }
    all
}

/// Polls `check` every 50 ms until it holds, failing after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn fixture_records(object: &str) -> Vec<Map<String, Value>> {
    let text = fixture(&format!("org/records/{object}.json"));
    let records: Vec<Value> = serde_json::from_str(&text).unwrap();
    records
        .into_iter()
        .map(|r| r.as_object().cloned().unwrap())
        .collect()
}

/// The catalogue as a plain JSON object of companies, by domain.
pub fn catalogue_companies() -> Map<String, Value> {
    let text = fixture("kernel/catalogue.json");
    let value: Value = serde_json::from_str(&text).unwrap();
    value["companies"].as_object().cloned().unwrap()
}

/// A field of a record, with `""` read as null.
pub fn text_of<'a>(record: &'a Map<String, Value>, field: &str) -> Option<&'a str> {
    record
        .get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// Whether two Salesforce values are the same (numbers within rounding noise).
pub fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    if is_empty(a) && is_empty(b) {
        return true;
    }
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => {
            (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-9
        }
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

// ---- expected values, computed from the fixtures without the engine's mapper ----

#[derive(Clone, Copy, PartialEq)]
pub enum Conv {
    Text,
    Integer,
    Number,
    Percent,
    Boolean,
    Date,
    Picklist,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Policy {
    Always,
    IfEmpty,
    Never,
}

pub struct Rule {
    pub target: &'static str,
    pub source: &'static str,
    pub conv: Conv,
    pub policy: Policy,
    pub confidence: Option<f64>,
    pub max_length: Option<usize>,
    pub separator: &'static str,
}

const fn rule(target: &'static str, source: &'static str, conv: Conv, policy: Policy) -> Rule {
    Rule {
        target,
        source,
        conv,
        policy,
        confidence: None,
        max_length: None,
        separator: ";",
    }
}

pub const INDUSTRY_MAP: [(&str, &str); 3] = [
    ("Software", "Technology"),
    ("Financial Services", "Finance"),
    ("Logistics", "Transportation"),
];

/// `fixtures/mappings/account.toml`, restated.
pub fn account_rules() -> Vec<Rule> {
    use Conv::*;
    use Policy::*;
    vec![
        Rule {
            confidence: Some(0.7),
            ..rule("Industry", "industry", Picklist, IfEmpty)
        },
        rule("NumberOfEmployees", "headcount", Integer, Always),
        rule("BillingCountry", "country", Text, IfEmpty),
        rule("BillingState", "state", Text, IfEmpty),
        rule(
            "Kernel_Headcount_Growth__c",
            "headcountGrowth",
            Percent,
            Always,
        ),
        rule("Kernel_Funding_Stage__c", "fundingStage", Picklist, Always),
        rule("Kernel_Founded_Year__c", "foundedYear", Number, Never),
        rule(
            "Kernel_Last_Funding_Date__c",
            "lastFundingDate",
            Date,
            Always,
        ),
        rule("Kernel_Is_B2B__c", "isB2B", Boolean, Always),
        Rule {
            max_length: Some(255),
            ..rule("Kernel_Description__c", "description", Text, IfEmpty)
        },
        Rule {
            separator: "; ",
            ..rule("Kernel_Technologies__c", "technologies", Text, Always)
        },
        rule("Kernel_Open_Roles__c", "signals/openRoles", Number, Always),
        rule(
            "Kernel_Hiring_Trend__c",
            "signals/hiringTrend",
            Picklist,
            Always,
        ),
    ]
}

/// `fixtures/mappings/lead.toml`, restated.
pub fn lead_rules() -> Vec<Rule> {
    use Conv::*;
    use Policy::*;
    vec![
        Rule {
            confidence: Some(0.6),
            ..rule("Industry", "industry", Picklist, IfEmpty)
        },
        rule("NumberOfEmployees", "headcount", Integer, IfEmpty),
        rule("Country", "country", Text, IfEmpty),
        rule("State", "state", Text, IfEmpty),
        rule(
            "Kernel_Headcount_Growth__c",
            "headcountGrowth",
            Percent,
            Always,
        ),
        rule("Kernel_Funding_Stage__c", "fundingStage", Picklist, Always),
        Rule {
            max_length: Some(255),
            ..rule("Kernel_Description__c", "description", Text, Never)
        },
    ]
}

/// One field's describe facts from `fixtures/org/describe`.
pub struct FieldFacts {
    pub length: Option<usize>,
    pub scale: i32,
    pub values: Vec<String>,
    pub restricted: bool,
}

pub fn describe(object: &str) -> HashMap<String, FieldFacts> {
    let text = fixture(&format!("org/describe/{object}.json"));
    let value: Value = serde_json::from_str(&text).unwrap();
    value["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let facts = FieldFacts {
                length: f["length"].as_u64().map(|n| n as usize),
                scale: f["scale"].as_i64().unwrap_or(0) as i32,
                values: f["values"]
                    .as_array()
                    .map(|v| v.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default(),
                restricted: f["restricted"].as_bool().unwrap_or(false),
            };
            (f["name"].as_str().unwrap().to_owned(), facts)
        })
        .collect()
}

fn round_to(x: f64, scale: i32) -> f64 {
    let factor = 10f64.powi(scale);
    (x * factor).round() / factor
}

/// What Kernel's catalogue value becomes in the Salesforce field, `None` when it is left out.
pub fn converted(rule: &Rule, facts: &FieldFacts, company: &Map<String, Value>) -> Option<Value> {
    let mut parts = rule.source.split('/');
    let mut raw = company.get(parts.next()?)?;
    for part in parts {
        raw = raw.get(part)?;
    }
    if raw.is_null() {
        return None;
    }
    if let Some(min) = rule.confidence {
        let confidence = company.get("industryConfidence")?.as_f64()?;
        if confidence < min {
            return None;
        }
    }
    match rule.conv {
        Conv::Text => {
            let text = match raw {
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
                    .join(rule.separator),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let limit = match (rule.max_length, facts.length) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or(usize::MAX),
            };
            Some(Value::String(text.chars().take(limit).collect()))
        }
        Conv::Integer => Some(Value::from(raw.as_f64()?.round() as i64)),
        Conv::Number => Some(serde_json::json!(round_to(raw.as_f64()?, facts.scale))),
        Conv::Percent => Some(serde_json::json!(round_to(
            raw.as_f64()? * 100.0,
            facts.scale
        ))),
        Conv::Boolean => Some(Value::Bool(raw.as_bool()?)),
        Conv::Date => Some(Value::String(raw.as_str()?.get(..10)?.to_owned())),
        Conv::Picklist => {
            let text = raw.as_str()?;
            let mapped = INDUSTRY_MAP
                .iter()
                .find(|(from, _)| *from == text && rule.target == "Industry")
                .map_or(text, |(_, to)| to);
            match facts.values.iter().find(|v| v.eq_ignore_ascii_case(mapped)) {
                Some(known) => Some(Value::String(known.clone())),
                None if facts.restricted => None,
                None => Some(Value::String(mapped.to_owned())),
            }
        }
    }
}

/// The value a field should hold after a first enrichment of `original`.
pub fn expected_after_first(
    rule: &Rule,
    facts: &FieldFacts,
    original: &Map<String, Value>,
    company: Option<&Map<String, Value>>,
) -> Option<Value> {
    let before = original
        .get(rule.target)
        .filter(|v| !is_empty(Some(v)))
        .cloned();
    let proposed = company.and_then(|c| converted(rule, facts, c));
    match rule.policy {
        Policy::Always => proposed.or(before),
        Policy::IfEmpty | Policy::Never => before.or(proposed),
    }
}
