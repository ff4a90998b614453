//! What can go wrong with the configuration: the list of problems found in the files, and the
//! failures of reading a file or a secret.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// One thing wrong in a configuration file, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in (as the deployment file names it).
    pub file: PathBuf,
    /// The 1-based line of the offending key or value, when known.
    pub line: Option<u32>,
    /// The dotted path of the key, with 0-based array indices: `objects[1].mapping`,
    /// `fields[3].convert`. Empty for a problem with the file as a whole.
    pub key: String,
    /// What is wrong and what would be valid, lowercase, no trailing period.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The configuration could not be loaded, or a secret it names could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The deployment file itself could not be read.
    #[error("cannot read config file {}", path.display())]
    Unreadable {
        /// The deployment file.
        path: PathBuf,
        /// Why the read failed.
        #[source]
        source: io::Error,
    },
    /// The files were read but are wrong; every problem found is listed.
    #[error("{}", render_problems(problems))]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
    /// A secret's environment variable is not set or is empty.
    #[error("environment variable `{name}` {reason}: export it with the secret's value")]
    SecretEnv {
        /// The variable's name (never its value).
        name: String,
        /// `is not set`, `is empty` or `is not valid UTF-8`.
        reason: &'static str,
    },
    /// A secret's file could not be read.
    #[error("cannot read secret file {}", path.display())]
    SecretFileUnreadable {
        /// The file named by the configuration.
        path: PathBuf,
        /// Why the read failed.
        #[source]
        source: io::Error,
    },
    /// A secret's file holds nothing but whitespace.
    #[error("secret file {} is empty: write the secret into it", path.display())]
    SecretFileEmpty {
        /// The file named by the configuration.
        path: PathBuf,
    },
}

/// The broad class of a [`ConfigError`], for the command layer's exit code and wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// A file could not be read at all.
    Unreadable,
    /// The files are wrong: fix them and try again.
    Invalid,
    /// A secret named by the configuration is not available in this environment.
    SecretUnavailable,
}

impl ConfigError {
    /// Classifies the error; every decision about the class is made here.
    #[must_use]
    pub fn kind(&self) -> ConfigErrorKind {
        match self {
            Self::Unreadable { .. } => ConfigErrorKind::Unreadable,
            Self::Invalid { .. } => ConfigErrorKind::Invalid,
            Self::SecretEnv { .. }
            | Self::SecretFileUnreadable { .. }
            | Self::SecretFileEmpty { .. } => ConfigErrorKind::SecretUnavailable,
        }
    }

    /// The problems found in the files; empty for the other kinds of error.
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid { problems } => problems,
            _ => &[],
        }
    }
}

fn render_problems(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let mut text = format!("{} problems in the configuration:", many.len());
            for problem in many {
                text.push_str("\n  ");
                text.push_str(&problem.to_string());
            }
            text
        }
    }
}

/// Describes an I/O failure in lowercase words for a problem message.
pub(crate) fn describe_io(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => "no such file".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::IsADirectory => "it is a directory".to_owned(),
        io::ErrorKind::InvalidData => "it is not valid UTF-8".to_owned(),
        _ => error.to_string().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(line: Option<u32>, key: &str) -> Problem {
        Problem {
            file: PathBuf::from("kernel-sync.toml"),
            line,
            key: key.to_owned(),
            message: "must be positive".to_owned(),
        }
    }

    #[test]
    fn problem_display_names_file_line_and_key() {
        let cases = [
            (
                problem(Some(7), "kernel.max_in_flight"),
                "kernel-sync.toml:7: kernel.max_in_flight: ",
            ),
            (problem(None, "kernel"), "kernel-sync.toml: kernel: "),
            (problem(Some(2), ""), "kernel-sync.toml:2: "),
        ];
        for (problem, prefix) in cases {
            assert_eq!(problem.to_string(), format!("{prefix}must be positive"));
        }
    }

    #[test]
    fn kind_table() {
        let io = || io::Error::new(io::ErrorKind::NotFound, "gone");
        let cases = [
            (
                ConfigError::Unreadable {
                    path: "a".into(),
                    source: io(),
                },
                ConfigErrorKind::Unreadable,
            ),
            (
                ConfigError::Invalid { problems: vec![] },
                ConfigErrorKind::Invalid,
            ),
            (
                ConfigError::SecretEnv {
                    name: "K".into(),
                    reason: "is not set",
                },
                ConfigErrorKind::SecretUnavailable,
            ),
            (
                ConfigError::SecretFileUnreadable {
                    path: "k".into(),
                    source: io(),
                },
                ConfigErrorKind::SecretUnavailable,
            ),
            (
                ConfigError::SecretFileEmpty { path: "k".into() },
                ConfigErrorKind::SecretUnavailable,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
        }
    }

    #[test]
    fn several_problems_are_listed_one_per_line() {
        let error = ConfigError::Invalid {
            problems: vec![problem(Some(1), "a"), problem(None, "b")],
        };
        assert_eq!(
            error.to_string(),
            "2 problems in the configuration:\n  kernel-sync.toml:1: a: must be positive\n  \
             kernel-sync.toml: b: must be positive"
        );
    }
}
