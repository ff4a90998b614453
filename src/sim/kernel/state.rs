//! The simulator's memory: executions, per-key limits and repeats, faults drawn, and the
//! counters tests assert on. Everything here is synchronous and runs under one lock; the HTTP
//! layer only sleeps (slow answers, timeouts) outside it.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::catalogue::{Catalogue, Stage, normalise_host};
use super::config::Resolved;

/// Stats name of `POST /api/v1/inbound/enrichment`.
pub const POST_ENRICHMENT: &str = "POST /api/v1/inbound/enrichment";
/// Stats name of `GET /api/v1/inbound/enrichment`.
pub const GET_ENRICHMENT: &str = "GET /api/v1/inbound/enrichment";

/// Counters of everything the simulator saw, served at `GET /__sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelSimStats {
    /// Answers by endpoint (`POST /api/...`, `GET /api/...`), then HTTP status ("200").
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per configured key, labelled `key-0`, `key-1`... in configuration order.
    pub keys: BTreeMap<String, KeyStats>,
    /// POST bodies received (valid or not, rate limited or not) with a known key.
    pub post_bodies: u64,
    /// POSTs received per record key (salesforceId, dynamicsId, else the website's host).
    pub posts_by_record: BTreeMap<String, u64>,
    /// Executions started per record key.
    pub executions_by_record: BTreeMap<String, u64>,
    /// Executions started in all.
    pub executions_created: u64,
    /// Executions that ended (or will end) in `status: error`.
    pub executions_failed: u64,
}

/// Counters of one API key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStats {
    /// The most requests that arrived in any one-second window, rejected ones included.
    pub max_requests_in_one_second: u64,
    /// The most executions processing at once.
    pub max_processing: u64,
    /// Executions started.
    pub executions_created: u64,
}

impl KernelSimStats {
    /// Answers of `endpoint` (one of [`POST_ENRICHMENT`], [`GET_ENRICHMENT`]) with `status`.
    #[must_use]
    pub fn requests_with(&self, endpoint: &str, status: u16) -> u64 {
        self.requests
            .get(endpoint)
            .and_then(|by_status| by_status.get(&status.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Answers of every endpoint and status.
    #[must_use]
    pub fn total_requests(&self) -> u64 {
        self.requests.values().flat_map(BTreeMap::values).sum()
    }

    /// The highest one-second request count of any key.
    #[must_use]
    pub fn max_requests_in_one_second(&self) -> u64 {
        self.keys
            .values()
            .map(|k| k.max_requests_in_one_second)
            .max()
            .unwrap_or(0)
    }

    /// The most executions processing at once for any key.
    #[must_use]
    pub fn max_processing(&self) -> u64 {
        self.keys
            .values()
            .map(|k| k.max_processing)
            .max()
            .unwrap_or(0)
    }
}

/// An answer before faults: status, extra headers, JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<u64>,
    pub(crate) body: String,
}

impl Answer {
    fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            retry_after: None,
            body: body.to_string(),
        }
    }

    fn error(status: u16, message: &str) -> Self {
        Self::json(status, &json!({"status": "error", "message": message}))
    }
}

/// The faults drawn for one request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Faults {
    pub(crate) server_error: Option<u16>,
    pub(crate) slow: bool,
    pub(crate) timeout: bool,
    pub(crate) malformed: bool,
}

#[derive(Debug)]
struct Execution {
    key: usize,
    record_id: String,
    company: Option<String>,
    fast_at: Instant,
    done_at: Instant,
    fails: bool,
}

impl Execution {
    /// When it stops processing (an error ends it at the fast point).
    fn ends_at(&self) -> Instant {
        if self.fails {
            self.fast_at
        } else {
            self.done_at
        }
    }
}

#[derive(Debug, Default)]
struct KeyState {
    arrivals: VecDeque<Instant>,
    admitted: VecDeque<Instant>,
    processing: BinaryHeap<Reverse<Instant>>,
    last_by_record: HashMap<String, u64>,
}

/// The simulator's state; lock it for each step.
#[derive(Debug)]
pub(crate) struct SimState {
    config: Resolved,
    catalogue: Catalogue,
    rng: StdRng,
    next_id: u64,
    burst_left: u32,
    executions: HashMap<u64, Execution>,
    keys: Vec<KeyState>,
    stats: KernelSimStats,
}

const ONE_SECOND: Duration = Duration::from_secs(1);

