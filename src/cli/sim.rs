//! `kernel-sync sim`: serve one of the simulators until stopped.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

use super::Exit;
use crate::sim;

/// Which simulator.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Which {
    /// The Kernel Inbound API.
    Kernel {
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// A TOML file of simulator settings (delays, limits, faults).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// A Salesforce org.
    Salesforce {
        /// Address to listen on (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// A folder laid out like fixtures/org (default: the built-in demo org).
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

/// Serves until SIGTERM or SIGINT, printing the base URL first.
///
/// # Errors
///
/// A settings file or data folder that does not load, or an address that cannot be bound.
pub async fn execute(which: Which) -> anyhow::Result<Exit> {
    let mut stop = super::shutdown_signal();
    match which {
        Which::Kernel { listen, config } => {
            let settings = match config {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    toml::from_str(&text).with_context(|| format!("{}", path.display()))?
                }
                None => sim::kernel::KernelSimConfig::default(),
            };
            let catalogue = sim::kernel::Catalogue::builtin();
            let server = sim::kernel::spawn(listen, settings, catalogue).await?;
            println!("kernel simulator listening on {}", server.base_url());
            while stop.changed().await.is_ok() && !*stop.borrow() {}
            server.shutdown().await;
        }
        Which::Salesforce { listen, data } => {
            let org = match data {
                Some(dir) => sim::salesforce::OrgData::load_dir(&dir)?,
                None => sim::salesforce::OrgData::builtin()?,
            };
            let server =
                sim::salesforce::spawn(listen, sim::salesforce::OrgSimConfig::default(), org)
                    .await?;
            println!(
                "salesforce org simulator listening on {}",
                server.base_url()
            );
            while stop.changed().await.is_ok() && !*stop.borrow() {}
            server.shutdown().await;
        }
    }
    Ok(Exit::Ok)
}
