//! The operator's first hour, through the binary: the demo and the commands run on what it
//! leaves behind, the health and metrics listener scraped during a pass, JSON logs, exit codes,
//! and every line any command prints scanned for the test secrets.
//!
//! The simulators run in this process (`cli::demo::start_world`); the binary is a child process
//! talking to them over loopback.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use kernel_sync::cli::demo::{self, DemoWorld};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_kernel-sync");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The secrets of the demo and of these tests; none may ever be printed.
const SECRETS: [&str; 4] = [
    "demo-kernel-key",
    "demo-client-secret",
    "demo-refresh-token",
    WRONG_KERNEL_KEY,
];
const WRONG_KERNEL_KEY: &str = "wrong-kernel-key-4f2a9c";

/// The longest a test waits for something it polls for.
const PATIENCE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// The binary with JSON logs at trace level, so that the scan sees everything it can say.
fn command(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(config)
        .args(["--log-format", "json", "-vv"])
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("KERNEL_SYNC_LOG_FORMAT")
        .env_remove("KERNEL_SYNC_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs one command to its end and scans everything it printed.
async fn run(config: &Path, args: &[&str]) -> Output {
    let output = command(config, args)
        .output()
        .await
        .expect("the test binary starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_no_secrets(&format!("{args:?} stdout"), &stdout);
    assert_no_secrets(&format!("{args:?} stderr"), &stderr);
    assert_json_lines(&format!("{args:?}"), &stderr);
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The lines of the demo's private key body: any of them in the output is a leak.
fn private_key_lines() -> Vec<String> {
    let pem = std::fs::read_to_string(Path::new(ROOT).join("fixtures/auth/demo-private-key.pem"))
        .expect("the demo private key is in the repository");
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_owned)
        .collect()
}

/// Fails on any test secret, private key line or bearer token in `output`.
fn assert_no_secrets(what: &str, output: &str) {
    for secret in SECRETS {
        assert!(
            !output.contains(secret),
            "{what} printed the secret {secret}"
        );
    }
    for line in private_key_lines() {
        assert!(
            !output.contains(&line),
            "{what} printed a line of the private key"
        );
    }
    assert!(
        !output.contains("Bearer "),
        "{what} printed an authorization header"
    );
    assert!(
        !output.contains("access_token"),
        "{what} printed an access_token field"
    );
    assert!(
        find_session_token(output).is_none(),
        "{what} printed a salesforce session token: {:?}",
        find_session_token(output)
    );
}

/// A Salesforce session id: a 15-character org id, `!`, then a long alphanumeric secret (the
/// org simulator issues exactly that shape).
fn find_session_token(output: &str) -> Option<String> {
    let bytes = output.as_bytes();
    for (i, _) in output.match_indices('!') {
        let before = bytes[..i]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        let after = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if before >= 15 && after >= 40 {
            return Some(output[i - 15..i + 1 + after].to_owned());
        }
    }
    None
}

/// Every non-empty stderr line of a `--log-format json` command is one JSON object.
fn assert_json_lines(what: &str, stderr: &str) {
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{what}: a log line is not JSON ({e}): {line}"));
        assert!(
            value.is_object(),
            "{what}: a log line is not an object: {line}"
        );
        assert!(value.get("level").is_some(), "{what}: no level: {line}");
        assert!(
            value.get("timestamp").is_some(),
            "{what}: no timestamp: {line}"
        );
    }
}

/// The log lines of a JSON log with the given message.
fn log_lines(stderr: &str, message: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

/// The values of the demo org's records that must never reach a log line: lead e-mail
/// addresses, phone numbers and last names.
fn record_payload_values() -> Vec<String> {
    let leads = std::fs::read_to_string(Path::new(ROOT).join("fixtures/org/records/Lead.json"))
        .expect("the demo org's leads are in the repository");
    let leads: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(&leads).expect("the demo leads are a JSON array of objects");
    let mut values = BTreeSet::new();
    for lead in &leads {
        for field in ["Email", "Phone"] {
            if let Some(value) = lead.get(field).and_then(|v| v.as_str()) {
                values.insert(value.to_owned());
            }
        }
    }
    values.into_iter().collect()
}

/// A demo world in a temporary folder, with the deployment file edited by `edit`.
async fn world(edit: impl FnOnce(&Path)) -> (DemoWorld, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let world = demo::start_world(Some(dir.path()))
        .await
        .expect("the simulators start");
    edit(dir.path());
    (world, dir)
}

fn append(path: &Path, text: &str) {
    let mut content = std::fs::read_to_string(path).expect("the file was just written");
    content.push_str(text);
    std::fs::write(path, content).expect("the file can be rewritten");
}

/// Reads a child's stream line by line into a channel, keeping every line for the scan.
fn lines_of(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line that `found` accepts, keeping every line seen in `seen`.
async fn wait_for_line(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: &mut Vec<String>,
    found: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let line = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("the line shows up in time")
            .expect("the command is still printing");
        seen.push(line.clone());
        if found(&line) {
            return line;
        }
    }
}

/// Collects the rest of a stream.
async fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>, seen: &mut Vec<String>) {
    while let Some(line) = rx.recv().await {
        seen.push(line);
    }
}

async fn wait_exit(child: &mut Child) -> i32 {
    tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("the command ends in time")
        .expect("the command can be waited for")
        .code()
        .expect("the command exited rather than being killed")
}

// ---------------------------------------------------------------------------------------
// The demo and what it leaves behind
// ---------------------------------------------------------------------------------------

/// `demo --keep DIR --serve`: the pass, the summary, then `status` (without credentials),
/// `retry --all` and `dry-run` on the kept files while the simulators serve, then Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_keep_serve_then_status_retry_and_dry_run() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let keep = dir.path().join("demo");
    let config = keep.join("kernel-sync.toml");
    let keep_arg = keep.to_str().expect("temporary paths are UTF-8");
    let started = Instant::now();
    let mut child = command(&config, &["demo", "--keep", keep_arg, "--serve"])
        .spawn()
        .expect("the demo starts");
    let mut out = lines_of(child.stdout.take().expect("stdout is piped"));
    let mut err = lines_of(child.stderr.take().expect("stderr is piped"));
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());

    wait_for_line(&mut out, &mut stdout, |l| {
        l.starts_with("simulators serving")
    })
    .await;
    let pass_took = started.elapsed();
    let printed = stdout.join("\n");
    assert!(
        pass_took < Duration::from_secs(60),
        "the demo took {pass_took:?}"
    );
    assert!(
        printed.contains("harvested") && printed.contains("open executions"),
        "no plain progress line without a terminal:\n{printed}"
    );
    for object in ["accounts", "leads", "prospects"] {
        assert!(
            printed.lines().any(|l| l.starts_with(object)),
            "the summary table has no row for {object}:\n{printed}"
        );
    }
    assert!(
        printed.contains("parked: salesforce rejected the update"),
        "{printed}"
    );
    assert!(printed.contains("skipped: missing inputs"), "{printed}");
    assert!(printed.contains("Next: "), "{printed}");

    // `status` reads only the store: it works with every secret gone.
    std::fs::remove_file(keep.join("demo-private-key.pem")).expect("the demo wrote its key");
    std::fs::remove_file(keep.join("demo-kernel-api-key")).expect("the demo wrote its key");
    let status = run(&config, &["status", "--json"]).await;
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    let status: serde_json::Value =
        serde_json::from_slice(&status.stdout).expect("status --json prints JSON");
    let items = |name: &str, state: &str| -> u64 {
        status["objects"]
            .as_array()
            .expect("objects is an array")
            .iter()
            .find(|o| o["name"] == name)
            .and_then(|o| o["items"][state].as_u64())
            .unwrap_or_else(|| panic!("no {state} count for {name}: {status:#}"))
    };
    assert!(items("accounts", "written") > 100, "{status:#}");
    assert!(items("leads", "skipped") > 0, "{status:#}");
    let parked = items("accounts", "parked");
    assert!(
        parked > 0,
        "the validation rule parks some accounts: {status:#}"
    );
    assert_eq!(
        status["objects"][0]["parked"][0]["reason"]
            .as_str()
            .map(|r| r.contains("FIELD_CUSTOM_VALIDATION_EXCEPTION")),
        Some(true),
        "{status:#}"
    );
    let text_status = run(&config, &["status"]).await;
    assert_eq!(text_status.status.code(), Some(0));
    assert!(text(&text_status.stdout).contains("work items"));

    let retry = run(&config, &["retry", "--all"]).await;
    assert_eq!(retry.status.code(), Some(0), "{}", text(&retry.stderr));
    let retried = text(&retry.stdout);
    assert!(
        retried.contains(&format!("{parked} parked item(s) put back to work")),
        "{retried}"
    );
    let after = run(&config, &["status", "--json"]).await;
    let after: serde_json::Value = serde_json::from_slice(&after.stdout).expect("JSON");
    let accounts = after["objects"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["name"] == "accounts"))
        .expect("accounts in status");
    assert_eq!(accounts["items"]["parked"], 0, "{after:#}");
    // A parked write goes back to `writing` (its changes are kept), anything else to `pending`.
    let back = accounts["items"]["pending"].as_u64().unwrap_or(0)
        + accounts["items"]["writing"].as_u64().unwrap_or(0);
    assert_eq!(back, parked, "{after:#}");

    // The simulators still serve: `dry-run` (which needs the secrets again) reaches them.
    std::fs::write(keep.join("demo-private-key.pem"), key_pem()).expect("key restored");
    std::fs::write(
        keep.join("demo-kernel-api-key"),
        kernel_sync::sim::kernel::DEMO_API_KEY,
    )
    .expect("key restored");
    let dry = run(
        &config,
        &["dry-run", "--object", "accounts", "--limit", "3"],
    )
    .await;
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
    assert!(
        text(&dry.stdout).contains("SELECT"),
        "{}",
        text(&dry.stdout)
    );

    // Ctrl-C ends the serving demo cleanly.
    let pid = child.id().expect("the demo is running");
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let code = wait_exit(&mut child).await;
    drain(&mut out, &mut stdout).await;
    drain(&mut err, &mut stderr).await;
    assert_eq!(code, 0, "the demo's pass ran to its end");

    let (stdout, stderr) = (stdout.join("\n"), stderr.join("\n"));
    assert_no_secrets("demo stdout", &stdout);
    assert_no_secrets("demo stderr", &stderr);
    assert_json_lines("demo", &stderr);
    for value in record_payload_values() {
        assert!(
            !stderr.contains(&value),
            "a log line carries a record value: {value}"
        );
    }
    let finished = log_lines(&stderr, "run finished");
    let objects: BTreeSet<&str> = finished
        .iter()
        .filter_map(|v| v["object_sync"].as_str())
        .collect();
    assert_eq!(
        objects,
        BTreeSet::from(["accounts", "leads", "prospects"]),
        "one info line per run per object"
    );
    for line in &finished {
        assert_eq!(line["level"], "INFO");
        assert!(
            line["written"].is_u64() && line["harvested"].is_u64(),
            "{line}"
        );
    }
}

