//! The token endpoint (`POST /services/oauth2/token`): the JWT bearer, client credentials and
//! refresh token grants, each answering Salesforce's success and error bodies.

use std::collections::{HashMap, HashSet};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};

use super::config::OrgSimConfig;
use super::org::OrgState;

/// The JWT bearer grant type.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// An OAuth error, answered as HTTP 400 `{error, error_description}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    pub(crate) error: &'static str,
    pub(crate) description: &'static str,
}

impl OAuthError {
    const fn new(error: &'static str, description: &'static str) -> Self {
        Self { error, description }
    }

    pub(crate) fn body(&self) -> Value {
        json!({"error": self.error, "error_description": self.description})
    }
}

const UNSUPPORTED_GRANT: OAuthError =
    OAuthError::new("unsupported_grant_type", "grant type not supported");
const INVALID_ASSERTION: OAuthError = OAuthError::new("invalid_grant", "invalid assertion");
const AUDIENCE_INVALID: OAuthError = OAuthError::new("invalid_grant", "audience is invalid");
const NOT_APPROVED: OAuthError =
    OAuthError::new("invalid_grant", "user hasn't approved this consumer");
const CLIENT_ID_INVALID: OAuthError =
    OAuthError::new("invalid_client_id", "client identifier invalid");
const CLIENT_INVALID: OAuthError = OAuthError::new("invalid_client", "invalid client credentials");
const REFRESH_EXPIRED: OAuthError =
    OAuthError::new("invalid_grant", "expired access/refresh token");

/// What the token endpoint received, already decoded.
#[derive(Debug, Default)]
pub(crate) struct TokenRequest {
    pub(crate) form: HashMap<String, String>,
    /// `client_id` and `client_secret` from an HTTP Basic header, when one was sent.
    pub(crate) basic: Option<(String, String)>,
}

/// The identity a grant resolved to.
struct Grant {
    user_id: String,
    flow: &'static str,
}

#[derive(Debug, Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Serves one token request: checks the grant and issues a token.
pub(crate) fn token(
    state: &mut OrgState,
    config: &OrgSimConfig,
    key: Option<&DecodingKey>,
    base_url: &str,
    request: &TokenRequest,
) -> Result<Value, OAuthError> {
    let grant_type = request.form.get("grant_type").map(String::as_str);
    let grant = match grant_type {
        Some(JWT_BEARER) => jwt_bearer(config, key, base_url, request)?,
        Some("client_credentials") => client_credentials(config, request)?,
        Some("refresh_token") => refresh_token(config, request)?,
        _ => return Err(UNSUPPORTED_GRANT),
    };

    let access_token = state.issue_token(&config.org_id, &grant.user_id, grant.flow);
    let id_url = format!("{base_url}/id/{}/{}", config.org_id, grant.user_id);
    if grant.flow == "jwt-bearer" {
        // The JWT flow answers the five fields of Salesforce's documented example.
        return Ok(json!({
            "access_token": access_token,
            "scope": "api",
            "instance_url": base_url,
            "id": id_url,
            "token_type": "Bearer",
        }));
    }
    let issued_at = chrono::Utc::now().timestamp_millis().to_string();
    Ok(json!({
        "access_token": access_token,
        "signature": signature(&access_token, &issued_at),
        "scope": "api",
        "instance_url": base_url,
        "id": id_url,
        "token_type": "Bearer",
        "issued_at": issued_at,
    }))
}

