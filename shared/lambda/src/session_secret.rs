//! The operator UI's session secret on AWS: read from Secrets Manager once,
//! at cold start, when `QUPER_SESSION_SECRET_ARN` names the secret and
//! `QUPER_SESSION_SECRET` is not set.
//!
//! The secret's value never leaves [`HttpConfig::session_secret`]: no error,
//! log line or `Debug` output carries it (the SDK redacts `SecretString`
//! from its own `Debug` output too).

use aws_config::BehaviorVersion;
pub use aws_sdk_secretsmanager::Client as SecretsManagerClient;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use quper_http::HttpConfig;
use quper_http::config::ConfigError;

/// The session secret itself (the host's and tests' way; wins when set).
pub const SESSION_SECRET_ENV: &str = "QUPER_SESSION_SECRET";
/// ARN (or name) of the Secrets Manager secret whose `SecretString` is the
/// session secret.
pub const SESSION_SECRET_ARN_ENV: &str = "QUPER_SESSION_SECRET_ARN";
/// Endpoint URL replacing Secrets Manager's (moto_server). Unset or empty
/// means the real service.
pub const SECRETS_MANAGER_ENDPOINT_ENV: &str = "QUPER_SECRETSMANAGER_ENDPOINT";
/// The shortest session secret accepted, as for `QUPER_SESSION_SECRET`.
pub const MIN_SESSION_SECRET_CHARS: usize = 32;

/// A Secrets Manager client configured from the environment (credentials,
/// region), pointed at `endpoint` instead of the service when given.
pub async fn secrets_manager_client_with_endpoint(endpoint: Option<String>) -> SecretsManagerClient {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    SecretsManagerClient::new(&loader.load().await)
}

/// [`HttpConfig::from_env`], with the session secret read from Secrets
/// Manager when `QUPER_SESSION_SECRET_ARN` is set and `QUPER_SESSION_SECRET`
/// is not.
pub async fn http_config_from_env() -> Result<HttpConfig, ConfigError> {
    http_config_from_lookup(|name| std::env::var(name).ok()).await
}

/// [`http_config_from_env`] reading the settings through `var` (a map in
/// tests). Every other setting is checked first, so a bad one fails start-up
/// without a call to Secrets Manager.
pub async fn http_config_from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<HttpConfig, ConfigError> {
    let mut config = HttpConfig::from_lookup(&var)?;
    let given = var(SESSION_SECRET_ENV).is_some_and(|secret| !secret.is_empty());
    let arn = var(SESSION_SECRET_ARN_ENV)
        .map(|arn| arn.trim().to_owned())
        .filter(|arn| !arn.is_empty());
    let Some(arn) = arn.filter(|_| !given) else {
        return Ok(config);
    };
    let endpoint = var(SECRETS_MANAGER_ENDPOINT_ENV)
        .map(|endpoint| endpoint.trim().to_owned())
        .filter(|endpoint| !endpoint.is_empty());
    let client = secrets_manager_client_with_endpoint(endpoint).await;
    config.session_secret = Some(read_session_secret(&client, &arn).await?.into_bytes());
    Ok(config)
}

/// The `SecretString` of the secret `arn`, at least
/// [`MIN_SESSION_SECRET_CHARS`] characters long. Errors name
/// `QUPER_SESSION_SECRET_ARN` and the ARN, never the value.
pub async fn read_session_secret(client: &SecretsManagerClient, arn: &str) -> Result<String, ConfigError> {
    let error = |message: String| ConfigError {
        name: SESSION_SECRET_ARN_ENV,
        message,
    };
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|err| error(format!("cannot read the secret {arn}: {}", DisplayErrorContext(&err))))?;
    let secret = output
        .secret_string
        .ok_or_else(|| error(format!("the secret {arn} has no SecretString (a binary secret?)")))?;
    if secret.chars().count() < MIN_SESSION_SECRET_CHARS {
        return Err(error(format!(
            "the SecretString of {arn} must be at least {MIN_SESSION_SECRET_CHARS} characters"
        )));
    }
    Ok(secret)
}
