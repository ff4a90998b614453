//! `kernel-sync demo`: one pass of the real engine against the built-in simulators.
//!
//! Everything the demo needs is compiled into the binary: the demo org, Kernel's catalogue,
//! the deployment file and the mappings. It writes them (with the simulators' addresses) to a
//! folder, a temporary one unless `--keep DIR` is given, and runs `once` on them.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{Exit, connect, load_settings};
use crate::pipeline::driver::CountsHandle;
use crate::pipeline::scheduler::PassReport;
use crate::sim;

const DEPLOYMENT: &str = include_str!("../../fixtures/demo/kernel-sync.toml");
const MAPPINGS: [(&str, &str); 3] = [
    (
        "account.toml",
        include_str!("../../fixtures/mappings/account.toml"),
    ),
    (
        "lead.toml",
        include_str!("../../fixtures/mappings/lead.toml"),
    ),
    (
        "prospect_company.toml",
        include_str!("../../fixtures/mappings/prospect_company.toml"),
    ),
];
const PRIVATE_KEY: &str = include_str!("../../fixtures/auth/demo-private-key.pem");

/// Options of `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Write the configuration, mappings and store here (instead of a temporary folder) so
    /// `status`, `dry-run` and `once` can be run on them afterwards.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Keep the simulators serving after the pass, until Ctrl-C (with --keep, to try
    /// `dry-run` and `once` against them from another terminal).
    #[arg(long, requires = "keep")]
    pub serve: bool,
}

/// The simulators of a demo, and the folder holding its files.
#[derive(Debug)]
pub struct DemoWorld {
    /// The org simulator.
    pub org: sim::salesforce::OrgSim,
    /// The Kernel simulator.
    pub kernel: sim::kernel::KernelSim,
    /// The deployment file.
    pub config: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

/// Starts both simulators on free loopback ports and writes the demo's files into `dir`
/// (a temporary folder when `None`).
///
/// # Errors
///
/// The simulators could not start or the files could not be written.
pub async fn start_world(dir: Option<&Path>) -> anyhow::Result<DemoWorld> {
    let (dir, temp) = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            (dir.to_path_buf(), None)
        }
        None => {
            let temp = tempfile::tempdir().context("cannot create a temporary folder")?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    let org = sim::salesforce::spawn(
        any,
        sim::salesforce::OrgSimConfig::default(),
        sim::salesforce::OrgData::builtin()?,
    )
    .await
    .context("cannot start the org simulator")?;
    let kernel = sim::kernel::spawn(any, demo_kernel_config(), sim::kernel::Catalogue::builtin())
        .await
        .context("cannot start the kernel simulator")?;

    let deployment = DEPLOYMENT
        .replace("{login_url}", org.base_url().trim_end_matches('/'))
        .replace(
            "{kernel_url}",
            kernel.base_url().as_str().trim_end_matches('/'),
        );
    let write = |name: &str, text: &str| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write("kernel-sync.toml", &deployment)?;
    for (name, text) in MAPPINGS {
        write(name, text)?;
    }
    write("demo-private-key.pem", PRIVATE_KEY)?;
    write("demo-kernel-api-key", sim::kernel::DEMO_API_KEY)?;
    Ok(DemoWorld {
        org,
        kernel,
        config: dir.join("kernel-sync.toml"),
        _temp: temp,
    })
}

/// The Kernel simulator of the demo: minutes of enrichment scaled to seconds, a few
/// executions that fail (and are retried), and a rate limit raised so that a few hundred
/// records finish within a minute.
pub fn demo_kernel_config() -> sim::kernel::KernelSimConfig {
    sim::kernel::KernelSimConfig {
        requests_per_second: 100,
        fast_after_secs: 1.0,
        complete_after_secs: 3.0,
        delay_jitter: 0.5,
        execution_error_share: 0.02,
        ..sim::kernel::KernelSimConfig::default()
    }
}

/// Runs the demo.
///
/// # Errors
///
/// The simulators, the files, or the pass failed.
pub async fn execute(args: Args) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let world = start_world(args.keep.as_deref()).await?;
    let settings = load_settings(&world.config)?;
    let engine = connect(settings).await?;
    let names: Vec<String> = engine.plans.iter().map(|p| p.sync.name.clone()).collect();

    // One signal channel for the whole demo: Ctrl-C during the pass ends the demo rather than
    // moving on to `--serve` and waiting for a second one.
    let mut stop = super::shutdown_signal();
    let counts = CountsHandle::default();
    let progress = tokio::spawn(show_progress(engine.clone(), names.clone(), counts.clone()));
    let report = engine
        .run_pass(&names, Some(Duration::from_secs(120)), stop.clone(), counts)
        .await;
    progress.abort();
    let _ = progress.await;
    let report = report?;

