//! Helpers shared by the resolvers: each reads one raw value, checks it and records a
//! [`Problem`] when it is wrong, returning a usable fallback so that checking goes on and every
//! problem of a file is found in one run.

use std::ops::{Range, RangeInclusive};
use std::time::Duration;

use toml::Spanned;

use super::duration::parse_duration;
use super::error::Problem;
use super::source::SourceFile;

/// The checking context of one file.
#[derive(Debug)]
pub(crate) struct Checker<'a> {
    pub(crate) file: SourceFile<'a>,
    pub(crate) problems: &'a mut Vec<Problem>,
    /// Keys already reported by the parser; a "missing" problem about them would be noise.
    pub(crate) dropped: &'a [String],
}

impl Checker<'_> {
    /// Records a problem at `span` (the file as a whole when `None`).
    pub(crate) fn report(
        &mut self,
        span: Option<Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.problems.push(self.file.problem(span, key, message));
    }

    /// Records a problem where `value` was written.
    pub(crate) fn report_at<T>(
        &mut self,
        value: &Spanned<T>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.report(Some(value.span()), key, message);
    }

    /// The value of a required key, or a problem at `table_span` saying it is missing.
    pub(crate) fn required<'v, T>(
        &mut self,
        value: &'v Option<Spanned<T>>,
        key: &str,
        table_span: Option<Range<usize>>,
        what: &str,
    ) -> Option<&'v Spanned<T>> {
        if value.is_none() && !self.dropped.iter().any(|dropped| dropped == key) {
            self.report(table_span, key, format!("missing: {what}"));
        }
        value.as_ref()
    }

    /// A duration, or `default` when absent; a problem when it does not parse or is outside
    /// `range`.
    pub(crate) fn duration(
        &mut self,
        value: &Option<Spanned<String>>,
        key: &str,
        default: Duration,
        range: RangeInclusive<Duration>,
    ) -> Duration {
        let Some(value) = value else {
            return default;
        };
        match parse_duration(value.get_ref()) {
            Ok(duration) if range.contains(&duration) => duration,
            Ok(_) => {
                let message = format!(
                    "{} is out of range: expected {}",
                    value.get_ref(),
                    describe_duration_range(&range)
                );
                self.report_at(value, key, message);
                default
            }
            Err(message) => {
                self.report_at(value, key, message);
                default
            }
        }
    }

    /// An integer in `range`, or `default` when absent or wrong.
    pub(crate) fn integer(
        &mut self,
        value: &Option<Spanned<i64>>,
        key: &str,
        default: u32,
        range: RangeInclusive<u32>,
    ) -> u32 {
        let Some(value) = value else {
            return default;
        };
        match u32::try_from(*value.get_ref()) {
            Ok(number) if range.contains(&number) => number,
            _ => {
                let message = format!(
                    "{} is out of range: expected an integer from {} to {}",
                    value.get_ref(),
                    range.start(),
                    range.end()
                );
                self.report_at(value, key, message);
                default
            }
        }
    }

    /// A number accepted by `accept` (whose bounds `expected` describes), or `default`.
    pub(crate) fn number(
        &mut self,
        value: &Option<Spanned<f64>>,
        key: &str,
        default: f64,
        accept: impl Fn(f64) -> bool,
        expected: &str,
    ) -> f64 {
        let Some(value) = value else {
            return default;
        };
        let number = *value.get_ref();
        if number.is_finite() && accept(number) {
            return number;
        }
        self.report_at(
            value,
            key,
            format!("{number} is out of range: expected {expected}"),
        );
        default
    }
}

fn describe_duration_range(range: &RangeInclusive<Duration>) -> String {
    use super::duration::format_duration;
    if *range.end() == Duration::MAX {
        format!("at least {}", format_duration(*range.start()))
    } else {
        format!(
            "from {} to {}",
            format_duration(*range.start()),
            format_duration(*range.end())
        )
    }
}

/// The span of an optional spanned table, for "missing key" problems.
pub(crate) fn span_of<T>(value: Option<&Spanned<T>>) -> Option<Range<usize>> {
    value.map(Spanned::span)
}
