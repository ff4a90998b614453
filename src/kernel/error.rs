//! Errors of the Kernel boundary and their one classification.
//!
//! Every failure of a submit or a poll becomes a [`KernelError`]; [`KernelError::kind`] is the
//! only place that decides what the engine does with it (retry later, park the item, or stop
//! and call an operator). No variant carries the API key.

use std::time::Duration;

/// What the engine should do about a [`KernelError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The record does not satisfy the input rule of the API; no request was spent. Permanent.
    InvalidInput,
    /// Kernel answered 400: the request's fault. Permanent; park the item with the message.
    Rejected,
    /// Kernel answered 401 or 403: the API key is wrong. An operator must act.
    Unauthorized,
    /// Kernel kept answering 429 after the attempts allowed. Transient.
    RateLimited,
    /// 5xx, timeouts and connection errors that outlasted the attempts allowed. Transient.
    Transient,
    /// An answer that does not follow the contract. Transient: both calls are safe to repeat
    /// (a repeated POST without `force` answers with the same execution).
    Decode,
    /// A status the contract does not define for this call (for example 404 from a wrong base
    /// URL). An operator must act.
    Unexpected,
}

impl ErrorKind {
    /// Whether trying the same call again later may succeed.
    #[must_use]
    pub fn is_transient(self) -> bool {
        match self {
            Self::RateLimited | Self::Transient | Self::Decode => true,
            Self::InvalidInput | Self::Rejected | Self::Unauthorized | Self::Unexpected => false,
        }
    }

    /// Whether the fix is in the deployment (API key, base URL) rather than in the record.
    #[must_use]
    pub fn needs_operator(self) -> bool {
        matches!(self, Self::Unauthorized | Self::Unexpected)
    }
}

/// A failed submit or poll, or a request that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The record lacks the inputs the API requires.
    #[error(
        "record {record} cannot be enriched: missing {missing} (send linkedinUrl, or name and \
         website)"
    )]
    InvalidInput {
        /// The record id (or "website-only record").
        record: String,
        /// The missing fields, comma separated.
        missing: String,
    },

    /// Kernel answered 400 with a message.
    #[error("kernel rejected the request at {endpoint} (http 400): {message}")]
    Rejected {
        /// `POST enrichment` or `GET enrichment`.
        endpoint: &'static str,
        /// Kernel's message, or an excerpt of the body when it had none.
        message: String,
    },

    /// Kernel refused the API key.
    #[error(
        "kernel refused the api key at {endpoint} (http {status}): check the configured kernel \
         api key"
    )]
    Unauthorized {
        /// `POST enrichment` or `GET enrichment`.
        endpoint: &'static str,
        /// 401 or 403.
        status: u16,
    },

    /// Kernel kept answering 429.
    #[error("kernel rate limited {endpoint} on all {attempts} attempts; last wait {wait:?}")]
    RateLimited {
        /// `POST enrichment` or `GET enrichment`.
        endpoint: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The wait honoured after the last 429.
        wait: Duration,
    },

    /// A transient HTTP status on every attempt.
    #[error("kernel answered http {status} at {endpoint} on all {attempts} attempts")]
    Unavailable {
        /// `POST enrichment` or `GET enrichment`.
        endpoint: &'static str,
        /// The last status seen.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },

    /// Timeouts or connection errors on every attempt.
    #[error("kernel could not be reached at {endpoint} after {attempts} attempts")]
    Transport {
        /// `POST enrichment` or `GET enrichment`.
        endpoint: &'static str,
        /// Attempts made.
        attempts: u32,
        /// The last transport error (its URL has no secret: the key travels in a header).
        #[source]
        source: reqwest::Error,
    },

    /// An answer that does not follow the contract.
    #[error(
        "kernel answered {endpoint} with http {status} and a body that does not decode \
         ({reason}): {excerpt}"
    )]
    Decode {
        /// `POST enrichment` or `GET enrichment`.
        endpoint: &'static str,
        /// The HTTP status of the answer.
        status: u16,
        /// What was wrong.
        reason: String,
        /// The first characters of the body.
        excerpt: String,
    },

    /// A status the contract does not define for the call.
    #[error(
        "kernel answered {endpoint} with unexpected http {status}: {excerpt} (check the kernel \
         base url)"
    )]
    UnexpectedStatus {
        /// `POST enrichment` or `GET enrichment`.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The first characters of the body.
        excerpt: String,
    },

    /// The settings cannot make a client.
    #[error("kernel client settings are invalid: {reason}")]
    Settings {
        /// What is wrong, without the secret.
        reason: String,
    },
}

impl KernelError {
    /// The one classification of a Kernel failure; everything else derives from it.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidInput { .. } => ErrorKind::InvalidInput,
            Self::Rejected { .. } => ErrorKind::Rejected,
            Self::Unauthorized { .. } => ErrorKind::Unauthorized,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Unavailable { .. } | Self::Transport { .. } => ErrorKind::Transient,
            Self::Decode { .. } => ErrorKind::Decode,
            Self::UnexpectedStatus { .. } | Self::Settings { .. } => ErrorKind::Unexpected,
        }
    }

    /// Whether trying the same call again later may succeed.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }
}

