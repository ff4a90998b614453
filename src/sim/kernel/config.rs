//! The simulator's settings: the `--config FILE` TOML, checked and resolved before serving.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The API key every simulator accepts unless configured otherwise.
pub const DEMO_API_KEY: &str = "demo-kernel-key";

/// An API key the simulator accepts. Debug prints it redacted, like every secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimKey(pub String);

impl fmt::Debug for SimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SimKey([redacted])")
    }
}

/// How the simulated Kernel behaves. Every key is optional in TOML; unknown keys are errors.
/// `Default` is realistic: the contract's limits, fast data in minutes, the rest in hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KernelSimConfig {
    /// Accepted `x-api-key` values; limits and repeats are kept per key.
    pub api_keys: Vec<SimKey>,
    /// Requests per second per key before 429 (the contract says 5).
    pub requests_per_second: u32,
    /// Executions processing at once per key before a POST gets 429 (the contract says 200).
    pub max_processing: u32,
    /// The `Retry-After` of a 429, in seconds.
    pub retry_after_secs: u64,
    /// Seconds from a POST until the fast fields are in (`fast-success`).
    pub fast_after_secs: f64,
    /// Seconds from a POST until every field is in (`complete`).
    pub complete_after_secs: f64,
    /// Share by which each execution's delays vary, in [0, 1).
    pub delay_jitter: f64,
    /// How long a completed execution is answered as `cached`, in seconds (14 days).
    pub cache_for_secs: f64,
    /// Share of new executions that end in `status: error` (at the fast point).
    pub execution_error_share: f64,
    /// Seed of the random draws (faults, jitter), so runs are repeatable.
    pub seed: u64,
    /// Faults injected into the answers.
    pub faults: FaultConfig,
}

/// Shares, in [0, 1], of requests that meet each fault. Draws are independent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// Answered 502, 503 or 504 without being processed.
    pub server_error_share: f64,
    /// Start a burst of 429 answers.
    pub rate_limit_burst_share: f64,
    /// Requests in one 429 burst (the first included).
    pub rate_limit_burst_len: u32,
    /// Processed, then answered after `slow_delay_secs`.
    pub slow_share: f64,
    /// The delay of a slow answer, in seconds.
    pub slow_delay_secs: f64,
    /// Processed, then held for `timeout_hold_secs` (longer than the client's timeout).
    pub timeout_share: f64,
    /// How long a timed-out answer is held, in seconds.
    pub timeout_hold_secs: f64,
    /// Processed, then answered with a truncated body.
    pub malformed_share: f64,
}

impl Default for KernelSimConfig {
    fn default() -> Self {
        Self {
            api_keys: vec![SimKey(DEMO_API_KEY.to_owned())],
            requests_per_second: 5,
            max_processing: 200,
            retry_after_secs: 1,
            fast_after_secs: 3.0 * 60.0,
            complete_after_secs: 2.0 * 60.0 * 60.0,
            delay_jitter: 0.25,
            cache_for_secs: 14.0 * 24.0 * 60.0 * 60.0,
            execution_error_share: 0.0,
            seed: 7,
            faults: FaultConfig {
                rate_limit_burst_len: 3,
                slow_delay_secs: 2.0,
                timeout_hold_secs: 120.0,
                ..FaultConfig::default()
            },
        }
    }
}

impl KernelSimConfig {
    /// The contract's limits with enrichment in hundreds of milliseconds (fast fields after
    /// 200 ms, all after 400 ms), no jitter and no faults.
    #[must_use]
    pub fn fast_for_tests() -> Self {
        Self {
            fast_after_secs: 0.2,
            complete_after_secs: 0.4,
            delay_jitter: 0.0,
            ..Self::default()
        }
    }

