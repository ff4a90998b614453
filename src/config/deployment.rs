//! The deployment file resolved into checked settings: the state store, the two connections,
//! the health listener and the object syncs.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use url::Url;

use super::check::Checker;
use super::defaults::*;
use super::mapping::ObjectSync;
use super::names::is_env_name;
use super::raw::{AuthConfig, DeploymentConfig, HttpConfig, KernelConfig, SalesforceConfig};
use super::secret::SecretSource;

/// Everything a deployment file configures, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The deployment file this was loaded from.
    pub path: PathBuf,
    /// The state store.
    pub store: StoreSettings,
    /// The Salesforce org.
    pub salesforce: SalesforceConnection,
    /// The Kernel Inbound API.
    pub kernel: KernelConnection,
    /// The health and metrics listener; `None` serves nothing.
    pub http: Option<HttpSettings>,
    /// The object syncs, in file order.
    pub objects: Vec<ObjectSync>,
}

impl Settings {
    /// The object sync called `name` on the command line.
    #[must_use]
    pub fn object(&self, name: &str) -> Option<&ObjectSync> {
        self.objects.iter().find(|object| object.name == name)
    }

    /// The object syncs that are enabled.
    pub fn enabled_objects(&self) -> impl Iterator<Item = &ObjectSync> {
        self.objects.iter().filter(|object| object.enabled)
    }
}

/// Where durable state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// The connection URL; an SQLite path is made absolute. Never holds a password.
    pub url: String,
    /// Which backend the URL names.
    pub backend: StoreBackend,
}

/// The state store's backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// A local SQLite file (or `:memory:`).
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL server; the password comes from `PGPASSWORD` or `~/.pgpass`.
    Postgres,
}

/// How to reach and authenticate to the Salesforce org.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesforceConnection {
    /// The token host: `https://login.salesforce.com`, `https://test.salesforce.com` or the
    /// org's My Domain URL.
    pub login_url: Url,
    /// The REST API version, `digits.digits`, e.g. `62.0`.
    pub api_version: String,
    /// Records per query page, 200 to 2000.
    pub query_batch_size: u32,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Share of the org's daily API allowance after which harvest and write-back stop, (0, 1].
    pub daily_api_share: f64,
    /// A partial sObject Collections batch is flushed after this delay.
    pub write_batch_delay: Duration,
    /// The OAuth flow and where its secrets come from.
    pub auth: SalesforceAuth,
}

/// The OAuth 2.0 flow of the integration user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SalesforceAuth {
    /// JWT bearer: an assertion signed with the connected app's private key.
    JwtBearer {
        /// The connected app's consumer key.
        client_id: String,
        /// The integration user's username.
        username: String,
        /// The assertion's `aud`: the login URL unless configured.
        audience: String,
        /// The RSA private key (PEM).
        private_key: SecretSource,
    },
    /// Client credentials, against the org's My Domain URL.
    ClientCredentials {
        /// The connected app's consumer key.
        client_id: String,
        /// The connected app's consumer secret.
        client_secret: SecretSource,
    },
    /// A long-lived refresh token.
    RefreshToken {
        /// The connected app's consumer key.
        client_id: String,
        /// The consumer secret, when the connected app requires it.
        client_secret: Option<SecretSource>,
        /// The refresh token.
        refresh_token: SecretSource,
    },
}

/// How to reach the Kernel Inbound API and how hard to drive it.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelConnection {
    /// The API's base URL.
    pub base_url: Url,
    /// Where the `x-api-key` comes from.
    pub api_key: SecretSource,
    /// Request budget shared by submissions and polls.
    pub requests_per_second: u32,
    /// Open executions at most.
    pub max_in_flight: u32,
    /// Timeout of one HTTP request.
    pub request_timeout: Duration,
    /// Enrichment attempts per record before it is parked (unless a mapping overrides it).
    pub max_attempts: u32,
    /// The poll cadence.
    pub poll: PollSettings,
}

