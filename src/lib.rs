//! kernel-sync keeps Salesforce records enriched by the Kernel Inbound API.
//!
//! # Layout
//!
//! Data flows through the modules in this order:
//!
//! - [`config`]: the deployment file and one mapping file per CRM object, parsed strictly and
//!   resolved into checked settings.
//! - [`salesforce`]: OAuth for the integration user, the REST client (query, describe, sObject
//!   Collections), and the SOQL builder.
//! - [`kernel`]: the Inbound API client, the shared request budget and the poll cadence.
//! - [`store`]: durable state (cursors, work items, run history, last written values).
//! - [`pipeline`]: harvest, dispatch, poll, map and write-back, and the scheduler that runs
//!   them.
//! - [`cli`]: one file per command of the binary.
//! - [`sim`]: simulators of a Salesforce org and of the Kernel Inbound API, used by the tests,
//!   the demo and the benchmarks.

pub mod cli;
pub mod config;
pub mod kernel;
pub mod pipeline;
pub mod salesforce;
pub mod sim;
pub mod store;
