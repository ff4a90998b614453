//! The configuration as an operator meets it: the shipped example and mappings load, and each
//! broken file is answered with the exact problem, its file and its line.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kernel_sync::config::{
    self, Conversion, EmailInput, Overwrite, SalesforceAuth, SecretSource, Source, StoreBackend,
};

const DEPLOYMENT_PATH: &str = "/srv/kernel-sync/kernel-sync.toml";
const MAPPING_PATH: &str = "/srv/kernel-sync/account.toml";

/// A valid deployment file; the table cases break one line of it.
const DEPLOYMENT: &str = r#"[salesforce]
api_version = "62.0"

[salesforce.auth]
flow = "jwt_bearer"
client_id = "3MVG9TESTKEY"
username = "sync@acme-industries.example"
private_key_env = "SF_PRIVATE_KEY"

[kernel]
api_key_env = "KERNEL_API_KEY"

[[objects]]
name = "accounts"
mapping = "account.toml"
"#;

/// A valid mapping file; the table cases break one line of it.
const MAPPING: &str = r#"object = "Account"
schedule = "0 */15 * * * *"

[inputs]
name = "Name"
website = "Website"

[[fields]]
target = "Industry"
source = "industry"
convert = "picklist"
"#;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Loads `deployment` as if it were at [`DEPLOYMENT_PATH`], with `mapping` as its only mapping
/// file; returns the problems, one rendered line each.
fn problems(deployment: &str, mapping: &str) -> Vec<String> {
    let read = |path: &Path| {
        if path == Path::new(MAPPING_PATH) {
            Ok(mapping.to_owned())
        } else {
            Err(io::Error::from(io::ErrorKind::NotFound))
        }
    };
    match config::load_from_str(deployment, Path::new(DEPLOYMENT_PATH), read) {
        Ok(_) => vec![],
        Err(error) => error.problems().iter().map(ToString::to_string).collect(),
    }
}

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the base file has no `{from}`");
    text.replacen(from, to, 1)
}

#[test]
fn the_example_config_and_its_mappings_load() {
    let settings = config::load(&repo_root().join("config.example.toml"))
        .unwrap_or_else(|error| panic!("config.example.toml must load:\n{error}"));

    assert_eq!(settings.salesforce.api_version, "62.0");
    assert_eq!(
        settings.store.backend,
        StoreBackend::Sqlite {
            path: repo_root().join("kernel-sync.sqlite")
        }
    );
    assert!(matches!(
        settings.salesforce.auth,
        SalesforceAuth::JwtBearer { .. }
    ));
    assert_eq!(
        settings.kernel.api_key,
        SecretSource::Env("KERNEL_API_KEY".to_owned())
    );
    assert_eq!(
        settings.kernel.poll.give_up_after,
        Duration::from_secs(24 * 3600)
    );
    let names: Vec<&str> = settings.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["accounts", "leads", "prospect-companies"]);

    let accounts = settings
        .object("accounts")
        .expect("the example configures accounts");
    assert_eq!(
        accounts.input_fields(),
        ["Name", "Website", "Kernel_LinkedIn_URL__c"]
    );
    assert_eq!(
        accounts.refresh_after,
        Some(Duration::from_secs(90 * 86_400))
    );
    let industry = &accounts.fields[0];
    assert_eq!(industry.convert, Conversion::Picklist);
    assert_eq!(industry.picklist_map["Software"], "Technology");
    assert_eq!(industry.confidence.as_ref().map(|gate| gate.min), Some(0.7));
    let used: Vec<Conversion> = settings
        .objects
        .iter()
        .flat_map(|object| object.fields.iter().map(|field| field.convert))
        .collect();
    assert!(
        Conversion::ALL.iter().all(|c| used.contains(c)),
        "the fixtures use every conversion"
    );
    let policies = [Overwrite::Always, Overwrite::IfEmpty, Overwrite::Never];
    assert!(
        policies
            .iter()
            .all(|p| accounts.fields.iter().any(|f| f.overwrite == *p))
    );
    let open_roles = accounts
        .fields
        .iter()
        .find(|f| f.target == "Kernel_Open_Roles__c");
    assert_eq!(
        open_roles.map(|f| &f.source),
        Some(&Source::Pointer("/signals/openRoles".to_owned()))
    );

    let leads = settings
        .object("leads")
        .expect("the example configures leads");
    assert_eq!(
        leads.inputs.email,
        Some(EmailInput::Address("Email".to_owned()))
    );
    assert_eq!(leads.schedule, "0 */5 * * * *");
    let prospects = settings
        .object("prospect-companies")
        .expect("the example has prospects");
    assert_eq!(prospects.filter, None);
    assert_eq!(prospects.max_attempts, settings.kernel.max_attempts);
    assert!(prospects.target_fields().contains(&"Summary__c"));
}