    let kernel_stats = world.kernel.stats();
    let org_stats = world.org.stats();
    println!();
    print!("{}", summary(&report, &engine).await);
    println!(
        "kernel requests: {} (highest rate {} per second); salesforce api calls: {}; took {:.1}s",
        kernel_stats.total_requests(),
        kernel_stats.max_requests_in_one_second(),
        org_stats.api_calls.values().sum::<u64>(),
        started.elapsed().as_secs_f64()
    );
    println!();
    match &args.keep {
        Some(dir) => println!(
            "Next: `kernel-sync --config {} status` shows what the store knows, and `dry-run` \
             shows what the next pass would do{}.",
            dir.join("kernel-sync.toml").display(),
            if args.serve {
                " (the simulators keep serving until Ctrl-C)"
            } else {
                " (rerun with --serve to keep the simulators up)"
            }
        ),
        None => println!(
            "Next: rerun with `--keep DIR` to inspect the run with `status` and `dry-run`, then \
             copy config.example.toml, point [salesforce] and [kernel] at your org and API key, \
             and run `kernel-sync check`."
        ),
    }
    println!(
        "Connecting a real org (connected app, integration user, target fields) is described \
         in the README."
    );

    if args.serve && !*stop.borrow() {
        println!(
            "simulators serving: salesforce {} kernel {}",
            world.org.base_url(),
            world.kernel.base_url()
        );
        while stop.changed().await.is_ok() && !*stop.borrow() {}
    }
    world.kernel.shutdown().await;
    world.org.shutdown().await;
    // Parked records are part of the demo's story (a validation rule refuses some): the demo
    // succeeded when its pass ran to the end.
    Ok(match report.end {
        Some(crate::pipeline::driver::DriveEnd::Idle) => Exit::Ok,
        _ => Exit::Parked,
    })
}

async fn show_progress(engine: crate::pipeline::Engine, names: Vec<String>, counts: CountsHandle) {
    let terminal = std::io::stdout().is_terminal();
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let started = Instant::now();
    let every = if terminal {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(2)
    };
    loop {
        tokio::time::sleep(every).await;
        let line = progress_line(&engine, &names, &counts, started.elapsed()).await;
        match &bar {
            Some(bar) => bar.set_message(line),
            None => println!("{line}"),
        }
    }
}

async fn progress_line(
    engine: &crate::pipeline::Engine,
    names: &[String],
    counts: &CountsHandle,
    elapsed: Duration,
) -> String {
    let (mut submitted, mut written, mut parked) = (0, 0, 0);
    if let Ok(counts) = counts.lock() {
        for c in counts.values() {
            submitted += c.submitted;
            written += c.written;
            parked += c.parked;
        }
    }
    let mut harvested = 0;
    for name in names {
        if let Ok(states) = engine.store.state_counts(name).await {
            harvested += states.values().sum::<u64>();
        }
    }
    let open = engine.kernel.budget().open();
    let secs = elapsed.as_secs_f64().max(0.1);
    format!(
        "{:>5.1}s  harvested {harvested}  submitted {submitted}  open executions {open}  \
         written {written} ({:.1}/s)  parked {parked}",
        elapsed.as_secs_f64(),
        written as f64 / secs
    )
}

async fn summary(report: &PassReport, engine: &crate::pipeline::Engine) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<12} {:>9} {:>7} {:>8} {:>7} {:>7} {:>12} {:>16}",
        "object",
        "harvested",
        "written",
        "skipped",
        "parked",
        "dropped",
        "kernel calls",
        "salesforce calls"
    );
    for object in &report.objects {
        let c = &object.counts;
        let _ = writeln!(
            out,
            "{:<12} {:>9} {:>7} {:>8} {:>7} {:>7} {:>12} {:>16}",
            object.name,
            c.harvested,
            c.written,
            c.skipped,
            c.parked,
            c.dropped,
            c.kernel_calls,
            c.salesforce_calls
        );
    }
    for object in &report.objects {
        for (state, title) in [
            (crate::store::ItemState::Skipped, "skipped"),
            (crate::store::ItemState::Parked, "parked"),
        ] {
            let Ok(items) = engine.store.items_in_state(&object.name, state, 1000).await else {
                continue;
            };
            let mut reasons: Vec<(String, usize)> = Vec::new();
            for item in items {
                let reason = item.reason.unwrap_or_default();
                match reasons.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, n)) => *n += 1,
                    None => reasons.push((reason, 1)),
                }
            }
            for (reason, n) in reasons {
                let _ = writeln!(out, "  {}: {n} {title}: {reason}", object.name);
            }
        }
    }
    out
}
