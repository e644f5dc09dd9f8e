//! Stripe behind the `Billing` port: a real HTTP client of Stripe's REST API.
//!
//! | setting | what | default |
//! |---|---|---|
//! | `QUPER_STRIPE_SECRET_KEY` | the API key (`Authorization: Bearer`) | none: `NoBilling` unless a webhook secret is set |
//! | `QUPER_STRIPE_BASE_URL` | where the API is (a stub in tests) | `https://api.stripe.com` |
//! | `QUPER_STRIPE_PRICE_MONTHLY`, `QUPER_STRIPE_PRICE_YEARLY` | the prices Checkout sells | none: that plan's checkout is a 503 |
//! | `QUPER_STRIPE_WEBHOOK_SECRET` | the webhook endpoint's signing secret (`whsec_...`) | none: the webhook is a 503 |
//! | `QUPER_PROVIDER_TIMEOUT_SECONDS` | a call's whole budget | 30 |
//! | `QUPER_OUTBOUND_ALLOW` | addresses the outbound guard lets through (loopback stubs) | none |
//!
//! Requests are form-encoded with Stripe's bracket notation
//! (`metadata[quper_tenant]=...`); every `POST` and `DELETE` carries the
//! `Idempotency-Key` the domain derived. Stripe's errors
//! (`{"error": {"type", "code", "message", "param"}}`) become: an
//! `invalid_request_error` about a value the caller sent (`success_url`,
//! `cancel_url`, `return_url`) a 422 naming it, a `card_error` a 400, anything
//! else (a refused key, a missing price, `api_error`, a timeout) a 502
//! `EXTERNAL_SERVICE_ERROR`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use quper_core::error::{DomainError, DomainResult};
use quper_core::ports::billing::{CheckoutSession, Interval, Invoice, NewCheckout, NewCustomer, Subscription};
use quper_core::ports::{Billing, NoBilling};
use quper_notify::outbound::{OUTBOUND_ALLOW_ENV, OutboundGuard};
use serde_json::Value;

/// Stripe's API, unless `QUPER_STRIPE_BASE_URL` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";
/// A call's budget unless `QUPER_PROVIDER_TIMEOUT_SECONDS` says otherwise.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;

const SERVICE: &str = "stripe";

/// Stripe, when configured in `var` (a secret key or a webhook secret).
pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Arc<dyn Billing> {
    let setting = |name: &str| var(name).map(|value| value.trim().to_owned()).filter(|v| !v.is_empty());
    let secret_key = setting("QUPER_STRIPE_SECRET_KEY");
    let webhook_secret = setting("QUPER_STRIPE_WEBHOOK_SECRET");
    if secret_key.is_none() && webhook_secret.is_none() {
        return Arc::new(NoBilling);
    }
    let timeout = setting("QUPER_PROVIDER_TIMEOUT_SECONDS")
        .and_then(|text| text.parse::<u64>().ok())
        .filter(|seconds| *seconds > 0)
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    Arc::new(Stripe {
        base_url: setting("QUPER_STRIPE_BASE_URL")
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned())
            .trim_end_matches('/')
            .to_owned(),
        secret_key,
        webhook_secret,
        price_monthly: setting("QUPER_STRIPE_PRICE_MONTHLY"),
        price_yearly: setting("QUPER_STRIPE_PRICE_YEARLY"),
        timeout: Duration::from_secs(timeout),
        guard: OutboundGuard::new(&var(OUTBOUND_ALLOW_ENV).unwrap_or_default()),
        http: OnceLock::new(),
    })
}

/// The Stripe client.
pub struct Stripe {
    base_url: String,
    secret_key: Option<String>,
    webhook_secret: Option<String>,
    price_monthly: Option<String>,
    price_yearly: Option<String>,
    timeout: Duration,
    guard: OutboundGuard,
    /// Built on first use (a cold start that never calls Stripe pays nothing).
    http: OnceLock<reqwest::Client>,
}

enum Method {
    Get,
    Post,
    Delete,
}

