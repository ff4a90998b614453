//! The HTTP surface: the token endpoint, the REST resources under
//! `/services/data/vXX.X/`, and the unauthenticated control surface under `/__sim/`.
//!
//! Every REST call passes the same gate, in this order: injected latency, the bearer token,
//! the daily allowance, an injected 503, then the resource itself. Answers carry
//! `Sforce-Limit-Info: api-usage=N/M` once the call was counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value, json};
use tokio::time::Duration;

use super::auth::{self, TokenRequest};
use super::config::{Faults, OrgSimConfig};
use super::data::PERSON_USER_ID;
use super::describe;
use super::org::{OrgState, RestError};

/// State shared by every handler and by the in-process handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<OrgState>,
    pub(crate) config: OrgSimConfig,
    pub(crate) base_url: String,
    pub(crate) jwt_key: Option<DecodingKey>,
}

impl Shared {
    /// Locks the org. A panic while the lock was held cannot leave the maps half-updated in a
    /// way that matters to a simulator, so a poisoned lock is taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, OrgState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/data/{version}/query", get(query))
        .route("/services/data/{version}/query/{locator}", get(query_more))
        .route(
            "/services/data/{version}/sobjects/{object}/describe",
            get(describe_object),
        )
        .route(
            "/services/data/{version}/composite/sobjects",
            patch(collections_update),
        )
        .route("/services/data/{version}/limits", get(limits))
        .route("/__sim/stats", get(sim_stats))
        .route("/__sim/faults", get(sim_get_faults).put(sim_put_faults))
        .route("/__sim/tokens/revoke", post(sim_revoke_tokens))
        .route("/__sim/records/{object}", post(sim_insert))
        .route(
            "/__sim/records/{object}/{id}",
            get(sim_read).patch(sim_edit).delete(sim_delete),
        )
        .fallback(not_found)
        .with_state(shared)
}

fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body.clone())).into_response()
}

fn rest_error(error: &RestError) -> Response {
    json_response(error.status, &error.body())
}

async fn not_found() -> Response {
    rest_error(&RestError::new(
        404,
        "NOT_FOUND",
        "The requested resource does not exist",
    ))
}

// ----- token endpoint -----

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form: HashMap<String, String> = if is_form {
        url::form_urlencoded::parse(&body).into_owned().collect()
    } else {
        // Salesforce reads only a form body; anything else has no grant type.
        HashMap::new()
    };
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::parse_basic);
    let request = TokenRequest { form, basic };

    let answer = {
        let mut state = shared.lock();
        auth::token(
            &mut state,
            &shared.config,
            shared.jwt_key.as_ref(),
            &shared.base_url,
            &request,
        )
    };
    match answer {
        Ok(body) => json_response(200, &body),
        Err(error) => {
            tracing::debug!(error = error.error, "simulated org refused a token request");
            json_response(400, &error.body())
        }
    }
}

// ----- REST resources -----

/// Whether `version` is an API version path segment such as `v60.0`.
fn valid_version(version: &str) -> bool {
    let Some(number) = version.strip_prefix('v') else {
        return false;
    };
    let Some((major, minor)) = number.split_once('.') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    digits(major) && digits(minor)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("OAuth "))
        .map(str::trim)
}