#[test]
fn the_base_files_of_the_table_are_valid() {
    assert_eq!(problems(DEPLOYMENT, MAPPING), Vec::<String>::new());
}

#[test]
fn broken_deployment_files_are_answered_with_file_line_key_and_fix() {
    let d = DEPLOYMENT_PATH;
    let cases: Vec<(&str, String, String)> = vec![
        (
            "unknown top-level key",
            format!("colour = \"blue\"\n{DEPLOYMENT}"),
            format!(
                "{d}:1: colour: unknown key `colour` at the top level; valid keys: store, \
                 salesforce, kernel, http, objects"
            ),
        ),
        (
            "unknown nested key",
            replace(
                DEPLOYMENT,
                "api_key_env = \"KERNEL_API_KEY\"",
                "api_key_env = \"K\"\nrps = 5",
            ),
            format!(
                "{d}:12: kernel.rps: unknown key `rps` in [kernel]; valid keys: base_url, \
                 api_key_env, api_key_file, requests_per_second, max_in_flight, \
                 request_timeout, max_attempts, poll"
            ),
        ),
        (
            "secret written in the file",
            replace(
                DEPLOYMENT,
                "api_key_env = \"KERNEL_API_KEY\"",
                "api_key = \"sk-live-42\"",
            ),
            format!(
                "{d}:11: kernel.api_key: `api_key` would put a secret in the config file: name \
                 an environment variable with `api_key_env` or a file with `api_key_file` instead"
            ),
        ),
        (
            "client secret written in the file",
            replace(
                DEPLOYMENT,
                "flow = \"jwt_bearer\"",
                "flow = \"jwt_bearer\"\nclient_secret \
                = \"x\"",
            ),
            format!(
                "{d}:6: salesforce.auth.client_secret: `client_secret` would put a secret in the \
                 config file: name an environment variable with `client_secret_env` or a file \
                 with `client_secret_file` instead"
            ),
        ),
        (
            "bad duration",
            replace(
                DEPLOYMENT,
                "[kernel]\n",
                "[kernel]\nrequest_timeout = \"30 sec\"\n",
            ),
            format!(
                "{d}:11: kernel.request_timeout: invalid duration `30 sec`: expected whole \
                 numbers with the units s, m, h or d, largest first (e.g. 30s, 10m, 1h30m, 90d)"
            ),
        ),
        (
            "bad api version",
            replace(DEPLOYMENT, "\"62.0\"", "\"v62\""),
            format!(
                "{d}:2: salesforce.api_version: invalid api version `v62`: expected \
                 digits.digits, e.g. 62.0"
            ),
        ),
        (
            "api version too old",
            replace(DEPLOYMENT, "\"62.0\"", "\"40.0\""),
            format!(
                "{d}:2: salesforce.api_version: api version 40.0 is too old: sObject \
                 Collections need 42.0 or later"
            ),
        ),
        (
            "batch size out of range",
            replace(
                DEPLOYMENT,
                "api_version = \"62.0\"",
                "query_batch_size = 100",
            ),
            format!(
                "{d}:2: salesforce.query_batch_size: 100 is out of range: expected an integer \
                 from 200 to 2000"
            ),
        ),
        (
            "api share out of range",
            replace(
                DEPLOYMENT,
                "api_version = \"62.0\"",
                "daily_api_share = 1.5",
            ),
            format!(
                "{d}:2: salesforce.daily_api_share: 1.5 is out of range: expected a share above \
                 0 and at most 1 (e.g. 0.8)"
            ),
        ),
        (
            "two sources for one secret",
            replace(
                DEPLOYMENT,
                "private_key_env = \"SF_PRIVATE_KEY\"",
                "private_key_env = \"SF_PRIVATE_KEY\"\nprivate_key_file = \"sf.pem\"",
            ),
            format!(
                "{d}:8: salesforce.auth.private_key_env: set only one of `private_key_env` and \
                 `private_key_file`"
            ),
        ),
        (
            "a pasted secret instead of a variable name",
            replace(
                DEPLOYMENT,
                "\"SF_PRIVATE_KEY\"",
                "\"-----BEGIN PRIVATE KEY-----\"",
            ),
            format!(
                "{d}:8: salesforce.auth.private_key_env: is not an environment variable name \
                 (letters, digits and underscores, e.g. KERNEL_API_KEY): name the variable that \
                 holds the secret, not the secret"
            ),
        ),
        (
            "jwt bearer without a username",
            replace(
                DEPLOYMENT,
                "username = \"sync@acme-industries.example\"\n",
                "",
            ),
            format!("{d}:4: salesforce.auth.username: missing: the integration user's username"),
        ),
        (
            "client credentials without a secret",
            replace(
                &replace(DEPLOYMENT, "jwt_bearer", "client_credentials"),
                "username = \"sync@acme-industries.example\"\nprivate_key_env = \
                    \"SF_PRIVATE_KEY\"\n",
                "",
            )
            .replace(
                "api_version = \"62.0\"",
                "login_url = \"https://acme.my.salesforce.com\"",
            ),
            format!(
                "{d}:4: salesforce.auth: missing `client_secret_env` or `client_secret_file`: \
                 the environment variable or the file that holds the client secret"
            ),
        ),
        (
            "client credentials against the shared login host",
            replace(
                &replace(DEPLOYMENT, "jwt_bearer", "client_credentials"),
                "username = \"sync@acme-industries.example\"\nprivate_key_env = \"SF_PRIVATE_KEY\"",
                "client_secret_env = \"SF_SECRET\"",
            ),
            format!(
                "{d}:5: salesforce.login_url: the client_credentials flow needs the org's My \
                 Domain URL as login_url (e.g. https://acme.my.salesforce.com), not the shared \
                 login host"
            ),
        ),
        (
            "refresh token flow with a jwt key",
            replace(DEPLOYMENT, "jwt_bearer", "refresh_token")
                .replace("username = \"sync@acme-industries.example\"\n", "")
                .replace("private_key_env", "refresh_token_env")
                .replace("client_id", "private_key_file = \"k.pem\"\nclient_id"),
            format!(
                "{d}:6: salesforce.auth.private_key_file: not used by the refresh_token \
                flow: remove it"
            ),
        ),
        (
            "unknown flow",
            replace(DEPLOYMENT, "\"jwt_bearer\"", "\"password\""),
            format!(
                "{d}:5: salesforce.auth.flow: unknown flow `password`: expected one of \
                 jwt_bearer, client_credentials, refresh_token"
            ),
        ),
        (
            "plain http to a remote host",
            replace(
                DEPLOYMENT,
                "[kernel]\n",
                "[kernel]\nbase_url = \
                \"http://api.kernel.example\"\n",
            ),
            format!(
                "{d}:11: kernel.base_url: invalid url for host `api.kernel.example`: expected \
                 an https url (http only for 127.0.0.1 or localhost)"
            ),
        ),
        (
            "password in the store url",
            format!("[store]\nurl = \"postgres://sync:hunter2@db.example/ks\"\n{DEPLOYMENT}"),
            format!(
                "{d}:2: store.url: the store url must not hold a password: set PGPASSWORD or \
                 use a ~/.pgpass file"
            ),
        ),
        (
            "jitter out of range",
            format!("{DEPLOYMENT}\n[kernel.poll]\njitter = 1.0\n"),
            format!(
                "{d}:18: kernel.poll.jitter: 1 is out of range: expected a share from 0 to \
                 below 1 (e.g. 0.2)"
            ),
        ),
        (
            "bad listen address",
            format!("[http]\nlisten = \"localhost\"\n{DEPLOYMENT}"),
            format!(
                "{d}:2: http.listen: invalid listen address `localhost`: expected IP:PORT, e.g. \
                 127.0.0.1:9464"
            ),
        ),
        (
            "mistyped value",
            replace(
                DEPLOYMENT,
                "[kernel]\n",
                "[kernel]\nmax_in_flight = \"many\"\n",
            ),
            format!(
                "{d}:11: kernel.max_in_flight: invalid type: string \"many\", expected an \
                integer"
            ),
        ),
        (
            "duplicate object names",
            format!("{DEPLOYMENT}\n[[objects]]\nname = \"accounts\"\nmapping = \"account.toml\"\n"),
            format!(
                "{d}:18: objects[1].name: `accounts` names two object syncs: names must be \
                unique"
            ),
        ),
        (
            "invalid object name",
            replace(DEPLOYMENT, "\"accounts\"", "\"Key Accounts\""),
            format!(
                "{d}:14: objects[0].name: invalid name `Key Accounts`: expected lowercase \
                 letters, digits, `_` and `-` (at most 64), e.g. accounts"
            ),
        ),
        (
            "missing mapping file",
            replace(DEPLOYMENT, "\"account.toml\"", "\"mappings/acount.toml\""),
            format!(
                "{d}:15: objects[0].mapping: cannot read mapping file \
                 /srv/kernel-sync/mappings/acount.toml: no such file"
            ),
        ),
    ];

    for (name, deployment, expected) in &cases {
        assert_eq!(
            problems(deployment, MAPPING),
            std::slice::from_ref(expected),
            "case: {name}"
        );
    }
    assert!(cases.len() >= 20);
}

