//! The contact form's outbound work: one durable delivery record per
//! message (the admin notification, the sender's confirmation, the CRM
//! webhook), stored in the same transaction as the submission, sent by a
//! durable timer ([`DeliveryTimer`], on the `Timers` port: the host's timer
//! worker, the `escalator` function on AWS) and retried with exponential
//! backoff ([`backoff`]) until it is `completed` or, after
//! `CONTACT_DELIVERY_MAX_ATTEMPTS` attempts or a permanent failure,
//! `failed` (kept, listed by the admin jobs, retried from there).
//!
//! While a delivery is `queued` or `sending` it is in the global index
//! partition `CNTPENDING` (GSI1, sort key = when it is due: its next
//! attempt, or its claim plus [`SENDING_TIMEOUT`]), so the sweep finds one
//! whose timer was lost, or whose send was interrupted, and arms it again
//! ([`sweep`]).

use aws_lc_rs::hmac;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::sha256_hex;
use crate::error::{DomainError, DomainResult};
use crate::incidents::model::time_sort_key;
use crate::keys;
use crate::model::TenantId;
use crate::ports::table::{GSI1PK, GSI1SK};
use crate::ports::{Condition, OutboundMessage, SendFailure, Sender, SortKey, Timer, Timers, Update, WriteOp};
use crate::store::{Store, to_item};

use super::{ContactSettings, Submission};

/// The header that carries the body's signature: `sha256=<hex HMAC-SHA256
/// of the raw body under CONTACT_WEBHOOK_SECRET>`.
pub const SIGNATURE_HEADER: &str = "X-Webhook-Signature";
/// The header that carries the submission's reference id.
pub const REFERENCE_HEADER: &str = "X-Reference-Id";
/// The header that names the event (`contact.submitted`).
pub const EVENT_HEADER: &str = "X-Webhook-Event";

/// The first retry waits this long; each next one twice as long.
pub const BACKOFF_BASE_SECONDS: i64 = 30;
/// The longest wait between attempts.
pub const BACKOFF_MAX_SECONDS: i64 = 3600;
/// A send takes seconds; one `sending` this long was interrupted.
pub const SENDING_TIMEOUT: Duration = Duration::minutes(10);
/// How late a queued delivery may be before the sweep arms its timer again.
pub const STRANDED_AFTER: Duration = Duration::minutes(2);
/// Most deliveries one sweep re-arms.
pub const SWEEP_LIMIT: u32 = 200;
/// Longest error text kept on a delivery.
const MAX_ERROR_CHARS: usize = 1000;

/// What a delivery sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    /// The admin notification to `ADMIN_EMAIL`.
    AdminEmail,
    /// The sender's confirmation.
    ConfirmationEmail,
    /// The CRM webhook to `CONTACT_WEBHOOK_URL`.
    CrmWebhook,
}

impl DeliveryKind {
    fn suffix(self) -> &'static str {
        match self {
            DeliveryKind::AdminEmail => "admin",
            DeliveryKind::ConfirmationEmail => "confirm",
            DeliveryKind::CrmWebhook => "webhook",
        }
    }

    pub fn is_webhook(self) -> bool {
        self == DeliveryKind::CrmWebhook
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Queued,
    Sending,
    Completed,
    Failed,
}

/// One delivery record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactDelivery {
    /// `<8 hex of the reference id, lowercase>-admin|confirm|webhook`.
    pub id: String,
    pub tenant: TenantId,
    pub reference_id: String,
    pub kind: DeliveryKind,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
    /// The email's recipient (none for the webhook, whose URL is read from
    /// the settings when it is sent, so no URL token is stored).
    pub to: Option<String>,
    pub subject: Option<String>,
    /// The email's text, or the webhook's exact JSON body (signed as is).
    pub body: String,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub version: u64,
}

/// The payload of a delivery's timer: `{"contact_delivery": {"tenant",
/// "id"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryTimer {
    pub tenant: TenantId,
    pub id: String,
}

impl DeliveryTimer {
    /// The delivery timer a timer payload carries, if it is one.
    pub fn of(payload: &Value) -> Option<DeliveryTimer> {
        serde_json::from_value(payload.get("contact_delivery")?.clone()).ok()
    }

    pub fn payload(&self) -> Value {
        json!({ "contact_delivery": self })
    }

    /// `cnt-<16 hex of the tenant's SHA-256>-<delivery id>`: at most 64
    /// characters of `[a-z0-9-]`.
    pub fn timer_id(&self) -> String {
        format!("cnt-{}-{}", &sha256_hex(self.tenant.as_str())[..16], self.id)
    }
}

