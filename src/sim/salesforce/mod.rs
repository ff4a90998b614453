//! A simulated Salesforce org, faithful enough that code which works against it works against
//! Salesforce: the OAuth token endpoint (JWT bearer, client credentials, refresh token), SOQL
//! query with `nextRecordsUrl` paging, describe, sObject Collections update checked against
//! the describe and validation rules, `/limits`, the `Sforce-Limit-Info` header, the daily
//! allowance, and injected faults (row locks, 503, latency).
//!
//! One server is both login host and instance: the token response's `instance_url` is its own
//! base URL. A control surface under `/__sim/` (no auth) lets tests add, edit, delete and read
//! records as a person would, set faults and read statistics; [`OrgSim`] offers the same
//! in-process.
//!
//! Layout: [`data`](self) loads the fixtures, `values` holds field types and write checks,
//! `soql` parses and runs queries, `org` holds the mutable state, `auth` the token grants,
//! `describe` the describe and limits bodies, `server` the HTTP routes and `control` the
//! control surface.
//!
//! Limits of the simulation: no relationship fields or subqueries in SOQL, no `queryAll`, no
//! single-record REST resources, no record types, and API usage never resets (the real
//! allowance is a rolling 24 hours).

mod auth;
mod config;
mod control;
mod data;
mod describe;
mod org;
mod server;
mod soql;
mod values;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{
    ClientConfig, DEMO_CLIENT_ID, DEMO_ORG_ID, DEMO_PRIVATE_KEY_PEM, DEMO_PUBLIC_KEY_PEM,
    DEMO_USER_ID, DEMO_USERNAME, Faults, OrgSimConfig, RefreshTokenConfig,
};
pub use control::SimControlError;
pub use data::{OrgData, PERSON_USER_ID, SimDataError};
pub use org::{RecordError, SimStats};

/// A running simulated org. Dropping the handle stops the server.
#[derive(Debug)]
pub struct OrgSim {
    shared: Arc<server::Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts a simulated org on `listen` (use port 0 for any free port) and returns once it
/// accepts connections.
///
/// # Errors
///
/// Fails when the address cannot be bound, or with `InvalidInput` when the configuration is
/// inconsistent (a fault share outside `[0, 1]`, an unreadable public key, an unknown
/// run-as user).
pub async fn spawn(
    listen: SocketAddr,
    config: OrgSimConfig,
    data: OrgData,
) -> std::io::Result<OrgSim> {
    config
        .validate()
        .map_err(|reason| std::io::Error::new(std::io::ErrorKind::InvalidInput, reason))?;
    let jwt_key = match &config.jwt_public_key_pem {
        Some(pem) => Some(
            jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|err| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("jwt public key: {err}"),
                )
            })?,
        ),
        None => None,
    };

    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let counts = data::record_counts(&data);
    let shared = Arc::new(server::Shared {
        state: Mutex::new(org::OrgState::new(data, &config)),
        config,
        base_url,
        jwt_key,
    });

    let (shutdown, stopped) = oneshot::channel::<()>();
    let app = server::router(Arc::clone(&shared));
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stopped.await;
        });
        if let Err(err) = serve.await {
            tracing::error!(error = %err, "salesforce org simulator stopped with an error");
        }
    });
    tracing::info!(addr = %addr, objects = ?counts, "salesforce org simulator listening");

    Ok(OrgSim {
        shared,
        addr,
        shutdown: Some(shutdown),
        task: Some(task),
    })
}

impl OrgSim {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: both the login URL and the instance URL.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats.clone()
    }

    /// Replaces the injected faults.
    ///
    /// # Errors
    ///
    /// [`SimControlError::InvalidFaults`] when a share lies outside `[0, 1]`.
    pub fn set_faults(&self, faults: Faults) -> Result<(), SimControlError> {
        control::set_faults(&self.shared, faults)
    }

    /// Invalidates every access token issued so far; the next REST call with one gets 401
    /// `INVALID_SESSION_ID`.
    pub fn revoke_tokens(&self) {
        self.shared.lock().revoke_tokens();
    }

    /// Creates a record as `as_user` (default [`PERSON_USER_ID`]) and returns its Id.
    ///
    /// # Errors
    ///
    /// Unknown object, or the fields break the describe or a validation rule.
    pub fn insert(
        &self,
        object: &str,
        fields: &Map<String, Value>,
        as_user: Option<&str>,
    ) -> Result<String, SimControlError> {
        control::insert(
            &self.shared,
            object,
            fields,
            as_user.unwrap_or(PERSON_USER_ID),
        )
    }

    /// Edits a record as `as_user` (default [`PERSON_USER_ID`]), bumping its timestamps.
    ///
    /// # Errors
    ///
    /// Unknown object or record, a deleted record, or the fields break the describe or a
    /// validation rule.
    pub fn edit(
        &self,
        object: &str,
        id: &str,
        fields: &Map<String, Value>,
        as_user: Option<&str>,
    ) -> Result<(), SimControlError> {
        control::edit(
            &self.shared,
            object,
            id,
            fields,
            as_user.unwrap_or(PERSON_USER_ID),
        )
    }

    /// Deletes a record (to the recycle bin): queries stop returning it and writes to it fail
    /// with `ENTITY_IS_DELETED`.
    ///
    /// # Errors
    ///
    /// Unknown object, or no live record with this Id.
    pub fn delete(&self, object: &str, id: &str) -> Result<(), SimControlError> {
        control::delete(&self.shared, object, id, PERSON_USER_ID)
    }

    /// A record exactly as stored, every field included, deleted or not.
    ///
    /// # Errors
    ///
    /// Unknown object or record.
    pub fn record(&self, object: &str, id: &str) -> Result<Map<String, Value>, SimControlError> {
        control::read(&self.shared, object, id)
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for OrgSim {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