#[test]
fn broken_mapping_files_are_answered_with_file_line_key_and_fix() {
    let m = MAPPING_PATH;
    let lead = |text: &str| replace(text, "\"Account\"", "\"Lead\"");
    let cases: Vec<(&str, String, String)> = vec![
        (
            "cron without seconds",
            replace(MAPPING, "\"0 */15 * * * *\"", "\"*/15 * * * *\""),
            format!(
                "{m}:2: schedule: invalid cron schedule `*/15 * * * *`: it has 5 fields but the \
                 seconds come first: expected 6 fields (sec min hour day month weekday), e.g. \
                 \"0 */15 * * * *\" for every 15 minutes"
            ),
        ),
        (
            "unknown conversion",
            replace(MAPPING, "\"picklist\"", "\"percentage\""),
            format!(
                "{m}:11: fields[0].convert: unknown conversion `percentage`: expected one of \
                 text, number, integer, percent, boolean, date, picklist"
            ),
        ),
        (
            "values on a text field",
            replace(
                MAPPING,
                "\"picklist\"",
                "\"text\"\nvalues = { \"Software\" = \"Technology\" }",
            ),
            format!(
                "{m}:12: fields[0].values: applies to picklist only, not to text: remove it or \
                 use convert = \"picklist\""
            ),
        ),
        (
            "separator on a picklist",
            replace(MAPPING, "\"picklist\"", "\"picklist\"\nseparator = \"; \""),
            format!("{m}:12: fields[0].separator: applies to text only, not to picklist"),
        ),
        (
            "a lead's own name as the company name",
            lead(MAPPING),
            format!(
                "{m}:5: inputs.name: Lead.Name is a person's name; only company data may be sent \
                 to Kernel: use Company"
            ),
        ),
        (
            "an email address as the website",
            replace(&lead(MAPPING), "\"Name\"", "\"Company\"").replace("\"Website\"", "\"Email\""),
            format!(
                "{m}:6: inputs.website: Lead.Email is an email address; only company data may be \
                 sent to Kernel: map it under inputs.email, which sends only the domain"
            ),
        ),
        (
            "a phone number as the linkedin url",
            replace(
                MAPPING,
                "website = \"Website\"",
                "website = \"Website\"\nlinkedin_url = \"MobilePhone\"",
            ),
            format!(
                "{m}:7: inputs.linkedin_url: Account.MobilePhone is a phone number; only company \
                 data may be sent to Kernel: remove it"
            ),
        ),
        (
            "the standard email field as a domain",
            replace(
                MAPPING,
                "website = \"Website\"",
                "website = \"Website\"\nemail_domain = \"Email\"",
            ),
            format!(
                "{m}:7: inputs.email_domain: Account.Email is an email address; only company data \
                 may be sent to Kernel: map it under inputs.email, which sends only the domain"
            ),
        ),
        (
            "both email keys",
            replace(
                MAPPING,
                "website = \"Website\"",
                "website = \"Website\"\nemail = \"Email\"\nemail_domain = \"Email_Domain__c\"",
            ),
            format!("{m}:8: inputs.email_domain: set only one of `email` and `email_domain`"),
        ),
        (
            "inputs Kernel cannot use",
            replace(MAPPING, "website = \"Website\"\n", ""),
            format!("{m}:4: inputs: Kernel needs `linkedin_url`, or both `name` and `website`"),
        ),
        (
            "duplicate targets",
            format!(
                "{MAPPING}\n[[fields]]\ntarget = \"Industry\"\nsource = \"industry\"\nconvert \
                    = \"text\"\n"
            ),
            format!(
                "{m}:14: fields[1].target: Industry is mapped twice: keep one [[fields]] for it"
            ),
        ),
        (
            "an input as a target",
            replace(MAPPING, "\"Industry\"", "\"Website\""),
            format!(
                "{m}:9: fields[0].target: Website is an input of this mapping: writing it would \
                 change the record's fingerprint and enrich it again"
            ),
        ),
        (
            "confidence minimum above 1",
            replace(
                MAPPING,
                "\"picklist\"",
                "\"picklist\"\nconfidence = { source = \"industryConfidence\", min = 1.5 }",
            ),
            format!(
                "{m}:12: fields[0].confidence.min: 1.5 is out of range: expected a confidence \
                    from 0 to 1"
            ),
        ),
        (
            "lookback too short",
            replace(MAPPING, "\n\n[inputs]", "\nlookback = \"5s\"\n\n[inputs]"),
            format!("{m}:3: lookback: 5s is out of range: expected at least 10s"),
        ),
        (
            "refresh too often",
            replace(
                MAPPING,
                "\n\n[inputs]",
                "\nrefresh_after = \"12h\"\n\n[inputs]",
            ),
            format!("{m}:3: refresh_after: 12h is out of range: expected at least 1d"),
        ),
        (
            "filter with a limit",
            replace(
                MAPPING,
                "\n\n[inputs]",
                "\nfilter = \"Type = 'Prospect' LIMIT 10\"\n\n[inputs]",
            ),
            format!(
                "{m}:3: filter: must not contain LIMIT: the engine orders and pages the query \
                 itself; give a condition only"
            ),
        ),
        (
            "object name with a space",
            replace(MAPPING, "\"Account\"", "\"Key Account\""),
            format!(
                "{m}:1: object: `Key Account` is not an API name: expected a Salesforce API name: \
                 letters, digits and single underscores, starting with a letter, with an optional \
                 namespace prefix and suffix (e.g. Industry, Kernel_Score__c, acme__Tier__c)"
            ),
        ),
        (
            "unknown key in a field",
            replace(
                MAPPING,
                "\"picklist\"",
                "\"picklist\"\noverwrit = \"always\"",
            ),
            format!(
                "{m}:12: fields[0].overwrit: unknown key `overwrit` in [[fields]]; valid keys: \
                 target, source, convert, values, overwrite, confidence, max_length, separator"
            ),
        ),
        (
            "bad overwrite policy",
            replace(
                MAPPING,
                "\"picklist\"",
                "\"picklist\"\noverwrite = \"sometimes\"",
            ),
            format!(
                "{m}:12: fields[0].overwrite: unknown overwrite policy `sometimes`: expected one \
                 of always, if_empty, never"
            ),
        ),
        (
            "bad JSON pointer",
            replace(MAPPING, "\"industry\"", "\"/signals//openRoles\""),
            format!(
                "{m}:10: fields[0].source: invalid JSON pointer `/signals//openRoles`: \
                    expected e.g. /signals/openRoles"
            ),
        ),
    ];

    for (name, mapping, expected) in &cases {
        assert_eq!(
            problems(DEPLOYMENT, mapping),
            std::slice::from_ref(expected),
            "case: {name}"
        );
    }
    assert!(cases.len() >= 20);
}

