//! `kernel-sync run`: the daemon, and the health and metrics listener it serves.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::{Exit, connect, load_settings, shutdown_signal};
use crate::pipeline::Engine;
use crate::store::ItemState;

/// Runs the daemon until SIGTERM or SIGINT.
///
/// # Errors
///
/// Configuration, credentials, the store, or the listener's address.
pub async fn execute(config: &Path) -> anyhow::Result<Exit> {
    let settings = load_settings(config)?;
    let engine = connect(settings).await?;
    let http = start_http(&engine).await?;
    let result = engine.run_daemon(shutdown_signal()).await;
    if let Some(http) = http {
        http.abort();
    }
    result?;
    tracing::info!("stopped");
    Ok(Exit::Ok)
}

/// The process's Prometheus recorder, installed on first use (a process has one).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("duration_seconds".into()),
                &[
                    1.0,
                    5.0,
                    30.0,
                    60.0,
                    300.0,
                    900.0,
                    3600.0,
                    4.0 * 3600.0,
                    24.0 * 3600.0,
                ],
            );
            let builder = builder.unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed already (a test harness): render an empty,
                // private one rather than fail the listener.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// Serves `/healthz`, `/readyz` and `/metrics` on the configured listener, if any.
///
/// # Errors
///
/// The address could not be bound.
pub async fn start_http(engine: &Engine) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(http) = &engine.settings.http else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(http.listen)
        .await
        .with_context(|| format!("cannot listen on {} (http.listen)", http.listen))?;
    let addr = listener.local_addr()?;
    let app = router(engine.clone());
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "health and metrics listener stopped");
        }
    })))
}

/// The health and metrics routes.
pub fn router(engine: Engine) -> Router {
    metrics_handle();
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(engine)
}

async fn ready(State(engine): State<Engine>) -> (StatusCode, String) {
    if let Err(e) = engine.store.ping().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("state store unreachable: {e}\n"),
        );
    }
    if let Err(e) = engine.salesforce.identity().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("salesforce token unobtainable: {e}\n"),
        );
    }
    (StatusCode::OK, "ready\n".into())
}

async fn render_metrics(State(engine): State<Engine>) -> (StatusCode, String) {
    // Gauges that describe the store are read at scrape time, so they are never stale.
    for plan in engine.plans.iter() {
        let name = plan.sync.name.clone();
        if let Ok(counts) = engine.store.state_counts(&name).await {
            for state in ItemState::ALL {
                let n = counts.get(&state).copied().unwrap_or(0);
                let labels = [
                    ("object_sync", name.clone()),
                    ("state", state.as_str().to_owned()),
                ];
                metrics::gauge!("kernel_sync_work_items", &labels).set(n as f64);
            }
        }
        if let Ok(Some(cursor)) = engine.store.cursor(&name).await {
            let lag = (crate::store::now_ms() - cursor.modstamp_ms) as f64 / 1000.0;
            metrics::gauge!("kernel_sync_harvest_lag_seconds", "object_sync" => name)
                .set(lag.max(0.0));
        }
    }
    let budget = engine.kernel.budget();
    metrics::gauge!("kernel_sync_kernel_open_executions").set(f64::from(budget.open()));
    let slots = engine.settings.kernel.max_in_flight;
    metrics::gauge!("kernel_sync_kernel_slot_use_ratio")
        .set(f64::from(budget.open()) / f64::from(slots));
    (StatusCode::OK, metrics_handle().render())
}
