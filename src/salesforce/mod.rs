//! The Salesforce side of kernel-sync: OAuth for the integration user ([`auth`]), the REST
//! client ([`SalesforceClient`]: query, describe, sObject Collections, limits), the SOQL
//! builder ([`soql`]) and the errors of this boundary, classified in one place ([`error`]).
//!
//! Facts this code relies on (shapes, limits, error codes) are those of the Salesforce REST
//! API as summarised in the project's reference notes; the unit tests parse the public
//! response samples collected there.

pub mod auth;
pub mod client;
pub mod describe;
pub mod error;
pub mod model;
pub mod retry;
pub mod soql;

#[cfg(test)]
mod samples;

pub use auth::AuthSettings;
pub use client::{SalesforceClient, SalesforceSettings};
pub use describe::{FieldDescribe, FieldType, ObjectDescribe};
pub use error::{ErrorKind, SalesforceError};
pub use model::{
    ApiUsage, DatetimeError, Identity, Limit, Limits, QueryPage, Record, RecordOutcome,
    RecordUpdate, parse_date, parse_datetime,
};
pub use retry::RetryPolicy;