impl SimState {
    pub(crate) fn new(config: Resolved, catalogue: Catalogue) -> Self {
        let keys = config
            .api_keys
            .iter()
            .map(|_| KeyState::default())
            .collect();
        let mut stats = KernelSimStats::default();
        for index in 0..config.api_keys.len() {
            stats.keys.insert(key_label(index), KeyStats::default());
        }
        Self {
            rng: StdRng::seed_from_u64(config.seed),
            // Far from zero, so that no client can get away with small-integer assumptions.
            next_id: 7_340_001,
            burst_left: 0,
            executions: HashMap::new(),
            keys,
            stats,
            config,
            catalogue,
        }
    }

    pub(crate) fn config(&self) -> &Resolved {
        &self.config
    }

    pub(crate) fn stats(&self) -> KernelSimStats {
        self.stats.clone()
    }

    /// Counts an answer.
    pub(crate) fn record(&mut self, endpoint: &str, status: u16) {
        *self
            .stats
            .requests
            .entry(endpoint.to_owned())
            .or_default()
            .entry(status.to_string())
            .or_default() += 1;
    }

    /// Authenticates and rate-limits one request: the key's index, or the answer to give.
    pub(crate) fn admit(&mut self, api_key: Option<&str>, now: Instant) -> Result<usize, Answer> {
        let Some(key) = api_key.and_then(|k| self.config.api_keys.iter().position(|c| c == k))
        else {
            return Err(Answer::error(401, "missing or unknown x-api-key"));
        };

        // Every arrival counts toward the highest one-second rate, rejected or not.
        let state = &mut self.keys[key];
        let seen = push_in_window(&mut state.arrivals, now);
        let stats = self.stats.keys.entry(key_label(key)).or_default();
        stats.max_requests_in_one_second = stats.max_requests_in_one_second.max(seen);

        if self.burst_left > 0 {
            self.burst_left -= 1;
            return Err(self.too_many("rate limit exceeded"));
        }
        if self.draw(self.config.faults.rate_limit_burst_share) {
            self.burst_left = self.config.faults.rate_limit_burst_len.saturating_sub(1);
            return Err(self.too_many("rate limit exceeded"));
        }
        let state = &mut self.keys[key];
        retire(&mut state.admitted, now);
        if state.admitted.len() >= self.config.requests_per_second as usize {
            return Err(self.too_many("rate limit exceeded: 5 requests per second per api key"));
        }
        state.admitted.push_back(now);
        Ok(key)
    }

    /// Draws the faults of one admitted request.
    pub(crate) fn draw_faults(&mut self) -> Faults {
        let faults = self.config.faults.clone();
        let server_error = self.draw(faults.server_error_share).then(|| {
            let statuses = [502, 503, 504];
            statuses[self.rng.random_range(0..statuses.len())]
        });
        Faults {
            server_error,
            slow: self.draw(faults.slow_share),
            timeout: self.draw(faults.timeout_share),
            malformed: self.draw(faults.malformed_share),
        }
    }

    /// Counts a POST body before anything else looks at it.
    pub(crate) fn note_post(&mut self, body: &[u8]) {
        self.stats.post_bodies += 1;
        if let Ok(value) = serde_json::from_slice::<Value>(body)
            && let Some(record) = record_key(&value)
        {
            *self.stats.posts_by_record.entry(record).or_default() += 1;
        }
    }

    /// Answers a POST of an admitted key.
    pub(crate) fn post(&mut self, key: usize, body: &[u8], now: Instant) -> Answer {
        // Validate like the OpenAPI document, then the input rule of its prose.
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return Answer::error(400, "request body is not valid JSON");
        };
        if let Err(message) = validate_post(&value) {
            return Answer::error(400, &message);
        }
        let text = |name: &str| value.get(name).and_then(Value::as_str);
        if text("website").is_some_and(|website| normalise_host(website).is_none()) {
            return Answer::error(400, "website is not a domain or URL");
        }
        let Some(record) = record_key(&value) else {
            return Answer::error(400, "website is not a domain or URL");
        };
        let force = value.get("force").and_then(Value::as_bool).unwrap_or(false);

        // A repeat: the running execution, or a recent result unless forced.
        retire_processing(&mut self.keys[key].processing, now);
        if let Some(&id) = self.keys[key].last_by_record.get(&record)
            && let Some(execution) = self.executions.get(&id)
        {
            if now < execution.ends_at() {
                return submit_answer("in_progress", id, "enrichment is already in progress");
            }
            let fresh = now.duration_since(execution.done_at) < self.config.cache_for;
            if !force && !execution.fails && fresh {
                return submit_answer("cached", id, "account was enriched in the last 14 days");
            }
        }

