//! A mapping file resolved into an [`ObjectSync`]: which records to harvest and when, which of
//! their fields are sent to Kernel, and how Kernel's payload is written back.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::check::{Checker, span_of};
use super::defaults::*;
use super::names::{API_NAME_HELP, PersonalField, is_api_name, personal_field};
use super::raw::{ConfidenceConfig, FieldConfig, InputsConfig, MappingConfig};

/// One configured CRM object: its schedule, filter, inputs and field mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSync {
    /// The sync's name on the command line and in the state store (`accounts`).
    pub name: String,
    /// Whether the scheduler runs it.
    pub enabled: bool,
    /// The mapping file it was read from.
    pub mapping_path: PathBuf,
    /// The Salesforce object's API name (`Account`).
    pub object: String,
    /// The cron schedule with seconds, as tokio-cron-scheduler reads it (validated).
    pub schedule: String,
    /// The SOQL condition ANDed with the cursor, if any.
    pub filter: Option<String>,
    /// Re-read window behind the cursor.
    pub lookback: Duration,
    /// Re-enrich (with `force`) records whose last enrichment is older; `None` = never.
    pub refresh_after: Option<Duration>,
    /// Write the fields present at `fast-success` before `complete`.
    pub write_fast_fields: bool,
    /// Enrichment attempts per record before parking.
    pub max_attempts: u32,
    /// The record fields sent to Kernel.
    pub inputs: Inputs,
    /// The fields written back, in file order.
    pub fields: Vec<FieldMapping>,
}

impl ObjectSync {
    /// The Salesforce fields to SELECT for the inputs, in a stable order without duplicates.
    #[must_use]
    pub fn input_fields(&self) -> Vec<&str> {
        let email = self.inputs.email.as_ref().map(EmailInput::field);
        let fields = [
            self.inputs.name.as_deref(),
            self.inputs.website.as_deref(),
            self.inputs.linkedin_url.as_deref(),
            email,
        ];
        let mut seen = HashSet::new();
        fields
            .into_iter()
            .flatten()
            .filter(|field| seen.insert(*field))
            .collect()
    }

    /// The Salesforce fields written back, in file order.
    #[must_use]
    pub fn target_fields(&self) -> Vec<&str> {
        self.fields
            .iter()
            .map(|field| field.target.as_str())
            .collect()
    }
}

/// Which record fields feed Kernel. At least `linkedin_url`, or both `name` and `website`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// The company name field.
    pub name: Option<String>,
    /// The company website field.
    pub website: Option<String>,
    /// The company LinkedIn URL field.
    pub linkedin_url: Option<String>,
    /// Where the email domain comes from.
    pub email: Option<EmailInput>,
}

/// The field that gives Kernel's `emailDomain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailInput {
    /// An email address field: only the part after `@` is sent.
    Address(String),
    /// A field that already holds a domain.
    Domain(String),
}

impl EmailInput {
    /// The Salesforce field either way.
    #[must_use]
    pub fn field(&self) -> &str {
        match self {
            Self::Address(field) | Self::Domain(field) => field,
        }
    }
}

/// How one Salesforce field is filled from Kernel's payload.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldMapping {
    /// The Salesforce field's API name.
    pub target: String,
    /// Where the value is in the payload.
    pub source: Source,
    /// How the value is converted.
    pub convert: Conversion,
    /// Picklist only: Kernel value to Salesforce value; values not listed pass unchanged.
    pub picklist_map: BTreeMap<String, String>,
    /// When an existing value is replaced.
    pub overwrite: Overwrite,
    /// Skip the value when the payload's confidence is below a minimum.
    pub confidence: Option<ConfidenceGate>,
    /// Text only: cut to this many characters (the describe's length applies anyway).
    pub max_length: Option<u32>,
    /// Text only: how an array value is joined.
    pub separator: String,
}

/// A place in Kernel's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A top-level key (`industry`).
    Key(String),
    /// A JSON pointer (`/signals/openRoles`).
    Pointer(String),
}