fn key_pem() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("fixtures/auth/demo-private-key.pem"))
        .expect("the demo private key is in the repository")
}

/// `demo` without `--keep` runs from any folder (everything is in the binary) and prints its
/// summary; checked cheaply through `--help` here since the full pass runs above.
#[test]
fn demo_is_a_listed_command_with_keep_and_serve() {
    let output = std::process::Command::new(BIN)
        .args(["demo", "--help"])
        .current_dir(std::env::temp_dir())
        .output()
        .expect("the binary runs");
    assert!(output.status.success());
    let help = text(&output.stdout);
    assert!(
        help.contains("--keep") && help.contains("--serve"),
        "{help}"
    );
}

// ---------------------------------------------------------------------------------------
// Health and metrics during a pass
// ---------------------------------------------------------------------------------------

/// `once` with `[http] listen` on a free port: `/healthz`, `/readyz` and `/metrics` answer
/// while the pass runs, and the key series are there with sane values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_serves_health_and_metrics_during_the_pass() {
    let (world, dir) = world(|dir| {
        append(
            &dir.join("kernel-sync.toml"),
            "\n[http]\nlisten = \"127.0.0.1:0\"\n",
        );
    })
    .await;
    let mut child = command(&world.config, &["once"])
        .spawn()
        .expect("once starts");
    let mut out = lines_of(child.stdout.take().expect("stdout is piped"));
    let mut err = lines_of(child.stderr.take().expect("stderr is piped"));
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());

    let serving = wait_for_line(&mut err, &mut stderr, |l| l.contains("serving /healthz")).await;
    let serving: serde_json::Value = serde_json::from_str(&serving).expect("a JSON log line");
    let addr = serving["addr"]
        .as_str()
        .expect("the line names its address");
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();

    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        200,
        "{}",
        ready.text().await.unwrap_or_default()
    );

    // Scrape until Kernel has answered some submissions and records have been written; the
    // pass takes several seconds, so this happens while it runs.
    let deadline = Instant::now() + PATIENCE;
    let metrics = loop {
        let body = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("the listener serves during the pass")
            .text()
            .await
            .expect("a text body");
        let written = value(&body, "kernel_sync_records_written_total", &[]);
        let kernel_ok = value(
            &body,
            "kernel_sync_kernel_requests_total",
            &["endpoint=\"POST enrichment\"", "outcome=\"ok\""],
        );
        if written.unwrap_or(0.0) > 0.0 && kernel_ok.unwrap_or(0.0) > 0.0 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the series never showed up:\n{body}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let open = value(&metrics, "kernel_sync_kernel_open_executions", &[]).expect("open");
    assert!((0.0..=200.0).contains(&open), "open executions {open}");
    let ratio = value(&metrics, "kernel_sync_kernel_slot_use_ratio", &[]).expect("slot use");
    assert!((0.0..=1.0).contains(&ratio), "slot use {ratio}");
    let written = value(
        &metrics,
        "kernel_sync_work_items",
        &["object_sync=\"accounts\"", "state=\"written\""],
    )
    .expect("work items by state");
    assert!(written >= 0.0);
    let queries = value(
        &metrics,
        "kernel_sync_salesforce_api_calls_total",
        &["endpoint=\"query\"", "outcome=\"ok\""],
    )
    .expect("salesforce calls by endpoint");
    assert!(
        queries >= 3.0,
        "one harvest query per object at least: {queries}"
    );
    assert!(
        metrics.contains("kernel_sync_enrichment_duration_seconds_bucket"),
        "no enrichment histogram:\n{metrics}"
    );
    assert!(metrics.contains("kernel_sync_harvest_lag_seconds{object_sync=\"leads\"}"));
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        // Low cardinality: no label carries a Salesforce record id.
        for prefix in ["\"001", "\"00Q", "\"a00"] {
            assert!(!line.contains(prefix), "a record id in a label: {line}");
        }
    }

    let code = wait_exit(&mut child).await;
    drain(&mut out, &mut stdout).await;
    drain(&mut err, &mut stderr).await;
    let (stdout, stderr) = (stdout.join("\n"), stderr.join("\n"));
    // The demo org's validation rule parks a few accounts: exit 1.
    assert_eq!(code, 1, "{stderr}");
    assert_no_secrets("once stdout", &stdout);
    assert_no_secrets("once stderr", &stderr);
    assert_json_lines("once", &stderr);
    drop(world);
    drop(dir);
}

