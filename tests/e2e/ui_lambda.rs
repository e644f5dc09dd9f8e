//! The operator UI as a Lambda function (`functions/ui`, binary
//! `quper-pages`), with its session secret in Secrets Manager (moto, over
//! HTTP, on the endpoint of `QUPER_TEST_DYNAMODB_ENDPOINT`):
//!
//! - `quper_lambda::session_secret` reads the secret named by
//!   `QUPER_SESSION_SECRET_ARN` into `HttpConfig::session_secret`; a secret
//!   too short, missing or unreadable fails start-up with a message that
//!   names the setting and never the value; `QUPER_SESSION_SECRET` wins.
//! - The real binary, behind a Lambda Runtime API stub, reads its secret at
//!   cold start and answers the API Gateway events `events/ui-login-get.json`
//!   (200, the sign-in page, its CSRF token made with that very secret) and
//!   `events/ui-dashboard-get.json` (303 to `/login?next=/dashboard`); given
//!   a short secret it exits before taking any event, naming the setting.

use quper_lambda::session_secret::{
    SECRETS_MANAGER_ENDPOINT_ENV, SESSION_SECRET_ARN_ENV, SESSION_SECRET_ENV, SecretsManagerClient,
    http_config_from_lookup, secrets_manager_client_with_endpoint,
};
use serde_json::Value;

use crate::shared_table::{Moto, Outcome, Process, RuntimeStub, binary, command, event};
use crate::support::{DYNAMODB_ENDPOINT_ENV, dynamodb_client, unique_table_name};

/// 48 characters, as a deployment's generated secret (64) is comfortably more than 32.
const GOOD_SECRET: &str = "ui-lambda-session-secret-0123456789abcdefghijklm";
/// 31 characters: one short.
const SHORT_SECRET: &str = "too-short-session-secret-012345";
const FUNCTION: &str = "quper-pages";

/// The moto endpoint (panics, never skips, when it is unset).
async fn moto_endpoint() -> String {
    // dynamodb_client() panics with the how-to when the endpoint is unset.
    let _ = dynamodb_client().await;
    std::env::var(DYNAMODB_ENDPOINT_ENV).expect("dynamodb_client checked the endpoint")
}

async fn secrets_client(endpoint: &str) -> SecretsManagerClient {
    secrets_manager_client_with_endpoint(Some(endpoint.to_owned())).await
}

/// A new secret holding `value`; its ARN.
async fn create_secret(client: &SecretsManagerClient, value: &str) -> String {
    let created = client
        .create_secret()
        .name(unique_table_name("ui-session-secret"))
        .secret_string(value)
        .send()
        .await
        .expect("create the secret in moto");
    created.arn.expect("the new secret's ARN")
}

/// An ARN no secret has.
fn missing_arn() -> String {
    format!(
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:{}",
        unique_table_name("missing")
    )
}

fn lookup(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_secret_is_read_from_secrets_manager_at_start() {
    let endpoint = moto_endpoint().await;
    let client = secrets_client(&endpoint).await;

    // The secret arrives as it is stored.
    let arn = create_secret(&client, GOOD_SECRET).await;
    let config = http_config_from_lookup(lookup(vec![
        (SESSION_SECRET_ARN_ENV, arn.clone()),
        (SECRETS_MANAGER_ENDPOINT_ENV, endpoint.clone()),
    ]))
    .await
    .expect("the configuration with the secret");
    assert_eq!(config.session_secret.as_deref(), Some(GOOD_SECRET.as_bytes()));

    // QUPER_SESSION_SECRET wins: Secrets Manager is not asked (the ARN
    // names no secret, so asking would fail).
    let given = "given-directly-0123456789abcdef0123456789";
    let config = http_config_from_lookup(lookup(vec![
        (SESSION_SECRET_ENV, given.to_owned()),
        (SESSION_SECRET_ARN_ENV, missing_arn()),
        (SECRETS_MANAGER_ENDPOINT_ENV, endpoint.clone()),
    ]))
    .await
    .expect("the configuration with the given secret");
    assert_eq!(config.session_secret.as_deref(), Some(given.as_bytes()));

    // Neither: no secret (the pages answer 503), and no call.
    let config = http_config_from_lookup(lookup(vec![(SECRETS_MANAGER_ENDPOINT_ENV, endpoint.clone())]))
        .await
        .expect("the configuration without a secret");
    assert!(config.session_secret.is_none());

    // Too short: start-up fails naming the setting, never the value.
    let short = create_secret(&client, SHORT_SECRET).await;
    let error = http_config_from_lookup(lookup(vec![
        (SESSION_SECRET_ARN_ENV, short.clone()),
        (SECRETS_MANAGER_ENDPOINT_ENV, endpoint.clone()),
    ]))
    .await
    .expect_err("a 31-character secret fails start-up");
    let (message, debug) = (error.to_string(), format!("{error:?}"));
    assert_eq!(error.name, SESSION_SECRET_ARN_ENV);
    assert!(
        message.starts_with("QUPER_SESSION_SECRET_ARN: ") && message.contains("at least 32 characters"),
        "{message}"
    );
    assert!(message.contains(&short), "the message names the secret: {message}");
    assert!(
        !message.contains(SHORT_SECRET) && !debug.contains(SHORT_SECRET),
        "the value leaked: {message} / {debug}"
    );

    // A secret that does not exist: the setting and the ARN, Secrets
    // Manager's reason.
    let missing = missing_arn();
    let error = http_config_from_lookup(lookup(vec![
        (SESSION_SECRET_ARN_ENV, missing.clone()),
        (SECRETS_MANAGER_ENDPOINT_ENV, endpoint.clone()),
    ]))
    .await
    .expect_err("a missing secret fails start-up");
    assert_eq!(error.name, SESSION_SECRET_ARN_ENV);
    assert!(error.to_string().contains(&missing), "{error}");

    // A bad setting elsewhere fails first, before any call.
    let error = http_config_from_lookup(lookup(vec![
        ("QUPER_MAX_BODY_BYTES", "lots".to_owned()),
        (SESSION_SECRET_ARN_ENV, missing_arn()),
        (SECRETS_MANAGER_ENDPOINT_ENV, endpoint),
    ]))
    .await
    .expect_err("a bad body limit");
    assert_eq!(error.name, "QUPER_MAX_BODY_BYTES");
}

/// The UI binary on `moto`'s table, its secret `secret_arn`, taking events
/// from the Runtime API stub at `runtime_api`.
fn start_ui_function(moto: &Moto, secret_arn: &str, runtime_api: std::net::SocketAddr) -> Process {
    let mut lambda = command(&binary(FUNCTION));
    lambda
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{FUNCTION}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "ui-lambda")
        .env("QUPER_TABLE_NAME", &moto.table)
        .env("QUPER_DYNAMODB_ENDPOINT", &moto.endpoint)
        .env("QUPER_SCHEDULER_ENDPOINT", &moto.endpoint)
        .env("QUPER_SCHEDULE_GROUP", format!("{}-timers", moto.table))
        .env(
            "QUPER_ESCALATOR_ARN",
            "arn:aws:lambda:us-east-1:123456789012:function:quper-escalator",
        )
        .env(
            "QUPER_SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/quper-scheduler",
        )
        .env(SESSION_SECRET_ARN_ENV, secret_arn)
        .env(SECRETS_MANAGER_ENDPOINT_ENV, &moto.endpoint);
    Process::spawn(FUNCTION, lambda, tempfile::tempdir().expect("temp dir"))
}