impl Source {
    /// The value at this place of `payload`, if present.
    #[must_use]
    pub fn lookup<'a>(&self, payload: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        match self {
            Self::Key(key) => payload.get(key),
            Self::Pointer(pointer) => payload.pointer(pointer),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(text) | Self::Pointer(text) => f.write_str(text),
        }
    }
}

/// How a payload value becomes a Salesforce value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// A string; arrays are joined with the separator.
    Text,
    /// A decimal number.
    Number,
    /// A whole number.
    Integer,
    /// A fraction written as a percentage (0.189 becomes 18.9).
    Percent,
    /// A boolean.
    Boolean,
    /// A date, `YYYY-MM-DD`.
    Date,
    /// A picklist value, optionally translated by the field's `values`.
    Picklist,
}

impl Conversion {
    /// Every conversion, in the order the documentation lists them.
    pub const ALL: [Self; 7] = [
        Self::Text,
        Self::Number,
        Self::Integer,
        Self::Percent,
        Self::Boolean,
        Self::Date,
        Self::Picklist,
    ];

    /// The name used in mapping files.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::Percent => "percent",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Picklist => "picklist",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|conversion| conversion.as_str() == name)
    }
}

/// When a mapped value replaces what the record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    /// Always write.
    Always,
    /// Write only when the field is empty, or still holds the value kernel-sync last wrote.
    IfEmpty,
    /// Write only when the field is empty.
    Never,
}

impl Overwrite {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "always" => Some(Self::Always),
            "if_empty" => Some(Self::IfEmpty),
            "never" => Some(Self::Never),
            _ => None,
        }
    }
}

/// Skip a value whose confidence in the payload is below `min`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfidenceGate {
    /// Where the confidence is in the payload.
    pub source: Source,
    /// The lowest accepted confidence, in [0, 1].
    pub min: f64,
}

/// System fields the engine reads and Salesforce maintains: never targets.
const SYSTEM_FIELDS: [&str; 7] = [
    "Id",
    "IsDeleted",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
];

/// Re-enriching more often than this spends Kernel credits on unchanged companies.
const MIN_REFRESH_AFTER: Duration = Duration::from_secs(86_400);

/// The identity of an object sync, from the deployment file.
#[derive(Debug)]
pub(crate) struct SyncEntry {
    pub(crate) name: String,
    pub(crate) enabled: bool,
    pub(crate) mapping_path: PathBuf,
    pub(crate) default_max_attempts: u32,
}

/// Checks a mapping file.
pub(crate) fn resolve_mapping(
    raw: &MappingConfig,
    entry: SyncEntry,
    check: &mut Checker<'_>,
) -> ObjectSync {
    let object = check
        .required(
            &raw.object,
            "object",
            None,
            "the Salesforce object's API name, e.g. Account",
        )
        .map(|object| api_name(object, "object", check))
        .unwrap_or_default();
    let schedule = check
        .required(
            &raw.schedule,
            "schedule",
            None,
            "a cron schedule with seconds, e.g. \"0 */15 * * * *\"",
        )
        .map(|schedule| resolve_schedule(schedule, check))
        .unwrap_or_default();
    let filter = raw
        .filter
        .as_ref()
        .and_then(|filter| resolve_filter(filter, check));
    let lookback = check.duration(
        &raw.lookback,
        "lookback",
        DEFAULT_LOOKBACK,
        MIN_LOOKBACK..=Duration::MAX,
    );
    let refresh_after = raw.refresh_after.as_ref().map(|value| {
        let some = Some(value.clone());
        check.duration(
            &some,
            "refresh_after",
            MIN_REFRESH_AFTER,
            MIN_REFRESH_AFTER..=Duration::MAX,
        )
    });
    let write_fast_fields = raw
        .write_fast_fields
        .as_ref()
        .map_or(DEFAULT_WRITE_FAST_FIELDS, |value| *value.get_ref());
    let max_attempts = check.integer(
        &raw.max_attempts,
        "max_attempts",
        entry.default_max_attempts,
        MAX_ATTEMPTS_RANGE,
    );

    let inputs = match &raw.inputs {
        Some(inputs) => resolve_inputs(inputs, &object, check),
        None => {
            if !check.dropped.iter().any(|key| key == "inputs") {
                check.report(
                    None,
                    "inputs",
                    "missing table [inputs]: the fields sent to Kernel",
                );
            }
            Inputs {
                name: None,
                website: None,
                linkedin_url: None,
                email: None,
            }
        }
    };
    let fields = resolve_fields(raw.fields.as_deref().unwrap_or_default(), &inputs, check);

    ObjectSync {
        name: entry.name,
        enabled: entry.enabled,
        mapping_path: entry.mapping_path,
        object,
        schedule,
        filter,
        lookback,
        refresh_after,
        write_fast_fields,
        max_attempts,
        inputs,
        fields,
    }
}

