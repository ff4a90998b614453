//! The configuration: one deployment file (state store, Salesforce and Kernel connections,
//! health listener, object syncs) and one mapping file per object sync.
//!
//! Loading has two steps. Parsing reads each file strictly into its raw shape: unknown keys
//! are errors, and every value keeps its position. Resolving checks the raw values and turns
//! them into [`Settings`], collecting every problem of every file (each naming the file, the
//! line and the dotted key, and saying what would be valid) before failing with
//! [`ConfigError::Invalid`].
//!
//! Secrets are never written in the files: the configuration names an environment variable or
//! a file ([`SecretSource`]), read only when a client is built.

mod check;
pub mod defaults;
mod deployment;
mod duration;
mod error;
mod mapping;
mod names;
mod raw;
mod secret;
mod source;

use std::io;
use std::path::{Path, PathBuf};

use toml::Spanned;

pub use deployment::{
    HttpSettings, KernelConnection, PollSettings, SalesforceAuth, SalesforceConnection, Settings,
    StoreBackend, StoreSettings,
};
pub use duration::{DURATION_HELP, format_duration, parse_duration};
pub use error::{ConfigError, ConfigErrorKind, Problem};
pub use mapping::{
    ConfidenceGate, Conversion, EmailInput, FieldMapping, Inputs, ObjectSync, Overwrite, Source,
};
pub use names::is_personal_field_name;
pub use secret::SecretSource;

use check::Checker;
use defaults::DEFAULT_OBJECT_ENABLED;
use error::describe_io;
use mapping::SyncEntry;
use names::is_sync_name;
use raw::{DeploymentConfig, MappingConfig, ObjectConfig};
use source::{SourceFile, parse_strict};

/// Loads the deployment file at `path` and the mapping files it names.
///
/// Relative paths in the files (SQLite store, mapping files, secret files) are resolved
/// against the folder of `path`.
///
/// # Errors
///
/// [`ConfigError::Unreadable`] when `path` cannot be read; [`ConfigError::Invalid`] listing
/// every problem found in the deployment file and the mapping files (an unreadable mapping
/// file is one of them, located at the line that names it).
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    load_from_str(&text, path, |mapping| std::fs::read_to_string(mapping))
}

/// Loads a deployment file given as text, as if read from `path`, reading mapping files
/// through `read_mapping` (called with each mapping's path resolved against `path`'s folder).
///
/// # Errors
///
/// [`ConfigError::Invalid`] listing every problem found, as for [`load`].
pub fn load_from_str(
    deployment: &str,
    path: &Path,
    read_mapping: impl Fn(&Path) -> io::Result<String>,
) -> Result<Settings, ConfigError> {
    let shown_base = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let base = std::path::absolute(&shown_base).unwrap_or_else(|_| shown_base.clone());
    let file = SourceFile {
        path,
        text: deployment,
    };
    let mut problems = Vec::new();

    let Some(parsed) = parse_strict::<DeploymentConfig>(&file, &mut problems) else {
        return Err(ConfigError::Invalid { problems });
    };
    let mut check = Checker {
        file,
        problems: &mut problems,
        dropped: &parsed.dropped,
    };
    let parts = deployment::resolve_parts(&parsed.value, &base, &mut check);
    let entries = resolve_entries(
        parsed.value.objects.as_deref(),
        parts.kernel.max_attempts,
        &base,
        &mut check,
    );

    let mut objects = Vec::with_capacity(entries.len());
    for (index, entry, mapping) in entries {
        let shown = shown_base.join(mapping.get_ref());
        let text = match read_mapping(&entry.mapping_path) {
            Ok(text) => text,
            Err(error) => {
                let message = format!(
                    "cannot read mapping file {}: {}",
                    shown.display(),
                    describe_io(&error)
                );
                problems.push(file.at(&mapping, format!("objects[{index}].mapping"), message));
                continue;
            }
        };
        if let Some(object) = load_mapping(&text, &shown, entry, &mut problems) {
            objects.push(object);
        }
    }

    if !problems.is_empty() {
        return Err(ConfigError::Invalid { problems });
    }
    Ok(Settings {
        path: path.to_path_buf(),
        store: parts.store,
        salesforce: parts.salesforce,
        kernel: parts.kernel,
        http: parts.http,
        objects,
    })
}

/// Checks the `[[objects]]` entries; returns those complete enough to load their mapping.
fn resolve_entries(
    objects: Option<&[Spanned<ObjectConfig>]>,
    default_max_attempts: u32,
    base: &Path,
    check: &mut Checker<'_>,
) -> Vec<(usize, SyncEntry, Spanned<String>)> {
    let objects = objects.unwrap_or_default();
    if objects.is_empty() && !check.dropped.iter().any(|key| key.starts_with("objects")) {
        check.report(
            None,
            "objects",
            "no [[objects]]: add one with a `name` and a `mapping` file",
        );
    }

    let mut names: Vec<&str> = Vec::new();
    let mut entries = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        let raw = object.get_ref();
        let key = |name: &str| format!("objects[{index}].{name}");
        let span = Some(object.span());

        let name = check.required(
            &raw.name,
            &key("name"),
            span.clone(),
            "the sync's name, e.g. accounts",
        );
        if let Some(name) = name {
            let text = name.get_ref().as_str();
            if !is_sync_name(text) {
                let message = format!(
                    "invalid name `{text}`: expected lowercase letters, digits, `_` and `-` (at \
                     most 64), e.g. accounts"
                );
                check.report_at(name, key("name"), message);
            } else if names.contains(&text) {
                check.report_at(
                    name,
                    key("name"),
                    format!("`{text}` names two object syncs: names must be unique"),
                );
            }
            names.push(text);
        }
        let mapping = check.required(
            &raw.mapping,
            &key("mapping"),
            span,
            "the mapping file, e.g. mappings/account.toml",
        );

        if let (Some(name), Some(mapping)) = (name, mapping) {
            let enabled = raw
                .enabled
                .as_ref()
                .map_or(DEFAULT_OBJECT_ENABLED, |value| *value.get_ref());
            let entry = SyncEntry {
                name: name.get_ref().clone(),
                enabled,
                mapping_path: base.join(mapping.get_ref()),
                default_max_attempts,
            };
            entries.push((index, entry, mapping.clone()));
        }
    }
    entries
}

fn load_mapping(
    text: &str,
    shown: &PathBuf,
    entry: SyncEntry,
    problems: &mut Vec<Problem>,
) -> Option<ObjectSync> {
    let file = SourceFile { path: shown, text };
    let parsed = parse_strict::<MappingConfig>(&file, problems)?;
    let mut check = Checker {
        file,
        problems,
        dropped: &parsed.dropped,
    };
    Some(mapping::resolve_mapping(&parsed.value, entry, &mut check))
}