/// When an open execution is looked at again.
#[derive(Debug, Clone, PartialEq)]
pub struct PollSettings {
    /// The first look after submission.
    pub first: Duration,
    /// Growth factor of the interval, at least 1.
    pub factor: f64,
    /// The interval's cap.
    pub max_interval: Duration,
    /// Relative jitter of each interval, in [0, 1).
    pub jitter: f64,
    /// An execution still open after this is parked as timed out.
    pub give_up_after: Duration,
}

/// The health and metrics listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// The address `/healthz`, `/readyz` and `/metrics` are served on.
    pub listen: SocketAddr,
}

const FLOWS: &str = "jwt_bearer, client_credentials, refresh_token";
const ANY_DURATION: std::ops::RangeInclusive<Duration> = Duration::ZERO..=Duration::MAX;

/// The oldest API version with everything the engine uses (sObject Collections update).
const MIN_API_MAJOR: u32 = 42;

/// Resolves the parts of a deployment file other than the object syncs.
pub(crate) struct DeploymentParts {
    pub(crate) store: StoreSettings,
    pub(crate) salesforce: SalesforceConnection,
    pub(crate) kernel: KernelConnection,
    pub(crate) http: Option<HttpSettings>,
}

/// Checks the deployment file's tables; `base` is the folder relative paths start from.
pub(crate) fn resolve_parts(
    raw: &DeploymentConfig,
    base: &Path,
    check: &mut Checker<'_>,
) -> DeploymentParts {
    let store = resolve_store(raw, base, check);

    let salesforce = match &raw.salesforce {
        Some(salesforce) => resolve_salesforce(salesforce, base, check),
        None => {
            check.report(
                None,
                "salesforce",
                "missing table [salesforce]: the org to enrich",
            );
            resolve_salesforce(&Spanned::new(0..0, empty_salesforce()), base, check)
        }
    };

    let kernel = match &raw.kernel {
        Some(kernel) => resolve_kernel(kernel, base, check),
        None => {
            check.report(
                None,
                "kernel",
                "missing table [kernel]: at least `api_key_env`",
            );
            placeholder_kernel()
        }
    };

    let http = raw.http.as_ref().map(|http| resolve_http(http, check));
    DeploymentParts {
        store,
        salesforce,
        kernel,
        http,
    }
}

fn resolve_store(raw: &DeploymentConfig, base: &Path, check: &mut Checker<'_>) -> StoreSettings {
    let url = raw.store.as_ref().and_then(|store| store.url.as_ref());
    let Some(url) = url else {
        return sqlite_store(DEFAULT_STORE_URL.trim_start_matches("sqlite://"), base, "");
    };
    let text = url.get_ref().as_str();

    if let Some(rest) = text.strip_prefix("sqlite:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = rest.split_once('?').map_or((rest, ""), |(p, q)| (p, q));
        if path.is_empty() {
            check.report_at(
                url,
                "store.url",
                "the sqlite url names no file: expected sqlite://PATH",
            );
        }
        return sqlite_store(path, base, query);
    }

    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        // Never echo a PostgreSQL URL: it may hold the very password we refuse.
        match Url::parse(text) {
            Ok(parsed) => {
                let password_param = parsed.query_pairs().any(|(key, _)| key == "password");
                if parsed.password().is_some() || password_param {
                    check.report_at(
                        url,
                        "store.url",
                        "the store url must not hold a password: set PGPASSWORD or use a \
                         ~/.pgpass file",
                    );
                }
            }
            Err(error) => {
                check.report_at(url, "store.url", format!("invalid postgres url: {error}"));
            }
        }
        return StoreSettings {
            url: text.to_owned(),
            backend: StoreBackend::Postgres,
        };
    }

    let scheme = text.split_once(':').map_or("", |(scheme, _)| scheme);
    check.report_at(
        url,
        "store.url",
        format!(
            "unsupported store url scheme `{scheme}`: expected sqlite://PATH or \
             postgres://HOST/DATABASE"
        ),
    );
    sqlite_store("kernel-sync.sqlite", base, "")
}

fn sqlite_store(path: &str, base: &Path, query: &str) -> StoreSettings {
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    if path == ":memory:" {
        return StoreSettings {
            url: format!("sqlite::memory:{query}"),
            backend: StoreBackend::Sqlite {
                path: PathBuf::from(":memory:"),
            },
        };
    }
    let path = base.join(path);
    StoreSettings {
        url: format!("sqlite://{}{query}", path.display()),
        backend: StoreBackend::Sqlite { path },
    }
}

