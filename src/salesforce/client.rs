//! The REST client: query and queryMore, describe, sObject Collections update, read-back by
//! id and `/limits`, each with the shared token, bounded retries and API-usage tracking.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use url::Url;

use super::auth::{AuthSettings, Authenticator, Token};
use super::describe::ObjectDescribe;
use super::error::{Disposition, SalesforceError, classify_api};
use super::model::{
    ApiErrorBody, ApiUsage, Identity, Limits, QueryPage, RawQueryPage, Record, RecordOutcome,
    RecordUpdate, SaveResult,
};
use super::retry::{RetryPolicy, with_retries};
use super::soql::{Select, check_api_name, check_object_name, check_record_id};

/// The REST API version used when the deployment names none.
pub const DEFAULT_API_VERSION: &str = "62.0";

/// The `batchSize` hint used when the deployment names none (Salesforce's own default).
pub const DEFAULT_QUERY_BATCH_SIZE: u32 = 2000;

/// The request timeout used when the deployment names none. Queries may legitimately run for
/// minutes on large orgs; this bounds a hung connection, not a slow query.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Most records in one sObject Collections call.
pub const MAX_RECORDS_PER_UPDATE: usize = 200;

/// The smallest and largest `batchSize` Salesforce accepts in `Sforce-Query-Options`.
pub const BATCH_SIZE_RANGE: std::ops::RangeInclusive<u32> = 200..=2000;

/// Everything the client needs to reach one org.
#[derive(Debug, Clone)]
pub struct SalesforceSettings {
    /// The token host: `https://login.salesforce.com`, `https://test.salesforce.com` or the
    /// org's My Domain URL. Plain http is accepted for loopback addresses only (simulators).
    pub login_url: Url,
    /// The REST API version, such as `62.0`.
    pub api_version: String,
    /// How the integration user authenticates.
    pub auth: AuthSettings,
    /// The `batchSize` hint of queries, 200 to 2,000; Salesforce may send fewer.
    pub query_batch_size: u32,
    /// The longest any one HTTP request may take.
    pub request_timeout: Duration,
    /// How transient failures are repeated.
    pub retry: RetryPolicy,
}

/// A client for one org. Cheap to clone; clones share the connection pool, the token and
/// the known API usage.
#[derive(Debug, Clone)]
pub struct SalesforceClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    data_path: String,
    query_batch_size: u32,
    retry: RetryPolicy,
    auth: Authenticator,
    usage: Mutex<Option<ApiUsage>>,
}

/// One REST call, described once and sent as often as retries and renewals need.
#[derive(Debug)]
struct Call<'a> {
    method: Method,
    path: String,
    soql: Option<&'a str>,
    body: Option<Value>,
    batch_size: Option<u32>,
}

impl<'a> Call<'a> {
    fn get(path: String) -> Self {
        Self {
            method: Method::GET,
            path,
            soql: None,
            body: None,
            batch_size: None,
        }
    }
}

/// The answer of one attempt: a body, or the news that the token has expired.
enum Attempt {
    Body(Vec<u8>),
    SessionExpired(String),
}

