//! Composes the engine's SOQL safely: names are checked as API names, string values are
//! escaped by SOQL's rules, datetimes are written as unquoted UTC literals.
//!
//! The configured filter of an object sync is the only raw SOQL that enters a query; it is
//! written by the operator, checked for balanced quotes and parentheses, and wrapped in
//! parentheses so that it cannot change the meaning of the conditions the engine adds.

use chrono::{DateTime, Utc};

/// Longest query text, URL-encoded, that [`Select::build_id_in`] puts in one request: the
/// request line and headers of `GET /query` must stay under Salesforce's 16,384-byte limit.
pub const MAX_ENCODED_QUERY_LEN: usize = 12_000;

/// Most ids in one `Id IN (...)` list.
pub const MAX_IDS_PER_QUERY: usize = 200;

/// Longest string literal Salesforce accepts in a WHERE clause, in characters.
pub const MAX_LITERAL_LEN: usize = 4_000;

/// Suffixes a custom API name may end with (`Name__c`, `Parent__r`, ...).
const SUFFIXES: &[&str] = &[
    "c",
    "r",
    "mdt",
    "e",
    "x",
    "b",
    "kav",
    "ka",
    "pc",
    "pr",
    "s",
    "share",
    "history",
    "feed",
    "chn",
    "latitude",
    "longitude",
];

/// A name or a filter that cannot be put into a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoqlError {
    /// Not a valid API name.
    #[error("{name:?} is not a valid salesforce api name: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What rule it breaks.
        reason: &'static str,
    },
    /// Not a valid record id.
    #[error("{id:?} is not a salesforce record id: expected 15 or 18 letters and digits")]
    InvalidId {
        /// The id as given.
        id: String,
    },
    /// The configured filter is not well-formed.
    #[error("filter {filter:?} is not well-formed: {reason}")]
    InvalidFilter {
        /// The filter as configured.
        filter: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A string literal would exceed Salesforce's limit.
    #[error("a string literal of {len} characters exceeds salesforce's limit of 4000")]
    LiteralTooLong {
        /// Its length in characters.
        len: usize,
    },
}

/// Checks a field reference: an API name, or a relationship path such as `Owner.Name` or
/// `Parent__r.Name`.
///
/// # Errors
///
/// [`SoqlError::InvalidName`] naming the broken rule.
pub fn check_api_name(name: &str) -> Result<(), SoqlError> {
    let invalid = |reason| SoqlError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.split('.').count() > 6 {
        return Err(invalid("a relationship path has at most five levels"));
    }
    name.split('.')
        .try_for_each(|segment| check_segment(segment).map_err(invalid))
}

/// Checks an sObject name (`Account`, `Prospect_Company__c`): an API name without dots.
///
/// # Errors
///
/// [`SoqlError::InvalidName`] naming the broken rule.
pub fn check_object_name(name: &str) -> Result<(), SoqlError> {
    if name.contains('.') {
        return Err(SoqlError::InvalidName {
            name: name.to_owned(),
            reason: "an object name has no dots",
        });
    }
    check_api_name(name)
}

/// One dot-free part of a name: `[namespace__]Base[__suffix]`.
fn check_segment(segment: &str) -> Result<(), &'static str> {
    if segment.is_empty() {
        return Err("it has an empty part between dots");
    }
    if segment.len() > 120 {
        return Err("it is longer than 120 characters");
    }
    if !segment
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err("only letters, digits and underscores are allowed");
    }

    let parts: Vec<&str> = segment.split("__").collect();
    if parts.len() > 3 {
        return Err("only a namespace prefix and a suffix may be separated by two underscores");
    }
    for part in &parts {
        if part.is_empty() || part.starts_with('_') || part.ends_with('_') {
            return Err("underscores may not start or end a name or appear three in a row");
        }
    }
    if !parts[0].starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err("it must start with a letter");
    }
    if parts.len() > 1 {
        let suffix = parts[parts.len() - 1].to_ascii_lowercase();
        // `ns__Name` (a namespaced standard-like name) is legal too, so an unknown suffix is
        // only an error when there are three parts.
        if parts.len() == 3 && !SUFFIXES.contains(&suffix.as_str()) {
            return Err(
                "the suffix after the last two underscores is not a known one (__c, __r...)",
            );
        }
    }
    Ok(())
}