    /// Checks ranges and turns seconds into durations.
    pub(crate) fn resolve(&self) -> Result<Resolved, String> {
        let mut problems = Vec::new();

        if self.api_keys.is_empty() || self.api_keys.iter().any(|k| k.0.trim().is_empty()) {
            problems.push("api_keys must list at least one non-empty key".to_owned());
        }
        if self.requests_per_second == 0 {
            problems.push("requests_per_second must be at least 1".to_owned());
        }
        if self.max_processing == 0 {
            problems.push("max_processing must be at least 1".to_owned());
        }
        let shares = [
            ("delay_jitter", self.delay_jitter),
            ("execution_error_share", self.execution_error_share),
            ("faults.server_error_share", self.faults.server_error_share),
            (
                "faults.rate_limit_burst_share",
                self.faults.rate_limit_burst_share,
            ),
            ("faults.slow_share", self.faults.slow_share),
            ("faults.timeout_share", self.faults.timeout_share),
            ("faults.malformed_share", self.faults.malformed_share),
        ];
        for (name, share) in shares {
            if !(0.0..=1.0).contains(&share) {
                problems.push(format!(
                    "{name} must be a share between 0 and 1, got {share}"
                ));
            }
        }
        let mut duration = |name: &str, secs: f64| match Duration::try_from_secs_f64(secs) {
            Ok(duration) => duration,
            Err(_) => {
                problems.push(format!("{name} must be a non-negative number of seconds"));
                Duration::ZERO
            }
        };
        let fast_after = duration("fast_after_secs", self.fast_after_secs);
        let complete_after = duration("complete_after_secs", self.complete_after_secs);
        let cache_for = duration("cache_for_secs", self.cache_for_secs);
        let slow_delay = duration("faults.slow_delay_secs", self.faults.slow_delay_secs);
        let timeout_hold = duration("faults.timeout_hold_secs", self.faults.timeout_hold_secs);
        if complete_after < fast_after {
            problems.push("complete_after_secs must not be less than fast_after_secs".to_owned());
        }

        if !problems.is_empty() {
            return Err(format!("kernel simulator config: {}", problems.join("; ")));
        }
        Ok(Resolved {
            api_keys: self.api_keys.iter().map(|k| k.0.clone()).collect(),
            requests_per_second: self.requests_per_second,
            max_processing: self.max_processing,
            retry_after_secs: self.retry_after_secs,
            fast_after,
            complete_after,
            delay_jitter: self.delay_jitter,
            cache_for,
            execution_error_share: self.execution_error_share,
            seed: self.seed,
            faults: self.faults.clone(),
            slow_delay,
            timeout_hold,
        })
    }
}

/// Checked settings.
#[derive(Clone)]
pub(crate) struct Resolved {
    pub(crate) api_keys: Vec<String>,
    pub(crate) requests_per_second: u32,
    pub(crate) max_processing: u32,
    pub(crate) retry_after_secs: u64,
    pub(crate) fast_after: Duration,
    pub(crate) complete_after: Duration,
    pub(crate) delay_jitter: f64,
    pub(crate) cache_for: Duration,
    pub(crate) execution_error_share: f64,
    pub(crate) seed: u64,
    pub(crate) faults: FaultConfig,
    pub(crate) slow_delay: Duration,
    pub(crate) timeout_hold: Duration,
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("api_keys", &self.api_keys.len())
            .field("requests_per_second", &self.requests_per_second)
            .field("max_processing", &self.max_processing)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_every_key_and_defaults() {
        let text = r#"
            api_keys = ["key-a", "key-b"]
            requests_per_second = 10
            fast_after_secs = 1.5
            complete_after_secs = 3
            [faults]
            server_error_share = 0.1
        "#;
        let config: KernelSimConfig = toml::from_str(text).unwrap();
        assert_eq!(config.api_keys.len(), 2);
        assert_eq!(config.requests_per_second, 10);
        assert_eq!(config.max_processing, 200);
        assert!((config.faults.server_error_share - 0.1).abs() < f64::EPSILON);
        assert!(config.resolve().is_ok());
        assert!(!format!("{config:?}").contains("key-a"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let error = toml::from_str::<KernelSimConfig>("request_per_second = 5").unwrap_err();
        assert!(error.to_string().contains("request_per_second"), "{error}");
    }

    #[test]
    fn ranges_are_checked_all_at_once() {
        let config = KernelSimConfig {
            requests_per_second: 0,
            fast_after_secs: -1.0,
            faults: FaultConfig {
                malformed_share: 1.5,
                ..FaultConfig::default()
            },
            ..KernelSimConfig::default()
        };
        let error = config.resolve().unwrap_err();
        for needle in [
            "requests_per_second",
            "fast_after_secs",
            "faults.malformed_share",
        ] {
            assert!(error.contains(needle), "{needle}: {error}");
        }
    }
}