fn empty_salesforce() -> SalesforceConfig {
    SalesforceConfig {
        login_url: None,
        api_version: None,
        query_batch_size: None,
        request_timeout: None,
        daily_api_share: None,
        write_batch_delay: None,
        auth: None,
    }
}

fn resolve_salesforce(
    raw: &Spanned<SalesforceConfig>,
    base: &Path,
    check: &mut Checker<'_>,
) -> SalesforceConnection {
    let table = raw.get_ref();
    let login_url = match &table.login_url {
        Some(url) => checked_url(url, "salesforce.login_url", check),
        None => default_url(DEFAULT_SALESFORCE_LOGIN_URL),
    };
    let api_version = resolve_api_version(&table.api_version, check);
    let query_batch_size = check.integer(
        &table.query_batch_size,
        "salesforce.query_batch_size",
        DEFAULT_QUERY_BATCH_SIZE,
        QUERY_BATCH_SIZE_RANGE,
    );
    let request_timeout = check.duration(
        &table.request_timeout,
        "salesforce.request_timeout",
        DEFAULT_SALESFORCE_REQUEST_TIMEOUT,
        REQUEST_TIMEOUT_RANGE,
    );
    let daily_api_share = check.number(
        &table.daily_api_share,
        "salesforce.daily_api_share",
        DEFAULT_DAILY_API_SHARE,
        |share| share > 0.0 && share <= 1.0,
        "a share above 0 and at most 1 (e.g. 0.8)",
    );
    let write_batch_delay = check.duration(
        &table.write_batch_delay,
        "salesforce.write_batch_delay",
        DEFAULT_WRITE_BATCH_DELAY,
        Duration::ZERO..=Duration::from_secs(600),
    );

    let auth = match &table.auth {
        Some(auth) => resolve_auth(auth, &login_url, base, check),
        None => {
            let message =
                format!("missing table [salesforce.auth]: `flow` ({FLOWS}) and `client_id`");
            check.report(Some(raw.span()), "salesforce.auth", message);
            placeholder_auth()
        }
    };

    SalesforceConnection {
        login_url,
        api_version,
        query_batch_size,
        request_timeout,
        daily_api_share,
        write_batch_delay,
        auth,
    }
}

fn resolve_api_version(value: &Option<Spanned<String>>, check: &mut Checker<'_>) -> String {
    let Some(value) = value else {
        return DEFAULT_SALESFORCE_API_VERSION.to_owned();
    };
    let text = value.get_ref();
    let major = text.split_once('.').and_then(|(major, minor)| {
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        (digits(major) && digits(minor))
            .then(|| major.parse::<u32>().ok())
            .flatten()
    });
    match major {
        None => check.report_at(
            value,
            "salesforce.api_version",
            format!("invalid api version `{text}`: expected digits.digits, e.g. 62.0"),
        ),
        Some(major) if major < MIN_API_MAJOR => check.report_at(
            value,
            "salesforce.api_version",
            format!(
                "api version {text} is too old: sObject Collections need {MIN_API_MAJOR}.0 or later"
            ),
        ),
        Some(_) => return text.clone(),
    }
    DEFAULT_SALESFORCE_API_VERSION.to_owned()
}