/// Checks a record id: 15 or 18 ASCII letters and digits.
///
/// # Errors
///
/// [`SoqlError::InvalidId`].
pub fn check_record_id(id: &str) -> Result<(), SoqlError> {
    let valid = (id.len() == 15 || id.len() == 18) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(SoqlError::InvalidId { id: id.to_owned() })
    }
}

/// A SOQL string literal holding exactly `s`, quotes included.
///
/// Backslash, both quotes, newline, carriage return and tab get their short escapes; every
/// other control character is written as `\uXXXX`. The short forms `\b` and `\f` are not
/// used because Salesforce's documentation calls `\b` "bell" where other languages mean
/// backspace; the `\u` form is unambiguous. `%` and `_` are left alone: escaping them is only
/// legal inside LIKE patterns. Salesforce refuses literals longer than [`MAX_LITERAL_LEN`]
/// characters; [`quote_checked`] enforces that.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// [`quote`], refusing strings longer than Salesforce accepts.
///
/// # Errors
///
/// [`SoqlError::LiteralTooLong`].
pub fn quote_checked(s: &str) -> Result<String, SoqlError> {
    let len = s.chars().count();
    if len > MAX_LITERAL_LEN {
        return Err(SoqlError::LiteralTooLong { len });
    }
    Ok(quote(s))
}

/// Reads back a literal written by [`quote`] (or by hand, with any of SOQL's escapes);
/// `None` when it is not a well-formed single-quoted literal.
pub fn unquote(literal: &str) -> Option<String> {
    let inner = literal.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {}
            '\'' => return None,
            c => {
                out.push(c);
                continue;
            }
        }
        let escaped = match chars.next()? {
            'n' | 'N' => '\n',
            'r' | 'R' => '\r',
            't' | 'T' => '\t',
            'b' | 'B' => '\u{8}',
            'f' | 'F' => '\u{c}',
            '"' => '"',
            '\'' => '\'',
            '\\' => '\\',
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                if hex.len() != 4 {
                    return None;
                }
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            _ => return None,
        };
        out.push(escaped);
    }
    Some(out)
}

/// A datetime literal in UTC `Z` form with whole seconds (`2024-01-01T00:00:00Z`), unquoted
/// as SOQL requires. Fractions are dropped, which moves a lower bound earlier: a `>=` window
/// re-reads at most one more second and never misses a record.
pub fn datetime_literal(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Checks that an operator's filter has balanced parentheses outside string literals and
/// that its string literals are terminated, so that wrapping it in parentheses keeps it one
/// condition.
///
/// # Errors
///
/// [`SoqlError::InvalidFilter`] naming what is unbalanced.
pub fn check_filter(filter: &str) -> Result<(), SoqlError> {
    let invalid = |reason| SoqlError::InvalidFilter {
        filter: filter.to_owned(),
        reason,
    };
    let mut depth: i64 = 0;
    let mut in_string = false;
    let mut chars = filter.chars();
    while let Some(c) = chars.next() {
        match (in_string, c) {
            (true, '\\') => {
                chars.next();
            }
            (true, '\'') | (false, '\'') => in_string = !in_string,
            (false, '(') => depth += 1,
            (false, ')') => {
                depth -= 1;
                if depth < 0 {
                    return Err(invalid("a closing parenthesis has no opening one"));
                }
            }
            (false, ';') => return Err(invalid("a semicolon is not allowed")),
            _ => {}
        }
    }
    if in_string {
        return Err(invalid("a string literal is not terminated"));
    }
    if depth != 0 {
        return Err(invalid("an opening parenthesis is not closed"));
    }
    Ok(())
}

/// A `SELECT` over one object, built from checked names:
///
/// `SELECT <fields> FROM <object> WHERE (<filter>) AND SystemModstamp >= <since>
///  AND SystemModstamp < <until> ORDER BY SystemModstamp, Id LIMIT <n>`
///
/// where every clause but the field list and the object is optional. `Id` is always selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Select {
    object: String,
    fields: Vec<String>,
    filter: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    order_by_modstamp: bool,
    limit: Option<u32>,
}