#[test]
fn every_problem_of_every_file_is_reported_at_once() {
    let deployment = DEPLOYMENT.replace("\"62.0\"", "\"sixty-two\"").replace(
        "[kernel]\n",
        "[kernel]\nrequests_per_second = 0\nburst = 3\n",
    );
    let mapping = MAPPING
        .replace("\"0 */15 * * * *\"", "\"every 15 minutes\"")
        .replace("\"Industry\"", "\"Industry\"\ncolour = \"red\"")
        .replace("\"picklist\"", "\"percentage\"");

    let found = problems(&deployment, &mapping);

    let keys: Vec<&str> = found
        .iter()
        .map(|p| p.split(": ").nth(1).unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        [
            "kernel.burst",
            "salesforce.api_version",
            "kernel.requests_per_second",
            "fields[0].colour",
            "schedule",
            "fields[0].convert",
        ],
        "{found:#?}"
    );
}

#[test]
fn the_whole_error_is_printable_and_leaks_no_secret() {
    let deployment = replace(
        DEPLOYMENT,
        "api_key_env = \"KERNEL_API_KEY\"",
        "api_key = \"sk-live-42\"",
    )
    .replace("[store]", "")
        + "\n[store]\nurl = \"postgres://sync:hunter2@db.example/ks\"\n";
    let read = |_: &Path| Ok(MAPPING.to_owned());
    let error = config::load_from_str(&deployment, Path::new(DEPLOYMENT_PATH), read)
        .expect_err("two problems");
    let text = format!("{error} {error:?}");
    assert!(
        text.starts_with("2 problems in the configuration:\n  "),
        "{text}"
    );
    assert!(
        !text.contains("sk-live-42") && !text.contains("hunter2"),
        "a secret leaked: {text}"
    );
}

