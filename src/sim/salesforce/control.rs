//! The control surface's operations, shared by the `/__sim/` routes and the in-process
//! [`OrgSim`](super::OrgSim) helpers: write records as a person, read them raw, set faults.

use serde_json::{Map, Value};

use super::config::Faults;
use super::org::{RecordError, now_ms};
use super::server::Shared;

/// Why a control-surface operation did not happen.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimControlError {
    /// The object is not in the simulated org.
    #[error("sobject type {object} is not in the simulated org; use one of its describe files")]
    UnknownObject {
        /// The object name as given.
        object: String,
    },
    /// No record has this Id (or it is already deleted, for a delete).
    #[error("record {id} of {object} does not exist in the simulated org")]
    NotFound {
        /// The object.
        object: String,
        /// The record Id.
        id: String,
    },
    /// The write broke a describe rule or a validation rule.
    #[error("write to {object} refused: {}", summary(.errors))]
    Rejected {
        /// The object.
        object: String,
        /// Every problem, in the per-record error shape.
        errors: Vec<RecordError>,
    },
    /// A fault share lies outside `[0, 1]`.
    #[error("{reason}")]
    InvalidFaults {
        /// Which share and the valid range.
        reason: String,
    },
}

impl SimControlError {
    /// The Salesforce status codes of a rejected write, empty for the other variants.
    pub fn status_codes(&self) -> Vec<&str> {
        match self {
            Self::Rejected { errors, .. } => {
                errors.iter().map(|e| e.status_code.as_str()).collect()
            }
            _ => Vec::new(),
        }
    }
}

fn summary(errors: &[RecordError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.status_code, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn object_index(shared: &Shared, object: &str) -> Result<usize, SimControlError> {
    shared
        .lock()
        .data
        .object_index(object)
        .ok_or_else(|| SimControlError::UnknownObject {
            object: object.to_string(),
        })
}

pub(crate) fn insert(
    shared: &Shared,
    object: &str,
    fields: &Map<String, Value>,
    user_id: &str,
) -> Result<String, SimControlError> {
    let index = object_index(shared, object)?;
    shared
        .lock()
        .insert(index, fields, user_id)
        .map_err(|errors| SimControlError::Rejected {
            object: object.to_string(),
            errors,
        })
}

pub(crate) fn edit(
    shared: &Shared,
    object: &str,
    id: &str,
    fields: &Map<String, Value>,
    user_id: &str,
) -> Result<(), SimControlError> {
    let index = object_index(shared, object)?;
    let mut state = shared.lock();
    if state.record(index, id).is_none() {
        return Err(SimControlError::NotFound {
            object: object.to_string(),
            id: id.to_string(),
        });
    }
    let change =
        state
            .prepare_change(index, id, fields)
            .map_err(|failure| SimControlError::Rejected {
                object: object.to_string(),
                errors: failure.errors,
            })?;
    state.apply(change, user_id, now_ms());
    Ok(())
}

pub(crate) fn delete(
    shared: &Shared,
    object: &str,
    id: &str,
    user_id: &str,
) -> Result<(), SimControlError> {
    let index = object_index(shared, object)?;
    if shared.lock().delete(index, id, user_id) {
        Ok(())
    } else {
        Err(SimControlError::NotFound {
            object: object.to_string(),
            id: id.to_string(),
        })
    }
}

pub(crate) fn read(
    shared: &Shared,
    object: &str,
    id: &str,
) -> Result<Map<String, Value>, SimControlError> {
    let index = object_index(shared, object)?;
    shared
        .lock()
        .record(index, id)
        .ok_or_else(|| SimControlError::NotFound {
            object: object.to_string(),
            id: id.to_string(),
        })
}

pub(crate) fn set_faults(shared: &Shared, faults: Faults) -> Result<(), SimControlError> {
    faults
        .validate()
        .map_err(|reason| SimControlError::InvalidFaults { reason })?;
    shared.lock().faults = faults;
    Ok(())
}
