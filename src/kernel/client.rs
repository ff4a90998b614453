//! The HTTP client of the Kernel Inbound API.
//!
//! Every attempt (retries included) first takes a permit from the key's [`Budget`]; polls ask
//! with priority. Failures are classified by [`StatusClass`] and end as a [`KernelError`]:
//! 429 waits for `Retry-After` (seconds or an HTTP date, capped), 5xx, timeouts and connection
//! errors back off exponentially with full jitter, all within a bounded number of attempts.
//!
//! A retried POST without `force` is safe: Kernel answers a repeat with the running execution
//! or the cached result. A retried POST *with* `force` after a timeout may start a second
//! execution, because the first may have been accepted before the answer was lost.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::answer::{self, PollAnswer, SubmitAnswer};
use super::budget::{Budget, Priority};
use super::error::{KernelError, StatusClass, excerpt};
use super::request::{EnrichmentRequest, ExecutionId};

/// The path of the enrichment endpoint, appended to the base URL.
pub const ENRICHMENT_PATH: &str = "api/v1/inbound/enrichment";

const POST_ENDPOINT: &str = "POST enrichment";
const GET_ENDPOINT: &str = "GET enrichment";

/// The wait assumed after a 429 that carries no usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Bounded exponential back-off with full jitter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub attempts: NonZeroU32,
    /// The back-off ceiling before the first retry.
    pub first_delay: Duration,
    /// The largest back-off ceiling.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: NonZeroU32::new(5).expect("5 is not zero"),
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first retry): uniform in
    /// `[0, min(max_delay, first_delay * 2^retry)]`, scaled by `sample` in [0, 1).
    #[must_use]
    pub fn backoff(&self, retry: u32, sample: f64) -> Duration {
        let ceiling = self
            .first_delay
            .checked_mul(2_u32.checked_pow(retry).unwrap_or(u32::MAX))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let sample = if sample.is_finite() {
            sample.clamp(0.0, 1.0)
        } else {
            1.0
        };
        ceiling.mul_f64(sample)
    }
}

/// The resolved settings of one Kernel connection (one API key).
#[derive(Clone)]
pub struct KernelSettings {
    /// Where the API lives, e.g. `https://api.kernel.ai`; [`ENRICHMENT_PATH`] is appended.
    pub base_url: Url,
    /// The `x-api-key` header.
    pub api_key: SecretString,
    /// The strict request rate shared by POST and GET (Kernel allows 5).
    pub requests_per_second: NonZeroU32,
    /// The most executions open at once (Kernel allows 200 processing).
    pub max_in_flight: NonZeroU32,
    /// The limit on one HTTP attempt, from connecting to the end of the body.
    pub request_timeout: Duration,
    /// Retries of 5xx, timeouts and connection errors.
    pub retry: RetryPolicy,
    /// The cap on a wait Kernel asks for in `Retry-After`.
    pub max_retry_after: Duration,
}

impl KernelSettings {
    /// Kernel's documented limits and our defaults, for `base_url` and `api_key`.
    #[must_use]
    pub fn new(base_url: Url, api_key: SecretString) -> Self {
        Self {
            base_url,
            api_key,
            requests_per_second: NonZeroU32::new(5).expect("5 is not zero"),
            max_in_flight: NonZeroU32::new(200).expect("200 is not zero"),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for KernelSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelSettings")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &"[redacted]")
            .field("requests_per_second", &self.requests_per_second)
            .field("max_in_flight", &self.max_in_flight)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("max_retry_after", &self.max_retry_after)
            .finish()
    }
}

/// The client of one API key. Cheap to clone: clones share the connection pool and the budget.
#[derive(Clone)]
pub struct KernelClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoint: Url,
    budget: Budget,
    retry: RetryPolicy,
    max_retry_after: Duration,
}

impl fmt::Debug for KernelClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelClient")
            .field("endpoint", &self.inner.endpoint.as_str())
            .field("budget", &self.inner.budget)
            .finish_non_exhaustive()
    }
}

/// What one HTTP attempt came to.
enum Attempt<T> {
    Done(T),
    /// Retry after the back-off; keeps the error to return if no attempt is left.
    Retry(KernelError),
    /// Retry after the wait Kernel asked for.
    RateLimited(Duration),
}