/// What one fire did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryFire {
    /// Nothing to do: the delivery is gone, not queued, or claimed by
    /// another fire.
    Stale,
    Completed,
    /// Failed for now; the next attempt is due then.
    Retrying(DateTime<Utc>),
    /// Failed for good (permanent, or out of attempts).
    Failed,
}

/// The wait after the `attempts`-th failed attempt: 30 s, 60 s, 120 s, ...
/// up to an hour.
pub fn backoff(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(20);
    Duration::seconds((BACKOFF_BASE_SECONDS << exponent).min(BACKOFF_MAX_SECONDS))
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

fn pending_index(delivery: &ContactDelivery, due: DateTime<Utc>) -> [(&'static str, Value); 2] {
    [
        (GSI1PK, json!(keys::PENDING_CONTACT_DELIVERIES_GSI1PK)),
        (
            GSI1SK,
            json!(time_sort_key(due, &format!("{}#{}", delivery.tenant, delivery.id))),
        ),
    ]
}

/// The deliveries a new submission makes, as the settings ask.
pub fn plan(settings: &ContactSettings, submission: &Submission, now: DateTime<Utc>) -> Vec<ContactDelivery> {
    let short = submission.reference_id.trim_start_matches("CNT-").to_ascii_lowercase();
    let new = |kind: DeliveryKind, to: Option<String>, subject: Option<String>, body: String| ContactDelivery {
        id: format!("{short}-{}", kind.suffix()),
        tenant: settings.environment.clone(),
        reference_id: submission.reference_id.clone(),
        kind,
        status: DeliveryStatus::Queued,
        attempts: 0,
        max_attempts: settings.delivery_max_attempts,
        last_error: None,
        to,
        subject,
        body,
        next_attempt_at: Some(now),
        created_at: now,
        updated_at: now,
        completed_at: None,
        version: 1,
    };
    let mut out = Vec::new();
    if let Some(admin) = &settings.admin_email {
        let (subject, body) = submission.admin_email();
        out.push(new(DeliveryKind::AdminEmail, Some(admin.clone()), Some(subject), body));
    }
    if settings.send_confirmation {
        let (subject, body) = submission.confirmation_email();
        out.push(new(
            DeliveryKind::ConfirmationEmail,
            Some(submission.email.clone()),
            Some(subject),
            body,
        ));
    }
    if settings.webhook_url.is_some() {
        out.push(new(
            DeliveryKind::CrmWebhook,
            None,
            None,
            submission.webhook_body().to_string(),
        ));
    }
    out
}

/// The write that stores a new delivery (with its pending index entry).
pub fn write(delivery: &ContactDelivery) -> DomainResult<WriteOp> {
    let due = delivery.next_attempt_at.unwrap_or(delivery.created_at);
    Ok(WriteOp::put(
        to_item(
            &keys::contact_delivery(&delivery.tenant, &delivery.id),
            delivery,
            &pending_index(delivery, due),
        )?,
        Condition::NotExists,
    ))
}

/// Arms a delivery's timer for `at`. A timer that cannot be set is logged:
/// the sweep arms it later.
pub async fn arm(timers: &dyn Timers, delivery: &ContactDelivery, at: DateTime<Utc>) {
    let timer = DeliveryTimer {
        tenant: delivery.tenant.clone(),
        id: delivery.id.clone(),
    };
    let scheduled = timers
        .schedule(Timer {
            id: timer.timer_id(),
            fire_at: at,
            payload: timer.payload(),
        })
        .await;
    if let Err(err) = scheduled {
        tracing::warn!(error = %err, delivery = %delivery.id, "could not arm a contact delivery's timer; the sweep arms it");
    }
}

pub async fn find(store: &Store, tenant: &TenantId, id: &str) -> DomainResult<Option<ContactDelivery>> {
    store.get(&keys::contact_delivery(tenant, id)).await
}

/// Every delivery of `tenant` (the admin jobs list).
pub async fn list(store: &Store, tenant: &TenantId) -> DomainResult<Vec<ContactDelivery>> {
    store.query_all(keys::contact_deliveries(tenant)).await
}

fn clip(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

/// The message a delivery sends, or why it cannot be sent (permanent).
fn message(settings: &ContactSettings, delivery: &ContactDelivery) -> Result<OutboundMessage, String> {
    match delivery.kind {
        DeliveryKind::AdminEmail | DeliveryKind::ConfirmationEmail => Ok(OutboundMessage::Email {
            to: delivery.to.clone().ok_or("the delivery names no recipient")?,
            subject: delivery.subject.clone().unwrap_or_default(),
            body: delivery.body.clone(),
        }),
        DeliveryKind::CrmWebhook => {
            let url = settings
                .webhook_url
                .clone()
                .ok_or("CONTACT_WEBHOOK_URL is not set (any more)")?;
            let mut headers = vec![
                (REFERENCE_HEADER.to_owned(), delivery.reference_id.clone()),
                (EVENT_HEADER.to_owned(), "contact.submitted".to_owned()),
            ];
            if let Some(secret) = &settings.webhook_secret {
                headers.push((SIGNATURE_HEADER.to_owned(), sign(secret, delivery.body.as_bytes())));
            }
            Ok(OutboundMessage::Webhook {
                url,
                body: delivery.body.clone(),
                headers,
            })
        }
    }
}

/// A delivery's timer fired: the delivery is claimed (once, whatever the
/// number of fires), sent, and then `completed`, queued again after its
/// backoff (its timer armed), or `failed`.
pub async fn fire(
    store: &Store,
    sender: &dyn Sender,
    timers: &dyn Timers,
    settings: &ContactSettings,
    timer: &DeliveryTimer,
) -> DomainResult<DeliveryFire> {
    let Some(delivery) = find(store, &timer.tenant, &timer.id).await? else {
        return Ok(DeliveryFire::Stale);
    };
    if delivery.status != DeliveryStatus::Queued {
        return Ok(DeliveryFire::Stale);
    }
    let now = store.now();
    let key = keys::contact_delivery(&delivery.tenant, &delivery.id);
    let [(pk_name, pk), (sk_name, sk)] = pending_index(&delivery, now + SENDING_TIMEOUT);
    let attempts = delivery.attempts + 1;
    let claim = Update::new(key.clone())
        .set("status", json!(DeliveryStatus::Sending))
        .set("attempts", attempts)
        .set("updated_at", json!(now))
        .set(pk_name, pk)
        .set(sk_name, sk)
        .add("version", 1)
        .when(Condition::VersionEquals(delivery.version));
    match store.table().update(claim).await {
        Ok(_) => {}
        Err(err) if err.is_condition_failed() => return Ok(DeliveryFire::Stale),
        Err(err) => return Err(err.into()),
    }
    let version = delivery.version + 1;
    let result = match message(settings, &delivery) {
        Ok(message) => sender.send_message(&message).await,
        Err(reason) => Err(SendFailure::Permanent(reason)),
    };
    let now = store.now();
    let (update, outcome) = match result {
        Ok(_) => (
            Update::new(key)
                .set("status", json!(DeliveryStatus::Completed))
                .set("completed_at", json!(now))
                .set("next_attempt_at", Value::Null)
                .set("last_error", Value::Null)
                .remove(GSI1PK)
                .remove(GSI1SK),
            DeliveryFire::Completed,
        ),
        Err(failure) => {
            let (text, permanent) = match &failure {
                SendFailure::Retryable(text) => (text.clone(), false),
                SendFailure::Permanent(text) => (text.clone(), true),
            };
            if permanent || attempts >= delivery.max_attempts {
                (
                    Update::new(key)
                        .set("status", json!(DeliveryStatus::Failed))
                        .set("last_error", json!(clip(&text)))
                        .set("next_attempt_at", Value::Null)
                        .remove(GSI1PK)
                        .remove(GSI1SK),
                    DeliveryFire::Failed,
                )
            } else {
                let at = now + backoff(attempts);
                let [(pk_name, pk), (sk_name, sk)] = pending_index(&delivery, at);
                (
                    Update::new(key)
                        .set("status", json!(DeliveryStatus::Queued))
                        .set("last_error", json!(clip(&text)))
                        .set("next_attempt_at", json!(at))
                        .set(pk_name, pk)
                        .set(sk_name, sk),
                    DeliveryFire::Retrying(at),
                )
            }
        }
    };
    let update = update
        .set("updated_at", json!(now))
        .add("version", 1)
        .when(Condition::VersionEquals(version));
    match store.table().update(update).await {
        Ok(_) => {}
        // Someone moved it meanwhile (the sweep found it interrupted): theirs
        // stands.
        Err(err) if err.is_condition_failed() => return Ok(DeliveryFire::Stale),
        Err(err) => return Err(err.into()),
    }
    if let DeliveryFire::Retrying(at) = outcome {
        arm(timers, &delivery, at).await;
    }
    if outcome == DeliveryFire::Failed {
        tracing::warn!(tenant = %delivery.tenant, delivery = %delivery.id, attempts, "a contact delivery failed for good; retry it from the admin jobs");
    }
    Ok(outcome)
}

/// Puts a `failed` delivery back in the queue with fresh attempts, its
/// timer due now. Anything but a failed delivery is a conflict; an unknown
/// one a 404.
pub async fn retry(store: &Store, timers: &dyn Timers, tenant: &TenantId, id: &str) -> DomainResult<ContactDelivery> {
    let Some(mut delivery) = find(store, tenant, id).await? else {
        return Err(DomainError::not_found("Job", format!("contact_{id}")));
    };
    if delivery.status != DeliveryStatus::Failed {
        return Err(DomainError::Conflict(format!(
            "only a failed job can be retried; this one is {}",
            json!(delivery.status).as_str().unwrap_or("not failed")
        )));
    }
    let now = store.now();
    let [(pk_name, pk), (sk_name, sk)] = pending_index(&delivery, now);
    let update = Update::new(keys::contact_delivery(tenant, id))
        .set("status", json!(DeliveryStatus::Queued))
        .set("attempts", 0)
        .set("next_attempt_at", json!(now))
        .set("updated_at", json!(now))
        .set(pk_name, pk)
        .set(sk_name, sk)
        .add("version", 1)
        .when(Condition::VersionEquals(delivery.version));
    match store.table().update(update).await {
        Ok(_) => {}
        Err(err) if err.is_condition_failed() => {
            return Err(DomainError::Conflict(
                "the job changed meanwhile; reload and retry".into(),
            ));
        }
        Err(err) => return Err(err.into()),
    }
    arm(timers, &delivery, now).await;
    delivery.status = DeliveryStatus::Queued;
    delivery.attempts = 0;
    delivery.next_attempt_at = Some(now);
    delivery.updated_at = now;
    delivery.version += 1;
    Ok(delivery)
}

/// The sweep's part: every delivery queued past its due time by more than
/// [`STRANDED_AFTER`] gets its timer again (due now), and every one
/// `sending` past [`SENDING_TIMEOUT`] goes back to the queue (its attempt
/// counted). Returns how many were re-armed.
pub async fn sweep(store: &Store, timers: &dyn Timers) -> DomainResult<usize> {
    let now = store.now();
    let cutoff = time_sort_key(now - STRANDED_AFTER, "");
    let page = store
        .table()
        .query(
            keys::pending_contact_deliveries()
                .sort(SortKey::To(cutoff))
                .limit(SWEEP_LIMIT),
        )
        .await?;
    let mut armed = 0;
    for item in page.items {
        let Ok(delivery) = crate::store::from_item::<ContactDelivery>(item) else {
            continue;
        };
        if !matches!(delivery.status, DeliveryStatus::Queued | DeliveryStatus::Sending) {
            continue;
        }
        let [(pk_name, pk), (sk_name, sk)] = pending_index(&delivery, now);
        let moved = Update::new(keys::contact_delivery(&delivery.tenant, &delivery.id))
            .set("status", json!(DeliveryStatus::Queued))
            .set("next_attempt_at", json!(now))
            .set(pk_name, pk)
            .set(sk_name, sk)
            .add("version", 1)
            .when(Condition::VersionEquals(delivery.version));
        match store.table().update(moved).await {
            Ok(_) => {}
            Err(err) if err.is_condition_failed() => continue,
            Err(err) => return Err(err.into()),
        }
        arm(timers, &delivery, now).await;
        armed += 1;
    }
    Ok(armed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_up_to_an_hour() {
        let waits: Vec<i64> = (1..=9).map(|n| backoff(n).num_seconds()).collect();
        assert_eq!(waits, vec![30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(u32::MAX).num_seconds(), 3600);
    }

    #[test]
    fn signatures_are_sha256_hex_of_the_body() {
        // RFC 4231 test case 2.
        let signature = sign("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            signature,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn timer_ids_fit_eventbridge_names() {
        let timer = DeliveryTimer {
            tenant: TenantId::parse(&"a".repeat(63)).expect("tenant"),
            id: "a1b2c3d4-confirm".into(),
        };
        crate::ports::timers::validate_id(&timer.timer_id()).expect("valid id");
        assert_eq!(DeliveryTimer::of(&timer.payload()), Some(timer));
        assert_eq!(DeliveryTimer::of(&json!({"tenant": "x"})), None);
    }
}