fn api_name(value: &Spanned<String>, key: &str, check: &mut Checker<'_>) -> String {
    let name = value.get_ref();
    if !is_api_name(name) {
        check.report_at(
            value,
            key,
            format!("`{name}` is not an API name: {API_NAME_HELP}"),
        );
    }
    name.clone()
}

fn resolve_schedule(value: &Spanned<String>, check: &mut Checker<'_>) -> String {
    let schedule = value.get_ref().trim();
    // The scheduler's own parser decides; building a job needs no runtime.
    if tokio_cron_scheduler::Job::new(schedule, |_, _| {}).is_ok() {
        return schedule.to_owned();
    }
    let fields = schedule.split_whitespace().count();
    let hint = if fields == 5 {
        "it has 5 fields but the seconds come first: expected 6 fields (sec min hour day month \
         weekday), e.g. \"0 */15 * * * *\" for every 15 minutes"
    } else {
        "expected 6 fields (sec min hour day month weekday), e.g. \"0 */15 * * * *\" for every 15 \
         minutes or \"0 0 * * * *\" hourly"
    };
    check.report_at(
        value,
        "schedule",
        format!("invalid cron schedule `{schedule}`: {hint}"),
    );
    String::new()
}

/// Basic sanity of a SOQL condition: the org has the last word (`check` and the first run), but
/// an unbalanced quote or a trailing `LIMIT` would break the query the engine builds around it.
fn resolve_filter(value: &Spanned<String>, check: &mut Checker<'_>) -> Option<String> {
    let filter = value.get_ref().trim();
    match filter_problem(filter) {
        Some(problem) => {
            check.report_at(value, "filter", problem);
            None
        }
        None => Some(filter.to_owned()),
    }
}

fn filter_problem(filter: &str) -> Option<String> {
    if filter.is_empty() {
        return Some("is empty: remove the key to harvest every record".to_owned());
    }

    let mut depth: i32 = 0;
    let mut in_quote = false;
    let mut escaped = false;
    let mut top_level = String::new();
    for c in filter.chars() {
        if in_quote {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '\'') => in_quote = false,
                _ => {}
            }
            continue;
        }
        match c {
            '\'' => in_quote = true,
            '(' => depth += 1,
            ')' => depth -= 1,
            ';' => return Some("must not contain `;`: give one SOQL condition".to_owned()),
            _ => {}
        }
        if depth < 0 {
            return Some("has a `)` without its `(`".to_owned());
        }
        top_level.push(if depth == 0 {
            c.to_ascii_uppercase()
        } else {
            ' '
        });
    }
    if in_quote {
        return Some("has an unclosed string literal: close it with `'`".to_owned());
    }
    if depth > 0 {
        return Some("has a `(` without its `)`".to_owned());
    }

    let words: Vec<&str> = top_level.split_whitespace().collect();
    let clause = |first: &str, second: Option<&str>| {
        words
            .windows(2)
            .any(|pair| pair[0] == first && second.is_none_or(|s| pair[1] == s))
            || (second.is_none() && words.last() == Some(&first))
    };
    if words.first() == Some(&"WHERE") {
        return Some("starts with WHERE: give the condition only".to_owned());
    }
    for (first, second, shown) in [
        ("ORDER", Some("BY"), "ORDER BY"),
        ("GROUP", Some("BY"), "GROUP BY"),
        ("LIMIT", None, "LIMIT"),
        ("OFFSET", None, "OFFSET"),
    ] {
        if clause(first, second) {
            return Some(format!(
                "must not contain {shown}: the engine orders and pages the query itself; give \
                 a condition only"
            ));
        }
    }
    None
}

