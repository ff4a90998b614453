//! The raw shape of the files, exactly as written: every key optional (so that a missing one
//! is reported together with every other problem), unknown keys refused, and every value
//! carrying its position for the messages.
//!
//! The resolver (`deployment.rs`, `mapping.rs`) turns these into checked settings.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

type S<T> = Spanned<T>;

/// A deployment file (`kernel-sync.toml`).
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct DeploymentConfig {
    pub(crate) store: Option<StoreConfig>,
    pub(crate) salesforce: Option<S<SalesforceConfig>>,
    pub(crate) kernel: Option<S<KernelConfig>>,
    pub(crate) http: Option<S<HttpConfig>>,
    pub(crate) objects: Option<Vec<S<ObjectConfig>>>,
}

/// `[store]`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreConfig {
    pub(crate) url: Option<S<String>>,
}

/// `[salesforce]`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct SalesforceConfig {
    pub(crate) login_url: Option<S<String>>,
    pub(crate) api_version: Option<S<String>>,
    pub(crate) query_batch_size: Option<S<i64>>,
    pub(crate) request_timeout: Option<S<String>>,
    pub(crate) daily_api_share: Option<S<f64>>,
    pub(crate) write_batch_delay: Option<S<String>>,
    pub(crate) auth: Option<S<AuthConfig>>,
}

/// `[salesforce.auth]`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthConfig {
    pub(crate) flow: Option<S<String>>,
    pub(crate) client_id: Option<S<String>>,
    pub(crate) username: Option<S<String>>,
    pub(crate) audience: Option<S<String>>,
    pub(crate) private_key_file: Option<S<String>>,
    pub(crate) private_key_env: Option<S<String>>,
    pub(crate) client_secret_file: Option<S<String>>,
    pub(crate) client_secret_env: Option<S<String>>,
    pub(crate) refresh_token_file: Option<S<String>>,
    pub(crate) refresh_token_env: Option<S<String>>,
}

/// `[kernel]`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct KernelConfig {
    pub(crate) base_url: Option<S<String>>,
    pub(crate) api_key_env: Option<S<String>>,
    pub(crate) api_key_file: Option<S<String>>,
    pub(crate) requests_per_second: Option<S<i64>>,
    pub(crate) max_in_flight: Option<S<i64>>,
    pub(crate) request_timeout: Option<S<String>>,
    pub(crate) max_attempts: Option<S<i64>>,
    pub(crate) poll: Option<PollConfig>,
}

/// `[kernel.poll]`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct PollConfig {
    pub(crate) first: Option<S<String>>,
    pub(crate) factor: Option<S<f64>>,
    pub(crate) max_interval: Option<S<String>>,
    pub(crate) jitter: Option<S<f64>>,
    pub(crate) give_up_after: Option<S<String>>,
}

/// `[http]`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpConfig {
    pub(crate) listen: Option<S<String>>,
}

/// One `[[objects]]` entry.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct ObjectConfig {
    pub(crate) name: Option<S<String>>,
    pub(crate) mapping: Option<S<String>>,
    pub(crate) enabled: Option<S<bool>>,
}

/// A mapping file (one per object sync).
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct MappingConfig {
    pub(crate) object: Option<S<String>>,
    pub(crate) schedule: Option<S<String>>,
    pub(crate) filter: Option<S<String>>,
    pub(crate) lookback: Option<S<String>>,
    pub(crate) refresh_after: Option<S<String>>,
    pub(crate) write_fast_fields: Option<S<bool>>,
    pub(crate) max_attempts: Option<S<i64>>,
    pub(crate) inputs: Option<S<InputsConfig>>,
    pub(crate) fields: Option<Vec<S<FieldConfig>>>,
}

/// A mapping's `[inputs]`.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct InputsConfig {
    pub(crate) name: Option<S<String>>,
    pub(crate) website: Option<S<String>>,
    pub(crate) linkedin_url: Option<S<String>>,
    pub(crate) email: Option<S<String>>,
    pub(crate) email_domain: Option<S<String>>,
}

/// One `[[fields]]` entry of a mapping.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct FieldConfig {
    pub(crate) target: Option<S<String>>,
    pub(crate) source: Option<S<String>>,
    pub(crate) convert: Option<S<String>>,
    pub(crate) values: Option<S<BTreeMap<String, String>>>,
    pub(crate) overwrite: Option<S<String>>,
    pub(crate) confidence: Option<S<ConfidenceConfig>>,
    pub(crate) max_length: Option<S<i64>>,
    pub(crate) separator: Option<S<String>>,
}

/// A field's `confidence = { source = "...", min = 0.7 }` gate.
#[derive(Debug, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfidenceConfig {
    pub(crate) source: Option<S<String>>,
    pub(crate) min: Option<S<f64>>,
}
