//! What Kernel answers, decoded strictly: a submit's status and execution id, a poll's status,
//! record id, message and dynamic fields. Anything off-contract is a decode error that says
//! what was wrong; nothing here panics on a body.

use serde_json::{Map, Value};

use super::request::ExecutionId;

/// Kernel's answer to a POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitStatus {
    /// A new execution started.
    Starting,
    /// The record was enriched in the last 14 days; the execution id names that result.
    Cached,
    /// An execution for the record is running; the execution id names it.
    InProgress,
}

/// A decoded POST answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitAnswer {
    /// Which of the three answers Kernel gave.
    pub status: SubmitStatus,
    /// The execution to poll.
    pub execution_id: ExecutionId,
    /// Kernel's optional comment.
    pub message: Option<String>,
}

/// The state of an execution as a poll saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollStatus {
    /// Still running; the dynamic fields are null.
    Processing,
    /// The fast data points are in; the slow ones may still be null.
    FastSuccess,
    /// Done (`complete`, or its synonym `success`).
    Complete,
    /// The execution failed, or Kernel does not know it (`status: error`).
    Failed,
}

impl PollStatus {
    /// Whether the execution has ended (its open slot can be released).
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Failed)
    }
}

/// A decoded GET answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PollAnswer {
    /// The execution's state.
    pub status: PollStatus,
    /// The `Id` Kernel echoes (the salesforceId of the POST); `None` when empty or absent.
    pub record_id: Option<String>,
    /// Kernel's message.
    pub message: Option<String>,
    /// The dynamic fields in Kernel's order; `null` means "not found yet".
    pub fields: Map<String, Value>,
}

/// Why a body did not decode; the client wraps it with the endpoint, status and an excerpt.
pub(crate) type DecodeFailure = String;

/// Decodes a POST 200 body.
pub(crate) fn decode_submit(body: &str) -> Result<SubmitAnswer, DecodeFailure> {
    let object = parse_object(body)?;

    let status = match object.get("status") {
        Some(Value::String(s)) if s == "starting" => SubmitStatus::Starting,
        Some(Value::String(s)) if s == "cached" => SubmitStatus::Cached,
        Some(Value::String(s)) if s == "in_progress" => SubmitStatus::InProgress,
        Some(other) => return Err(format!("unknown status {other}")),
        None => return Err("no status".to_owned()),
    };
    let execution_id = match object.get("executionId") {
        Some(value) => execution_id(value)?,
        None => return Err("no executionId".to_owned()),
    };
    let message = optional_string(&object, "message")?;

    Ok(SubmitAnswer {
        status,
        execution_id,
        message,
    })
}

/// Decodes a GET body: a 200 answer, or the `{status: "error", message}` of a 400 or 500.
pub(crate) fn decode_poll(body: &str) -> Result<PollAnswer, DecodeFailure> {
    let mut object = parse_object(body)?;

    let status = match object.shift_remove("status") {
        Some(Value::String(s)) => match s.as_str() {
            "processing" => PollStatus::Processing,
            "fast-success" => PollStatus::FastSuccess,
            // Kernel's own pages use both words for a finished execution.
            "complete" | "success" => PollStatus::Complete,
            "error" => PollStatus::Failed,
            other => return Err(format!("unknown status \"{other}\"")),
        },
        Some(other) => return Err(format!("status is not a string: {other}")),
        None => return Err("no status".to_owned()),
    };
    let record_id = optional_string(&object, "Id")?.filter(|id| !id.is_empty());
    let message = optional_string(&object, "message")?;
    object.shift_remove("Id");
    object.shift_remove("message");

    Ok(PollAnswer {
        status,
        record_id,
        message,
        fields: object,
    })
}

/// Decodes the `{status: "error", message}` body of a POST 400, if it is one.
pub(crate) fn decode_error_message(body: &str) -> Option<String> {
    let object = parse_object(body).ok()?;
    match (object.get("status"), object.get("message")) {
        (Some(Value::String(status)), Some(Value::String(message))) if status == "error" => {
            Some(message.clone())
        }
        _ => None,
    }
}

fn parse_object(body: &str) -> Result<Map<String, Value>, DecodeFailure> {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err("not a JSON object".to_owned()),
        Err(error) => Err(format!("invalid JSON: {error}")),
    }
}

fn optional_string(object: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{key} is not a string: {other}")),
    }
}

/// The largest integer an IEEE double holds exactly; beyond it a fractional-looking number
/// cannot be trusted to name the right execution.
const MAX_EXACT_F64: f64 = 9_007_199_254_740_992.0;