impl Stripe {
    fn http(&self) -> DomainResult<&reqwest::Client> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(self.guard.clone()))
            .user_agent(concat!("quper/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| external(format!("cannot build the HTTP client: {err}")))?;
        Ok(self.http.get_or_init(|| client))
    }

    /// One call: `form` as the query (GET) or the form body (POST, DELETE).
    async fn call(
        &self,
        method: Method,
        path: &str,
        form: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> DomainResult<Value> {
        let Some(key) = self.secret_key.as_deref() else {
            return Err(DomainError::Unavailable {
                service: "billing",
                message: "Stripe is not configured (set QUPER_STRIPE_SECRET_KEY)".into(),
            });
        };
        let mut url = format!("{}{path}", self.base_url);
        let encoded = serde_urlencoded::to_string(form).map_err(|err| external(err.to_string()))?;
        if matches!(method, Method::Get) && !encoded.is_empty() {
            url = format!("{url}?{encoded}");
        }
        self.guard
            .check(&url)
            .await
            .map_err(|err| external(format!("cannot reach Stripe: {err}")))?;
        let http = self.http()?;
        let mut request = match method {
            Method::Get => http.get(&url),
            Method::Post => http.post(&url),
            Method::Delete => http.delete(&url),
        };
        if !matches!(method, Method::Get) {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(encoded);
        }
        if let Some(idempotency_key) = idempotency_key {
            request = request.header("Idempotency-Key", idempotency_key);
        }
        let response = quper_notify::outbound::traced(request.bearer_auth(key))
            .send()
            .await
            .map_err(|err| {
                if err.is_timeout() {
                    external(format!("no answer within {} s", self.timeout.as_secs()))
                } else {
                    external(format!("request failed: {}", without_url(&err)))
                }
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|err| {
            if err.is_timeout() {
                external(format!("no answer within {} s", self.timeout.as_secs()))
            } else {
                external(format!("cannot read the answer: {}", without_url(&err)))
            }
        })?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|_| external(format!("answered {status} with a body that is not JSON")))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(stripe_error(status.as_u16(), &body))
        }
    }
}

fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "");
    }
    text
}

fn external(message: impl Into<String>) -> DomainError {
    DomainError::External {
        service: SERVICE,
        message: message.into(),
    }
}

/// The values a caller sends that Stripe may refuse (its `param` names them
/// as Quper's API does).
const CALLER_PARAMS: [&str; 3] = ["success_url", "cancel_url", "return_url"];

/// Stripe's error object, as the domain's error.
pub fn stripe_error(status: u16, body: &Value) -> DomainError {
    let error = body.get("error");
    let field = |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str);
    let kind = field("type").unwrap_or("unknown");
    let message = field("message").unwrap_or("no message").to_owned();
    match (kind, field("param")) {
        ("invalid_request_error", Some(param)) if status == 400 && CALLER_PARAMS.contains(&param) => {
            DomainError::validation(param, format!("Stripe refused it: {message}"))
        }
        ("card_error", _) => DomainError::BadRequest(format!("the card was declined: {message}")),
        _ => external(format!("{status} {kind}: {message}")),
    }
}

fn object_text(body: &Value, name: &str) -> DomainResult<String> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| external(format!("answered without `{name}`")))
}

