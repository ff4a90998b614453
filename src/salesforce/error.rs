//! Errors of the Salesforce boundary and the one place that decides what each of them means
//! for the caller: re-authenticate, retry, stop the run, or give up.
//!
//! Salesforce reports trouble in three shapes (a REST array of `{message, errorCode}`, a
//! per-record `{statusCode, message, fields}`, an OAuth `{error, error_description}`); all of
//! them end up here. Every message names the endpoint or the record and, when the fix is
//! known, ends with it. No message ever carries a token, an assertion or a secret.

use super::soql::SoqlError;

/// Error codes that mean "the same request may succeed in a moment", at the top level of a
/// REST response and inside a per-record result alike.
/// (`ALL_OR_NONE_OPERATION_ROLLED_BACK` marks a record that was fine but rolled back with a
/// failing neighbour.)
const TRANSIENT_CODES: &[&str] = &[
    "UNABLE_TO_LOCK_ROW",
    "SERVER_UNAVAILABLE",
    "UNKNOWN_EXCEPTION",
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
];

/// HTTP statuses that are retried whatever the body says: rate limiting (420 from Salesforce
/// Edge, 429) and the server-side failures.
const TRANSIENT_STATUSES: &[u16] = &[420, 429, 500, 502, 503, 504];

/// The error code of an expired or revoked access token.
pub(crate) const INVALID_SESSION_ID: &str = "INVALID_SESSION_ID";

/// What the caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A setting of the deployment file is wrong; nothing works until the operator fixes it.
    Config,
    /// Authentication failed or the integration user lacks a permission; the operator must
    /// fix the named setting or the connected app.
    Auth,
    /// A transient fault (lock contention, overload, timeout, connection): try again later.
    Retryable,
    /// The org's rolling 24-hour API allowance is spent: stop the run and wait for the next
    /// schedule.
    DailyLimitExceeded,
    /// The request itself is wrong (malformed query, unknown field or object, bad value);
    /// repeating it cannot help.
    Permanent,
    /// Salesforce answered something this client cannot read.
    Decode,
}

/// What the client does with one failed REST answer, decided by [`classify_api`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Fetch a new token and repeat the call once.
    Reauthenticate,
    /// Repeat with back-off.
    Retry,
    /// Stop the run: the daily allowance is spent.
    StopRun,
    /// The operator must fix a setting or a permission.
    Operator,
    /// The request is wrong.
    Fail,
}

/// Decides what a failed REST answer means. This table is the only place that does.
pub(crate) fn classify_api(status: u16, code: &str, message: &str) -> Disposition {
    // REQUEST_LIMIT_EXCEEDED has two meanings: the daily allocation ("TotalRequests Limit
    // exceeded.") or too many concurrent long requests, which clears within seconds.
    if code == "REQUEST_LIMIT_EXCEEDED" {
        if message.contains("TotalRequests") {
            return Disposition::StopRun;
        }
        return Disposition::Retry;
    }
    if status == 401 && code == INVALID_SESSION_ID {
        return Disposition::Reauthenticate;
    }
    if is_transient_code(code) || TRANSIENT_STATUSES.contains(&status) {
        return Disposition::Retry;
    }
    if status == 401 || status == 403 {
        return Disposition::Operator;
    }
    Disposition::Fail
}

/// Whether a per-record or top-level error code is transient (same table as [`classify_api`]).
pub(crate) fn is_transient_code(code: &str) -> bool {
    TRANSIENT_CODES.contains(&code)
}

/// Whether an OAuth token-endpoint failure is worth repeating: only server faults and rate
/// limiting; every other answer means the credentials or the connected app are wrong.
pub(crate) fn is_transient_oauth(status: u16, error: &str) -> bool {
    status >= 500 || status == 429 || error == "rate_limit_exceeded"
}

/// An error at the Salesforce boundary.
#[derive(Debug, thiserror::Error)]
pub enum SalesforceError {
    /// A setting is invalid; the message names it and what would be valid.
    #[error("invalid setting salesforce.{setting}: {reason}")]
    InvalidSetting {
        /// The setting's key below `salesforce.`.
        setting: &'static str,
        /// What is wrong and what would be valid.
        reason: String,
    },