fn resolve_inputs(raw: &Spanned<InputsConfig>, object: &str, check: &mut Checker<'_>) -> Inputs {
    let inputs = raw.get_ref();
    let mut field = |value: &Option<Spanned<String>>,
                     key: &str,
                     allowed: &dyn Fn(PersonalField, &str) -> bool| {
        let value = value.as_ref()?;
        let name = api_name(value, key, check);
        if let Some(kind) = personal_field(object, &name)
            && !allowed(kind, &name)
        {
            check.report_at(value, key, privacy_message(object, &name, kind, key));
        }
        Some(name)
    };
    let never = |_: PersonalField, _: &str| false;
    let name = field(&inputs.name, "inputs.name", &never);
    let website = field(&inputs.website, "inputs.website", &never);
    let linkedin_url = field(&inputs.linkedin_url, "inputs.linkedin_url", &never);
    // An address field sends only its domain; a domain field may be called Email_Domain__c,
    // but the standard Email field holds whole addresses.
    let address = field(&inputs.email, "inputs.email", &|kind, _| {
        kind == PersonalField::Email
    });
    let domain = field(
        &inputs.email_domain,
        "inputs.email_domain",
        &|kind, name| kind == PersonalField::Email && name.ends_with("__c"),
    );

    let email = match (address, domain) {
        (Some(_), Some(_)) => {
            let value = inputs
                .email_domain
                .as_ref()
                .expect("a resolved domain was configured");
            check.report_at(
                value,
                "inputs.email_domain",
                "set only one of `email` and `email_domain`",
            );
            None
        }
        (Some(address), None) => Some(EmailInput::Address(address)),
        (None, Some(domain)) => Some(EmailInput::Domain(domain)),
        (None, None) => None,
    };

    let named = inputs.name.is_some() && inputs.website.is_some();
    if !named && inputs.linkedin_url.is_none() {
        check.report(
            Some(raw.span()),
            "inputs",
            "Kernel needs `linkedin_url`, or both `name` and `website`",
        );
    }
    Inputs {
        name,
        website,
        linkedin_url,
        email,
    }
}

fn privacy_message(object: &str, field: &str, kind: PersonalField, key: &str) -> String {
    let fix = match kind {
        PersonalField::Email if key == "inputs.email_domain" => {
            "map it under inputs.email, which sends only the domain".to_owned()
        }
        PersonalField::Email => "map it under inputs.email, which sends only the domain".to_owned(),
        PersonalField::Name if object == "Lead" => "use Company".to_owned(),
        PersonalField::Name => "use the company's name field".to_owned(),
        _ => "remove it".to_owned(),
    };
    format!(
        "{object}.{field} is {}; only company data may be sent to Kernel: {fix}",
        kind.describe()
    )
}

fn resolve_fields(
    raw: &[Spanned<FieldConfig>],
    inputs: &Inputs,
    check: &mut Checker<'_>,
) -> Vec<FieldMapping> {
    if raw.is_empty() && !check.dropped.iter().any(|key| key.starts_with("fields")) {
        check.report(
            None,
            "fields",
            "no [[fields]]: map at least one Salesforce field",
        );
    }
    let input_fields: Vec<&str> = [&inputs.name, &inputs.website, &inputs.linkedin_url]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .chain(inputs.email.as_ref().map(EmailInput::field))
        .collect();

    let mut targets: HashSet<String> = HashSet::new();
    let mut fields = Vec::with_capacity(raw.len());
    for (index, field) in raw.iter().enumerate() {
        let key = |name: &str| format!("fields[{index}].{name}");
        let mapping = resolve_field(field, index, check);

        if let Some(target) = &field.get_ref().target {
            let name = target.get_ref();
            if !targets.insert(name.clone()) {
                check.report_at(
                    target,
                    key("target"),
                    format!("{name} is mapped twice: keep one [[fields]] for it"),
                );
            }
            if input_fields.contains(&name.as_str()) {
                let message = format!(
                    "{name} is an input of this mapping: writing it would change the record's \
                     fingerprint and enrich it again"
                );
                check.report_at(target, key("target"), message);
            }
        }
        fields.push(mapping);
    }
    fields
}