fn resolve_auth(
    raw: &Spanned<AuthConfig>,
    login_url: &Url,
    base: &Path,
    check: &mut Checker<'_>,
) -> SalesforceAuth {
    let auth = raw.get_ref();
    let span = Some(raw.span());
    let client_id = check
        .required(
            &auth.client_id,
            "salesforce.auth.client_id",
            span.clone(),
            "the connected app's consumer key",
        )
        .map(|id| id.get_ref().clone())
        .unwrap_or_default();
    let Some(flow) = check.required(&auth.flow, "salesforce.auth.flow", span.clone(), FLOWS) else {
        return placeholder_auth();
    };

    let secret = |check: &mut Checker<'_>, name: &str, env: &_, file: &_, required: bool| {
        secret_source(
            check,
            &format!("salesforce.auth.{name}"),
            env,
            file,
            base,
            required.then_some(span.clone()),
        )
    };
    let unused = |check: &mut Checker<'_>, name: &str, value: &Option<Spanned<String>>| {
        if let Some(value) = value {
            let message = format!("not used by the {} flow: remove it", flow.get_ref());
            check.report_at(value, format!("salesforce.auth.{name}"), message);
        }
    };

    match flow.get_ref().as_str() {
        "jwt_bearer" => {
            unused(check, "client_secret_env", &auth.client_secret_env);
            unused(check, "client_secret_file", &auth.client_secret_file);
            unused(check, "refresh_token_env", &auth.refresh_token_env);
            unused(check, "refresh_token_file", &auth.refresh_token_file);
            let username = check
                .required(
                    &auth.username,
                    "salesforce.auth.username",
                    span.clone(),
                    "the integration user's username",
                )
                .map(|name| name.get_ref().clone())
                .unwrap_or_default();
            let audience = match &auth.audience {
                Some(audience) => checked_url(audience, "salesforce.auth.audience", check)
                    .as_str()
                    .trim_end_matches('/')
                    .to_owned(),
                None => login_url.as_str().trim_end_matches('/').to_owned(),
            };
            let private_key = secret(
                check,
                "private_key",
                &auth.private_key_env,
                &auth.private_key_file,
                true,
            );
            SalesforceAuth::JwtBearer {
                client_id,
                username,
                audience,
                private_key: private_key.unwrap_or(SecretSource::Env(String::new())),
            }
        }
        "client_credentials" => {
            unused_jwt_keys(auth, flow.get_ref(), check);
            unused(check, "refresh_token_env", &auth.refresh_token_env);
            unused(check, "refresh_token_file", &auth.refresh_token_file);
            let host = login_url.host_str().unwrap_or_default();
            if host == "login.salesforce.com" || host == "test.salesforce.com" {
                let message = "the client_credentials flow needs the org's My Domain URL as \
                               login_url (e.g. https://acme.my.salesforce.com), not the shared \
                               login host";
                check.report(Some(flow.span()), "salesforce.login_url", message);
            }
            let client_secret = secret(
                check,
                "client_secret",
                &auth.client_secret_env,
                &auth.client_secret_file,
                true,
            );
            SalesforceAuth::ClientCredentials {
                client_id,
                client_secret: client_secret.unwrap_or(SecretSource::Env(String::new())),
            }
        }
        "refresh_token" => {
            unused_jwt_keys(auth, flow.get_ref(), check);
            let client_secret = secret(
                check,
                "client_secret",
                &auth.client_secret_env,
                &auth.client_secret_file,
                false,
            );
            let refresh_token = secret(
                check,
                "refresh_token",
                &auth.refresh_token_env,
                &auth.refresh_token_file,
                true,
            );
            SalesforceAuth::RefreshToken {
                client_id,
                client_secret,
                refresh_token: refresh_token.unwrap_or(SecretSource::Env(String::new())),
            }
        }
        other => {
            let message = format!("unknown flow `{other}`: expected one of {FLOWS}");
            check.report_at(flow, "salesforce.auth.flow", message);
            placeholder_auth()
        }
    }
}

fn unused_jwt_keys(auth: &AuthConfig, flow: &str, check: &mut Checker<'_>) {
    let keys = [
        ("username", &auth.username),
        ("audience", &auth.audience),
        ("private_key_env", &auth.private_key_env),
        ("private_key_file", &auth.private_key_file),
    ];
    for (name, value) in keys {
        if let Some(value) = value {
            let message = format!("not used by the {flow} flow: remove it");
            check.report_at(value, format!("salesforce.auth.{name}"), message);
        }
    }
}