/// The value of the series `name` whose labels include every one of `labels`.
fn value(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

// ---------------------------------------------------------------------------------------
// Exit codes
// ---------------------------------------------------------------------------------------

/// `once` with a Kernel key the simulator does not know: 3, naming Kernel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_with_a_wrong_kernel_key_exits_3() {
    let (world, _dir) = world(|dir| {
        std::fs::write(dir.join("demo-kernel-api-key"), WRONG_KERNEL_KEY).expect("key written");
    })
    .await;
    let output = run(&world.config, &["once", "--object", "prospects"]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let failed = log_lines(&stderr, "command failed");
    assert_eq!(
        failed.len(),
        1,
        "one JSON line reports the failure: {stderr}"
    );
    assert_eq!(failed[0]["exit_code"], 3);
    let error = failed[0]["error"].as_str().expect("the error is a string");
    assert!(error.contains("kernel"), "{error}");
}

/// The Kernel simulator answers a refused key with 401 and keeps serving (it once held its
/// lock across the answer and hung).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kernel_simulator_answers_401_and_keeps_serving() {
    let (world, _dir) = world(|_| {}).await;
    let url = world
        .kernel
        .base_url()
        .join(kernel_sync::kernel::client::ENRICHMENT_PATH)
        .expect("the simulator's URL takes the path");
    let http = reqwest::Client::new();
    for key in [
        WRONG_KERNEL_KEY,
        WRONG_KERNEL_KEY,
        kernel_sync::sim::kernel::DEMO_API_KEY,
    ] {
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            http.get(url.clone())
                .query(&[("executionId", "00000000-0000-4000-8000-000000000000")])
                .header("x-api-key", key)
                .send(),
        )
        .await
        .expect("the simulator answers in time")
        .expect("the simulator answers");
        let refused = key == WRONG_KERNEL_KEY;
        assert_eq!(
            answer.status() == 401,
            refused,
            "{key}: {}",
            answer.status()
        );
    }
}