/// What one HTTP status means for a call, before any body is read. The client's retry loop
/// and [`KernelError::kind`] agree through this table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusClass {
    /// 200: decode the answer.
    Success,
    /// 400: the request's fault (or, for a poll, an execution that failed or is unknown).
    BadRequest,
    /// 401, 403.
    Unauthorized,
    /// 429: wait and try again.
    RateLimited,
    /// 500: for a poll, an execution that failed when the body says so; otherwise transient.
    ServerError,
    /// 502, 503, 504 and the other 5xx: try again after a back-off.
    Unavailable,
    /// Anything else.
    Unexpected,
}

impl StatusClass {
    /// Classifies an HTTP status.
    pub(crate) fn of(status: u16) -> Self {
        match status {
            200 => Self::Success,
            400 => Self::BadRequest,
            401 | 403 => Self::Unauthorized,
            429 => Self::RateLimited,
            500 => Self::ServerError,
            501..=599 => Self::Unavailable,
            _ => Self::Unexpected,
        }
    }
}

/// The first characters of a body, for an error message: one line, at most 120 characters.
pub(crate) fn excerpt(body: &str) -> String {
    const MAX_CHARS: usize = 120;

    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_CHARS)
        .collect();
    if body.chars().count() > MAX_CHARS {
        format!("{one_line}...")
    } else if one_line.trim().is_empty() {
        "(empty body)".to_owned()
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        let table = [
            (200, StatusClass::Success),
            (400, StatusClass::BadRequest),
            (401, StatusClass::Unauthorized),
            (403, StatusClass::Unauthorized),
            (404, StatusClass::Unexpected),
            (409, StatusClass::Unexpected),
            (429, StatusClass::RateLimited),
            (500, StatusClass::ServerError),
            (502, StatusClass::Unavailable),
            (503, StatusClass::Unavailable),
            (504, StatusClass::Unavailable),
            (302, StatusClass::Unexpected),
        ];
        for (status, class) in table {
            assert_eq!(StatusClass::of(status), class, "status {status}");
        }
    }

    #[test]
    fn kind_table() {
        let table = [
            (ErrorKind::InvalidInput, false, false),
            (ErrorKind::Rejected, false, false),
            (ErrorKind::Unauthorized, false, true),
            (ErrorKind::RateLimited, true, false),
            (ErrorKind::Transient, true, false),
            (ErrorKind::Decode, true, false),
            (ErrorKind::Unexpected, false, true),
        ];
        for (kind, transient, operator) in table {
            assert_eq!(kind.is_transient(), transient, "{kind:?}");
            assert_eq!(kind.needs_operator(), operator, "{kind:?}");
        }
    }

    #[test]
    fn errors_map_to_kinds() {
        let endpoint = "GET enrichment";
        let cases = [
            (
                KernelError::InvalidInput {
                    record: "001A".into(),
                    missing: "website".into(),
                },
                ErrorKind::InvalidInput,
            ),
            (
                KernelError::Rejected {
                    endpoint,
                    message: "bad".into(),
                },
                ErrorKind::Rejected,
            ),
            (
                KernelError::Unauthorized {
                    endpoint,
                    status: 401,
                },
                ErrorKind::Unauthorized,
            ),
            (
                KernelError::RateLimited {
                    endpoint,
                    attempts: 3,
                    wait: Duration::from_secs(1),
                },
                ErrorKind::RateLimited,
            ),
            (
                KernelError::Unavailable {
                    endpoint,
                    status: 503,
                    attempts: 3,
                },
                ErrorKind::Transient,
            ),
            (
                KernelError::Decode {
                    endpoint,
                    status: 200,
                    reason: "x".into(),
                    excerpt: "{".into(),
                },
                ErrorKind::Decode,
            ),
            (
                KernelError::UnexpectedStatus {
                    endpoint,
                    status: 404,
                    excerpt: String::new(),
                },
                ErrorKind::Unexpected,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
            assert_eq!(error.is_transient(), kind.is_transient(), "{error}");
        }
    }

    #[test]
    fn messages_are_lowercase_and_name_the_subject() {
        let error = KernelError::InvalidInput {
            record: "001A".into(),
            missing: "website".into(),
        };
        let text = error.to_string();
        assert!(text.starts_with("record 001A"), "{text}");
        assert!(!text.ends_with('.'), "{text}");
    }

    #[test]
    fn excerpt_is_short_and_on_one_line() {
        assert_eq!(excerpt(""), "(empty body)");
        assert_eq!(excerpt("{\"a\":\n1"), "{\"a\": 1");
        let long = "x".repeat(500);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), 123);
        assert!(cut.ends_with("..."));
    }
}