/// Runs one REST call through the gate described in the module docs.
async fn rest_call<F>(
    shared: &Shared,
    headers: &HeaderMap,
    version: &str,
    endpoint: &str,
    work: F,
) -> Response
where
    F: FnOnce(&mut OrgState, &str) -> Result<(u16, Value), RestError>,
{
    if !valid_version(version) {
        return not_found().await;
    }

    let delay = {
        let mut state = shared.lock();
        let faults = state.faults.clone();
        state
            .strikes(faults.latency_share)
            .then(|| Duration::from_millis(faults.latency_ms))
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }

    let allowance = shared.config.daily_api_allowance;
    let (outcome, used) = {
        let mut state = shared.lock();
        let outcome = match state.authenticate(bearer(headers), &shared.config) {
            Err(error) => return rest_error(&error),
            Ok(user_id) => match state.count_call(endpoint, allowance) {
                Err(error) => Err(error),
                Ok(()) => {
                    let share = state.faults.unavailable_share;
                    if state.strikes(share) {
                        Err(RestError::new(
                            503,
                            "SERVER_UNAVAILABLE",
                            "Server is temporarily unavailable, please try again later",
                        ))
                    } else {
                        work(&mut state, &user_id)
                    }
                }
            },
        };
        (outcome, state.api_used)
    };

    let mut response = match outcome {
        Ok((status, body)) => json_response(status, &body),
        Err(error) => rest_error(&error),
    };
    let limit_info = format!("api-usage={used}/{allowance}");
    if let Ok(value) = HeaderValue::from_str(&limit_info) {
        response.headers_mut().insert("Sforce-Limit-Info", value);
    }
    response
}