    /// The token endpoint refused to issue a token.
    #[error("token request to {endpoint} failed with http {status} {error}: {description}; {hint}")]
    OAuth {
        /// The token URL.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// The OAuth `error` field.
        error: String,
        /// The OAuth `error_description` field.
        description: String,
        /// What to fix.
        hint: String,
    },

    /// The JWT bearer assertion could not be signed.
    #[error("signing the jwt bearer assertion failed: check salesforce.auth.private_key")]
    Assertion {
        /// The signing failure.
        #[source]
        source: jsonwebtoken::errors::Error,
    },

    /// A REST call answered with an error.
    #[error("{method} {path} failed with http {status} {code}: {message}")]
    Api {
        /// HTTP method.
        method: String,
        /// Path of the resource, without query values.
        path: String,
        /// HTTP status.
        status: u16,
        /// Salesforce's `errorCode`, or `HTTP_<status>` when the body had none.
        code: String,
        /// Salesforce's message (several errors are joined with `; `).
        message: String,
        /// Fields the error names.
        fields: Vec<String>,
    },

    /// A freshly issued token was refused at once: the integration user cannot use the API.
    #[error(
        "{method} {path} refused a freshly issued token ({message}): check that the \
         integration user is active, has the API Enabled permission and that the connected \
         app allows the api scope"
    )]
    SessionRejected {
        /// HTTP method.
        method: String,
        /// Path of the resource.
        path: String,
        /// Salesforce's message.
        message: String,
    },

    /// The request could not be sent or its answer not received (connection, timeout).
    #[error("{method} {path} could not be completed: {source}")]
    Transport {
        /// HTTP method.
        method: String,
        /// Path of the resource, without query values.
        path: String,
        /// The transport failure.
        #[source]
        source: reqwest::Error,
    },

    /// An answer could not be decoded.
    #[error("answer of {path} could not be decoded: {source}")]
    Decode {
        /// Path of the resource.
        path: String,
        /// The decoding failure.
        #[source]
        source: serde_json::Error,
    },

    /// An answer was well-formed JSON but not what the API promises.
    #[error("answer of {path} is not as expected: {reason}")]
    Unexpected {
        /// Path of the resource.
        path: String,
        /// What was wrong.
        reason: String,
    },

    /// A query could not be built from the given names or values.
    #[error(transparent)]
    Soql(#[from] SoqlError),

    /// A record update was refused before sending.
    #[error("update of {object} {id} refused before sending: {reason}")]
    InvalidUpdate {
        /// sObject type.
        object: String,
        /// Record id.
        id: String,
        /// Why.
        reason: String,
    },
}

impl SalesforceError {
    /// What the caller should do about this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidSetting { .. } => ErrorKind::Config,
            Self::OAuth { status, error, .. } if is_transient_oauth(*status, error) => {
                ErrorKind::Retryable
            }
            Self::OAuth { .. } | Self::Assertion { .. } | Self::SessionRejected { .. } => {
                ErrorKind::Auth
            }
            Self::Api {
                status,
                code,
                message,
                ..
            } => match classify_api(*status, code, message) {
                Disposition::Retry => ErrorKind::Retryable,
                Disposition::StopRun => ErrorKind::DailyLimitExceeded,
                // A 401 that reaches the caller survived one renewal already.
                Disposition::Reauthenticate | Disposition::Operator => ErrorKind::Auth,
                Disposition::Fail => ErrorKind::Permanent,
            },
            // A request that cannot even be built is a bug, never a network hiccup.
            Self::Transport { source, .. } if source.is_builder() => ErrorKind::Permanent,
            Self::Transport { .. } => ErrorKind::Retryable,
            Self::Decode { .. } | Self::Unexpected { .. } => ErrorKind::Decode,
            Self::Soql(_) | Self::InvalidUpdate { .. } => ErrorKind::Permanent,
        }
    }

    /// Whether repeating the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind() == ErrorKind::Retryable
    }

    /// The Salesforce error code, when the error came from a REST answer.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The fix to suggest for an OAuth error, given the grant that was used.