impl Select {
    /// A query of `Id` from `object`.
    ///
    /// # Errors
    ///
    /// [`SoqlError::InvalidName`] when `object` is not an object's API name.
    pub fn new(object: &str) -> Result<Self, SoqlError> {
        check_object_name(object)?;
        Ok(Self {
            object: object.to_owned(),
            fields: vec!["Id".to_owned()],
            filter: None,
            since: None,
            until: None,
            order_by_modstamp: false,
            limit: None,
        })
    }

    /// Adds fields to the select list; names already there (compared case-insensitively, as
    /// Salesforce does) are not repeated.
    ///
    /// # Errors
    ///
    /// [`SoqlError::InvalidName`] for the first name that is not a field reference.
    pub fn fields<I, S>(mut self, fields: I) -> Result<Self, SoqlError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for field in fields {
            let field = field.as_ref();
            check_api_name(field)?;
            if !self.fields.iter().any(|f| f.eq_ignore_ascii_case(field)) {
                self.fields.push(field.to_owned());
            }
        }
        Ok(self)
    }

    /// Restricts the query to the operator's filter (raw SOQL, wrapped in parentheses); an
    /// empty or blank filter means no restriction.
    ///
    /// # Errors
    ///
    /// [`SoqlError::InvalidFilter`] when it is not balanced (see [`check_filter`]).
    pub fn filter(mut self, filter: &str) -> Result<Self, SoqlError> {
        let filter = filter.trim();
        if filter.is_empty() {
            self.filter = None;
            return Ok(self);
        }
        check_filter(filter)?;
        self.filter = Some(filter.to_owned());
        Ok(self)
    }

    /// Only records with `SystemModstamp >= since`.
    pub fn modified_since(mut self, since: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self
    }

    /// Only records with `SystemModstamp < until` (whole seconds, rounded down).
    pub fn modified_before(mut self, until: DateTime<Utc>) -> Self {
        self.until = Some(until);
        self
    }

    /// Orders by `SystemModstamp, Id`, a total order a harvest can resume from.
    pub fn order_by_modstamp(mut self) -> Self {
        self.order_by_modstamp = true;
        self
    }

    /// At most `n` records.
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    /// The query text.
    pub fn build(&self) -> String {
        self.build_with(None)
    }

    /// The query restricted to `Id IN (...)` for the given ids, split into as many queries
    /// as needed to keep each under [`MAX_IDS_PER_QUERY`] ids and [`MAX_ENCODED_QUERY_LEN`]
    /// bytes once URL-encoded. No ids give no queries.
    ///
    /// # Errors
    ///
    /// [`SoqlError::InvalidId`] for the first id that is not a record id.
    pub fn build_id_in(&self, ids: &[String]) -> Result<Vec<String>, SoqlError> {
        ids.iter().try_for_each(|id| check_record_id(id))?;

        let mut queries = Vec::new();
        let mut chunk: Vec<&str> = Vec::new();
        for id in ids {
            chunk.push(id);
            let too_many = chunk.len() > MAX_IDS_PER_QUERY;
            if too_many
                || (chunk.len() > 1
                    && encoded_len(&self.id_in_query(&chunk)) > MAX_ENCODED_QUERY_LEN)
            {
                chunk.pop();
                queries.push(self.id_in_query(&chunk));
                chunk = vec![id];
            }
        }
        if !chunk.is_empty() {
            queries.push(self.id_in_query(&chunk));
        }
        Ok(queries)
    }

    fn id_in_query(&self, ids: &[&str]) -> String {
        let list: Vec<String> = ids.iter().map(|id| quote(id)).collect();
        self.build_with(Some(&format!("Id IN ({})", list.join(", "))))
    }

    fn build_with(&self, extra: Option<&str>) -> String {
        let mut conditions = Vec::new();
        if let Some(filter) = &self.filter {
            conditions.push(format!("({filter})"));
        }
        if let Some(since) = self.since {
            conditions.push(format!("SystemModstamp >= {}", datetime_literal(since)));
        }
        if let Some(until) = self.until {
            conditions.push(format!("SystemModstamp < {}", datetime_literal(until)));
        }
        if let Some(extra) = extra {
            conditions.push(extra.to_owned());
        }

        let mut soql = format!("SELECT {} FROM {}", self.fields.join(", "), self.object);
        if !conditions.is_empty() {
            soql.push_str(" WHERE ");
            soql.push_str(&conditions.join(" AND "));
        }
        if self.order_by_modstamp {
            soql.push_str(" ORDER BY SystemModstamp, Id");
        }
        if let Some(limit) = self.limit {
            soql.push_str(&format!(" LIMIT {limit}"));
        }
        soql
    }
}

