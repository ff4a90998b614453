//! OAuth 2.0 for the integration user: the JWT bearer, client credentials and refresh token
//! flows, and the one cached access token that every clone of the client shares.
//!
//! Salesforce tokens carry no lifetime: a token is used until a call answers 401
//! `INVALID_SESSION_ID`, then renewed once. Renewals are serialised behind one lock with a
//! generation counter, so callers that hit the expiry together trigger one token request.
//!
//! The oauth2 crate is not used: its client types are tied to reqwest 0.12, Salesforce's JWT
//! bearer grant is not one of its flows anyway, and the other two grants are one form POST
//! each, whose error bodies we map to fixes ourselves.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use url::Url;

use super::error::{SalesforceError, is_transient_oauth, oauth_hint};
use super::model::{Identity, OAuthErrorBody};
use super::retry::{RetryPolicy, with_retries};

/// How long a JWT bearer assertion is valid; Salesforce accepts at most three minutes.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(170);

/// How the integration user authenticates.
#[derive(Clone)]
pub enum AuthSettings {
    /// JWT bearer flow: an RS256 assertion signed with the connected app's private key.
    JwtBearer {
        /// The connected app's consumer key.
        client_id: String,
        /// The integration user's username.
        username: String,
        /// The assertion's `aud`; the login URL when unset.
        audience: Option<String>,
        /// The private key in PEM form (PKCS#8 or PKCS#1).
        private_key_pem: SecretString,
    },
    /// Client credentials flow, sent to the My Domain URL (`login_url` must be it).
    ClientCredentials {
        /// The connected app's consumer key.
        client_id: String,
        /// The connected app's consumer secret.
        client_secret: SecretString,
    },
    /// Refresh token flow, for a token obtained once through a user's web login.
    RefreshToken {
        /// The connected app's consumer key.
        client_id: String,
        /// The consumer secret, when the app requires it.
        client_secret: Option<SecretString>,
        /// The refresh token.
        refresh_token: SecretString,
    },
}

impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::JwtBearer {
                client_id,
                username,
                audience,
                ..
            } => f
                .debug_struct("JwtBearer")
                .field("client_id", client_id)
                .field("username", username)
                .field("audience", audience)
                .field("private_key_pem", &"[redacted]")
                .finish(),
            Self::ClientCredentials { client_id, .. } => f
                .debug_struct("ClientCredentials")
                .field("client_id", client_id)
                .field("client_secret", &"[redacted]")
                .finish(),
            Self::RefreshToken {
                client_id,
                client_secret,
                ..
            } => f
                .debug_struct("RefreshToken")
                .field("client_id", client_id)
                .field(
                    "client_secret",
                    &client_secret.as_ref().map(|_| "[redacted]"),
                )
                .field("refresh_token", &"[redacted]")
                .finish(),
        }
    }
}

impl AuthSettings {
    /// The grant's name, for logs and error messages.
    pub fn grant_name(&self) -> &'static str {
        match self {
            Self::JwtBearer { .. } => "jwt-bearer",
            Self::ClientCredentials { .. } => "client_credentials",
            Self::RefreshToken { .. } => "refresh_token",
        }
    }
}

/// A token and where to use it.
pub(crate) struct Token {
    pub(crate) access_token: SecretString,
    pub(crate) identity: Identity,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &"[redacted]")
            .field("identity", &self.identity)
            .finish()
    }
}

/// A token together with the generation it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub(crate) token: Arc<Token>,
    pub(crate) generation: u64,
}

#[derive(Debug, Default)]
struct CacheState {
    token: Option<Arc<Token>>,
    generation: u64,
    /// The refresh token Salesforce rotated to, when the app rotates them.
    rotated_refresh_token: Option<SecretString>,
}

