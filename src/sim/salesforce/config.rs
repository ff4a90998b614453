//! The simulator's settings: who may log in and how, token lifetime, the daily API allowance
//! and the faults to inject. `Default` is the demo org's connected app.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The demo connected app's consumer key.
pub const DEMO_CLIENT_ID: &str = "kernel-sync-demo-client";
/// The demo integration user's username.
pub const DEMO_USERNAME: &str = "integration@kernel-sync.example";
/// The demo integration user's record Id.
pub const DEMO_USER_ID: &str = "005000000000099AAA";
/// The simulated org's Id.
pub const DEMO_ORG_ID: &str = "00D000000000001AAA";
/// The public key the demo JWT assertions are checked against.
pub const DEMO_PUBLIC_KEY_PEM: &str = include_str!("../../../fixtures/auth/demo-public-key.pem");
/// The private key that signs the demo JWT assertions (for the demo and the tests only).
pub const DEMO_PRIVATE_KEY_PEM: &str = include_str!("../../../fixtures/auth/demo-private-key.pem");

/// Settings of a simulated org.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrgSimConfig {
    /// The org Id, the first part of the token response's `id` URL.
    pub org_id: String,
    /// Usernames of the org's users and their record Ids.
    pub users: BTreeMap<String, String>,
    /// Connected apps allowed to ask for tokens.
    pub clients: Vec<ClientConfig>,
    /// Refresh tokens the `refresh_token` grant accepts.
    pub refresh_tokens: Vec<RefreshTokenConfig>,
    /// PEM public key (or certificate's key) that JWT bearer assertions are verified with;
    /// without one the JWT flow answers `invalid_grant`.
    pub jwt_public_key_pem: Option<String>,
    /// Audiences accepted besides the simulator's own base URL, for example
    /// `https://login.salesforce.com`.
    pub jwt_extra_audiences: Vec<String>,
    /// How far in the future an assertion's `exp` may lie, in seconds (Salesforce: 3 minutes,
    /// plus some clock skew).
    pub jwt_max_lifetime_secs: u64,
    /// A token dies this many seconds after it was issued.
    pub token_ttl_secs: Option<u64>,
    /// A token dies after serving this many REST calls.
    pub token_max_calls: Option<u64>,
    /// The org's daily REST allowance (`DailyApiRequests.Max`).
    pub daily_api_allowance: u64,
    /// Calls already spent when the simulator starts.
    pub api_usage_start: u64,
    /// A query locator dies after this many seconds without use (Salesforce: 15 minutes).
    pub query_locator_idle_secs: u64,
    /// Faults injected from the start; they can be changed at run time.
    pub faults: Faults,
    /// Seed of the random choices behind injected faults, so a run can be repeated.
    pub seed: u64,
}

/// A connected app.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The consumer key (the JWT `iss`, the `client_id` form field).
    pub client_id: String,
    /// The consumer secret for the client credentials flow; none disables that flow.
    pub client_secret: Option<SecretString>,
    /// The username the client credentials flow runs as.
    pub run_as: Option<String>,
    /// Usernames that pre-approved the app for the JWT flow; other known users get
    /// `user hasn't approved this consumer`.
    pub approved_users: Vec<String>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[REDACTED]"),
            )
            .field("run_as", &self.run_as)
            .field("approved_users", &self.approved_users)
            .finish()
    }
}

/// A refresh token and whom it logs in.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshTokenConfig {
    /// The token itself.
    pub token: SecretString,
    /// The connected app it was issued to.
    pub client_id: String,
    /// The user it logs in as.
    pub username: String,
}

impl std::fmt::Debug for RefreshTokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshTokenConfig")
            .field("token", &"[REDACTED]")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .finish()
    }
}

/// Faults to inject, as shares in `[0, 1]` of the calls or records they apply to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Share of records in an sObject Collections update that fail with `UNABLE_TO_LOCK_ROW`.
    pub lock_row_share: f64,
    /// Share of REST calls answered 503 `SERVER_UNAVAILABLE`.
    pub unavailable_share: f64,
    /// Share of REST calls delayed by `latency_ms`.
    pub latency_share: f64,
    /// The added delay, in milliseconds.
    pub latency_ms: u64,
}

impl Faults {
    /// Checks that every share lies in `[0, 1]`.
    ///
    /// # Errors
    ///
    /// Names the first share out of range.
    pub fn validate(&self) -> Result<(), String> {
        let shares = [
            ("lock_row_share", self.lock_row_share),
            ("unavailable_share", self.unavailable_share),
            ("latency_share", self.latency_share),
        ];
        for (name, share) in shares {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!(
                    "fault {name} is {share}; use a share between 0 and 1"
                ));
            }
        }
        Ok(())
    }
}

impl Default for OrgSimConfig {
    fn default() -> Self {
        Self {
            org_id: DEMO_ORG_ID.into(),
            users: BTreeMap::from([(DEMO_USERNAME.into(), DEMO_USER_ID.into())]),
            clients: vec![ClientConfig {
                client_id: DEMO_CLIENT_ID.into(),
                client_secret: Some(SecretString::from("demo-client-secret")),
                run_as: Some(DEMO_USERNAME.into()),
                approved_users: vec![DEMO_USERNAME.into()],
            }],
            refresh_tokens: vec![RefreshTokenConfig {
                token: SecretString::from("demo-refresh-token"),
                client_id: DEMO_CLIENT_ID.into(),
                username: DEMO_USERNAME.into(),
            }],
            jwt_public_key_pem: Some(DEMO_PUBLIC_KEY_PEM.into()),
            jwt_extra_audiences: Vec::new(),
            jwt_max_lifetime_secs: 300,
            token_ttl_secs: None,
            token_max_calls: None,
            daily_api_allowance: 15_000,
            api_usage_start: 0,
            query_locator_idle_secs: 900,
            faults: Faults::default(),
            seed: 7,
        }
    }
}

impl OrgSimConfig {
    /// Checks the settings that could make the simulator misbehave.
    ///
    /// # Errors
    ///
    /// Names the setting and the fix.
    pub fn validate(&self) -> Result<(), String> {
        self.faults.validate()?;
        for client in &self.clients {
            if let Some(user) = &client.run_as
                && !self.users.contains_key(user)
            {
                return Err(format!(
                    "client {} runs as {user}, who is not in users; add the user",
                    client.client_id
                ));
            }
        }
        if let Some(pem) = &self.jwt_public_key_pem {
            jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|err| {
                format!("jwt_public_key_pem is not an RSA public key in PEM form: {err}")
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_valid_demo_app() {
        let config = OrgSimConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.users[DEMO_USERNAME], DEMO_USER_ID);
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("demo-client-secret"),
            "secret in Debug: {debug}"
        );
        assert!(
            !debug.contains("demo-refresh-token"),
            "secret in Debug: {debug}"
        );
    }

    #[test]
    fn shares_outside_zero_to_one_are_refused() {
        let faults = Faults {
            lock_row_share: 1.5,
            ..Faults::default()
        };
        let err = faults.validate().expect_err("out of range");
        assert!(err.contains("lock_row_share"), "{err}");
    }

    #[test]
    fn config_parses_from_toml_with_defaults() {
        let config: OrgSimConfig =
            toml::from_str("token_max_calls = 3\n[faults]\nlock_row_share = 0.5\n")
                .expect("parses");
        assert_eq!(config.token_max_calls, Some(3));
        assert!((config.faults.lock_row_share - 0.5).abs() < f64::EPSILON);
        assert_eq!(config.daily_api_allowance, 15_000);
    }
}