/// Length of `s` once URL-encoded as a query value.
fn encoded_len(s: &str) -> usize {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .map(str::len)
        .sum()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn api_names() {
        let valid = [
            "Id",
            "Name",
            "Kernel_LinkedIn_URL__c",
            "Prospect_Company__c",
            "Owner.Name",
            "Parent__r.Owner.Name",
            "ns__Field__c",
            "Location__Latitude__s",
            "BillingCountry",
        ];
        for name in valid {
            assert_eq!(check_api_name(name), Ok(()), "{name}");
        }
        let invalid = [
            "",
            "1Name",
            "_Name",
            "Name_",
            "Na me",
            "Name;DELETE",
            "Name'",
            "Bad___c",
            "Owner..Name",
            "Name__c__r__c",
            "a__b__zz",
            "Ümlaut",
            "A.B.C.D.E.F.G",
        ];
        for name in invalid {
            assert!(check_api_name(name).is_err(), "{name}");
        }
        assert!(check_object_name("Owner.Name").is_err());
        assert_eq!(check_object_name("Prospect_Company__c"), Ok(()));
    }

    #[test]
    fn record_ids() {
        assert_eq!(check_record_id("001000000000001AAA"), Ok(()));
        assert_eq!(check_record_id("001000000000001"), Ok(()));
        assert!(check_record_id("001000000000001AA").is_err());
        assert!(check_record_id("001000000000001AA'").is_err());
    }

    #[test]
    fn quoting_escapes_every_special_character() {
        assert_eq!(quote("O'Brien"), r"'O\'Brien'");
        assert_eq!(quote(r"back\slash"), r"'back\\slash'");
        assert_eq!(quote("say \"hi\""), r#"'say \"hi\"'"#);
        assert_eq!(quote("a\nb\rc\td"), r"'a\nb\rc\td'");
        assert_eq!(
            quote("bell\u{7}back\u{8}feed\u{c}"),
            r"'bell\u0007back\u0008feed\u000c'"
        );
        assert_eq!(quote("50% _off_"), "'50% _off_'");
        assert_eq!(quote("Zürich 東京"), "'Zürich 東京'");
    }

    #[test]
    fn unquoting_reads_soql_escapes() {
        assert_eq!(unquote(r"'a\Nb\'c\u00e9'").as_deref(), Some("a\nb'cé"));
        assert_eq!(unquote(r"'\b\f'").as_deref(), Some("\u{8}\u{c}"));
        assert_eq!(unquote(r"'bad\q'"), None);
        assert_eq!(unquote(r"'unterminated\'"), None);
        assert_eq!(unquote("'in'side'"), None);
    }

    #[test]
    fn long_literals_are_refused() {
        assert!(quote_checked(&"x".repeat(4000)).is_ok());
        assert_eq!(
            quote_checked(&"x".repeat(4001)),
            Err(SoqlError::LiteralTooLong { len: 4001 })
        );
    }

    #[test]
    fn datetime_literals_are_whole_seconds_in_utc() {
        let t = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .expect("valid date");
        assert_eq!(datetime_literal(t), "2024-01-01T00:00:00Z");
        let t = t + chrono::Duration::milliseconds(999);
        assert_eq!(datetime_literal(t), "2024-01-01T00:00:00Z");
    }

    #[test]
    fn filters_must_be_balanced() {
        assert_eq!(
            check_filter("Type = 'Prospect' AND (Industry != null OR Rating = 'Hot')"),
            Ok(())
        );
        assert_eq!(check_filter(r"Name = 'it\'s (fine'"), Ok(()));
        assert!(check_filter("Name = 'x') OR (Name != null").is_err());
        assert!(check_filter("(Name = 'x'").is_err());
        assert!(check_filter("Name = 'x").is_err());
        assert!(check_filter("Name = 'x'; DELETE").is_err());
    }

    #[test]
    fn harvest_query_has_every_clause() {
        let since = Utc
            .with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
            .single()
            .expect("valid date");
        let until = since + chrono::Duration::hours(1);
        let soql = Select::new("Account")
            .and_then(|s| s.fields(["Name", "Website", "SystemModstamp", "id"]))
            .and_then(|s| s.filter(" Type = 'Prospect' OR Type = null "))
            .expect("valid names")
            .modified_since(since)
            .modified_before(until)
            .order_by_modstamp()
            .limit(500)
            .build();
        assert_eq!(
            soql,
            "SELECT Id, Name, Website, SystemModstamp FROM Account \
             WHERE (Type = 'Prospect' OR Type = null) AND SystemModstamp >= 2026-11-02T09:00:00Z \
             AND SystemModstamp < 2026-11-02T10:00:00Z ORDER BY SystemModstamp, Id LIMIT 500"
        );
    }

    #[test]
    fn plain_query_has_no_where() {
        let soql = Select::new("Lead")
            .and_then(|s| s.filter("  "))
            .expect("valid")
            .build();
        assert_eq!(soql, "SELECT Id FROM Lead");
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(Select::new("Account; DELETE").is_err());
        assert!(
            Select::new("Account")
                .and_then(|s| s.fields(["Name, Id"]))
                .is_err()
        );
    }

    #[test]
    fn id_lists_are_chunked() {
        let select = Select::new("Account")
            .and_then(|s| s.fields(["Name"]))
            .expect("valid");
        let ids: Vec<String> = (0..450).map(|i| format!("001000000000{i:03}AAA")).collect();

        let queries = select.build_id_in(&ids).expect("valid ids");

        assert_eq!(queries.len(), 3);
        assert!(
            queries
                .iter()
                .all(|q| encoded_len(q) <= MAX_ENCODED_QUERY_LEN)
        );
        assert!(
            queries[0]
                .starts_with("SELECT Id, Name FROM Account WHERE Id IN ('001000000000000AAA', ")
        );
        let listed: usize = queries.iter().map(|q| q.matches("AAA'").count()).sum();
        assert_eq!(listed, 450);
        assert!(select.build_id_in(&[]).expect("no ids").is_empty());
        assert!(select.build_id_in(&["x' OR Name != '".to_owned()]).is_err());
    }

    #[test]
    fn wide_queries_are_chunked_by_length() {
        let fields: Vec<String> = (0..400)
            .map(|i| format!("Custom_Field_Number_{i}__c"))
            .collect();
        let select = Select::new("Account")
            .and_then(|s| s.fields(&fields))
            .expect("valid");
        let ids: Vec<String> = (0..200).map(|i| format!("001000000000{i:03}AAA")).collect();

        let queries = select.build_id_in(&ids).expect("valid ids");

        assert!(queries.len() > 1);
        assert!(
            queries
                .iter()
                .all(|q| encoded_len(q) <= MAX_ENCODED_QUERY_LEN)
        );
    }

    proptest! {
        #[test]
        fn quote_round_trips(s in any::<String>()) {
            prop_assert_eq!(unquote(&quote(&s)), Some(s));
        }

        #[test]
        fn quoted_literals_keep_filters_balanced(s in any::<String>()) {
            let filter = format!("Name = {} AND (Type = null)", quote(&s));
            prop_assert_eq!(check_filter(&filter), Ok(()));
        }
    }
}
