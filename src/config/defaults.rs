//! Default values and accepted ranges of every setting, in one place: the resolver, the command
//! line and the documentation share them.

use std::ops::RangeInclusive;
use std::time::Duration;

/// `[store] url`: an SQLite file next to the deployment file.
pub const DEFAULT_STORE_URL: &str = "sqlite://kernel-sync.sqlite";

/// `[salesforce] login_url`: the production login host.
pub const DEFAULT_SALESFORCE_LOGIN_URL: &str = "https://login.salesforce.com";
/// `[salesforce] api_version`.
pub const DEFAULT_SALESFORCE_API_VERSION: &str = "62.0";
/// `[salesforce] query_batch_size`: records per query page (the `Sforce-Query-Options` size).
pub const DEFAULT_QUERY_BATCH_SIZE: u32 = 2000;
/// Accepted `query_batch_size` values, as Salesforce allows them.
pub const QUERY_BATCH_SIZE_RANGE: RangeInclusive<u32> = 200..=2000;
/// `[salesforce] request_timeout`.
pub const DEFAULT_SALESFORCE_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// `[salesforce] daily_api_share`: stop once this share of the org's daily allowance is used.
pub const DEFAULT_DAILY_API_SHARE: f64 = 0.8;
/// `[salesforce] write_batch_delay`: flush a partial Collections batch after this delay.
pub const DEFAULT_WRITE_BATCH_DELAY: Duration = Duration::from_secs(2);

/// `[kernel] base_url`.
pub const DEFAULT_KERNEL_BASE_URL: &str = "https://api.kernel.ai";
/// `[kernel] requests_per_second`, shared by submissions and polls.
pub const DEFAULT_REQUESTS_PER_SECOND: u32 = 5;
/// Accepted `requests_per_second` values.
pub const REQUESTS_PER_SECOND_RANGE: RangeInclusive<u32> = 1..=1000;
/// `[kernel] max_in_flight`: open executions per API key.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 200;
/// Accepted `max_in_flight` values.
pub const MAX_IN_FLIGHT_RANGE: RangeInclusive<u32> = 1..=10_000;
/// `[kernel] request_timeout`.
pub const DEFAULT_KERNEL_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// `[kernel] max_attempts` and the mapping's override: enrichments per record before parking.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Accepted `max_attempts` values.
pub const MAX_ATTEMPTS_RANGE: RangeInclusive<u32> = 1..=20;
/// Accepted request timeouts, for both remote APIs.
pub const REQUEST_TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(600);

/// `[kernel.poll] first`: the first look after submission.
pub const DEFAULT_POLL_FIRST: Duration = Duration::from_secs(30);
/// `[kernel.poll] factor`: growth of the interval between polls.
pub const DEFAULT_POLL_FACTOR: f64 = 2.0;
/// `[kernel.poll] max_interval`: the cap of the interval.
pub const DEFAULT_POLL_MAX_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// `[kernel.poll] jitter`: the interval varies by up to this share either way.
pub const DEFAULT_POLL_JITTER: f64 = 0.2;
/// `[kernel.poll] give_up_after`: an execution still open after this is parked as timed out.
pub const DEFAULT_POLL_GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// `[http] listen` when the table is present without it.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:9464";

/// `[[objects]] enabled`.
pub const DEFAULT_OBJECT_ENABLED: bool = true;

/// Mapping `lookback`: re-read window behind the cursor.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(5 * 60);
/// The shortest accepted `lookback`: `SystemModstamp` is not committed in strict order.
pub const MIN_LOOKBACK: Duration = Duration::from_secs(10);
/// Mapping `write_fast_fields`.
pub const DEFAULT_WRITE_FAST_FIELDS: bool = true;
/// Mapping `fields[].separator`: how a text field joins an array value.
pub const DEFAULT_SEPARATOR: &str = ", ";
/// The longest accepted `fields[].max_length` (Salesforce's long text area limit).
pub const MAX_TEXT_LENGTH: u32 = 131_072;
