//! Where a secret comes from. The configuration names an environment variable or a file, never
//! the secret itself; the secret is read only when a client is built, so commands that need no
//! secret (`status`) work without them.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::error::ConfigError;

/// The place a secret is read from. Holds names, never a secret, so it may be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable, by name.
    Env(String),
    /// A file, by absolute path (relative paths in the TOML are resolved against the folder
    /// of the deployment file).
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret. A file's surrounding whitespace (the trailing newline an editor adds)
    /// is trimmed.
    ///
    /// # Errors
    ///
    /// [`ConfigError::SecretEnv`] when the variable is unset, empty or not UTF-8;
    /// [`ConfigError::SecretFileUnreadable`] or [`ConfigError::SecretFileEmpty`] for a file.
    /// The messages name the variable or the file, never the secret.
    pub fn load(&self) -> Result<SecretString, ConfigError> {
        match self {
            Self::Env(name) => load_env(name),
            Self::File(path) => load_file(path),
        }
    }

    /// Where the secret comes from, for messages: ``environment variable `KERNEL_API_KEY` ``.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Env(name) => format!("environment variable `{name}`"),
            Self::File(path) => format!("file {}", path.display()),
        }
    }
}

fn load_env(name: &str) -> Result<SecretString, ConfigError> {
    let secret = |reason| ConfigError::SecretEnv {
        name: name.to_owned(),
        reason,
    };
    match std::env::var(name) {
        Ok(value) if value.trim().is_empty() => Err(secret("is empty")),
        Ok(value) => Ok(SecretString::from(value)),
        Err(std::env::VarError::NotPresent) => Err(secret("is not set")),
        Err(std::env::VarError::NotUnicode(_)) => Err(secret("is not valid UTF-8")),
    }
}

fn load_file(path: &Path) -> Result<SecretString, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFileUnreadable {
            path: path.to_path_buf(),
            source,
        })?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ConfigError::SecretFileEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(SecretString::from(trimmed.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn file_secrets_are_trimmed_and_named_in_errors() {
        let dir = tempfile::tempdir().expect("a temp dir is writable");
        let path = dir.path().join("key");
        std::fs::write(&path, "s3cret-value\n").expect("the temp dir is writable");
        let secret = SecretSource::File(path.clone())
            .load()
            .expect("the file exists");
        assert_eq!(secret.expose_secret(), "s3cret-value");

        std::fs::write(&path, " \n").expect("the temp dir is writable");
        let error = SecretSource::File(path.clone())
            .load()
            .expect_err("the file is blank");
        assert_eq!(
            error.to_string(),
            format!(
                "secret file {} is empty: write the secret into it",
                path.display()
            )
        );

        let missing = dir.path().join("missing");
        let error = SecretSource::File(missing.clone())
            .load()
            .expect_err("no such file");
        assert_eq!(
            error.to_string(),
            format!("cannot read secret file {}", missing.display())
        );
    }

    #[test]
    fn unset_variable_is_named() {
        // A name no test or environment sets; reading it needs no mutation of the environment.
        let name = "KERNEL_SYNC_TEST_SURELY_UNSET_0F3A";
        let error = SecretSource::Env(name.to_owned())
            .load()
            .expect_err("the variable is unset");
        assert_eq!(
            error.to_string(),
            format!("environment variable `{name}` is not set: export it with the secret's value")
        );
    }

    #[test]
    fn set_variable_is_read() {
        // PATH is set in every environment the tests run in; its value is not a secret.
        let secret = SecretSource::Env("PATH".to_owned())
            .load()
            .expect("PATH is set");
        assert!(!secret.expose_secret().is_empty());
    }
}