impl KernelClient {
    /// A client for `settings`.
    ///
    /// # Errors
    ///
    /// [`KernelError::Settings`] when the base URL cannot carry the endpoint path, the API key
    /// is not a valid header value, or the HTTP client cannot be built.
    pub fn new(settings: KernelSettings) -> Result<Self, KernelError> {
        let endpoint = endpoint_url(&settings.base_url)?;

        let mut key = HeaderValue::from_str(settings.api_key.expose_secret()).map_err(|_| {
            KernelError::Settings {
                reason: "the api key holds characters not allowed in an http header; check \
                         for a stray newline"
                    .to_owned(),
            }
        })?;
        // Keeps the key out of any debug print of a request.
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", key);

        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(settings.request_timeout)
            .user_agent(concat!("kernel-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| KernelError::Settings {
                reason: format!("the http client cannot be built: {error}"),
            })?;

        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoint,
                budget: Budget::new(settings.requests_per_second, settings.max_in_flight),
                retry: settings.retry,
                max_retry_after: settings.max_retry_after,
            }),
        })
    }

    /// The budget shared by every clone of this client.
    #[must_use]
    pub fn budget(&self) -> &Budget {
        &self.inner.budget
    }

    /// The full URL of the enrichment endpoint.
    #[must_use]
    pub fn endpoint(&self) -> &Url {
        &self.inner.endpoint
    }

    /// Starts (or finds) the execution for `request`. Does not take an open-execution slot:
    /// the caller takes it with [`Budget::try_take_slot`] first.
    ///
    /// # Errors
    ///
    /// [`KernelError::Rejected`] on a 400, [`KernelError::Unauthorized`] on 401/403, and after
    /// the attempts allowed: [`KernelError::RateLimited`], [`KernelError::Unavailable`],
    /// [`KernelError::Transport`] or [`KernelError::Decode`].
    pub async fn submit(&self, request: &EnrichmentRequest) -> Result<SubmitAnswer, KernelError> {
        let body = request.body();
        self.call(POST_ENDPOINT, Priority::Submit, || {
            self.inner
                .http
                .post(self.inner.endpoint.clone())
                .json(&body)
        })
        .await
    }

    /// Polls execution `id`. A failed or unknown execution is an answer, not an error: its
    /// status is [`crate::kernel::PollStatus::Failed`] with Kernel's message.
    ///
    /// # Errors
    ///
    /// As [`KernelClient::submit`], except that a 400 or 500 carrying `status: error` is a
    /// `Failed` answer.
    pub async fn poll(&self, id: ExecutionId) -> Result<PollAnswer, KernelError> {
        self.call(GET_ENDPOINT, Priority::Poll, || {
            self.inner
                .http
                .get(self.inner.endpoint.clone())
                .query(&[("executionId", id.0)])
        })
        .await
    }

    /// Runs one call: a permit per attempt, then classify, then retry or answer.
    async fn call<T: Decoded>(
        &self,
        endpoint: &'static str,
        priority: Priority,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<T, KernelError> {
        let attempts = self.inner.retry.attempts.get();
        let mut attempt = 0_u32;
        let mut retries = 0_u32;

        loop {
            attempt += 1;
            self.inner.budget.acquire(priority).await;

            let outcome = self.attempt::<T>(endpoint, &build, attempt).await;
            let wait = match outcome {
                Attempt::Done(answer) => return answer,
                Attempt::RateLimited(wait) if attempt == attempts => {
                    return Err(KernelError::RateLimited {
                        endpoint,
                        attempts,
                        wait,
                    });
                }
                Attempt::Retry(error) if attempt == attempts => return Err(error),
                Attempt::RateLimited(_) => continue,
                Attempt::Retry(error) => {
                    let sample = rand::rng().random::<f64>();
                    let wait = self.inner.retry.backoff(retries, sample);
                    retries += 1;
                    tracing::warn!(
                        endpoint,
                        attempt,
                        wait_ms = millis(wait),
                        error = %error,
                        "kernel call failed; retrying"
                    );
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP exchange, classified.
    async fn attempt<T: Decoded>(
        &self,
        endpoint: &'static str,
        build: &impl Fn() -> reqwest::RequestBuilder,
        attempt: u32,
    ) -> Attempt<Result<T, KernelError>> {
        let response = match build().send().await {
            Ok(response) => response,
            Err(source) => {
                metrics::counter!("kernel_sync_kernel_requests_total", "endpoint" => endpoint, "outcome" => "transport_error").increment(1);
                return Attempt::Retry(KernelError::Transport {
                    endpoint,
                    attempts: attempt,
                    source,
                });
            }
        };
        let status = response.status().as_u16();
        let retry_after = response.headers().get(RETRY_AFTER).cloned();
        let body = match response.text().await {
            Ok(body) => body,
            Err(source) => {
                return Attempt::Retry(KernelError::Transport {
                    endpoint,
                    attempts: attempt,
                    source,
                });
            }
        };
        tracing::debug!(endpoint, status, attempt, "kernel answered");

        let class = StatusClass::of(status);
        metrics::counter!("kernel_sync_kernel_requests_total", "endpoint" => endpoint, "outcome" => outcome_label(class)).increment(1);
        if class != StatusClass::RateLimited {
            self.inner.budget.note_accepted();
        }
        match class {
            // A body that does not decode is retried like a transient failure: both calls are
            // safe to repeat, and a proxy may have mangled one answer.
            StatusClass::Success => match T::decode_ok(&body) {
                Ok(answer) => Attempt::Done(Ok(answer)),
                Err(reason) => Attempt::Retry(KernelError::Decode {
                    endpoint,
                    status,
                    reason,
                    excerpt: excerpt(&body),
                }),
            },
            StatusClass::BadRequest | StatusClass::ServerError => {
                match T::decode_error(endpoint, status, &body) {
                    Some(answer) => Attempt::Done(answer),
                    None => Attempt::Retry(KernelError::Unavailable {
                        endpoint,
                        status,
                        attempts: attempt,
                    }),
                }
            }
            StatusClass::Unauthorized => {
                Attempt::Done(Err(KernelError::Unauthorized { endpoint, status }))
            }
            StatusClass::RateLimited => {
                let wait = retry_after
                    .as_ref()
                    .and_then(|value| parse_retry_after(value, SystemTime::now()))
                    .unwrap_or(DEFAULT_RETRY_AFTER);
                let capped = wait.min(self.inner.max_retry_after);
                if capped < wait {
                    tracing::debug!(
                        endpoint,
                        asked_ms = millis(wait),
                        capped_ms = millis(capped),
                        "kernel asked for a longer wait than allowed; capped"
                    );
                }
                self.inner.budget.pause_for(capped, endpoint);
                Attempt::RateLimited(capped)
            }
            StatusClass::Unavailable => Attempt::Retry(KernelError::Unavailable {
                endpoint,
                status,
                attempts: attempt,
            }),
            StatusClass::Unexpected => Attempt::Done(Err(KernelError::UnexpectedStatus {
                endpoint,
                status,
                excerpt: excerpt(&body),
            })),
        }
    }
}

/// How a call's answers decode: POST and GET differ in what a 400 or 500 means.
trait Decoded: Sized {
    /// The 200 body.
    fn decode_ok(body: &str) -> Result<Self, String>;
    /// The 400 or 500 body: `None` when it is not an answer but a transient failure.
    fn decode_error(
        endpoint: &'static str,
        status: u16,
        body: &str,
    ) -> Option<Result<Self, KernelError>>;
}

impl Decoded for SubmitAnswer {
    fn decode_ok(body: &str) -> Result<Self, String> {
        answer::decode_submit(body)
    }

    fn decode_error(
        endpoint: &'static str,
        status: u16,
        body: &str,
    ) -> Option<Result<Self, KernelError>> {
        if status != 400 {
            // The contract defines no 500 for POST: a server error, worth another try.
            return None;
        }
        let message = answer::decode_error_message(body).unwrap_or_else(|| excerpt(body));
        Some(Err(KernelError::Rejected { endpoint, message }))
    }
}

impl Decoded for PollAnswer {
    fn decode_ok(body: &str) -> Result<Self, String> {
        answer::decode_poll(body)
    }

    fn decode_error(
        endpoint: &'static str,
        status: u16,
        body: &str,
    ) -> Option<Result<Self, KernelError>> {
        // `status: error` on a 400 (unknown execution) or a 500 (failed execution) ends the
        // execution either way; anything else on a 500 is a server error.
        match answer::decode_poll(body) {
            Ok(answer) if answer.status == super::answer::PollStatus::Failed => Some(Ok(answer)),
            _ if status == 400 => {
                let message = answer::decode_error_message(body).unwrap_or_else(|| excerpt(body));
                Some(Err(KernelError::Rejected { endpoint, message }))
            }
            _ => None,
        }
    }
}

/// The `outcome` label of `kernel_sync_kernel_requests_total`: one value per status class.
fn outcome_label(class: StatusClass) -> &'static str {
    match class {
        StatusClass::Success => "ok",
        StatusClass::BadRequest => "bad_request",
        StatusClass::Unauthorized => "unauthorized",
        StatusClass::RateLimited => "rate_limited",
        StatusClass::ServerError => "server_error",
        StatusClass::Unavailable => "unavailable",
        StatusClass::Unexpected => "unexpected_status",
    }
}

/// The enrichment endpoint under `base`, keeping any path prefix of the base.
fn endpoint_url(base: &Url) -> Result<Url, KernelError> {
    if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
        return Err(KernelError::Settings {
            reason: format!("base url {base} is not an http(s) url such as https://api.kernel.ai"),
        });
    }
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join(ENRICHMENT_PATH)
        .map_err(|error| KernelError::Settings {
            reason: format!("base url {base} cannot carry {ENRICHMENT_PATH}: {error}"),
        })
}

/// `Retry-After` as seconds or an HTTP date (relative to `now`); `None` when unusable.
pub(crate) fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    // A date in the past means "now".
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded_full_jitter() {
        let policy = RetryPolicy {
            attempts: NonZeroU32::new(10).unwrap(),
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        };
        let table = [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1600),
            (5, 2000),
            (60, 2000),
        ];
        for (retry, ceiling_ms) in table {
            assert_eq!(
                policy.backoff(retry, 1.0),
                Duration::from_millis(ceiling_ms),
                "{retry}"
            );
            assert_eq!(policy.backoff(retry, 0.0), Duration::ZERO, "{retry}");
            assert_eq!(
                policy.backoff(retry, 0.5),
                Duration::from_millis(ceiling_ms / 2)
            );
        }
        assert_eq!(policy.backoff(1, f64::NAN), Duration::from_millis(200));
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let in_ten = httpdate::fmt_http_date(now + Duration::from_secs(10));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(10));
        let table = [
            ("1", Some(Duration::from_secs(1))),
            (" 120 ", Some(Duration::from_secs(120))),
            (in_ten.as_str(), Some(Duration::from_secs(10))),
            (past.as_str(), Some(Duration::ZERO)),
            ("-3", None),
            ("soon", None),
            ("1.5", None),
        ];
        for (raw, want) in table {
            let value = HeaderValue::from_str(raw).unwrap();
            assert_eq!(parse_retry_after(&value, now), want, "{raw}");
        }
    }

    #[test]
    fn endpoint_keeps_the_base_path() {
        let table = [
            (
                "https://api.kernel.ai",
                "https://api.kernel.ai/api/v1/inbound/enrichment",
            ),
            (
                "http://127.0.0.1:9/",
                "http://127.0.0.1:9/api/v1/inbound/enrichment",
            ),
            (
                "http://127.0.0.1:9/proxy",
                "http://127.0.0.1:9/proxy/api/v1/inbound/enrichment",
            ),
        ];
        for (base, want) in table {
            let url = endpoint_url(&Url::parse(base).unwrap()).unwrap();
            assert_eq!(url.as_str(), want);
        }
        assert!(endpoint_url(&Url::parse("mailto:ops@kernel.example").unwrap()).is_err());
    }

    #[test]
    fn settings_and_client_never_print_the_key() {
        let key = "kernel-secret-0123456789";
        let settings = KernelSettings::new(
            Url::parse("http://127.0.0.1:9").unwrap(),
            SecretString::from(key.to_owned()),
        );
        assert!(!format!("{settings:?}").contains(key));
        let client = KernelClient::new(settings).unwrap();
        assert!(!format!("{client:?}").contains(key));
    }

    #[test]
    fn a_key_with_a_newline_is_refused_without_echoing_it() {
        let key = "kernel-secret\n";
        let settings = KernelSettings::new(
            Url::parse("http://127.0.0.1:9").unwrap(),
            SecretString::from(key.to_owned()),
        );
        let error = KernelClient::new(settings).unwrap_err();
        assert!(!error.to_string().contains("kernel-secret"), "{error}");
        assert!(error.to_string().contains("newline"), "{error}");
    }
}