/// Issues tokens and caches the current one.
pub(crate) struct Authenticator {
    http: reqwest::Client,
    token_url: String,
    audience: String,
    auth: AuthSettings,
    /// Parsed once, so that a bad key fails at start-up rather than at the first call.
    signing_key: Option<EncodingKey>,
    retry: RetryPolicy,
    allow_http: bool,
    state: Mutex<CacheState>,
    tokens_issued: std::sync::atomic::AtomicU64,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("token_url", &self.token_url)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    instance_url: String,
    id: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

impl Authenticator {
    /// Checks the settings and parses the signing key.
    pub(crate) fn new(
        http: reqwest::Client,
        login_url: &Url,
        auth: AuthSettings,
        retry: RetryPolicy,
        allow_http: bool,
    ) -> Result<Self, SalesforceError> {
        let base = login_url.as_str().trim_end_matches('/');
        let token_url = format!("{base}/services/oauth2/token");
        let invalid = |setting, reason: &str| SalesforceError::InvalidSetting {
            setting,
            reason: reason.to_owned(),
        };

        let mut audience = base.to_owned();
        let mut signing_key = None;
        match &auth {
            AuthSettings::JwtBearer {
                client_id,
                username,
                audience: aud,
                private_key_pem,
            } => {
                if client_id.trim().is_empty() {
                    return Err(invalid(
                        "auth.client_id",
                        "it is empty: set the connected app's consumer key",
                    ));
                }
                if username.trim().is_empty() {
                    return Err(invalid(
                        "auth.username",
                        "it is empty: set the integration user's username",
                    ));
                }
                if let Some(aud) = aud {
                    audience = aud.trim_end_matches('/').to_owned();
                }
                let key = EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
                    .map_err(|_| {
                        invalid(
                            "auth.private_key",
                            "it is not an RSA private key in PEM form (BEGIN PRIVATE KEY or \
                             BEGIN RSA PRIVATE KEY)",
                        )
                    })?;
                signing_key = Some(key);
            }
            AuthSettings::ClientCredentials { client_id, .. } => {
                if client_id.trim().is_empty() {
                    return Err(invalid(
                        "auth.client_id",
                        "it is empty: set the connected app's consumer key",
                    ));
                }
                let host = login_url.host_str().unwrap_or_default();
                if host == "login.salesforce.com" || host == "test.salesforce.com" {
                    return Err(invalid(
                        "login_url",
                        "the client credentials flow must be sent to the org's My Domain URL \
                         (https://<domain>.my.salesforce.com), not login or test.salesforce.com",
                    ));
                }
            }
            AuthSettings::RefreshToken { client_id, .. } => {
                if client_id.trim().is_empty() {
                    return Err(invalid(
                        "auth.client_id",
                        "it is empty: set the connected app's consumer key",
                    ));
                }
            }
        }

        Ok(Self {
            http,
            token_url,
            audience,
            auth,
            signing_key,
            retry,
            allow_http,
            state: Mutex::new(CacheState::default()),
            tokens_issued: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The current token, fetching one when there is none yet.
    pub(crate) async fn current(&self) -> Result<Lease, SalesforceError> {
        let mut state = self.state.lock().await;
        if let Some(token) = &state.token {
            return Ok(Lease {
                token: Arc::clone(token),
                generation: state.generation,
            });
        }
        self.fetch_into(&mut state).await
    }

    /// A new token to replace the one of `failed_generation`. When another caller renewed it
    /// meanwhile, its token is returned instead of asking for yet another one.
    pub(crate) async fn renew(&self, failed_generation: u64) -> Result<Lease, SalesforceError> {
        let mut state = self.state.lock().await;
        if let Some(token) = state
            .token
            .as_ref()
            .filter(|_| state.generation != failed_generation)
        {
            return Ok(Lease {
                token: Arc::clone(token),
                generation: state.generation,
            });
        }
        state.token = None;
        self.fetch_into(&mut state).await
    }

    /// Tokens issued to this client since it was built.
    pub(crate) fn tokens_issued(&self) -> u64 {
        self.tokens_issued
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn fetch_into(&self, state: &mut CacheState) -> Result<Lease, SalesforceError> {
        let rotated = state.rotated_refresh_token.clone();
        let answer = with_retries(&self.retry, "token", || {
            self.request_token(rotated.as_ref())
        })
        .await?;

        if let Some(refresh_token) = answer.refresh_token {
            state.rotated_refresh_token = Some(SecretString::from(refresh_token));
        }
        let token =
            Arc::new(self.token_from(answer.access_token, &answer.instance_url, &answer.id)?);
        state.token = Some(Arc::clone(&token));
        state.generation += 1;
        self.tokens_issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            grant = self.auth.grant_name(),
            user_id = %token.identity.user_id,
            generation = state.generation,
            "salesforce token issued"
        );
        Ok(Lease {
            token,
            generation: state.generation,
        })
    }

    fn token_from(
        &self,
        access_token: String,
        instance_url: &str,
        id: &str,
    ) -> Result<Token, SalesforceError> {
        let unexpected = |reason: String| SalesforceError::Unexpected {
            path: "/services/oauth2/token".to_owned(),
            reason,
        };
        let instance_url = Url::parse(instance_url)
            .map_err(|_| unexpected(format!("instance_url {instance_url:?} is not a url")))?;
        if instance_url.scheme() != "https" && !(self.allow_http && instance_url.scheme() == "http")
        {
            return Err(unexpected(format!(
                "instance_url {instance_url} is not https"
            )));
        }
        let identity = Identity::from_id_url(id, instance_url).ok_or_else(|| {
            unexpected(format!(
                "id {id:?} is not an identity url (…/id/<org>/<user>)"
            ))
        })?;
        Ok(Token {
            access_token: SecretString::from(access_token),
            identity,
        })
    }

    async fn request_token(
        &self,
        rotated: Option<&SecretString>,
    ) -> Result<TokenAnswer, SalesforceError> {
        let form = self.form(rotated)?;
        let started = Instant::now();
        let response = self
            .http
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|source| SalesforceError::Transport {
                method: "POST".to_owned(),
                path: "/services/oauth2/token".to_owned(),
                source: source.without_url(),
            })?;
        let status = response.status();
        tracing::debug!(
            method = "POST",
            path = "/services/oauth2/token",
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "salesforce request"
        );
        let body = response
            .bytes()
            .await
            .map_err(|source| SalesforceError::Transport {
                method: "POST".to_owned(),
                path: "/services/oauth2/token".to_owned(),
                source: source.without_url(),
            })?;

        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|source| SalesforceError::Decode {
                path: "/services/oauth2/token".to_owned(),
                source,
            });
        }
        Err(self.oauth_error(status.as_u16(), &body))
    }