/// An execution id must be a non-negative integral JSON number. `12` and `12.0` are accepted;
/// `12.5`, `-1`, `"12"` and integers beyond 2^53 written with a fraction or exponent are not.
fn execution_id(value: &Value) -> Result<ExecutionId, DecodeFailure> {
    let Value::Number(number) = value else {
        return Err(format!("executionId is not a number: {value}"));
    };
    if let Some(id) = number.as_u64() {
        return Ok(ExecutionId(id));
    }
    match number.as_f64() {
        Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= MAX_EXACT_F64 => {
            // Checked just above: integral, non-negative and exactly representable.
            Ok(ExecutionId(f as u64))
        }
        _ => Err(format!(
            "executionId {number} is not a non-negative integer"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn submit_answers() {
        let answer = decode_submit(r#"{"status":"starting","executionId":12}"#).unwrap();
        assert_eq!(answer.status, SubmitStatus::Starting);
        assert_eq!(answer.execution_id, ExecutionId(12));
        assert_eq!(answer.message, None);

        let answer =
            decode_submit(r#"{"status":"cached","executionId":7.0,"message":"m"}"#).unwrap();
        assert_eq!(answer.status, SubmitStatus::Cached);
        assert_eq!(answer.execution_id, ExecutionId(7));
        assert_eq!(answer.message.as_deref(), Some("m"));

        let answer =
            decode_submit(r#"{"status":"in_progress","executionId":18446744073709551615}"#)
                .unwrap();
        assert_eq!(answer.execution_id, ExecutionId(u64::MAX));
    }

    #[test]
    fn execution_ids_must_be_integral() {
        let table = [
            ("12.5", "not a non-negative integer"),
            ("-1", "not a non-negative integer"),
            ("\"12\"", "not a number"),
            ("1e300", "not a non-negative integer"),
            ("null", "not a number"),
        ];
        for (raw, want) in table {
            let body = format!(r#"{{"status":"starting","executionId":{raw}}}"#);
            let error = decode_submit(&body).unwrap_err();
            assert!(error.contains(want), "{raw}: {error}");
        }
        assert!(
            decode_submit(r#"{"status":"starting"}"#)
                .unwrap_err()
                .contains("executionId")
        );
        assert!(decode_submit(r#"{"status":"queued","executionId":1}"#).is_err());
        assert!(
            decode_submit("[]")
                .unwrap_err()
                .contains("not a JSON object")
        );
        assert!(
            decode_submit("{\"status\"")
                .unwrap_err()
                .contains("invalid JSON")
        );
    }

    #[test]
    fn poll_answers_keep_dynamic_fields_in_order() {
        let body = json!({"Id": "001A", "message": "m", "status": "fast-success",
                          "country": "Germany", "headcount": 38, "foundedYear": null})
        .to_string();
        let answer = decode_poll(&body).unwrap();
        assert_eq!(answer.status, PollStatus::FastSuccess);
        assert_eq!(answer.record_id.as_deref(), Some("001A"));
        let keys: Vec<&str> = answer.fields.keys().map(String::as_str).collect();
        assert_eq!(keys, ["country", "headcount", "foundedYear"]);
        assert_eq!(answer.fields["foundedYear"], Value::Null);
    }

    #[test]
    fn poll_statuses() {
        let table = [
            ("processing", PollStatus::Processing),
            ("fast-success", PollStatus::FastSuccess),
            ("complete", PollStatus::Complete),
            ("success", PollStatus::Complete),
            ("error", PollStatus::Failed),
        ];
        for (raw, want) in table {
            let body = json!({"Id": "", "message": "m", "status": raw}).to_string();
            let answer = decode_poll(&body).unwrap();
            assert_eq!(answer.status, want, "{raw}");
            assert_eq!(answer.record_id, None);
            assert!(answer.fields.is_empty());
        }
        assert!(decode_poll(r#"{"status":"done"}"#).is_err());
        assert!(
            decode_poll(r#"{"status":"complete","Id":5}"#)
                .unwrap_err()
                .contains("Id")
        );
    }

    #[test]
    fn error_bodies() {
        let body = r#"{"status":"error","message":"website is required"}"#;
        assert_eq!(
            decode_error_message(body).as_deref(),
            Some("website is required")
        );
        assert_eq!(decode_error_message("<html>"), None);
        assert_eq!(
            decode_error_message(r#"{"status":"ok","message":"x"}"#),
            None
        );
    }
}