fn pair(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

#[async_trait]
impl Billing for Stripe {
    fn price(&self, interval: Interval) -> DomainResult<String> {
        let (price, name) = match interval {
            Interval::Month => (&self.price_monthly, "QUPER_STRIPE_PRICE_MONTHLY"),
            Interval::Year => (&self.price_yearly, "QUPER_STRIPE_PRICE_YEARLY"),
        };
        price.clone().ok_or_else(|| DomainError::Unavailable {
            service: "billing",
            message: format!("the {} price is not configured (set {name})", interval.as_str()),
        })
    }

    fn webhook_secret(&self) -> Option<String> {
        self.webhook_secret.clone()
    }

    async fn create_customer(&self, new: &NewCustomer) -> DomainResult<String> {
        let mut form = vec![pair("email", &new.email)];
        form.extend(new.metadata.iter().map(|(k, v)| (format!("metadata[{k}]"), v.clone())));
        let body = self
            .call(Method::Post, "/v1/customers", &form, Some(&new.idempotency_key))
            .await?;
        object_text(&body, "id")
    }

    async fn create_checkout_session(&self, new: &NewCheckout) -> DomainResult<CheckoutSession> {
        let mut form = vec![
            pair("mode", "subscription"),
            pair("customer", &new.customer),
            pair("client_reference_id", &new.client_reference_id),
            pair("line_items[0][price]", &new.price),
            pair("line_items[0][quantity]", "1"),
            pair("success_url", &new.success_url),
            pair("cancel_url", &new.cancel_url),
        ];
        for (key, value) in &new.metadata {
            form.push((format!("metadata[{key}]"), value.clone()));
            form.push((format!("subscription_data[metadata][{key}]"), value.clone()));
        }
        let body = self
            .call(Method::Post, "/v1/checkout/sessions", &form, Some(&new.idempotency_key))
            .await?;
        Ok(CheckoutSession {
            id: object_text(&body, "id")?,
            url: object_text(&body, "url")?,
        })
    }

    async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> DomainResult<String> {
        let form = [pair("customer", customer), pair("return_url", return_url)];
        let body = self
            .call(
                Method::Post,
                "/v1/billing_portal/sessions",
                &form,
                Some(idempotency_key),
            )
            .await?;
        object_text(&body, "url")
    }

    async fn list_invoices(&self, customer: &str, limit: u32) -> DomainResult<Vec<Invoice>> {
        let form = [pair("customer", customer), pair("limit", &limit.to_string())];
        let body = self.call(Method::Get, "/v1/invoices", &form, None).await?;
        body.get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| external("answered a list without `data`"))?
            .iter()
            .map(Invoice::from_stripe)
            .collect()
    }

    async fn retrieve_subscription(&self, id: &str) -> DomainResult<Subscription> {
        let body = self
            .call(
                Method::Get,
                &format!("/v1/subscriptions/{}", path_segment(id)?),
                &[],
                None,
            )
            .await?;
        Subscription::from_stripe(&body)
    }

    async fn set_cancel_at_period_end(
        &self,
        id: &str,
        cancel: bool,
        idempotency_key: &str,
    ) -> DomainResult<Subscription> {
        let form = [pair("cancel_at_period_end", if cancel { "true" } else { "false" })];
        let body = self
            .call(
                Method::Post,
                &format!("/v1/subscriptions/{}", path_segment(id)?),
                &form,
                Some(idempotency_key),
            )
            .await?;
        Subscription::from_stripe(&body)
    }

    async fn cancel_subscription_now(&self, id: &str, idempotency_key: &str) -> DomainResult<Subscription> {
        let body = self
            .call(
                Method::Delete,
                &format!("/v1/subscriptions/{}", path_segment(id)?),
                &[],
                Some(idempotency_key),
            )
            .await?;
        Subscription::from_stripe(&body)
    }
}

/// A Stripe id in a path: Stripe's ids are `[A-Za-z0-9_]`.
fn path_segment(id: &str) -> DomainResult<&str> {
    if !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(external(format!("unexpected Stripe id {id:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stripe_errors_are_the_callers_only_when_they_name_what_the_caller_sent() {
        let bad_url = json!({"error": {"type": "invalid_request_error", "code": "url_invalid",
            "message": "Not a valid URL", "param": "success_url"}});
        assert!(matches!(stripe_error(400, &bad_url), DomainError::Validation { field, .. } if field == "success_url"));
        let bad_price = json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
            "message": "No such price: 'price_x'", "param": "line_items[0][price]"}});
        assert!(matches!(stripe_error(400, &bad_price), DomainError::External { .. }));
        let bad_key =
            json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****"}});
        assert!(matches!(stripe_error(401, &bad_key), DomainError::External { .. }));
        assert!(matches!(
            stripe_error(500, &json!({"error": {"type": "api_error"}})),
            DomainError::External { .. }
        ));
        assert!(matches!(
            stripe_error(402, &json!({"error": {"type": "card_error", "message": "declined"}})),
            DomainError::BadRequest(_)
        ));
    }

    #[test]
    fn unconfigured_is_no_billing() {
        let billing = from_env(&|_| None);
        assert!(billing.webhook_secret().is_none());
        assert!(matches!(
            billing.price(Interval::Month),
            Err(DomainError::Unavailable { .. })
        ));
    }
}