impl SalesforceClient {
    /// Checks the settings and builds the client; no request is made until the first call.
    ///
    /// # Errors
    ///
    /// [`SalesforceError::InvalidSetting`] naming the setting: an API version not of the form
    /// `62.0`, a batch size outside 200..=2000, a login URL that is not https (or http on
    /// loopback), a zero timeout or attempt count, an unreadable private key, client
    /// credentials aimed at login or test.salesforce.com.
    pub fn new(settings: SalesforceSettings) -> Result<Self, SalesforceError> {
        let invalid = |setting, reason: String| SalesforceError::InvalidSetting { setting, reason };

        if !is_api_version(&settings.api_version) {
            return Err(invalid(
                "api_version",
                format!(
                    "{:?} is not a version such as \"62.0\"",
                    settings.api_version
                ),
            ));
        }
        if !BATCH_SIZE_RANGE.contains(&settings.query_batch_size) {
            return Err(invalid(
                "query_batch_size",
                format!("{} is outside 200..=2000", settings.query_batch_size),
            ));
        }
        if settings.request_timeout.is_zero() {
            return Err(invalid(
                "request_timeout",
                "it must be longer than zero".to_owned(),
            ));
        }
        if settings.retry.max_attempts == 0 {
            return Err(invalid(
                "retry.max_attempts",
                "it must be at least 1".to_owned(),
            ));
        }
        let allow_http = is_loopback(&settings.login_url);
        let scheme = settings.login_url.scheme();
        if scheme != "https" && !(allow_http && scheme == "http") {
            return Err(invalid(
                "login_url",
                format!(
                    "{} must be an https URL (plain http only on loopback)",
                    settings.login_url
                ),
            ));
        }

        // Redirects are not followed: a bearer token must never leave for another host.
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("kernel-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid("login_url", format!("the http client cannot be built: {e}")))?;
        let auth = Authenticator::new(
            http.clone(),
            &settings.login_url,
            settings.auth,
            settings.retry,
            allow_http,
        )?;

        Ok(Self {
            inner: Arc::new(Inner {
                http,
                data_path: format!("/services/data/v{}", settings.api_version),
                query_batch_size: settings.query_batch_size,
                retry: settings.retry,
                auth,
                usage: Mutex::new(None),
            }),
        })
    }

    /// Who the client is logged in as; authenticates when no token is cached yet.
    ///
    /// # Errors
    ///
    /// An [`ErrorKind::Auth`](super::ErrorKind::Auth) error saying what to fix when the
    /// token endpoint refuses; a retryable one when it is unreachable.
    pub async fn identity(&self) -> Result<Identity, SalesforceError> {
        let lease = self.inner.auth.current().await?;
        Ok(lease.token.identity.clone())
    }

    /// Runs a SOQL query and returns its first page. The text is logged at debug level.
    ///
    /// # Errors
    ///
    /// `MALFORMED_QUERY`, `INVALID_FIELD`, `INVALID_TYPE` as permanent errors; transient
    /// faults once the retries are spent; auth and daily-limit errors.
    pub async fn query(&self, soql: &str) -> Result<QueryPage, SalesforceError> {
        tracing::debug!(soql, "salesforce query");
        let call = Call {
            soql: Some(soql),
            batch_size: Some(self.inner.query_batch_size),
            ..Call::get(format!("{}/query", self.inner.data_path))
        };
        self.page(&call).await
    }

    /// Reads the page a previous page's `nextRecordsUrl` points to. Locators die after about
    /// 15 minutes without use: read all pages of a harvest before waiting on anything slow.
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query); a URL that is not a path of this org's REST API is a
    /// decode error.
    pub async fn query_more(&self, next_records_url: &str) -> Result<QueryPage, SalesforceError> {
        let path = self.next_records_path(next_records_url).await?;
        let call = Call {
            batch_size: Some(self.inner.query_batch_size),
            ..Call::get(path)
        };
        self.page(&call).await
    }