/// Resolves a `<key>_env` / `<key>_file` pair. `required` holds the table's span when one of
/// the two must be given. Values are never echoed: a pasted secret must not reach a message.
fn secret_source(
    check: &mut Checker<'_>,
    key: &str,
    env: &Option<Spanned<String>>,
    file: &Option<Spanned<String>>,
    base: &Path,
    required: Option<Option<Range<usize>>>,
) -> Option<SecretSource> {
    let short = key.rsplit('.').next().unwrap_or(key);
    match (env, file) {
        (Some(env), Some(_)) => {
            let message = format!("set only one of `{short}_env` and `{short}_file`");
            check.report_at(env, format!("{key}_env"), message);
            None
        }
        (Some(env), None) => {
            if is_env_name(env.get_ref()) {
                return Some(SecretSource::Env(env.get_ref().clone()));
            }
            let message = "is not an environment variable name (letters, digits and \
                           underscores, e.g. KERNEL_API_KEY): name the variable that holds the \
                           secret, not the secret";
            check.report_at(env, format!("{key}_env"), message);
            None
        }
        (None, Some(file)) => {
            let path = file.get_ref();
            if path.contains("-----BEGIN") || path.contains('\n') || path.trim().is_empty() {
                let message = "is not a file path: write the secret to a file and name the file";
                check.report_at(file, format!("{key}_file"), message);
                return None;
            }
            Some(SecretSource::File(base.join(path)))
        }
        (None, None) => {
            // A secret written inline was reported as such already; "missing" would be noise.
            let inline = check.dropped.iter().any(|dropped| dropped == key);
            if let Some(span) = required.filter(|_| !inline) {
                let parent = key.rsplit_once('.').map_or("", |(parent, _)| parent);
                let message = format!(
                    "missing `{short}_env` or `{short}_file`: the environment variable or the \
                     file that holds the {}",
                    short.replace('_', " ")
                );
                check.report(span, parent, message);
            }
            None
        }
    }
}

fn resolve_kernel(
    raw: &Spanned<KernelConfig>,
    base: &Path,
    check: &mut Checker<'_>,
) -> KernelConnection {
    let table = raw.get_ref();
    let base_url = match &table.base_url {
        Some(url) => checked_url(url, "kernel.base_url", check),
        None => default_url(DEFAULT_KERNEL_BASE_URL),
    };
    let api_key = secret_source(
        check,
        "kernel.api_key",
        &table.api_key_env,
        &table.api_key_file,
        base,
        Some(Some(raw.span())),
    );
    let requests_per_second = check.integer(
        &table.requests_per_second,
        "kernel.requests_per_second",
        DEFAULT_REQUESTS_PER_SECOND,
        REQUESTS_PER_SECOND_RANGE,
    );
    let max_in_flight = check.integer(
        &table.max_in_flight,
        "kernel.max_in_flight",
        DEFAULT_MAX_IN_FLIGHT,
        MAX_IN_FLIGHT_RANGE,
    );
    let request_timeout = check.duration(
        &table.request_timeout,
        "kernel.request_timeout",
        DEFAULT_KERNEL_REQUEST_TIMEOUT,
        REQUEST_TIMEOUT_RANGE,
    );
    let max_attempts = check.integer(
        &table.max_attempts,
        "kernel.max_attempts",
        DEFAULT_MAX_ATTEMPTS,
        MAX_ATTEMPTS_RANGE,
    );
    let poll = resolve_poll(table, check);

    KernelConnection {
        base_url,
        api_key: api_key.unwrap_or(SecretSource::Env(String::new())),
        requests_per_second,
        max_in_flight,
        request_timeout,
        max_attempts,
        poll,
    }
}