#[test]
fn an_unreadable_deployment_file_is_named() {
    let path = repo_root().join("no-such-kernel-sync.toml");
    let error = config::load(&path).expect_err("the file does not exist");
    assert_eq!(error.kind(), config::ConfigErrorKind::Unreadable);
    assert_eq!(
        error.to_string(),
        format!("cannot read config file {}", path.display())
    );
}

#[test]
fn relative_paths_start_at_the_deployment_files_folder() {
    let deployment = replace(
        DEPLOYMENT,
        "private_key_env = \"SF_PRIVATE_KEY\"",
        "private_key_file = \"keys/sf.pem\"",
    ) + "\n[store]\nurl = \"sqlite://state/ks.sqlite?mode=rwc\"\n";
    let read = |_: &Path| Ok(MAPPING.to_owned());
    let settings = config::load_from_str(&deployment, Path::new(DEPLOYMENT_PATH), read)
        .expect("the deployment is valid");
    assert_eq!(
        settings.store.url,
        "sqlite:///srv/kernel-sync/state/ks.sqlite?mode=rwc"
    );
    let SalesforceAuth::JwtBearer {
        private_key,
        audience,
        ..
    } = &settings.salesforce.auth
    else {
        panic!("the flow is jwt_bearer");
    };
    assert_eq!(
        private_key,
        &SecretSource::File(PathBuf::from("/srv/kernel-sync/keys/sf.pem"))
    );
    assert_eq!(audience, "https://login.salesforce.com");
    assert_eq!(
        settings.objects[0].mapping_path,
        PathBuf::from(MAPPING_PATH)
    );
}
