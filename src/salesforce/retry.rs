//! Bounded retries with exponential back-off and full jitter, for calls to Salesforce.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use super::error::SalesforceError;

/// How often and how patiently a failed call is repeated. Plain data; the decision whether an
/// error is worth repeating is [`SalesforceError::is_retryable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Ceiling of the wait before the second attempt.
    pub first_delay: Duration,
    /// Ceiling of any wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the wait after failed attempt number `attempt` (1-based): the first
    /// delay doubled per attempt, capped at the maximum.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.first_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }

    /// The wait after failed attempt number `attempt`: uniform between zero and the ceiling
    /// ("full jitter"), so that clients that failed together do not retry together.
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let ceiling = self.ceiling(attempt);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.random_range(0..=millis))
    }
}

/// Runs `op` until it succeeds, fails with an error that is not retryable, or the policy's
/// attempts are spent; `what` names the call in the warn log of each retry.
///
/// # Errors
///
/// The last error of `op`.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut op: F,
) -> Result<T, SalesforceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SalesforceError>>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !error.is_retryable() || attempt >= max_attempts {
            return Err(error);
        }

        let delay = policy.delay(attempt, &mut rand::rng());
        tracing::warn!(
            call = what,
            attempt,
            max_attempts,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %error,
            "salesforce call failed, retrying"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(3),
        }
    }

    fn unavailable() -> SalesforceError {
        SalesforceError::Api {
            method: "GET".into(),
            path: "/services/data/v62.0/limits".into(),
            status: 503,
            code: "SERVER_UNAVAILABLE".into(),
            message: "down for maintenance".into(),
            fields: vec![],
        }
    }

    fn malformed() -> SalesforceError {
        SalesforceError::Api {
            method: "GET".into(),
            path: "/services/data/v62.0/query".into(),
            status: 400,
            code: "MALFORMED_QUERY".into(),
            message: "unexpected token".into(),
            fields: vec![],
        }
    }

    #[test]
    fn ceilings_double_up_to_the_maximum() {
        let p = policy();
        let ceilings: Vec<_> = (1..=5).map(|a| p.ceiling(a).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 3, 3, 3]);
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(3));
    }

    #[test]
    fn delays_stay_within_the_ceiling() {
        let p = policy();
        let mut rng = rand::rng();
        for attempt in 1..10 {
            for _ in 0..50 {
                assert!(p.delay(attempt, &mut rng) <= p.ceiling(attempt));
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_until_success() {
        let calls = AtomicU32::new(0);
        let start = tokio::time::Instant::now();

        let result = with_retries(&policy(), "limits", || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(unavailable())
            } else {
                Ok(7)
            }
        })
        .await;

        assert_eq!(result.ok(), Some(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // Two waits, at most 1 s and 2 s.
        assert!(start.elapsed() <= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_last_attempt() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&policy(), "limits", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(unavailable())
        })
        .await;
        assert!(result.is_err_and(|e| e.is_retryable()));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_repeated() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&policy(), "query", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(malformed())
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