fn resolve_poll(table: &KernelConfig, check: &mut Checker<'_>) -> PollSettings {
    let default_poll = || PollSettings {
        first: DEFAULT_POLL_FIRST,
        factor: DEFAULT_POLL_FACTOR,
        max_interval: DEFAULT_POLL_MAX_INTERVAL,
        jitter: DEFAULT_POLL_JITTER,
        give_up_after: DEFAULT_POLL_GIVE_UP_AFTER,
    };
    let Some(poll) = &table.poll else {
        return default_poll();
    };
    let at_least_a_second = Duration::from_secs(1)..=Duration::MAX;

    let first = check.duration(
        &poll.first,
        "kernel.poll.first",
        DEFAULT_POLL_FIRST,
        at_least_a_second.clone(),
    );
    let factor = check.number(
        &poll.factor,
        "kernel.poll.factor",
        DEFAULT_POLL_FACTOR,
        |factor| (1.0..=10.0).contains(&factor),
        "a factor from 1.0 to 10.0 (e.g. 2.0)",
    );
    let max_interval = check.duration(
        &poll.max_interval,
        "kernel.poll.max_interval",
        DEFAULT_POLL_MAX_INTERVAL,
        at_least_a_second,
    );
    let jitter = check.number(
        &poll.jitter,
        "kernel.poll.jitter",
        DEFAULT_POLL_JITTER,
        |jitter| (0.0..1.0).contains(&jitter),
        "a share from 0 to below 1 (e.g. 0.2)",
    );
    let give_up_after = check.duration(
        &poll.give_up_after,
        "kernel.poll.give_up_after",
        DEFAULT_POLL_GIVE_UP_AFTER,
        ANY_DURATION,
    );

    if let Some(value) = &poll.max_interval
        && max_interval < first
    {
        check.report_at(
            value,
            "kernel.poll.max_interval",
            "must not be shorter than kernel.poll.first",
        );
    }
    if let Some(value) = &poll.give_up_after
        && give_up_after <= first
    {
        check.report_at(
            value,
            "kernel.poll.give_up_after",
            "must be longer than kernel.poll.first",
        );
    }
    PollSettings {
        first,
        factor,
        max_interval,
        jitter,
        give_up_after,
    }
}

fn resolve_http(raw: &Spanned<HttpConfig>, check: &mut Checker<'_>) -> HttpSettings {
    let default = || HttpSettings {
        listen: DEFAULT_HTTP_LISTEN
            .parse()
            .expect("the default listen address is a valid socket address"),
    };
    let Some(listen) = &raw.get_ref().listen else {
        return default();
    };
    match listen.get_ref().parse::<SocketAddr>() {
        Ok(listen) => HttpSettings { listen },
        Err(_) => {
            let message = format!(
                "invalid listen address `{}`: expected IP:PORT, e.g. 127.0.0.1:9464",
                listen.get_ref()
            );
            check.report_at(listen, "http.listen", message);
            default()
        }
    }
}

/// An `https` URL, or `http` to a loopback host (the simulators); nothing after the host.
fn checked_url(value: &Spanned<String>, key: &str, check: &mut Checker<'_>) -> Url {
    let text = value.get_ref();
    let parsed = match Url::parse(text) {
        Ok(url) => url,
        Err(error) => {
            check.report_at(value, key, format!("invalid url `{text}`: {error}"));
            return default_url("https://invalid.example");
        }
    };
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    let problem = if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
        Some("expected an https url (http only for 127.0.0.1 or localhost)")
    } else if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        Some("expected the scheme and host only, e.g. https://acme.my.salesforce.com")
    } else if parsed.password().is_some() || !parsed.username().is_empty() {
        Some("must not hold credentials")
    } else {
        None
    };
    if let Some(problem) = problem {
        // Echo only the host: a URL with credentials must not be repeated in a message.
        let host = parsed.host_str().unwrap_or_default();
        check.report_at(
            value,
            key,
            format!("invalid url for host `{host}`: {problem}"),
        );
    }
    parsed
}

fn default_url(text: &str) -> Url {
    Url::parse(text).expect("the built-in urls are valid")
}

fn placeholder_auth() -> SalesforceAuth {
    SalesforceAuth::ClientCredentials {
        client_id: String::new(),
        client_secret: SecretSource::Env(String::new()),
    }
}

fn placeholder_kernel() -> KernelConnection {
    KernelConnection {
        base_url: default_url(DEFAULT_KERNEL_BASE_URL),
        api_key: SecretSource::Env(String::new()),
        requests_per_second: DEFAULT_REQUESTS_PER_SECOND,
        max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        request_timeout: DEFAULT_KERNEL_REQUEST_TIMEOUT,
        max_attempts: DEFAULT_MAX_ATTEMPTS,
        poll: PollSettings {
            first: DEFAULT_POLL_FIRST,
            factor: DEFAULT_POLL_FACTOR,
            max_interval: DEFAULT_POLL_MAX_INTERVAL,
            jitter: DEFAULT_POLL_JITTER,
            give_up_after: DEFAULT_POLL_GIVE_UP_AFTER,
        },
    }
}