/// `check` on a mapping that targets a field the org lacks: 2, the problem listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_lists_a_broken_mapping_and_exits_2() {
    let (world, _dir) = world(|dir| {
        append(
            &dir.join("lead.toml"),
            "\n[[fields]]\ntarget = \"Kernel_Revenue_Band__c\"\nsource = \"revenueBand\"\n\
             convert = \"text\"\noverwrite = \"always\"\n",
        );
    })
    .await;
    let output = run(&world.config, &["check"]).await;
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("accounts: mapping and filter ok"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("  - leads") && l.contains("Kernel_Revenue_Band__c")),
        "{stderr}"
    );
}

/// `check` with a damaged private key: 2, and not one line of the key in the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_with_a_damaged_private_key_exits_2_without_printing_it() {
    let (world, _dir) = world(|dir| {
        let pem = key_pem();
        let damaged: Vec<&str> = pem.lines().filter(|l| l.len() != 64).collect();
        std::fs::write(dir.join("demo-private-key.pem"), damaged.join("\n")).expect("written");
    })
    .await;
    let output = run(&world.config, &["check"]).await;
    let stderr = text(&output.stderr);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("private key"), "{stdout}");
}

/// A deployment file that does not load: 2 before anything is contacted.
#[tokio::test]
async fn once_on_a_broken_deployment_file_exits_2() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = dir.path().join("kernel-sync.toml");
    std::fs::write(&config, "[kernel]\nrequests_per_second = \"fast\"\n").expect("written");
    let output = run(&config, &["once"]).await;
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let failed = log_lines(&stderr, "command failed");
    let error = failed
        .first()
        .and_then(|f| f["error"].as_str())
        .unwrap_or_default();
    assert!(error.contains("kernel.requests_per_second"), "{stderr}");
}

