//! From checked settings to the clients' own settings, loading secrets on the way.
//!
//! The config module knows nothing of the clients and the clients nothing of TOML; this is
//! the one place that joins them.

use std::num::NonZeroU32;
use std::time::Duration;

use crate::config::{ConfigError, PollSettings, SalesforceAuth, SecretSource, Settings};
use crate::kernel::{self, CadenceSettings, KernelSettings};
use crate::salesforce::{self, AuthSettings, SalesforceSettings};

/// The Salesforce client's settings, with the secrets of the chosen flow loaded.
///
/// # Errors
///
/// A secret's variable or file is missing or empty.
pub fn salesforce_settings(settings: &Settings) -> Result<SalesforceSettings, ConfigError> {
    let sf = &settings.salesforce;
    let auth = match &sf.auth {
        SalesforceAuth::JwtBearer {
            client_id,
            username,
            audience,
            private_key,
        } => AuthSettings::JwtBearer {
            client_id: client_id.clone(),
            username: username.clone(),
            audience: Some(audience.clone()),
            private_key_pem: private_key.load()?,
        },
        SalesforceAuth::ClientCredentials {
            client_id,
            client_secret,
        } => AuthSettings::ClientCredentials {
            client_id: client_id.clone(),
            client_secret: client_secret.load()?,
        },
        SalesforceAuth::RefreshToken {
            client_id,
            client_secret,
            refresh_token,
        } => AuthSettings::RefreshToken {
            client_id: client_id.clone(),
            client_secret: client_secret.as_ref().map(SecretSource::load).transpose()?,
            refresh_token: refresh_token.load()?,
        },
    };
    Ok(SalesforceSettings {
        login_url: sf.login_url.clone(),
        api_version: sf.api_version.clone(),
        auth,
        query_batch_size: sf.query_batch_size,
        request_timeout: sf.request_timeout,
        retry: salesforce::RetryPolicy::default(),
    })
}

/// The Kernel client's settings, with the API key loaded.
///
/// # Errors
///
/// The API key's variable or file is missing or empty.
pub fn kernel_settings(settings: &Settings) -> Result<KernelSettings, ConfigError> {
    let k = &settings.kernel;
    let mut out = KernelSettings::new(k.base_url.clone(), k.api_key.load()?);
    // The config checks both ranges (at least 1), so the fallbacks never apply.
    out.requests_per_second = NonZeroU32::new(k.requests_per_second).unwrap_or(NonZeroU32::MIN);
    out.max_in_flight = NonZeroU32::new(k.max_in_flight).unwrap_or(NonZeroU32::MIN);
    out.request_timeout = k.request_timeout;
    out.retry = kernel::RetryPolicy::default();
    out.max_retry_after = Duration::from_secs(60);
    Ok(out)
}

/// The poll cadence of the settings.
pub fn cadence(poll: &PollSettings) -> CadenceSettings {
    CadenceSettings {
        first: poll.first,
        factor: poll.factor,
        max_interval: poll.max_interval,
        jitter: poll.jitter,
        give_up_after: poll.give_up_after,
    }
}