/// The page size a `Sforce-Query-Options: batchSize=N` header asks for, clamped to
/// Salesforce's range of 200 to 2,000; 2,000 when absent or unreadable.
pub(crate) fn batch_size(headers: &HeaderMap) -> usize {
    const DEFAULT: usize = 2000;
    let Some(options) = headers
        .get("Sforce-Query-Options")
        .and_then(|v| v.to_str().ok())
    else {
        return DEFAULT;
    };
    options
        .split([';', ','])
        .filter_map(|part| part.trim().split_once('='))
        .find(|(key, _)| key.trim().eq_ignore_ascii_case("batchSize"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .map_or(DEFAULT, |n| n.clamp(200, 2000))
}

async fn query(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let batch = batch_size(&headers);
    rest_call(&shared, &headers, &version, "query", |state, _| {
        let Some(soql) = params.get("q") else {
            return Err(RestError::new(
                400,
                "MALFORMED_QUERY",
                "A query string has to be specified",
            ));
        };
        state.query(soql, batch, &version).map(|body| (200, body))
    })
    .await
}

async fn query_more(
    State(shared): State<Arc<Shared>>,
    Path((version, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let idle = Duration::from_secs(shared.config.query_locator_idle_secs);
    rest_call(&shared, &headers, &version, "queryMore", |state, _| {
        state
            .query_more(&locator, &version, idle)
            .map(|body| (200, body))
    })
    .await
}

async fn describe_object(
    State(shared): State<Arc<Shared>>,
    Path((version, object)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    rest_call(&shared, &headers, &version, "describe", |state, _| {
        let Some(index) = state.data.object_index(&object) else {
            return Err(RestError::new(
                404,
                "NOT_FOUND",
                "The requested resource does not exist",
            ));
        };
        Ok((
            200,
            describe::describe(&state.data.objects[index].def, &version),
        ))
    })
    .await
}

async fn collections_update(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    rest_call(
        &shared,
        &headers,
        &version,
        "composite/sobjects",
        |state, user_id| {
            let body: Value = serde_json::from_slice(&body).map_err(|err| {
                RestError::new(
                    400,
                    "JSON_PARSER_ERROR",
                    format!(
                        "Unexpected character in the request body at [line:{}, column:{}]",
                        err.line(),
                        err.column()
                    ),
                )
            })?;
            state
                .collections_update(&body, user_id)
                .map(|results| (200, Value::Array(results)))
        },
    )
    .await
}

async fn limits(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    let allowance = shared.config.daily_api_allowance;
    rest_call(&shared, &headers, &version, "limits", |state, _| {
        Ok((200, describe::limits(allowance, state.api_used)))
    })
    .await
}

// ----- control surface -----

async fn sim_stats(State(shared): State<Arc<Shared>>) -> Response {
    let stats = shared.lock().stats.clone();
    json_response(200, &json!(stats))
}

async fn sim_get_faults(State(shared): State<Arc<Shared>>) -> Response {
    let faults = shared.lock().faults.clone();
    json_response(200, &json!(faults))
}

async fn sim_put_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(err) => return control_error(400, "JSON_PARSER_ERROR", &err.to_string()),
    };
    if let Err(reason) = faults.validate() {
        return control_error(400, "INVALID_FAULTS", &reason);
    }
    shared.lock().faults = faults.clone();
    json_response(200, &json!(faults))
}

async fn sim_revoke_tokens(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().revoke_tokens();
    StatusCode::NO_CONTENT.into_response()
}

fn control_error(status: u16, code: &str, message: &str) -> Response {
    rest_error(&RestError::new(status, code, message))
}

fn record_errors_response(errors: &[super::org::RecordError]) -> Response {
    let body: Vec<Value> = errors
        .iter()
        .map(|e| json!({"message": e.message, "errorCode": e.status_code, "fields": e.fields}))
        .collect();
    json_response(400, &Value::Array(body))
}

fn acting_user(params: &HashMap<String, String>) -> String {
    params
        .get("as")
        .cloned()
        .unwrap_or_else(|| PERSON_USER_ID.to_string())
}

fn parse_fields(body: &[u8]) -> Result<Map<String, Value>, Box<Response>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(Box::new(control_error(
            400,
            "JSON_PARSER_ERROR",
            "expected a JSON object of fields",
        ))),
        Err(err) => Err(Box::new(control_error(
            400,
            "JSON_PARSER_ERROR",
            &err.to_string(),
        ))),
    }
}

async fn sim_insert(
    State(shared): State<Arc<Shared>>,
    Path(object): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let fields = match parse_fields(&body) {
        Ok(fields) => fields,
        Err(response) => return *response,
    };
    match super::control::insert(&shared, &object, &fields, &acting_user(&params)) {
        Ok(id) => json_response(201, &json!({"id": id, "success": true, "errors": []})),
        Err(err) => control_failure(&err),
    }
}

async fn sim_edit(
    State(shared): State<Arc<Shared>>,
    Path((object, id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let fields = match parse_fields(&body) {
        Ok(fields) => fields,
        Err(response) => return *response,
    };
    match super::control::edit(&shared, &object, &id, &fields, &acting_user(&params)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => control_failure(&err),
    }
}

async fn sim_delete(
    State(shared): State<Arc<Shared>>,
    Path((object, id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match super::control::delete(&shared, &object, &id, &acting_user(&params)) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => control_failure(&err),
    }
}

async fn sim_read(
    State(shared): State<Arc<Shared>>,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    match super::control::read(&shared, &object, &id) {
        Ok(record) => json_response(200, &Value::Object(record)),
        Err(err) => control_failure(&err),
    }
}

fn control_failure(err: &super::control::SimControlError) -> Response {
    use super::control::SimControlError;
    match err {
        SimControlError::Rejected { errors, .. } => record_errors_response(errors),
        SimControlError::UnknownObject { .. } | SimControlError::NotFound { .. } => {
            control_error(404, "NOT_FOUND", &err.to_string())
        }
        SimControlError::InvalidFaults { reason } => control_error(400, "INVALID_FAULTS", reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_size_clamps_to_salesforce_range() {
        let mut headers = HeaderMap::new();
        assert_eq!(batch_size(&headers), 2000);
        let cases = [
            ("batchSize=500", 500),
            ("batchSize=10", 200),
            ("batchSize=5000", 2000),
            ("batchsize = 300", 300),
            ("batchSize=abc", 2000),
            ("other=1", 2000),
        ];
        for (value, expected) in cases {
            headers.insert("Sforce-Query-Options", HeaderValue::from_static(value));
            assert_eq!(batch_size(&headers), expected, "{value}");
        }
    }

    #[test]
    fn versions_look_like_v_major_minor() {
        assert!(valid_version("v60.0"));
        assert!(valid_version("v9.0"));
        assert!(!valid_version("60.0"));
        assert!(!valid_version("v60"));
        assert!(!valid_version("vx.0"));
    }
}
