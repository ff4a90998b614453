//! The Kernel Inbound API: the client the engine submits and polls through, the request budget
//! that keeps one API key inside Kernel's limits, and the poll cadence.
//!
//! # Layout
//!
//! - [`request`]: what the engine asks for ([`EnrichmentRequest`], built from
//!   [`CompanyInputs`] after the input rule of the API is checked) and the [`ExecutionId`].
//! - [`answer`]: what Kernel answers ([`SubmitAnswer`], [`PollAnswer`]), decoded strictly.
//! - [`client`]: [`KernelClient`], which spends one budget permit per HTTP attempt, retries
//!   transient failures with full-jitter back-off and honours `Retry-After` on a 429.
//! - [`budget`]: [`Budget`], the per-key request rate (polls served before submits) and the
//!   count of open executions.
//! - [`cadence`]: [`next_poll`], a pure function that says when an open execution is polled
//!   next and when it is given up.
//! - [`error`]: [`KernelError`] and its one classification, [`KernelError::kind`].

pub mod answer;
pub mod budget;
pub mod cadence;
pub mod client;
pub mod error;
pub mod request;

pub use answer::{PollAnswer, PollStatus, SubmitAnswer, SubmitStatus};
pub use budget::{Budget, Priority};
pub use cadence::{CadenceSettings, PollDecision, next_poll};
pub use client::{ENRICHMENT_PATH, KernelClient, KernelSettings, RetryPolicy};
pub use error::{ErrorKind, KernelError};
pub use request::{CompanyInputs, EnrichmentRequest, ExecutionId, RecordRef};