pub(crate) fn oauth_hint(grant: &str, error: &str, description: &str) -> String {
    let description = description.to_ascii_lowercase();
    let hint = if description.contains("audience is invalid") {
        "set salesforce.auth.audience to the authorization server's URL \
         (https://login.salesforce.com, https://test.salesforce.com or the org's My Domain URL)"
    } else if description.contains("hasn't approved this consumer") {
        "pre-authorize the integration user's profile or permission set in the connected \
         app's policies (permitted users: admin approved users are pre-authorized)"
    } else if description.contains("not supported on this domain") {
        "set salesforce.login_url to the org's My Domain URL \
         (https://<domain>.my.salesforce.com); the client credentials flow is refused on \
         login.salesforce.com and test.salesforce.com"
    } else if description.contains("expired access/refresh token") {
        "the refresh token is expired or revoked: authorize the connected app again and \
         update salesforce.auth.refresh_token"
    } else if description.contains("invalid assertion") || description.contains("expired") {
        "check that salesforce.auth.private_key matches the certificate of the connected \
         app, that salesforce.auth.username is right and that this machine's clock is correct"
    } else if description.contains("authentication failure") {
        "check salesforce.auth.client_id and the client secret, and that the connected app \
         names an active run-as user"
    } else if error.starts_with("invalid_client") {
        "check salesforce.auth.client_id (the connected app's consumer key) and the client \
         secret"
    } else if error == "unsupported_grant_type" {
        "check that salesforce.login_url is the org's login host and that the connected app \
         enables this flow"
    } else if error == "inactive_user" {
        "the integration user is inactive: activate it or set salesforce.auth.username"
    } else if error == "inactive_org" {
        "the org is inactive or locked: ask its administrator"
    } else {
        "check the connected app and the salesforce.auth settings"
    };
    format!("{hint} ({grant} grant)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str, message: &str) -> SalesforceError {
        SalesforceError::Api {
            method: "GET".into(),
            path: "/services/data/v62.0/query".into(),
            status,
            code: code.into(),
            message: message.into(),
            fields: vec![],
        }
    }

    #[test]
    fn classification_table() {
        use Disposition::*;
        let table: &[(u16, &str, &str, Disposition, ErrorKind)] = &[
            (
                401,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
                Reauthenticate,
                ErrorKind::Auth,
            ),
            (
                400,
                "UNABLE_TO_LOCK_ROW",
                "unable to obtain exclusive access",
                Retry,
                ErrorKind::Retryable,
            ),
            (
                503,
                "SERVER_UNAVAILABLE",
                "down for maintenance",
                Retry,
                ErrorKind::Retryable,
            ),
            (
                500,
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred",
                Retry,
                ErrorKind::Retryable,
            ),
            (500, "HTTP_500", "", Retry, ErrorKind::Retryable),
            (502, "HTTP_502", "", Retry, ErrorKind::Retryable),
            (503, "HTTP_503", "", Retry, ErrorKind::Retryable),
            (420, "HTTP_420", "", Retry, ErrorKind::Retryable),
            (429, "HTTP_429", "", Retry, ErrorKind::Retryable),
            (
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
                StopRun,
                ErrorKind::DailyLimitExceeded,
            ),
            (
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
                Retry,
                ErrorKind::Retryable,
            ),
            (
                400,
                "MALFORMED_QUERY",
                "unexpected token: q",
                Fail,
                ErrorKind::Permanent,
            ),
            (
                400,
                "INVALID_FIELD",
                "No such column 'foo' on entity 'Account'",
                Fail,
                ErrorKind::Permanent,
            ),
            (
                400,
                "INVALID_TYPE",
                "sObject type 'Contact' is not supported.",
                Fail,
                ErrorKind::Permanent,
            ),
            (
                400,
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "Founded year cannot be before 1970",
                Fail,
                ErrorKind::Permanent,
            ),
            (
                400,
                "STRING_TOO_LONG",
                "data value too large",
                Fail,
                ErrorKind::Permanent,
            ),
            (
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "bad value for restricted picklist field: Public",
                Fail,
                ErrorKind::Permanent,
            ),
            (
                400,
                "MALFORMED_ID",
                "Account ID: id value of incorrect type",
                Fail,
                ErrorKind::Permanent,
            ),
            (
                400,
                "QUERY_TIMEOUT",
                "Your query request was running for too long.",
                Fail,
                ErrorKind::Permanent,
            ),
            (
                404,
                "NOT_FOUND",
                "The requested resource does not exist",
                Fail,
                ErrorKind::Permanent,
            ),
            (
                403,
                "API_DISABLED_FOR_ORG",
                "API is not enabled for this Organization or Partner",
                Operator,
                ErrorKind::Auth,
            ),
            (
                403,
                "INSUFFICIENT_ACCESS_OR_READONLY",
                "insufficient access rights",
                Operator,
                ErrorKind::Auth,
            ),
            (401, "HTTP_401", "", Operator, ErrorKind::Auth),
        ];
        for (status, code, message, disposition, kind) in table {
            assert_eq!(
                classify_api(*status, code, message),
                *disposition,
                "{status} {code}"
            );
            assert_eq!(api(*status, code, message).kind(), *kind, "{status} {code}");
        }
    }

    #[test]
    fn oauth_errors_are_auth_unless_the_server_failed() {
        let oauth = |status: u16, error: &str| SalesforceError::OAuth {
            endpoint: "https://login.salesforce.com/services/oauth2/token".into(),
            status,
            error: error.into(),
            description: String::new(),
            hint: String::new(),
        };
        assert_eq!(oauth(400, "invalid_grant").kind(), ErrorKind::Auth);
        assert_eq!(oauth(400, "invalid_client_id").kind(), ErrorKind::Auth);
        assert_eq!(oauth(503, "HTTP_503").kind(), ErrorKind::Retryable);
        assert_eq!(
            oauth(400, "rate_limit_exceeded").kind(),
            ErrorKind::Retryable
        );
    }

    #[test]
    fn per_record_transient_codes() {
        assert!(is_transient_code("UNABLE_TO_LOCK_ROW"));
        assert!(!is_transient_code("ENTITY_IS_DELETED"));
        assert!(!is_transient_code("STRING_TOO_LONG"));
    }

    #[test]
    fn oauth_hints_say_what_to_fix() {
        let table = [
            (
                "jwt-bearer",
                "invalid_grant",
                "audience is invalid",
                "salesforce.auth.audience",
            ),
            (
                "jwt-bearer",
                "invalid_grant",
                "user hasn't approved this consumer",
                "pre-authorize",
            ),
            (
                "client_credentials",
                "invalid_grant",
                "request not supported on this domain",
                "My Domain",
            ),
            (
                "refresh_token",
                "invalid_grant",
                "expired access/refresh token",
                "refresh_token",
            ),
            (
                "jwt-bearer",
                "invalid_grant",
                "invalid assertion",
                "private_key",
            ),
            (
                "client_credentials",
                "invalid_client_id",
                "client identifier invalid",
                "client_id",
            ),
            (
                "client_credentials",
                "invalid_client",
                "invalid client credentials",
                "client_id",
            ),
            (
                "jwt-bearer",
                "unsupported_grant_type",
                "grant type not supported",
                "login_url",
            ),
        ];
        for (grant, error, description, expected) in table {
            let hint = oauth_hint(grant, error, description);
            assert!(hint.contains(expected), "{description}: {hint}");
        }
    }

    #[test]
    fn messages_name_the_subject_and_are_lowercase() {
        let e = api(400, "MALFORMED_QUERY", "unexpected token: q");
        assert_eq!(
            e.to_string(),
            "GET /services/data/v62.0/query failed with http 400 MALFORMED_QUERY: \
             unexpected token: q"
        );
        assert_eq!(e.code(), Some("MALFORMED_QUERY"));
    }
}