fn jwt_bearer(
    config: &OrgSimConfig,
    key: Option<&DecodingKey>,
    base_url: &str,
    request: &TokenRequest,
) -> Result<Grant, OAuthError> {
    let assertion = request.form.get("assertion").ok_or(INVALID_ASSERTION)?;
    let key = key.ok_or(INVALID_ASSERTION)?;

    // Only the signature is checked by the library; the claims are checked below so that
    // each failure gets the body Salesforce gives it.
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let claims = jsonwebtoken::decode::<Claims>(assertion, key, &validation)
        .map_err(|_| INVALID_ASSERTION)?
        .claims;

    let client_id = claims.iss.as_deref().ok_or(INVALID_ASSERTION)?;
    let client = config
        .clients
        .iter()
        .find(|c| c.client_id == client_id)
        .ok_or(CLIENT_ID_INVALID)?;

    let audiences = match claims.aud {
        Some(Audience::One(aud)) => vec![aud],
        Some(Audience::Many(list)) => list,
        None => Vec::new(),
    };
    let accepted = |aud: &String| {
        aud.trim_end_matches('/') == base_url.trim_end_matches('/')
            || config.jwt_extra_audiences.iter().any(|extra| extra == aud)
    };
    // RFC 7519 allows an array; one accepted member is enough.
    if !audiences.iter().any(accepted) {
        return Err(AUDIENCE_INVALID);
    }

    let exp = claims.exp.ok_or(INVALID_ASSERTION)?;
    let now = chrono::Utc::now().timestamp();
    let max_ahead = i64::try_from(config.jwt_max_lifetime_secs).unwrap_or(i64::MAX);
    if exp <= now || exp - now > max_ahead {
        return Err(INVALID_ASSERTION);
    }

    let username = claims.sub.as_deref().ok_or(INVALID_ASSERTION)?;
    let user_id = config.users.get(username).ok_or(NOT_APPROVED)?;
    if !client.approved_users.iter().any(|u| u == username) {
        return Err(NOT_APPROVED);
    }
    Ok(Grant {
        user_id: user_id.clone(),
        flow: "jwt-bearer",
    })
}

fn client_credentials(config: &OrgSimConfig, request: &TokenRequest) -> Result<Grant, OAuthError> {
    let (client_id, secret) = match &request.basic {
        Some((id, secret)) => (id.as_str(), secret.as_str()),
        None => (
            request.form.get("client_id").map_or("", String::as_str),
            request.form.get("client_secret").map_or("", String::as_str),
        ),
    };
    let client = config
        .clients
        .iter()
        .find(|c| c.client_id == client_id)
        .ok_or(CLIENT_ID_INVALID)?;
    let expected = client.client_secret.as_ref().ok_or(CLIENT_INVALID)?;
    if expected.expose_secret() != secret {
        return Err(CLIENT_INVALID);
    }
    let user_id = client
        .run_as
        .as_ref()
        .and_then(|username| config.users.get(username))
        .ok_or(CLIENT_INVALID)?;
    Ok(Grant {
        user_id: user_id.clone(),
        flow: "client_credentials",
    })
}

fn refresh_token(config: &OrgSimConfig, request: &TokenRequest) -> Result<Grant, OAuthError> {
    let client_id = match &request.basic {
        Some((id, _)) => id.as_str(),
        None => request.form.get("client_id").map_or("", String::as_str),
    };
    if !config.clients.iter().any(|c| c.client_id == client_id) {
        return Err(CLIENT_ID_INVALID);
    }
    let presented = request.form.get("refresh_token").ok_or(REFRESH_EXPIRED)?;
    let entry = config
        .refresh_tokens
        .iter()
        .find(|t| t.token.expose_secret() == presented && t.client_id == client_id)
        .ok_or(REFRESH_EXPIRED)?;
    let user_id = config.users.get(&entry.username).ok_or(REFRESH_EXPIRED)?;
    Ok(Grant {
        user_id: user_id.clone(),
        flow: "refresh_token",
    })
}

/// A base64 SHA-256 digest standing in for Salesforce's HMAC signature of the response.
fn signature(token: &str, issued_at: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{token}{issued_at}").as_bytes());
    base64_encode(&digest)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` on any other character.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let value = BASE64.iter().position(|&b| b == c)?;
        buffer = (buffer << 6) | u32::try_from(value).ok()?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// Reads `Authorization: Basic base64(id:secret)`.
pub(crate) fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for input in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"kernel-sync:demo-client-secret",
        ] {
            let encoded = base64_encode(input);
            assert_eq!(base64_decode(&encoded).as_deref(), Some(input), "{encoded}");
        }
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
        assert_eq!(base64_decode("Zm9v!"), None);
    }

    #[test]
    fn basic_header_splits_id_and_secret() {
        let header = format!("Basic {}", base64_encode(b"app:s3cr:et"));
        assert_eq!(parse_basic(&header), Some(("app".into(), "s3cr:et".into())));
        assert_eq!(parse_basic("Bearer x"), None);
    }
}