    fn oauth_error(&self, status: u16, body: &[u8]) -> SalesforceError {
        let (error, description) = match serde_json::from_slice::<OAuthErrorBody>(body) {
            Ok(body) => (body.error, body.error_description),
            Err(_) => (
                format!("HTTP_{status}"),
                "the token endpoint gave no oauth error".to_owned(),
            ),
        };
        let hint = if is_transient_oauth(status, &error) {
            "the token endpoint is unavailable; try again later".to_owned()
        } else {
            oauth_hint(self.auth.grant_name(), &error, &description)
        };
        SalesforceError::OAuth {
            endpoint: self.token_url.clone(),
            status,
            error,
            description,
            hint,
        }
    }

    /// The form of the configured grant. Holds secrets: never log it.
    fn form(
        &self,
        rotated: Option<&SecretString>,
    ) -> Result<Vec<(&'static str, String)>, SalesforceError> {
        let form = match &self.auth {
            AuthSettings::JwtBearer {
                client_id,
                username,
                ..
            } => {
                vec![
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
                    ),
                    ("assertion", self.assertion(client_id, username)?),
                ]
            }
            AuthSettings::ClientCredentials {
                client_id,
                client_secret,
            } => vec![
                ("grant_type", "client_credentials".to_owned()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.expose_secret().to_owned()),
            ],
            AuthSettings::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => {
                let refresh_token = rotated.unwrap_or(refresh_token);
                let mut form = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", refresh_token.expose_secret().to_owned()),
                    ("client_id", client_id.clone()),
                ];
                if let Some(secret) = client_secret {
                    form.push(("client_secret", secret.expose_secret().to_owned()));
                }
                form
            }
        };
        Ok(form)
    }

    fn assertion(&self, client_id: &str, username: &str) -> Result<String, SalesforceError> {
        let key = self
            .signing_key
            .as_ref()
            .expect("the jwt bearer flow always has a signing key, parsed in Authenticator::new");
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_add(ASSERTION_LIFETIME)
            .as_secs();
        let claims = Claims {
            iss: client_id,
            sub: username,
            aud: &self.audience,
            exp,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, key)
            .map_err(|source| SalesforceError::Assertion { source })
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    const PRIVATE_KEY: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/auth/demo-private-key.pem"
    ));
    const PUBLIC_KEY: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/auth/demo-public-key.pem"
    ));

    fn jwt(audience: Option<&str>, key: &str) -> AuthSettings {
        AuthSettings::JwtBearer {
            client_id: "kernel-sync-demo-client".into(),
            username: "integration@kernel-sync.example".into(),
            audience: audience.map(str::to_owned),
            private_key_pem: SecretString::from(key.to_owned()),
        }
    }

    fn authenticator(login: &str, auth: AuthSettings) -> Result<Authenticator, SalesforceError> {
        let url = Url::parse(login).expect("valid url");
        Authenticator::new(
            reqwest::Client::new(),
            &url,
            auth,
            RetryPolicy::default(),
            false,
        )
    }

    #[derive(Deserialize)]
    struct Decoded {
        iss: String,
        sub: String,
        aud: String,
        exp: u64,
    }

    #[test]
    fn assertion_claims_and_signature() {
        let auth = authenticator("https://login.salesforce.com/", jwt(None, PRIVATE_KEY))
            .expect("valid settings");
        let assertion = auth
            .assertion("kernel-sync-demo-client", "integration@kernel-sync.example")
            .expect("signed");

        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["https://login.salesforce.com"]);
        let key = DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).expect("public key");
        let decoded = jsonwebtoken::decode::<Decoded>(&assertion, &key, &validation)
            .expect("valid signature and audience")
            .claims;

        assert_eq!(decoded.iss, "kernel-sync-demo-client");
        assert_eq!(decoded.sub, "integration@kernel-sync.example");
        assert_eq!(decoded.aud, "https://login.salesforce.com");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        assert!(
            decoded.exp > now && decoded.exp <= now + 180,
            "exp within three minutes"
        );
    }

    #[test]
    fn configured_audience_wins() {
        let auth = authenticator(
            "https://acme.my.salesforce.com",
            jwt(Some("https://test.salesforce.com/"), PRIVATE_KEY),
        )
        .expect("valid settings");
        assert_eq!(auth.audience, "https://test.salesforce.com");
        assert_eq!(
            auth.token_url,
            "https://acme.my.salesforce.com/services/oauth2/token"
        );
    }

    #[test]
    fn bad_keys_fail_at_start_up_without_echoing_the_key() {
        let error = authenticator(
            "https://login.salesforce.com",
            jwt(None, "not a pem secret"),
        )
        .expect_err("invalid key");
        let message = error.to_string();
        assert!(message.contains("salesforce.auth.private_key"), "{message}");
        assert!(!message.contains("not a pem secret"), "{message}");
    }

    #[test]
    fn client_credentials_need_my_domain() {
        let auth = AuthSettings::ClientCredentials {
            client_id: "kernel-sync-demo-client".into(),
            client_secret: SecretString::from("demo-client-secret".to_owned()),
        };
        let error =
            authenticator("https://login.salesforce.com", auth.clone()).expect_err("login host");
        assert!(error.to_string().contains("My Domain"), "{error}");
        assert!(authenticator("https://acme.my.salesforce.com", auth).is_ok());
    }

    #[test]
    fn debug_redacts_secrets() {
        let settings = [
            jwt(None, PRIVATE_KEY),
            AuthSettings::ClientCredentials {
                client_id: "id".into(),
                client_secret: SecretString::from("demo-client-secret".to_owned()),
            },
            AuthSettings::RefreshToken {
                client_id: "id".into(),
                client_secret: Some(SecretString::from("demo-client-secret".to_owned())),
                refresh_token: SecretString::from("demo-refresh-token".to_owned()),
            },
        ];
        for auth in settings {
            let debug = format!("{auth:?}");
            assert!(!debug.contains("PRIVATE KEY"), "{debug}");
            assert!(!debug.contains("demo-client-secret"), "{debug}");
            assert!(!debug.contains("demo-refresh-token"), "{debug}");
            assert!(debug.contains("[redacted]"), "{debug}");
        }
    }

    #[test]
    fn oauth_errors_carry_a_fix() {
        let auth =
            authenticator("https://login.salesforce.com", jwt(None, PRIVATE_KEY)).expect("valid");
        let error = auth.oauth_error(
            400,
            br#"{"error":"invalid_grant","error_description":"audience is invalid"}"#,
        );
        let message = error.to_string();
        assert!(
            message.contains("invalid_grant: audience is invalid"),
            "{message}"
        );
        assert!(
            message.contains("set salesforce.auth.audience"),
            "{message}"
        );
        assert_eq!(error.kind(), super::super::ErrorKind::Auth);

        let error = auth.oauth_error(503, b"<html>down</html>");
        assert!(error.is_retryable());
    }
}
