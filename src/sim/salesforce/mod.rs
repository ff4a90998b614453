//! A simulated Salesforce org (placeholder while the server is written).

pub(crate) mod data;
pub(crate) mod soql;
pub(crate) mod values;

pub use data::{OrgData, SimDataError};