/// The API Gateway v2 response the function gave the runtime.
async fn answer(runtime: &mut RuntimeStub, function: &mut Process, index: usize) -> Value {
    match runtime.outcome(function).await {
        Outcome::Answered { request_id, body } => {
            assert_eq!(request_id, runtime.request_ids[index]);
            body
        }
        Outcome::Failed { endpoint, body } => panic!("{FUNCTION} reported {endpoint}: {body}"),
    }
}

fn header<'a>(response: &'a Value, name: &str) -> &'a str {
    response["headers"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} header: {response}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_binary_reads_its_secret_and_answers_page_events() {
    let moto = Moto::fresh("ui-lambda").await;
    let secrets = secrets_client(&moto.endpoint).await;
    let arn = create_secret(&secrets, GOOD_SECRET).await;

    let mut runtime = RuntimeStub::start_with(&[event("ui-login-get.json"), event("ui-dashboard-get.json")]).await;
    let mut function = start_ui_function(&moto, &arn, runtime.addr);

    // GET /login: the sign-in page (a fresh table: the first-run form), with
    // a pre-sign-in CSRF cookie whose token is signed with the secret that
    // Secrets Manager holds.
    let login = answer(&mut runtime, &mut function, 0).await;
    assert_eq!(login["statusCode"], 200, "{login}");
    assert!(header(&login, "content-type").starts_with("text/html"), "{login}");
    assert_eq!(login["isBase64Encoded"], Value::Bool(false), "HTML goes back as text");
    let html = login["body"].as_str().expect("an HTML body");
    assert!(html.contains("<form") && html.contains("name=\"csrf_token\""), "{html}");
    let cookies: Vec<&str> = login["cookies"]
        .as_array()
        .map(|cookies| cookies.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let csrf_cookie = cookies
        .iter()
        .find_map(|cookie| cookie.strip_prefix("pagerpal_csrf="))
        .unwrap_or_else(|| panic!("no pagerpal_csrf cookie: {login}"));
    assert!(
        csrf_cookie.contains("; Secure") && csrf_cookie.contains("; HttpOnly"),
        "{csrf_cookie}"
    );
    let nonce = csrf_cookie.split(';').next().unwrap_or("");
    let token = quper_ui::session::anonymous_csrf(GOOD_SECRET.as_bytes(), nonce);
    assert!(
        html.contains(&format!("name=\"csrf_token\" value=\"{token}\"")),
        "the page's CSRF token is not signed with the secret in Secrets Manager"
    );
    assert!(!html.contains(GOOD_SECRET), "the secret is on the page");

    // GET /dashboard without a session: off to sign in, and back after.
    let dashboard = answer(&mut runtime, &mut function, 1).await;
    assert_eq!(dashboard["statusCode"], 303, "{dashboard}");
    assert_eq!(header(&dashboard, "location"), "/login?next=/dashboard");

    function.assert_running();
    assert!(!function.log().contains(GOOD_SECRET), "the secret is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_binary_refuses_to_start_with_a_short_secret() {
    let moto = Moto {
        endpoint: moto_endpoint().await,
        // Never read: start-up fails first.
        table: unique_table_name("ui-lambda-short"),
    };
    let secrets = secrets_client(&moto.endpoint).await;
    let arn = create_secret(&secrets, SHORT_SECRET).await;
    let runtime = RuntimeStub::start_with(&[event("ui-login-get.json")]).await;
    let mut function = start_ui_function(&moto, &arn, runtime.addr);
    let status = function.exit_status().await;
    let log = function.log();
    assert!(!status.success(), "{FUNCTION} started with a short secret: {log}");
    assert!(
        log.contains("QUPER_SESSION_SECRET_ARN") && log.contains("at least 32 characters"),
        "the log does not name the setting: {log}"
    );
    assert!(!log.contains(SHORT_SECRET), "the secret is in the log: {log}");
}
