//! Strict parsing of one TOML file into its raw `*Config` struct, turning every TOML or serde
//! complaint into a [`Problem`] with the file, the line and the dotted key.
//!
//! Serde stops at its first error. To report every unknown or mistyped key of a file in one go,
//! the parser drops the offending entry from the parsed document and deserializes again, until
//! the document deserializes or an error cannot be located.

use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::Problem;

/// At most this many entries are dropped from one file before giving up on it.
const MAX_PARSE_ROUNDS: usize = 64;

/// A configuration file's name and text, to turn byte spans into line numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceFile<'a> {
    pub(crate) path: &'a Path,
    pub(crate) text: &'a str,
}

impl SourceFile<'_> {
    /// The 1-based line holding the byte at `offset`.
    pub(crate) fn line_at(&self, offset: usize) -> u32 {
        let end = offset.min(self.text.len());
        let newlines = self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        u32::try_from(newlines + 1).unwrap_or(u32::MAX)
    }

    /// A problem located at `span` (or at the file as a whole when `None`).
    pub(crate) fn problem(
        &self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            file: self.path.to_path_buf(),
            line: span.map(|span| self.line_at(span.start)),
            key: key.into(),
            message: message.into(),
        }
    }

    /// A problem located where the spanned value was written.
    pub(crate) fn at<T>(
        &self,
        spanned: &Spanned<T>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Problem {
        self.problem(Some(spanned.span()), key, message)
    }
}

/// The outcome of parsing a file whose syntax is valid.
#[derive(Debug)]
pub(crate) struct Parsed<T> {
    /// The raw struct, after dropping the entries reported as problems.
    pub(crate) value: T,
    /// Dotted keys of the dropped entries: a later "missing key" about them would be noise.
    pub(crate) dropped: Vec<String>,
}

/// Parses `file` into `T`, pushing a problem for each unknown or mistyped key.
///
/// Returns `None` when the file is not valid TOML or a problem could not be located; the
/// problems say why.
pub(crate) fn parse_strict<T: DeserializeOwned>(
    file: &SourceFile<'_>,
    problems: &mut Vec<Problem>,
) -> Option<Parsed<T>> {
    let mut root = match DeTable::parse(file.text) {
        Ok(root) => root,
        Err(error) => {
            problems.push(file.problem(error.span(), "", syntax_message(error.message())));
            return None;
        }
    };

    let mut dropped = Vec::new();
    for _ in 0..MAX_PARSE_ROUNDS {
        let error = match T::deserialize(toml::de::Deserializer::from(root.clone())) {
            Ok(value) => return Some(Parsed { value, dropped }),
            Err(error) => error,
        };

        let located = error
            .span()
            .and_then(|span| locate(root.get_ref(), &span, &mut Vec::new()));
        let Some(path) = located else {
            problems.push(file.problem(error.span(), "", error.message().to_owned()));
            return None;
        };
        let key = render_path(&path);
        problems.push(file.problem(error.span(), key.clone(), translate(error.message(), &path)));
        if !remove(root.get_mut(), &path) {
            return None;
        }
        dropped.push(key);
    }
    None
}

/// One step of a path into a TOML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// `objects[1].mapping`: keys joined by dots, array indices in brackets.
pub(crate) fn render_path(path: &[Segment]) -> String {
    let mut text = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Segment::Index(index) => text.push_str(&format!("[{index}]")),
        }
    }
    text
}

/// How a table is named in a message: `[kernel.poll]`, `[[objects]]`, `fields[2].confidence`.
fn table_label(path: &[Segment]) -> String {
    let Some((last, parents)) = path.split_last() else {
        return "the top level".to_owned();
    };
    let keys_only = |segments: &[Segment]| segments.iter().all(|s| matches!(s, Segment::Key(_)));
    match last {
        Segment::Index(_) if keys_only(parents) => format!("[[{}]]", render_path(parents)),
        Segment::Key(_) if keys_only(parents) => format!("[{}]", render_path(path)),
        _ => render_path(path),
    }
}

/// Finds the entry an error's span points at: a key whose span equals it, or the innermost
/// value containing it.
fn locate(
    table: &DeTable<'_>,
    span: &Range<usize>,
    path: &mut Vec<Segment>,
) -> Option<Vec<Segment>> {
    for (key, value) in table.iter() {
        path.push(Segment::Key(key.get_ref().to_string()));
        if key.span() == *span {
            return Some(path.clone());
        }
        if let Some(found) = locate_value(value, span, path) {
            return Some(found);
        }
        path.pop();
    }
    None
}

fn locate_value(
    value: &Spanned<DeValue<'_>>,
    span: &Range<usize>,
    path: &mut Vec<Segment>,
) -> Option<Vec<Segment>> {
    let found = match value.get_ref() {
        DeValue::Table(table) => locate(table, span, path),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(index, item)| {
            path.push(Segment::Index(index));
            let found = locate_value(item, span, path);
            path.pop();
            found
        }),
        _ => None,
    };
    if found.is_some() {
        return found;
    }

    let here = value.span();
    let contains = here.start <= span.start && span.end <= here.end && !span.is_empty();
    (contains || here == *span).then(|| path.clone())
}