    /// Runs a query and reads every page.
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query).
    pub async fn query_all_pages(&self, soql: &str) -> Result<Vec<Record>, SalesforceError> {
        let mut page = self.query(soql).await?;
        let mut records = std::mem::take(&mut page.records);
        while let Some(next) = page.next_records_url.take().filter(|_| !page.done) {
            page = self.query_more(&next).await?;
            records.append(&mut page.records);
        }
        Ok(records)
    }

    /// The metadata of an object and of the fields the integration user can see.
    ///
    /// # Errors
    ///
    /// `INVALID_TYPE`/`NOT_FOUND` as permanent errors when the object does not exist or is
    /// not visible; an invalid name before any request.
    pub async fn describe(&self, object: &str) -> Result<ObjectDescribe, SalesforceError> {
        check_object_name(object)?;
        let call = Call::get(format!(
            "{}/sobjects/{object}/describe",
            self.inner.data_path
        ));
        self.send_json(&call).await
    }

    /// Writes field values back with sObject Collections (`allOrNone: false`), 200 records a
    /// call, grouped by object type. Outcome `i` belongs to `updates[i]`. An update with a
    /// bad id or field name is rejected locally (`INVALID_UPDATE`) and not sent. A chunk
    /// whose call fails transiently is sent again whole: the values are the same, so a
    /// repeat changes nothing but the timestamps.
    ///
    /// # Errors
    ///
    /// Only whole-call failures: retries spent, auth, daily limit, an answer that does not
    /// hold one result per record. Per-record failures are outcomes. An error after the
    /// first chunk leaves earlier chunks written; sending all updates again is safe.
    pub async fn update(
        &self,
        updates: &[RecordUpdate],
    ) -> Result<Vec<RecordOutcome>, SalesforceError> {
        let mut outcomes: Vec<Option<RecordOutcome>> = vec![None; updates.len()];

        // Refuse malformed updates here, where the reason is precise.
        let mut to_send: Vec<(usize, &RecordUpdate)> = Vec::new();
        for (index, update) in updates.iter().enumerate() {
            match check_update(update) {
                Ok(()) => to_send.push((index, update)),
                Err(reason) => {
                    outcomes[index] = Some(RecordOutcome::Rejected {
                        status_code: "INVALID_UPDATE".to_owned(),
                        message: reason,
                        fields: vec![],
                    });
                }
            }
        }
        // One request processes at most ten runs of the same type: keep each type together.
        to_send.sort_by(|a, b| a.1.object_type.cmp(&b.1.object_type));

        for chunk in to_send.chunks(MAX_RECORDS_PER_UPDATE) {
            let records: Vec<Value> = chunk.iter().map(|(_, u)| update_json(u)).collect();
            let call = Call {
                method: Method::PATCH,
                body: Some(json!({ "allOrNone": false, "records": records })),
                ..Call::get(format!("{}/composite/sobjects", self.inner.data_path))
            };
            let results: Vec<SaveResult> = self.send_json(&call).await?;
            if results.len() != chunk.len() {
                return Err(SalesforceError::Unexpected {
                    path: call.path,
                    reason: format!("{} results for {} records", results.len(), chunk.len()),
                });
            }
            for ((index, _), result) in chunk.iter().zip(results) {
                outcomes[*index] = Some(result.into());
            }
        }

        let outcomes = outcomes
            .into_iter()
            .map(|o| o.expect("every update is refused locally or answered by its chunk"))
            .collect();
        Ok(outcomes)
    }

    /// Reads records by id (`WHERE Id IN (...)`, split so each query stays under the URL
    /// limit). Ids that match nothing (deleted, invisible) are simply absent from the result.
    ///
    /// # Errors
    ///
    /// An invalid object, field name or id before any request; otherwise as
    /// [`query`](Self::query).
    pub async fn read_by_ids(
        &self,
        object: &str,
        fields: &[&str],
        ids: &[String],
    ) -> Result<Vec<Record>, SalesforceError> {
        let select = Select::new(object)?.fields(fields)?;
        let mut seen = HashSet::new();
        let unique: Vec<String> = ids
            .iter()
            .filter(|id| seen.insert(id.as_str()))
            .cloned()
            .collect();

        let mut records = Vec::with_capacity(unique.len());
        for soql in select.build_id_in(&unique)? {
            records.append(&mut self.query_all_pages(&soql).await?);
        }
        Ok(records)
    }

    /// The org's limits (`DailyApiRequests` and the rest).
    ///
    /// # Errors
    ///
    /// As any REST call.
    pub async fn limits(&self) -> Result<Limits, SalesforceError> {
        self.send_json(&Call::get(format!("{}/limits", self.inner.data_path)))
            .await
    }

    /// The API usage from the last `Sforce-Limit-Info` header seen, if any.
    pub fn api_usage(&self) -> Option<ApiUsage> {
        *self
            .inner
            .usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tokens this client (and its clones) obtained so far.
    pub fn tokens_issued(&self) -> u64 {
        self.inner.auth.tokens_issued()
    }

    async fn page(&self, call: &Call<'_>) -> Result<QueryPage, SalesforceError> {
        let raw: RawQueryPage = self.send_json(call).await?;
        raw.into_page()
            .map_err(|reason| SalesforceError::Unexpected {
                path: call.path.clone(),
                reason: reason.to_owned(),
            })
    }

    /// Accepts a `nextRecordsUrl` as a path of this API, or as an absolute URL on the
    /// instance; anything else would send the token elsewhere.
    async fn next_records_path(&self, next: &str) -> Result<String, SalesforceError> {
        let unexpected = |reason: String| SalesforceError::Unexpected {
            path: format!("{}/query", self.inner.data_path),
            reason,
        };
        let path = if next.starts_with('/') {
            next.to_owned()
        } else {
            let url = Url::parse(next)
                .map_err(|_| unexpected(format!("nextRecordsUrl {next:?} is not a path")))?;
            let instance = self
                .inner
                .auth
                .current()
                .await?
                .token
                .identity
                .instance_url
                .clone();
            if url.origin() != instance.origin() {
                return Err(unexpected(format!(
                    "nextRecordsUrl {next:?} is not on the instance"
                )));
            }
            url.path().to_owned()
        };
        if !path.starts_with("/services/data/") || path.contains("..") {
            return Err(unexpected(format!(
                "nextRecordsUrl {next:?} is not a query locator"
            )));
        }
        Ok(path)
    }

    async fn send_json<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T, SalesforceError> {
        let what = call.path.rsplit('/').next().unwrap_or("request");
        let body = with_retries(&self.inner.retry, what, || self.send_authenticated(call)).await?;
        serde_json::from_slice(&body).map_err(|source| SalesforceError::Decode {
            path: call.path.clone(),
            source,
        })
    }

    /// Sends a call with the current token; on an expired session renews the token once
    /// (or takes the one another caller just renewed) and repeats the call once.
    async fn send_authenticated(&self, call: &Call<'_>) -> Result<Vec<u8>, SalesforceError> {
        let lease = self.inner.auth.current().await?;
        let message = match self.send_once(call, &lease.token).await? {
            Attempt::Body(body) => return Ok(body),
            Attempt::SessionExpired(message) => message,
        };

        tracing::debug!(path = %call.path, "salesforce session expired, renewing the token");
        let lease = self.inner.auth.renew(lease.generation).await?;
        match self.send_once(call, &lease.token).await? {
            Attempt::Body(body) => Ok(body),
            Attempt::SessionExpired(_) => Err(SalesforceError::SessionRejected {
                method: call.method.to_string(),
                path: call.path.clone(),
                message,
            }),
        }
    }

    async fn send_once(&self, call: &Call<'_>, token: &Token) -> Result<Attempt, SalesforceError> {
        // The URL carries the query text: keep it out of the error.
        let transport = |source: reqwest::Error| SalesforceError::Transport {
            method: call.method.to_string(),
            path: call.path.clone(),
            source: source.without_url(),
        };
        let mut url = token.identity.instance_url.clone();
        url.set_path(&call.path);

        let mut request = self
            .inner
            .http
            .request(call.method.clone(), url)
            .bearer_auth(token.access_token.expose_secret())
            .header("Sforce-Call-Options", "client=kernel-sync");
        if let Some(soql) = call.soql {
            request = request.query(&[("q", soql)]);
        }
        if let Some(size) = call.batch_size {
            request = request.header("Sforce-Query-Options", format!("batchSize={size}"));
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }

        // The endpoint label is the resource after the version (`query`, `sobjects`,
        // `composite`, `limits`): a handful of values, never a record id.
        let endpoint = call.path.split('/').nth(4).unwrap_or("other").to_owned();
        let started = Instant::now();
        let response = request.send().await.map_err(|e| {
            metrics::counter!("kernel_sync_salesforce_api_calls_total", "endpoint" => endpoint.clone(), "outcome" => "transport_error").increment(1);
            transport(e)
        })?;
        let status = response.status();
        let outcome = if status.is_success() { "ok" } else { "error" };
        metrics::counter!("kernel_sync_salesforce_api_calls_total", "endpoint" => endpoint, "outcome" => outcome).increment(1);
        self.note_usage(response.headers());
        let body = response.bytes().await.map_err(transport)?;
        tracing::debug!(
            method = %call.method,
            path = %call.path,
            status = status.as_u16(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "salesforce request"
        );

        if status.is_success() {
            return Ok(Attempt::Body(body.to_vec()));
        }
        let error = api_error(call, status, &body);
        match &error {
            SalesforceError::Api {
                status,
                code,
                message,
                ..
            } if classify_api(*status, code, message) == Disposition::Reauthenticate => {
                Ok(Attempt::SessionExpired(message.clone()))
            }
            _ => Err(error),
        }
    }

    fn note_usage(&self, headers: &reqwest::header::HeaderMap) {
        let usage = headers
            .get_all("sforce-limit-info")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(ApiUsage::parse_header);
        if let Some(usage) = usage {
            *self
                .inner
                .usage
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(usage);
        }
    }
}

/// Builds the error of a failed REST answer from its body (an array of `{message,
/// errorCode, fields}`), falling back to the HTTP status when the body is something else
/// (an HTML page from Salesforce Edge, nothing at all).
fn api_error(call: &Call<'_>, status: StatusCode, body: &[u8]) -> SalesforceError {
    let errors: Vec<ApiErrorBody> = serde_json::from_slice(body).unwrap_or_default();
    let (code, message, fields) = match errors.first() {
        Some(first) => {
            let message = errors
                .iter()
                .map(|e| e.message.trim())
                .collect::<Vec<_>>()
                .join("; ");
            let fields = errors
                .iter()
                .flat_map(|e| e.fields.iter().cloned())
                .collect();
            (first.error_code.clone(), message, fields)
        }
        None => (
            format!("HTTP_{}", status.as_u16()),
            status
                .canonical_reason()
                .unwrap_or("no reason given")
                .to_lowercase(),
            vec![],
        ),
    };
    SalesforceError::Api {
        method: call.method.to_string(),
        path: call.path.clone(),
        status: status.as_u16(),
        code,
        message,
        fields,
    }
}

/// Why an update cannot be sent, if it cannot.
fn check_update(update: &RecordUpdate) -> Result<(), String> {
    check_object_name(&update.object_type).map_err(|e| e.to_string())?;
    check_record_id(&update.id).map_err(|e| e.to_string())?;
    for name in update.fields.keys() {
        if name.eq_ignore_ascii_case("id") || name == "attributes" {
            return Err(format!(
                "field {name:?} of {} {} may not be set",
                update.object_type, update.id
            ));
        }
        if name.contains('.') {
            return Err(format!(
                "field {name:?} of {} {} is a relationship path",
                update.object_type, update.id
            ));
        }
        check_api_name(name).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// One record of a Collections body.
pub(crate) fn update_json(update: &RecordUpdate) -> Value {
    let mut record = Map::with_capacity(update.fields.len() + 2);
    record.insert(
        "attributes".to_owned(),
        json!({ "type": update.object_type }),
    );
    record.insert("id".to_owned(), Value::String(update.id.clone()));
    for (name, value) in &update.fields {
        record.insert(name.clone(), value.clone());
    }
    Value::Object(record)
}

fn is_api_version(v: &str) -> bool {
    let Some((major, minor)) = v.split_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => domain == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn settings(login: &str) -> SalesforceSettings {
        SalesforceSettings {
            login_url: Url::parse(login).expect("valid url"),
            api_version: "62.0".into(),
            auth: AuthSettings::RefreshToken {
                client_id: "kernel-sync-demo-client".into(),
                client_secret: None,
                refresh_token: SecretString::from("demo-refresh-token".to_owned()),
            },
            query_batch_size: 2000,
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }

    fn setting_of(result: Result<SalesforceClient, SalesforceError>) -> &'static str {
        match result {
            Err(SalesforceError::InvalidSetting { setting, .. }) => setting,
            other => panic!("expected an invalid setting, got {other:?}"),
        }
    }

    #[test]
    fn settings_are_checked() {
        assert!(SalesforceClient::new(settings("https://login.salesforce.com")).is_ok());
        assert!(SalesforceClient::new(settings("http://127.0.0.1:8080")).is_ok());

        let s = SalesforceSettings {
            api_version: "v62".into(),
            ..settings("https://login.salesforce.com")
        };
        assert_eq!(setting_of(SalesforceClient::new(s)), "api_version");
        let s = SalesforceSettings {
            query_batch_size: 100,
            ..settings("https://login.salesforce.com")
        };
        assert_eq!(setting_of(SalesforceClient::new(s)), "query_batch_size");
        let s = SalesforceSettings {
            request_timeout: Duration::ZERO,
            ..settings("https://login.salesforce.com")
        };
        assert_eq!(setting_of(SalesforceClient::new(s)), "request_timeout");
        assert_eq!(
            setting_of(SalesforceClient::new(settings(
                "http://login.salesforce.com"
            ))),
            "login_url"
        );
    }

    #[test]
    fn api_versions() {
        for good in ["62.0", "9.0", "100.1"] {
            assert!(is_api_version(good), "{good}");
        }
        for bad in ["62", "v62.0", "62.0.1", ".0", "62.", "6a.0"] {
            assert!(!is_api_version(bad), "{bad}");
        }
    }

    #[test]
    fn updates_are_checked_before_sending() {
        let update = |fields: Value| RecordUpdate {
            object_type: "Account".into(),
            id: "001000000000001AAA".into(),
            fields: fields.as_object().cloned().expect("object"),
        };
        assert_eq!(check_update(&update(json!({"Kernel_Score__c": 3}))), Ok(()));
        assert!(check_update(&update(json!({"Id": "x"}))).is_err());
        assert!(check_update(&update(json!({"attributes": {}}))).is_err());
        assert!(check_update(&update(json!({"Owner.Name": "x"}))).is_err());
        assert!(check_update(&update(json!({"Bad Name": 1}))).is_err());
    }

    #[test]
    fn collections_body_has_attributes_and_id() {
        let update = RecordUpdate {
            object_type: "Account".into(),
            id: "001000000000001AAA".into(),
            fields: json!({"NumberOfEmployees": 27000})
                .as_object()
                .cloned()
                .expect("object"),
        };
        assert_eq!(
            update_json(&update),
            json!({
                "attributes": {"type": "Account"},
                "id": "001000000000001AAA",
                "NumberOfEmployees": 27000
            })
        );
    }

    #[test]
    fn error_bodies_in_every_shape() {
        let call = Call::get("/services/data/v62.0/query".into());
        let error = api_error(
            &call,
            StatusCode::UNAUTHORIZED,
            br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
        );
        assert_eq!(error.code(), Some("INVALID_SESSION_ID"));

        let error = api_error(&call, StatusCode::BAD_GATEWAY, b"<h1>Bad Gateway</h1>");
        assert_eq!(error.code(), Some("HTTP_502"));
        assert!(error.is_retryable());

        let error = api_error(
            &call,
            StatusCode::BAD_REQUEST,
            br#"[{"message":"a","errorCode":"FIELD_CUSTOM_VALIDATION_EXCEPTION","fields":["X__c"]},
                {"message":"b","errorCode":"STRING_TOO_LONG","fields":["Y__c"]}]"#,
        );
        match error {
            SalesforceError::Api {
                code,
                message,
                fields,
                ..
            } => {
                assert_eq!(code, "FIELD_CUSTOM_VALIDATION_EXCEPTION");
                assert_eq!(message, "a; b");
                assert_eq!(fields, ["X__c", "Y__c"]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