fn resolve_field(
    raw: &Spanned<FieldConfig>,
    index: usize,
    check: &mut Checker<'_>,
) -> FieldMapping {
    let field = raw.get_ref();
    let span = Some(raw.span());
    let key = |name: &str| format!("fields[{index}].{name}");

    let target = check
        .required(
            &field.target,
            &key("target"),
            span.clone(),
            "the Salesforce field's API name",
        )
        .map(|target| {
            let name = api_name(target, &key("target"), check);
            if SYSTEM_FIELDS.contains(&name.as_str()) {
                check.report_at(
                    target,
                    key("target"),
                    format!("{name} is maintained by Salesforce and cannot be written"),
                );
            }
            name
        })
        .unwrap_or_default();
    let source = check
        .required(
            &field.source,
            &key("source"),
            span.clone(),
            "a key of Kernel's payload or a JSON pointer",
        )
        .and_then(|source| resolve_source(source, &key("source"), check))
        .unwrap_or(Source::Key(String::new()));

    let conversions: Vec<&str> = Conversion::ALL.iter().map(|c| c.as_str()).collect();
    let expected = conversions.join(", ");
    let convert = check
        .required(
            &field.convert,
            &key("convert"),
            span,
            &format!("the conversion, one of {expected}"),
        )
        .and_then(|convert| {
            let parsed = Conversion::parse(convert.get_ref());
            if parsed.is_none() {
                let message = format!(
                    "unknown conversion `{}`: expected one of {expected}",
                    convert.get_ref()
                );
                check.report_at(convert, key("convert"), message);
            }
            parsed
        });

    let picklist_map = resolve_values(field, convert, &key("values"), check);
    let overwrite = field
        .overwrite
        .as_ref()
        .map_or(Overwrite::IfEmpty, |value| {
            Overwrite::parse(value.get_ref()).unwrap_or_else(|| {
                let message = format!(
                    "unknown overwrite policy `{}`: expected one of always, if_empty, never",
                    value.get_ref()
                );
                check.report_at(value, key("overwrite"), message);
                Overwrite::IfEmpty
            })
        });
    let confidence = field
        .confidence
        .as_ref()
        .and_then(|gate| resolve_gate(gate, &key("confidence"), check));

    let text_only = |check: &mut Checker<'_>, name: &str, span: Option<std::ops::Range<usize>>| {
        if convert.is_some_and(|convert| convert != Conversion::Text) {
            check.report(
                span,
                key(name),
                format!(
                    "applies to text only, not to {}",
                    convert.map_or("", Conversion::as_str)
                ),
            );
        }
    };
    if let Some(value) = &field.max_length {
        text_only(check, "max_length", Some(value.span()));
    }
    if let Some(value) = &field.separator {
        text_only(check, "separator", Some(value.span()));
    }
    let max_length = field.max_length.as_ref().map(|value| {
        check.integer(
            &Some(value.clone()),
            &key("max_length"),
            MAX_TEXT_LENGTH,
            1..=MAX_TEXT_LENGTH,
        )
    });
    let separator = field.separator.as_ref().map_or_else(
        || DEFAULT_SEPARATOR.to_owned(),
        |value| value.get_ref().clone(),
    );

    FieldMapping {
        target,
        source,
        convert: convert.unwrap_or(Conversion::Text),
        picklist_map,
        overwrite,
        confidence,
        max_length,
        separator,
    }
}

fn resolve_values(
    field: &FieldConfig,
    convert: Option<Conversion>,
    key: &str,
    check: &mut Checker<'_>,
) -> BTreeMap<String, String> {
    let Some(values) = &field.values else {
        return BTreeMap::new();
    };
    if let Some(convert) = convert
        && convert != Conversion::Picklist
    {
        let message = format!(
            "applies to picklist only, not to {}: remove it or use convert = \"picklist\"",
            convert.as_str()
        );
        check.report_at(values, key, message);
    }
    if values
        .get_ref()
        .iter()
        .any(|(from, to)| from.is_empty() || to.is_empty())
    {
        check.report_at(
            values,
            key,
            "holds an empty value: map each Kernel value to a Salesforce value",
        );
    }
    values.get_ref().clone()
}