/// Drops the entry at `path`; false when the path does not lead anywhere.
fn remove(table: &mut DeTable<'_>, path: &[Segment]) -> bool {
    let Some((Segment::Key(first), rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return table.remove(first.as_str()).is_some();
    }
    match table.get_mut(first.as_str()) {
        Some(value) => remove_in_value(value.get_mut(), rest),
        None => false,
    }
}

fn remove_in_value(value: &mut DeValue<'_>, path: &[Segment]) -> bool {
    match (value, path) {
        (DeValue::Table(table), _) => remove(table, path),
        (DeValue::Array(items), [Segment::Index(index), rest @ ..]) => {
            let Some(item) = items.get_mut(*index) else {
                return false;
            };
            if rest.is_empty() {
                // An array's slice cannot shrink in place: blank the element's table instead,
                // which leaves the later indices (and the messages naming them) unchanged.
                *item.get_mut() = DeValue::Table(DeTable::new());
                return true;
            }
            remove_in_value(item.get_mut(), rest)
        }
        _ => false,
    }
}

/// Rewrites serde's wording in ours: keys rather than fields, the table named, valid keys
/// listed, and a secret written inline pointed at its `_env`/`_file` keys.
fn translate(message: &str, path: &[Segment]) -> String {
    let parent = &path[..path.len().saturating_sub(1)];
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, expected) = rest.split_once('`').unwrap_or((rest, ""));
        // Serde lists the expected names in backticks: "`a`", "`a` or `b`", "one of `a`, `b`".
        let valid: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        return unknown_key_message(key, &table_label(parent), &valid);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let key = rest.trim_end_matches('`');
        return format!("missing key `{key}` in {}", table_label(path));
    }
    friendlier_types(message)
}

fn unknown_key_message(key: &str, table: &str, valid: &[&str]) -> String {
    let env = format!("{key}_env");
    let file = format!("{key}_file");
    if valid.contains(&env.as_str()) && valid.contains(&file.as_str()) {
        return format!(
            "`{key}` would put a secret in the config file: name an environment variable with \
             `{env}` or a file with `{file}` instead"
        );
    }
    let place = if table == "the top level" {
        "at".to_owned()
    } else {
        "in".to_owned()
    };
    format!(
        "unknown key `{key}` {place} {table}; valid keys: {}",
        valid.join(", ")
    )
}

/// Serde names Rust types (`i64`, `f64`); say what to write instead.
fn friendlier_types(message: &str) -> String {
    message
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected a borrowed string", "expected a string")
}

fn syntax_message(message: &str) -> String {
    format!("invalid TOML: {}", message.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: Option<Spanned<String>>,
        limit: Option<Spanned<i64>>,
        inner: Option<Inner>,
        items: Option<Vec<Item>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        api_key_env: Option<String>,
        api_key_file: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        id: Option<String>,
    }

    fn parse(text: &str) -> (Option<Parsed<Outer>>, Vec<String>) {
        let file = SourceFile {
            path: Path::new("t.toml"),
            text,
        };
        let mut problems = Vec::new();
        let parsed = parse_strict::<Outer>(&file, &mut problems);
        (parsed, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn lines_count_from_one() {
        let file = SourceFile {
            path: Path::new("t"),
            text: "a\nb\nc",
        };
        assert_eq!(
            [0, 1, 2, 4, 99].map(|offset| file.line_at(offset)),
            [1, 1, 2, 3, 3]
        );
    }

    #[test]
    fn every_unknown_key_is_reported_with_its_line() {
        let text = "name = \"x\"\nbogus = 1\n[inner]\napi_key = \"s3cret\"\n\n\
                    [[items]]\nid = \"a\"\n[[items]]\nidd = \"b\"\n";
        let (parsed, problems) = parse(text);
        assert_eq!(
            problems,
            [
                "t.toml:2: bogus: unknown key `bogus` at the top level; valid keys: name, limit, \
                 inner, items",
                "t.toml:4: inner.api_key: `api_key` would put a secret in the config file: name \
                 an environment variable with `api_key_env` or a file with `api_key_file` instead",
                "t.toml:9: items[1].idd: unknown key `idd` in [[items]]; valid keys: id",
            ]
        );
        let parsed = parsed.expect("unknown keys are dropped, the rest parses");
        assert_eq!(parsed.dropped, ["bogus", "inner.api_key", "items[1].idd"]);
        let value = parsed.value;
        assert_eq!(value.name.map(Spanned::into_inner).as_deref(), Some("x"));
        let inner = value.inner.expect("[inner] stays, without the dropped key");
        assert!(inner.api_key_env.is_none() && inner.api_key_file.is_none());
        let ids: Vec<Option<String>> = value
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| item.id)
            .collect();
        assert_eq!(ids, [Some("a".to_owned()), None]);
        assert!(
            !problems.iter().any(|p| p.contains("s3cret")),
            "the secret leaked: {problems:?}"
        );
    }

    #[test]
    fn mistyped_values_are_reported_and_dropped() {
        let (parsed, problems) = parse("limit = \"ten\"\nname = 3\n");
        assert_eq!(
            problems,
            [
                "t.toml:1: limit: invalid type: string \"ten\", expected an integer",
                "t.toml:2: name: invalid type: integer `3`, expected a string",
            ]
        );
        let parsed = parsed.expect("mistyped keys are dropped, the rest parses");
        assert!(parsed.value.limit.is_none() && parsed.value.name.is_none());
    }

    #[test]
    fn syntax_errors_stop_with_the_line() {
        let (parsed, problems) = parse("name = \"x\"\nlimit = = 3\n");
        assert!(parsed.is_none());
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("t.toml:2: invalid TOML: "),
            "{problems:?}"
        );
    }

    #[test]
    fn table_labels() {
        let key = |k: &str| Segment::Key(k.to_owned());
        let cases = [
            (vec![], "the top level"),
            (vec![key("kernel"), key("poll")], "[kernel.poll]"),
            (vec![key("objects"), Segment::Index(2)], "[[objects]]"),
            (
                vec![key("fields"), Segment::Index(2), key("confidence")],
                "fields[2].confidence",
            ),
        ];
        for (path, label) in cases {
            assert_eq!(table_label(&path), label);
        }
    }
}
