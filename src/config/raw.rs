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

#[cfg(test)]
mod tests {
    //! Drift: every key of every raw struct is shown in `config.example.toml` (deployment
    //! keys, each with a comment) or in a mapping example under `fixtures/mappings/`.
    //!
    //! The structs are built with literals that name every field: adding a field without
    //! adding it here does not compile, and adding it here without documenting it fails.

    use std::collections::BTreeSet;

    use super::*;

    fn s<T>(value: T) -> S<T> {
        Spanned::new(0..0, value)
    }

    fn text() -> Option<S<String>> {
        Some(s("x".to_owned()))
    }

    fn full_deployment() -> DeploymentConfig {
        let auth = AuthConfig {
            flow: text(),
            client_id: text(),
            username: text(),
            audience: text(),
            private_key_file: text(),
            private_key_env: text(),
            client_secret_file: text(),
            client_secret_env: text(),
            refresh_token_file: text(),
            refresh_token_env: text(),
        };
        let salesforce = SalesforceConfig {
            login_url: text(),
            api_version: text(),
            query_batch_size: Some(s(1)),
            request_timeout: text(),
            daily_api_share: Some(s(0.5)),
            write_batch_delay: text(),
            auth: Some(s(auth)),
        };
        let poll = PollConfig {
            first: text(),
            factor: Some(s(2.0)),
            max_interval: text(),
            jitter: Some(s(0.1)),
            give_up_after: text(),
        };
        let kernel = KernelConfig {
            base_url: text(),
            api_key_env: text(),
            api_key_file: text(),
            requests_per_second: Some(s(1)),
            max_in_flight: Some(s(1)),
            request_timeout: text(),
            max_attempts: Some(s(1)),
            poll: Some(poll),
        };
        let object = ObjectConfig {
            name: text(),
            mapping: text(),
            enabled: Some(s(true)),
        };
        DeploymentConfig {
            store: Some(StoreConfig { url: text() }),
            salesforce: Some(s(salesforce)),
            kernel: Some(s(kernel)),
            http: Some(s(HttpConfig { listen: text() })),
            objects: Some(vec![s(object)]),
        }
    }

    fn full_mapping() -> MappingConfig {
        let inputs = InputsConfig {
            name: text(),
            website: text(),
            linkedin_url: text(),
            email: text(),
            email_domain: text(),
        };
        let field = FieldConfig {
            target: text(),
            source: text(),
            convert: text(),
            // Kernel value -> Salesforce value: the keys are data, not configuration keys.
            values: Some(s(BTreeMap::new())),
            overwrite: text(),
            confidence: Some(s(ConfidenceConfig {
                source: text(),
                min: Some(s(0.5)),
            })),
            max_length: Some(s(1)),
            separator: text(),
        };
        MappingConfig {
            object: text(),
            schedule: text(),
            filter: text(),
            lookback: text(),
            refresh_after: text(),
            write_fast_fields: Some(s(true)),
            max_attempts: Some(s(1)),
            inputs: Some(s(inputs)),
            fields: Some(vec![s(field)]),
        }
    }

    /// Every table and leaf path of a TOML value, array indices left out.
    fn paths(value: &toml::Value, prefix: &str, into: &mut BTreeSet<String>) {
        let join = |key: &str| {
            if prefix.is_empty() {
                key.to_owned()
            } else {
                format!("{prefix}.{key}")
            }
        };
        match value {
            toml::Value::Table(table) => {
                for (key, child) in table {
                    into.insert(join(key));
                    paths(child, &join(key), into);
                }
            }
            toml::Value::Array(items) => items.iter().for_each(|item| paths(item, prefix, into)),
            _ => {}
        }
    }

    /// Keys written in comments (`# private_key_env = "..."`) under their table's header, and
    /// the keys (written or commented) whose line carries a comment.
    fn commented_paths(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
        let mut table = String::new();
        let mut in_comments = BTreeSet::new();
        let mut with_comment = BTreeSet::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(header) = trimmed.strip_prefix('[') {
                table = header.trim_matches(['[', ']']).to_owned();
                continue;
            }
            let commented = trimmed.strip_prefix('#').map(str::trim_start);
            let code = commented.unwrap_or(trimmed);
            let Some((key, rest)) = code.split_once('=') else {
                continue;
            };
            let key = key.trim();
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                continue;
            }
            let path = if table.is_empty() {
                key.to_owned()
            } else {
                format!("{table}.{key}")
            };
            if commented.is_some() {
                in_comments.insert(path.clone());
            }
            if commented.is_some() || rest.contains(" # ") {
                with_comment.insert(path);
            }
        }
        (in_comments, with_comment)
    }

    fn documented(files: &[&str]) -> (BTreeSet<String>, BTreeSet<String>) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut shown = BTreeSet::new();
        let mut with_comment = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(root.join(file)).expect("the example files exist");
            let value: toml::Value = toml::from_str(&text).expect("the example files are TOML");
            paths(&value, "", &mut shown);
            let (in_comments, commented) = commented_paths(&text);
            shown.extend(in_comments);
            with_comment.extend(commented);
        }
        (shown, with_comment)
    }

    fn keys_of<T: serde::Serialize>(value: &T) -> BTreeSet<String> {
        let value = toml::Value::try_from(value).expect("a raw config serializes to TOML");
        let mut keys = BTreeSet::new();
        paths(&value, "", &mut keys);
        keys
    }

    #[test]
    fn every_deployment_key_is_in_the_example_with_a_comment() {
        let (shown, with_comment) = documented(&["config.example.toml"]);
        for key in keys_of(&full_deployment()) {
            assert!(
                shown.contains(&key),
                "config.example.toml does not show `{key}`"
            );
            // A table's header needs no comment; its keys do.
            let is_table = [
                "store",
                "salesforce",
                "salesforce.auth",
                "kernel",
                "kernel.poll",
                "http",
                "objects",
            ]
            .contains(&key.as_str());
            assert!(
                is_table || with_comment.contains(&key),
                "`{key}` has no comment in the example"
            );
        }
    }

    #[test]
    fn every_mapping_key_is_in_a_mapping_example() {
        let files = [
            "fixtures/mappings/account.toml",
            "fixtures/mappings/lead.toml",
            "fixtures/mappings/prospect_company.toml",
        ];
        let (shown, _) = documented(&files);
        for key in keys_of(&full_mapping()) {
            assert!(shown.contains(&key), "no mapping example shows `{key}`");
        }
    }

    #[test]
    fn the_walk_sees_nested_keys() {
        let keys = keys_of(&full_deployment());
        for key in [
            "salesforce.auth.refresh_token_env",
            "kernel.poll.jitter",
            "objects.enabled",
        ] {
            assert!(keys.contains(key), "{key} missing from {keys:?}");
        }
    }
}