fn resolve_source(value: &Spanned<String>, key: &str, check: &mut Checker<'_>) -> Option<Source> {
    let text = value.get_ref();
    if let Some(rest) = text.strip_prefix('/') {
        // RFC 6901: `~` is only valid as `~0` or `~1`.
        let bad_escape = rest
            .split('~')
            .skip(1)
            .any(|after| !after.starts_with(['0', '1']));
        if rest.is_empty() || rest.split('/').any(str::is_empty) || bad_escape {
            let message =
                format!("invalid JSON pointer `{text}`: expected e.g. /signals/openRoles");
            check.report_at(value, key, message);
            return None;
        }
        return Some(Source::Pointer(text.clone()));
    }
    if text.is_empty() || text.chars().any(char::is_whitespace) {
        let message = format!(
            "invalid source `{text}`: expected a top-level key of Kernel's payload (e.g. industry) \
             or a JSON pointer starting with / (e.g. /signals/openRoles)"
        );
        check.report_at(value, key, message);
        return None;
    }
    Some(Source::Key(text.clone()))
}

fn resolve_gate(
    raw: &Spanned<ConfidenceConfig>,
    key: &str,
    check: &mut Checker<'_>,
) -> Option<ConfidenceGate> {
    let gate = raw.get_ref();
    let span = span_of(Some(raw));
    let source_key = format!("{key}.source");
    let min_key = format!("{key}.min");
    let source = check
        .required(
            &gate.source,
            &source_key,
            span.clone(),
            "where the confidence is in the payload",
        )
        .and_then(|source| resolve_source(source, &source_key, check));
    let min = check.required(
        &gate.min,
        &min_key,
        span,
        "the lowest accepted confidence, from 0 to 1",
    )?;
    let min = check.number(
        &Some(min.clone()),
        &min_key,
        0.0,
        |min| (0.0..=1.0).contains(&min),
        "a confidence from 0 to 1",
    );
    Some(ConfidenceGate {
        source: source?,
        min,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_sanity_table() {
        let ok = [
            "Type IN ('Prospect', 'Customer - Direct')",
            "IsConverted = false AND Status != 'Closed - Not Converted'",
            "Name LIKE 'O\\'Brien (%' AND (Type = 'A' OR Type = 'B')",
            "Description = 'see ORDER BY; LIMIT 5'",
            "Id IN (SELECT AccountId FROM Contact LIMIT 5)",
            "Limit__c > 5",
        ];
        for filter in ok {
            assert_eq!(filter_problem(filter), None, "{filter}");
        }
        let bad = [
            ("", "is empty"),
            ("Type = 'Prospect", "unclosed string"),
            ("(Type = 'A'", "`(` without"),
            ("Type = 'A')", "`)` without"),
            ("Type = 'A'; DELETE", "`;`"),
            ("Type = 'A' ORDER BY Name", "ORDER BY"),
            ("Type = 'A' limit 10", "LIMIT"),
            ("WHERE Type = 'A'", "starts with WHERE"),
        ];
        for (filter, expected) in bad {
            let problem = filter_problem(filter).unwrap_or_default();
            assert!(problem.contains(expected), "{filter}: {problem}");
        }
    }

    #[test]
    fn sources_look_up_keys_and_pointers() {
        let payload = serde_json::json!({"industry": "Software", "signals": {"openRoles": 4}});
        assert_eq!(
            Source::Key("industry".into()).lookup(&payload),
            Some(&serde_json::json!("Software"))
        );
        assert_eq!(
            Source::Pointer("/signals/openRoles".into()).lookup(&payload),
            Some(&serde_json::json!(4))
        );
        assert_eq!(Source::Key("missing".into()).lookup(&payload), None);
    }

    #[test]
    fn conversions_round_trip_their_names() {
        for conversion in Conversion::ALL {
            assert_eq!(Conversion::parse(conversion.as_str()), Some(conversion));
        }
        assert_eq!(Conversion::parse("percentage"), None);
    }
}