        // A new execution, within the concurrency limit. The contract is silent on what
        // happens beyond 200 processing; this simulator answers 429.
        if self.keys[key].processing.len() >= self.config.max_processing as usize {
            return self.too_many("too many executions processing for this api key");
        }
        let company = self
            .catalogue
            .find(text("website"), text("linkedinUrl"), text("emailDomain"))
            .map(str::to_owned);
        let record_id = text("salesforceId").unwrap_or_default().to_owned();
        let id = self.start(key, record, record_id, company, now);
        submit_answer("starting", id, "enrichment started")
    }

    fn start(
        &mut self,
        key: usize,
        record: String,
        record_id: String,
        company: Option<String>,
        now: Instant,
    ) -> u64 {
        let id = self.next_id;
        self.next_id += 1;

        let jitter = self.config.delay_jitter;
        let mut vary = |delay: Duration| {
            let factor = 1.0 - jitter + 2.0 * jitter * self.rng.random::<f64>();
            delay.mul_f64(factor.max(0.0))
        };
        let fast_after = vary(self.config.fast_after);
        let complete_after = vary(self.config.complete_after).max(fast_after);
        let fails = self.draw(self.config.execution_error_share);
        let execution = Execution {
            key,
            record_id,
            company,
            fast_at: now + fast_after,
            done_at: now + complete_after,
            fails,
        };

        let state = &mut self.keys[key];
        state.processing.push(Reverse(execution.ends_at()));
        state.last_by_record.insert(record.clone(), id);
        let processing = state.processing.len() as u64;
        self.executions.insert(id, execution);

        let stats = self.stats.keys.entry(key_label(key)).or_default();
        stats.executions_created += 1;
        stats.max_processing = stats.max_processing.max(processing);
        *self.stats.executions_by_record.entry(record).or_default() += 1;
        self.stats.executions_created += 1;
        if fails {
            self.stats.executions_failed += 1;
        }
        id
    }

    /// Answers a GET of an admitted key.
    pub(crate) fn get(&mut self, key: usize, query: Option<&str>, now: Instant) -> Answer {
        let raw = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(name, _)| name == "executionId")
            .map(|(_, value)| value.into_owned());
        let Some(raw) = raw else {
            return Answer::error(400, "executionId is required");
        };
        let Some(id) = parse_id(&raw) else {
            return Answer::error(400, "executionId must be a number");
        };
        let Some(execution) = self.executions.get(&id).filter(|e| e.key == key) else {
            return Answer::error(400, &format!("no execution {id} for this api key"));
        };

        if execution.fails && now >= execution.fast_at {
            return Answer::error(500, "enrichment workflow failed");
        }
        let (status, stage, message) = if now < execution.fast_at {
            ("processing", Stage::Processing, "enrichment is running")
        } else if now < execution.done_at {
            (
                "fast-success",
                Stage::FastSuccess,
                "fast data points are available",
            )
        } else {
            ("complete", Stage::Complete, "enrichment complete")
        };
        let mut body = Map::new();
        body.insert("Id".into(), Value::String(execution.record_id.clone()));
        body.insert("message".into(), Value::String(message.to_owned()));
        body.insert("status".into(), Value::String(status.to_owned()));
        body.extend(self.catalogue.fields(execution.company.as_deref(), stage));
        Answer::json(200, &Value::Object(body))
    }

    fn too_many(&self, message: &str) -> Answer {
        Answer {
            retry_after: Some(self.config.retry_after_secs),
            ..Answer::error(429, message)
        }
    }

    fn draw(&mut self, share: f64) -> bool {
        share > 0.0 && self.rng.random::<f64>() < share
    }
}

fn submit_answer(status: &str, id: u64, message: &str) -> Answer {
    Answer::json(
        200,
        &json!({"status": status, "executionId": id, "message": message}),
    )
}

fn key_label(index: usize) -> String {
    format!("key-{index}")
}

/// Drops instants older than one second, adds `now`, and answers how many are left.
fn push_in_window(window: &mut VecDeque<Instant>, now: Instant) -> u64 {
    retire(window, now);
    window.push_back(now);
    window.len() as u64
}

fn retire(window: &mut VecDeque<Instant>, now: Instant) {
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= ONE_SECOND)
    {
        window.pop_front();
    }
}

fn retire_processing(processing: &mut BinaryHeap<Reverse<Instant>>, now: Instant) {
    while processing.peek().is_some_and(|Reverse(end)| *end <= now) {
        processing.pop();
    }
}

