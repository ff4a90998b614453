//! A simulated Kernel Inbound API that follows the reference contract, for the tests, the demo
//! and the benchmarks (`kernel-sync sim kernel --listen ADDR [--config FILE]`).
//!
//! - `x-api-key` is required (401 otherwise); limits, repeats and stats are kept per key.
//! - POST bodies are validated like the OpenAPI request schema, then against the input rule of
//!   its prose (linkedinUrl, or name and website), and a website must look like a domain or
//!   URL; failures answer 400 `{status: "error", message}`.
//! - A POST for a record (salesforceId, else dynamicsId, else website host) whose execution
//!   is running answers `in_progress` with its id; one completed within 14 days answers
//!   `cached` with its id unless `force`; otherwise `starting` with a new id.
//! - Enrichment is asynchronous: `processing` with every dynamic field null, `fast-success`
//!   with the fast fields of the [`Catalogue`], then `complete`. Unknown companies complete
//!   with every field null. A configured share of executions fails at the fast point
//!   (GET answers 500 `{status: "error"}`); an unknown execution answers 400.
//! - Limits: `requests_per_second` per key in a sliding one-second window, answered 429 with
//!   `Retry-After`; at most `max_processing` executions processing per key. The contract is
//!   silent on what happens beyond its 200 processing accounts: this simulator answers such
//!   a POST with 429 too.
//! - Faults on demand ([`FaultConfig`]): 502/503/504 without processing, 429 bursts, slow
//!   answers, answers held past the client's timeout (processed first, as a real timeout may
//!   be) and truncated bodies (processed first).
//! - `GET /__sim/stats` serves [`KernelSimStats`].
//!
//! Time is tokio's clock; delays come from [`KernelSimConfig`].

mod catalogue;
mod config;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use url::Url;

pub use catalogue::{Catalogue, normalise_host};
pub use config::{DEMO_API_KEY, FaultConfig, KernelSimConfig, SimKey};
pub use state::{GET_ENRICHMENT, KernelSimStats, KeyStats, POST_ENRICHMENT};

use state::{Answer, SimState};

/// The enrichment route of the contract.
const ENRICHMENT_ROUTE: &str = "/api/v1/inbound/enrichment";

/// A running simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct KernelSim {
    addr: SocketAddr,
    api_key: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<SimState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SimState> {
        // Every step leaves the state consistent before it can panic; a poisoned lock is
        // still usable and a test should see the original panic, not a second one.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Binds `listen` and serves the simulator until the handle is shut down or dropped. The
/// listener is bound when this returns, so requests can be sent at once.
///
/// # Errors
///
/// `InvalidInput` when the config is out of range (the message lists every problem), or the
/// error of binding the address.
pub async fn spawn(
    listen: SocketAddr,
    config: KernelSimConfig,
    catalogue: Catalogue,
) -> std::io::Result<KernelSim> {
    let resolved = config
        .resolve()
        .map_err(|message| std::io::Error::new(std::io::ErrorKind::InvalidInput, message))?;
    let api_key = resolved.api_keys.first().cloned().unwrap_or_default();

    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        state: Mutex::new(SimState::new(resolved, catalogue)),
    });
    let app = Router::new()
        .route(ENRICHMENT_ROUTE, get(get_enrichment).post(post_enrichment))
        .route("/__sim/stats", get(stats))
        .with_state(Arc::clone(&shared));

    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "kernel simulator stopped serving");
        }
    });
    tracing::info!(%addr, "kernel simulator listening");

    Ok(KernelSim {
        addr,
        api_key,
        shared,
        task,
    })
}

impl KernelSim {
    /// The address the simulator listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to configure a client with (`http://ADDR/`).
    #[must_use]
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr))
            .expect("a socket address always forms a valid http url")
    }

    /// The first configured API key (by default [`DEMO_API_KEY`]).
    #[must_use]
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The counters served at `GET /__sim/stats`.
    #[must_use]
    pub fn stats(&self) -> KernelSimStats {
        self.shared.lock().stats()
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(mut self) {
        self.task.abort();
        // An aborted task ends with a cancellation error: that is the expected outcome.
        let _ = (&mut self.task).await;
    }
}

impl Drop for KernelSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn post_enrichment(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let endpoint = state::POST_ENRICHMENT;
    let now = Instant::now();

    let (key, faults) = {
        let mut state = shared.lock();
        match state.admit(api_key(&headers), now) {
            Ok(key) => {
                state.note_post(&body);
                (key, state.draw_faults())
            }
            Err(answer) => {
                if answer.status != 401 {
                    state.note_post(&body);
                }
                // `finish` takes the lock again: release it first (a std mutex is not
                // reentrant, and holding it hung every 401 and 429).
                drop(state);
                return finish(&shared, endpoint, answer);
            }
        }
    };
    if let Some(status) = faults.server_error {
        return gateway_error(&shared, endpoint, status);
    }

    let answer = shared.lock().post(key, &body, now);
    deliver(&shared, endpoint, answer, faults).await
}

async fn get_enrichment(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let endpoint = state::GET_ENRICHMENT;
    let now = Instant::now();

    let (key, faults) = {
        let mut state = shared.lock();
        match state.admit(api_key(&headers), now) {
            Ok(key) => (key, state.draw_faults()),
            Err(answer) => {
                drop(state);
                return finish(&shared, endpoint, answer);
            }
        }
    };
    if let Some(status) = faults.server_error {
        return gateway_error(&shared, endpoint, status);
    }

    let answer = shared.lock().get(key, query.as_deref(), now);
    deliver(&shared, endpoint, answer, faults).await
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.lock().stats()).into_response()
}

fn api_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
}

/// Applies the answer faults drawn for a processed request, then answers.
async fn deliver(
    shared: &Shared,
    endpoint: &'static str,
    mut answer: Answer,
    faults: state::Faults,
) -> Response {
    // Counted before any hold: a client that times out drops the connection, and with it
    // this handler.
    shared.lock().record(endpoint, answer.status);
    let (slow_delay, timeout_hold) = {
        let state = shared.lock();
        (state.config().slow_delay, state.config().timeout_hold)
    };

    if faults.slow {
        tokio::time::sleep(slow_delay).await;
    }
    if faults.timeout {
        tokio::time::sleep(timeout_hold).await;
    }
    if faults.malformed {
        let cut = answer.body.len() / 2;
        let cut = (0..=cut)
            .rev()
            .find(|i| answer.body.is_char_boundary(*i))
            .unwrap_or(0);
        answer.body.truncate(cut);
    }
    respond(answer)
}

fn gateway_error(shared: &Shared, endpoint: &'static str, status: u16) -> Response {
    shared.lock().record(endpoint, status);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let page = format!("<html><body><h1>{status}</h1></body></html>");
    (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
}

fn finish(shared: &Shared, endpoint: &'static str, answer: Answer) -> Response {
    shared.lock().record(endpoint, answer.status);
    respond(answer)
}

fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer.body,
    )
        .into_response();
    if let Some(secs) = answer.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}