/// With text logs a failure is plain text for a person: the error and where keys are described.
#[test]
fn a_failure_in_text_mode_is_plain_text_with_the_fix() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = dir.path().join("kernel-sync.toml");
    std::fs::write(&config, "[kernel]\nmax_in_flight = 0\n").expect("written");
    let output = std::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("status")
        .env_remove("RUST_LOG")
        .env_remove("KERNEL_SYNC_LOG_FORMAT")
        .output()
        .expect("the binary runs");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("kernel.max_in_flight"), "{stderr}");
    assert!(stderr.contains("the README"), "{stderr}");
}

// ---------------------------------------------------------------------------------------
// README
// ---------------------------------------------------------------------------------------

/// Every key of `config.example.toml` (commented ones included) and of the mapping examples
/// is explained in the README.
#[test]
fn readme_explains_every_settings_key() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let mut keys = BTreeSet::new();
    let example = std::fs::read_to_string(Path::new(ROOT).join("config.example.toml"))
        .expect("config.example.toml");
    for line in example.lines() {
        let line = line.trim_start_matches('#').trim();
        if let Some(table) = line.strip_prefix('[') {
            keys.insert(table.trim_matches(['[', ']']).to_owned());
        } else if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                keys.insert(key.to_owned());
            }
        }
    }
    let mappings: Vec<PathBuf> = ["account.toml", "lead.toml", "prospect_company.toml"]
        .iter()
        .map(|m| Path::new(ROOT).join("fixtures/mappings").join(m))
        .collect();
    for path in &mappings {
        let text = std::fs::read_to_string(path).expect("a mapping example");
        let value: toml::Table = toml::from_str(&text).expect("the mapping example parses");
        collect_keys(&value, &mut keys);
        // Commented-out keys are options too (`email_domain`).
        for line in text.lines().filter_map(|l| l.trim().strip_prefix('#')) {
            if let Some((key, _)) = line.split_once('=') {
                let key = key.trim();
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    keys.insert(key.to_owned());
                }
            }
        }
    }
    assert!(keys.len() > 50, "the key scan found too few keys: {keys:?}");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| {
            // A table is documented as `[name]` or `[[name]]`, a key as `name`.
            [format!("`{k}`"), format!("`[{k}]`"), format!("`[[{k}]]`")]
                .iter()
                .all(|form| !readme.contains(form.as_str()))
        })
        .collect();
    assert!(missing.is_empty(), "README.md does not explain {missing:?}");
}