/// Integral numbers only, as the client sends them (`12`, also `12.0`).
fn parse_id(raw: &str) -> Option<u64> {
    if let Ok(id) = raw.parse::<u64>() {
        return Some(id);
    }
    let float = raw.parse::<f64>().ok()?;
    let integral = float >= 0.0 && float.fract() == 0.0 && float <= 9_007_199_254_740_992.0;
    // Checked just above: integral, non-negative and exactly representable.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    integral.then_some(float as u64)
}

/// The record a POST is for: salesforceId, dynamicsId, else the website's host.
fn record_key(body: &Value) -> Option<String> {
    let text = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if let Some(id) = text("salesforceId").or_else(|| text("dynamicsId")) {
        return Some(id.to_owned());
    }
    text("website").and_then(normalise_host)
}

/// The POST request schema of the contract (an `anyOf` of three bodies), then the input rule
/// of its prose: linkedinUrl, or both name and website.
pub(crate) fn validate_post(body: &Value) -> Result<(), String> {
    let Value::Object(object) = body else {
        return Err("request body must be a JSON object".to_owned());
    };

    let typed = [
        ("name", false),
        ("website", false),
        ("linkedinUrl", true),
        ("salesforceId", true),
        ("dynamicsId", true),
    ];
    for (name, nullable) in typed {
        match object.get(name) {
            None | Some(Value::String(_)) => {}
            Some(Value::Null) if nullable => {}
            Some(_) => return Err(format!("{name} must be a string")),
        }
    }
    if object.get("force").is_some_and(|force| !force.is_boolean()) {
        return Err("force must be a boolean".to_owned());
    }
    let branch = object.contains_key("salesforceId")
        || object.contains_key("dynamicsId")
        || object.contains_key("website");
    if !branch {
        return Err("one of salesforceId, dynamicsId or website is required".to_owned());
    }

    let present = |name: &str| {
        object
            .get(name)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    let identified = present("linkedinUrl") || (present("name") && present("website"));
    if !identified {
        return Err("linkedinUrl, or both name and website, are required".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kernel::KernelSimConfig;

    fn state() -> SimState {
        let config = KernelSimConfig {
            requests_per_second: 3,
            ..KernelSimConfig::fast_for_tests()
        };
        SimState::new(config.resolve().unwrap(), Catalogue::builtin())
    }

    #[test]
    fn post_validation_table() {
        let table = [
            (
                json!({"salesforceId": "001A", "name": "A", "website": "a.example"}),
                true,
            ),
            (
                json!({"salesforceId": null, "linkedinUrl": "https://x/company/a"}),
                true,
            ),
            (
                json!({"dynamicsId": "g", "linkedinUrl": "https://x/company/a"}),
                true,
            ),
            (
                json!({"website": "a.example", "name": "A", "force": true}),
                true,
            ),
            (json!({"salesforceId": "001A", "name": "A"}), false),
            (
                json!({"name": "A", "linkedinUrl": "https://x/company/a"}),
                false,
            ),
            (json!({"salesforceId": 5, "linkedinUrl": "l"}), false),
            (
                json!({"website": "a.example", "name": "A", "force": "yes"}),
                false,
            ),
            (json!([]), false),
        ];
        for (body, valid) in table {
            assert_eq!(validate_post(&body).is_ok(), valid, "{body}");
        }
    }

    #[test]
    fn rate_window_counts_every_arrival_and_admits_the_limit() {
        let mut state = state();
        let start = Instant::now();
        let key = Some(crate::sim::kernel::DEMO_API_KEY);
        let outcomes: Vec<bool> = (0..5)
            .map(|i| state.admit(key, start + Duration::from_millis(i)).is_ok())
            .collect();
        assert_eq!(outcomes, [true, true, true, false, false]);
        assert!(
            state
                .admit(key, start + Duration::from_millis(1000))
                .is_ok()
        );
        assert_eq!(state.stats().max_requests_in_one_second(), 5);
        assert_eq!(state.admit(Some("wrong"), start).unwrap_err().status, 401);
        assert_eq!(state.admit(None, start).unwrap_err().status, 401);
    }

    #[test]
    fn ids_parse_as_integral_numbers() {
        assert_eq!(parse_id("12"), Some(12));
        assert_eq!(parse_id("12.0"), Some(12));
        assert_eq!(parse_id("12.5"), None);
        assert_eq!(parse_id("abc"), None);
    }
}