fn collect_keys(table: &toml::Table, keys: &mut BTreeSet<String>) {
    for (key, value) in table {
        keys.insert(key.clone());
        // `values` maps Kernel's words to picklist values: its keys are data, not settings.
        if key == "values" {
            continue;
        }
        match value {
            toml::Value::Table(inner) => collect_keys(inner, keys),
            toml::Value::Array(items) => {
                for item in items {
                    if let toml::Value::Table(inner) = item {
                        collect_keys(inner, keys);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The README's test command is the one `.ci/run` runs.
#[test]
fn readme_test_command_is_the_ci_command() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let ci = std::fs::read_to_string(Path::new(ROOT).join(".ci/run")).expect(".ci/run");
    assert!(readme.contains("cargo test --locked"));
    assert!(ci.lines().any(|l| l.trim() == "cargo test --locked"));
    assert!(readme.contains("cargo run --release -- demo"));
}

/// The session-token scan itself finds what it is for.
#[test]
fn the_token_scan_finds_a_session_id() {
    let token = format!("00D000000000001!{}", "A1b2C3d4".repeat(12));
    assert_eq!(
        find_session_token(&format!("x {token} y")),
        Some(token.clone())
    );
    assert_eq!(find_session_token("Hello! world"), None);
    assert_eq!(find_session_token("record 001000000000011AAA!"), None);
}

/// `sim kernel --config FILE` and `sim salesforce`: each prints its address, answers there,
/// and stops on Ctrl-C. (`--config` here names the simulator's settings, not a deployment.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sim_commands_serve_until_ctrl_c() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = dir.path().join("kernel-sim.toml");
    std::fs::write(&settings, "requests_per_second = 50\n").expect("write settings");
    let http = reqwest::Client::new();
    for (args, probe) in [
        (
            vec!["sim", "kernel", "--listen", "127.0.0.1:0"],
            "api/v1/inbound/enrichment",
        ),
        (
            vec!["sim", "salesforce", "--listen", "127.0.0.1:0"],
            "services/data/v62.0/limits",
        ),
    ] {
        let mut cmd = command(&settings, &args);
        let mut child = cmd.spawn().expect("the simulator starts");
        let mut out = lines_of(child.stdout.take().expect("stdout"));
        let mut err = lines_of(child.stderr.take().expect("stderr"));
        let mut stdout = Vec::new();
        let line = wait_for_line(&mut out, &mut stdout, |l| l.contains("listening on")).await;
        let base = line
            .rsplit(' ')
            .next()
            .expect("an address")
            .trim_end_matches('/')
            .to_owned();

        // Without credentials both answer 401: they are up and they check.
        let status = http
            .get(format!("{base}/{probe}"))
            .send()
            .await
            .expect("answers")
            .status();
        assert_eq!(status.as_u16(), 401, "{args:?}");

        let pid = child.id().expect("running");
        let kill = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(kill.success());
        assert_eq!(wait_exit(&mut child).await, 0, "{args:?}");
        let mut stderr = Vec::new();
        drain(&mut out, &mut stdout).await;
        drain(&mut err, &mut stderr).await;
        assert_no_secrets(&format!("{args:?}"), &stderr.join("\n"));
    }
}

/// `once` against a Kernel that cannot be reached ends at `--max-wait` with exit 3, telling
/// an unreachable service apart from parked records, and leaves the work queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_with_kernel_unreachable_exits_3() {
    // A port nothing listens on: bind one, then let it go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = closed.local_addr().expect("its address");
    drop(closed);
    let (world, _dir) = world(|dir| {
        let path = dir.join("kernel-sync.toml");
        let text = std::fs::read_to_string(&path).expect("deployment");
        let start = text.find("base_url = ").expect("base_url");
        let end = start + text[start..].find('\n').expect("line end");
        let edited = format!(
            "{}base_url = \"http://{address}\"{}",
            &text[..start],
            &text[end..]
        );
        std::fs::write(&path, edited).expect("deployment written");
    })
    .await;
    let output = run(
        &world.config,
        &["once", "--object", "prospects", "--max-wait", "12s"],
    )
    .await;
    assert_eq!(output.status.code(), Some(3), "{}", text(&output.stderr));
    let finished = log_lines(&text(&output.stderr), "run finished");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["written"], 0);
    assert!(finished[0]["left_active"].as_u64().unwrap_or(0) > 0);
}
