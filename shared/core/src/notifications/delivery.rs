//! Delivering one notification job: one message to one person, sent once.
//!
//! The job names its notification log row. Delivery first claims the row
//! with a version check (`queued`/`failed` → `sending`), so a job delivered
//! twice (SQS is at least once) or by two workers at once is sent once. Then
//! the `Sender` port sends it and the row records the outcome:
//! - sent: `sent` with the provider's message id (SMS receipts later move it
//!   to `delivered` or `failed`);
//! - a temporary failure: `failed` with the error, retried after an
//!   exponential backoff until `max_attempts`, then `exhausted`;
//! - a permanent failure: `failed`; for an SMS, the person's next contact
//!   method gets a new row and job (fallback).
//!
//! A row is written `queued` before its job is published, so a job lost on
//! the way (the process stopped, the bus refused it) leaves a row that says
//! so. Rows wait in a sparse index until claimed; [`republish_stranded`]
//! publishes the job of any row still waiting after [`STRANDED_AFTER`] again.
//! Publishing twice is safe: the claim sends once. A row left `sending` (the
//! process stopped mid-send) is not sent again, since the provider may have
//! the message: after [`INTERRUPTED_AFTER`] the sweep marks it `failed`, for
//! the operator to see and retry.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::error::{DomainError, DomainResult};
use crate::identity::{Permission, Principal};
use crate::incidents::model::time_sort_key;
use crate::incidents::model::{Actor, TimelineEvent};
use crate::keys;
use crate::model::TenantId;
use crate::notifications::log::{NotificationLog, NotificationStatus};
use crate::ports::table::{GSI1PK, GSI1SK, SortKey, Update};
use crate::ports::{Bus, ChannelKind, Condition, Key, NotificationJob, Query, SendFailure, Sender, WriteOp};
use crate::secrets::Sealer;
use crate::store::{Store, from_item, to_item};

/// What delivering a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Sent,
    /// Sent before, being sent by someone else, or the row is gone.
    AlreadyHandled,
    /// Failed for now; deliver the job again after this long.
    RetryAfter(std::time::Duration),
    /// Failed for good: `failed` (permanent) or `exhausted` (out of attempts).
    GaveUp(NotificationStatus),
    /// The SMS failed for good and the next contact method was queued.
    FellBack,
}

/// Backoff before attempt `attempts + 1`: 30 s, 60 s, 120 s, ... capped at
/// 15 minutes.
pub fn backoff(attempts: u32) -> std::time::Duration {
    let seconds = 30u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(10));
    std::time::Duration::from_secs(seconds.min(15 * 60))
}

/// The row key a job names.
pub fn row_key(job: &NotificationJob) -> DomainResult<Key> {
    let row = job.payload.get("row");
    let field = |name: &str| row.and_then(|r| r.get(name)).and_then(Value::as_str).map(str::to_owned);
    match (field("pk"), field("sk")) {
        (Some(pk), Some(sk)) if pk.starts_with(&format!("T#{}#", job.tenant)) => Ok(Key::new(pk, sk)),
        _ => Err(DomainError::validation(
            "payload.row",
            "a notification job names its row in its tenant",
        )),
    }
}

/// Delivers one job. `bus` takes the fallback job when an SMS fails;
/// `sealer` opens the destination's sealed credentials just before sending.
pub async fn deliver(
    store: &Store,
    sealer: &Sealer,
    sender: &dyn Sender,
    bus: &dyn Bus,
    job: &NotificationJob,
    max_attempts: u32,
) -> DomainResult<Delivered> {
    let key = row_key(job)?;
    let Some(row) = store.get::<NotificationLog>(&key).await? else {
        return Ok(Delivered::AlreadyHandled);
    };
    // A `failed` row is sent again only while a retry is due (a temporary
    // failure set `next_attempt_at`); one failed for good, by the provider's
    // answer or by a delivery receipt, is final until someone retries it by
    // hand, so a duplicate of its job sends nothing.
    let claimable = match row.status {
        NotificationStatus::Queued => true,
        NotificationStatus::Failed => row.next_attempt_at.is_some(),
        _ => false,
    };
    if !claimable {
        return Ok(Delivered::AlreadyHandled);
    }
    let (Some(delivery), Some(notice)) = (row.delivery.clone(), row.notice.clone()) else {
        return Err(DomainError::Internal(format!(
            "notification {} has nothing to send",
            row.id
        )));
    };
    let now = store.now();
    // The row moves from the index of waiting rows to that of rows being
    // sent, where an interrupted send is found later.
    let claim = Update::new(key.clone())
        .set("status", "sending")
        .set(GSI1PK, keys::SENDING_NOTIFICATIONS_GSI1PK)
        .set(GSI1SK, time_sort_key(now, &row.id))
        .set("updated_at", json!(now))
        .add("attempts", 1)
        .add("version", 1)
        .when(Condition::VersionEquals(row.version));
    match store.table().update(claim).await {
        Ok(_) => {}
        Err(err) if err.is_condition_failed() => return Ok(Delivered::AlreadyHandled),
        Err(err) => return Err(err.into()),
    }
    let attempts = row.attempts + 1;
    let version = row.version + 1;
    let result = match delivery.open(sealer, &job.tenant) {
        Ok(opened) => sender.send(&opened, &notice).await,
        // The key changed, or the row was tampered with: nothing to send to.
        Err(err) => Err(SendFailure::Permanent(format!(
            "the destination cannot be opened: {err}"
        ))),
    };
    let now = store.now();
    let finish = |status: NotificationStatus| {
        Update::new(key.clone())
            .set("status", json!(status))
            .remove(GSI1PK)
            .remove(GSI1SK)
            .set("updated_at", json!(now))
            .add("version", 1)
            .when(Condition::VersionEquals(version))
    };
    match result {
        Ok(message_id) => {
            let mut update = finish(NotificationStatus::Sent)
                .set("last_error", Value::Null)
                .set("next_attempt_at", Value::Null);
            let mut ops = Vec::new();
            if let Some(id) = &message_id {
                update = update.set("provider_message_id", id.as_str());
                let lookup = json!({ "tenant": job.tenant, "pk": key.pk, "sk": key.sk });
                ops.push(WriteOp::put(
                    to_item(&keys::provider_message(id), &lookup, &[])?,
                    Condition::None,
                ));
            }
            ops.insert(0, WriteOp::Update(update));
            ops.extend(crate::metrics::writes(
                &job.tenant,
                [crate::metrics::notification_sent(&row.channel, &row.id)],
            ));
            // The message is out: a conflict on the counter must not leave
            // the row `sending`.
            store.transact(ops).await?;
            record_incident_notified(store, &job.tenant, row.incident_id, now).await;
            Ok(Delivered::Sent)
        }
        Err(SendFailure::Retryable(error)) if attempts < max_attempts => {
            let wait = backoff(attempts);
            let retry_at: DateTime<Utc> = now + Duration::from_std(wait).unwrap_or_else(|_| Duration::minutes(15));
            let update = finish(NotificationStatus::Failed)
                .set("last_error", error.as_str())
                .set("next_attempt_at", json!(retry_at));
            store.table().update(update).await?;
            Ok(Delivered::RetryAfter(wait))
        }
        Err(SendFailure::Retryable(error)) => {
            let update = finish(NotificationStatus::Exhausted)
                .set("last_error", error.as_str())
                .set("next_attempt_at", Value::Null);
            store.table().update(update).await?;
            timeline(
                store,
                &job.tenant,
                &row,
                "notification_exhausted",
                format!(
                    "Gave up on {} after {attempts} attempts: {error}",
                    delivery.kind.as_str()
                ),
            )
            .await;
            Ok(Delivered::GaveUp(NotificationStatus::Exhausted))
        }
        Err(SendFailure::Permanent(error)) => {
            store
                .table()
                .update(
                    finish(NotificationStatus::Failed)
                        .set("last_error", error.as_str())
                        .set("next_attempt_at", Value::Null),
                )
                .await?;
            if delivery.kind == ChannelKind::Sms && fall_back(store, bus, &job.tenant, &row).await? {
                return Ok(Delivered::FellBack);
            }
            timeline(
                store,
                &job.tenant,
                &row,
                "notification_failed",
                format!("{} failed: {error}", delivery.kind.as_str()),
            )
            .await;
            Ok(Delivered::GaveUp(NotificationStatus::Failed))
        }
    }
}

/// Marks the job's row `failed` with `reason` without sending it, if it is
/// still waiting (`queued`, or `failed` awaiting a retry); no fallback
/// follows. For jobs of an environment that is deactivated or deleted.
pub async fn cancel(store: &Store, job: &NotificationJob, reason: &str) -> DomainResult<Delivered> {
    let key = row_key(job)?;
    let Some(row) = store.get::<NotificationLog>(&key).await? else {
        return Ok(Delivered::AlreadyHandled);
    };
    if !matches!(row.status, NotificationStatus::Queued | NotificationStatus::Failed) {
        return Ok(Delivered::AlreadyHandled);
    }
    let update = Update::new(key)
        .set("status", json!(NotificationStatus::Failed))
        .remove(GSI1PK)
        .remove(GSI1SK)
        .set("last_error", reason)
        .set("next_attempt_at", Value::Null)
        .set("updated_at", json!(store.now()))
        .add("version", 1)
        .when(Condition::VersionEquals(row.version));
    match store.table().update(update).await {
        Ok(_) => {
            tracing::info!(tenant = %job.tenant, notification = %row.id, reason, "notification not sent");
            Ok(Delivered::GaveUp(NotificationStatus::Failed))
        }
        Err(err) if err.is_condition_failed() => Ok(Delivered::AlreadyHandled),
        Err(err) => Err(err.into()),
    }
}

/// Queues the row's next contact method, if any: a new row and job.
pub async fn fall_back(store: &Store, bus: &dyn Bus, tenant: &TenantId, row: &NotificationLog) -> DomainResult<bool> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let Some(fallback) = fallback_row(row, id, store.now()) else {
        return Ok(false);
    };
    let mut ops = vec![fallback.write(tenant)?];
    ops.extend(crate::metrics::writes(
        tenant,
        crate::metrics::notifications_created([&fallback]),
    ));
    store.transact(ops).await?;
    announce_fallback(store, bus, tenant, row, &fallback).await;
    Ok(true)
}

/// The `queued` row `id` for the next contact method of `row`, if it has
/// one; the caller writes it (`NotificationLog::write`, only if absent).
pub fn fallback_row(row: &NotificationLog, id: String, now: DateTime<Utc>) -> Option<NotificationLog> {
    let (next, rest) = row.fallbacks.split_first()?;
    Some(NotificationLog {
        id,
        channel: next.kind.as_str().to_owned(),
        recipient: Some(next.hint()),
        status: NotificationStatus::Queued,
        attempts: 0,
        provider_message_id: None,
        last_error: None,
        delivery: Some(next.clone()),
        fallbacks: rest.to_vec(),
        next_attempt_at: None,
        created_at: now,
        updated_at: now,
        version: 1,
        ..row.clone()
    })
}

/// After a fallback row is written: the timeline says so and its job goes on
/// the bus (a job the bus refuses stays queued in the log, where the sweep
/// finds it).
pub async fn announce_fallback(
    store: &Store,
    bus: &dyn Bus,
    tenant: &TenantId,
    row: &NotificationLog,
    fallback: &NotificationLog,
) {
    timeline(
        store,
        tenant,
        row,
        "notification_fallback",
        format!(
            "SMS to {} failed; trying {} next",
            row.recipient.as_deref().unwrap_or("?"),
            fallback.channel
        ),
    )
    .await;
    if let Err(err) = bus.publish(fallback.job(tenant)).await {
        tracing::error!(error = %err, "could not queue the fallback notification; it stays queued in the log");
    }
}

/// A best-effort timeline entry about a notification.
async fn timeline(store: &Store, tenant: &TenantId, row: &NotificationLog, event_type: &str, message: String) {
    let event = TimelineEvent::new(row.incident_id, event_type, message, Actor::System, store.now())
        .with_data(json!({ "notification_id": row.id, "user_id": row.user_id }));
    if let Ok(op) = event.write(tenant)
        && let Err(err) = store.table().transact(vec![op]).await
    {
        tracing::warn!(error = %err, "could not record a notification event on the timeline");
    }
}

/// Marks the incident notified (PagerPal's `first/last_notified_at`). Best
/// effort: the notification row is the record.
async fn record_incident_notified(store: &Store, tenant: &TenantId, incident: u64, at: DateTime<Utc>) {
    let update = Update::new(keys::incident(tenant, incident))
        .set("last_notified_at", json!(at))
        .when(Condition::Exists);
    if let Err(err) = store.table().update(update).await {
        tracing::warn!(error = %err, incident, "could not record the notification time on the incident");
    }
}

/// PagerPal's retry: every `failed` and `exhausted` row of an incident goes
/// back to `queued` with a fresh attempt count, and its job on the bus.
/// Needs the right to act on incidents. Returns (rows retried, jobs queued).
pub async fn retry_failed(store: &Store, bus: &dyn Bus, caller: &Principal, incident: u64) -> DomainResult<(u64, u64)> {
    caller.require(Permission::IncidentsAct)?;
    crate::incidents::lifecycle::get(store, caller, incident).await?;
    let tenant = caller.tenant();
    let rows: Vec<NotificationLog> = store.query_all(keys::incident_notifications(tenant, incident)).await?;
    let (mut retried, mut queued) = (0, 0);
    for row in rows
        .into_iter()
        .filter(|r| matches!(r.status, NotificationStatus::Failed | NotificationStatus::Exhausted))
    {
        match retry_row(store, bus, tenant, &row).await? {
            None => continue,
            Some(published) => {
                retried += 1;
                queued += u64::from(published);
            }
        }
    }
    Ok((retried, queued))
}

/// Puts one failed or exhausted row back to `queued` with fresh attempts and
/// publishes its job for now: `None` when the row changed meanwhile (not
/// retried), else whether its job was published (the sweep publishes it
/// otherwise). The caller checked the row is failed or exhausted and may be
/// retried by whoever asks.
pub async fn retry_row(
    store: &Store,
    bus: &dyn Bus,
    tenant: &TenantId,
    row: &NotificationLog,
) -> DomainResult<Option<bool>> {
    let [(pk_name, pk), (sk_name, sk)] = row.waiting_since(store.now());
    let update = Update::new(row.key(tenant))
        .set("status", json!(NotificationStatus::Queued))
        .set(pk_name, pk)
        .set(sk_name, sk)
        .set("attempts", 0)
        .set("next_attempt_at", Value::Null)
        .set("updated_at", json!(store.now()))
        .add("version", 1)
        .when(Condition::VersionEquals(row.version));
    match store.table().update(update).await {
        Ok(_) => {}
        Err(err) if err.is_condition_failed() => return Ok(None),
        Err(err) => return Err(err.into()),
    }
    match bus.publish(row.job(tenant)).await {
        Ok(()) => Ok(Some(true)),
        Err(err) => {
            tracing::error!(error = %err, "could not queue a retried notification");
            Ok(Some(false))
        }
    }
}

/// How long a row may wait `queued` before its job counts as lost. Longer
/// than a healthy queue holds a job, so a backlog is not published twice
/// without need (and if it is, the claim still sends once).
pub const STRANDED_AFTER: std::time::Duration = std::time::Duration::from_secs(120);

/// A send takes seconds (provider timeouts included); a row `sending` for this
/// long was interrupted.
pub const INTERRUPTED_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// The sweep: publishes again the job of every row still `queued` longer than
/// [`STRANDED_AFTER`] (at most `limit` a run, oldest first), and moves each
/// row's wait to now so the next sweep gives it time; marks rows `sending`
/// longer than [`INTERRUPTED_AFTER`] `failed`. Returns how many jobs went
/// back on the bus. Part of the sweep (`oncall::escalation::Escalator::sweep`).
pub async fn republish_stranded(store: &Store, bus: &dyn Bus, limit: u32) -> DomainResult<usize> {
    let now = store.now();
    let mut republished = 0;
    for (tenant, row) in rows_waiting(store, keys::queued_notifications(), STRANDED_AFTER, limit).await? {
        if row.status != NotificationStatus::Queued {
            continue;
        }
        let [(pk_name, pk), (sk_name, sk)] = row.waiting_since(now);
        let moved = Update::new(row.key(&tenant))
            .set(pk_name, pk)
            .set(sk_name, sk)
            .when(Condition::VersionEquals(row.version));
        match store.table().update(moved).await {
            Ok(_) => {}
            // Claimed meanwhile: no longer stranded.
            Err(err) if err.is_condition_failed() => continue,
            Err(err) => return Err(err.into()),
        }
        match bus.publish(row.job(&tenant)).await {
            Ok(()) => republished += 1,
            Err(err) => {
                tracing::error!(error = %err, notification = %row.id, "could not publish a stranded notification; the next sweep tries again")
            }
        }
    }
    if republished > 0 {
        tracing::warn!(
            republished,
            "published the jobs of notifications that were stranded in the queued state"
        );
    }
    fail_interrupted(store, limit).await?;
    store.record_job_run("notification_retry").await;
    Ok(republished)
}

/// Up to `limit` rows of a waiting partition (`queued` or `sending`) that
/// have waited at least `for_at_least`, oldest first, with their tenants.
async fn rows_waiting(
    store: &Store,
    partition: Query,
    for_at_least: std::time::Duration,
    limit: u32,
) -> DomainResult<Vec<(TenantId, NotificationLog)>> {
    let since = store.now() - Duration::from_std(for_at_least).unwrap_or_else(|_| Duration::minutes(10));
    let page = store
        .table()
        .query(partition.sort(SortKey::To(time_sort_key(since, "~"))).limit(limit))
        .await?;
    let mut rows = Vec::with_capacity(page.items.len());
    for item in page.items {
        // Rows name their tenant; one that does not (or not validly) is no
        // row of this sweep's.
        let Some(tenant) = item
            .get("tenant")
            .and_then(Value::as_str)
            .and_then(|tenant| TenantId::parse(tenant).ok())
        else {
            continue;
        };
        rows.push((tenant, from_item(item)?));
    }
    Ok(rows)
}

/// Marks rows `sending` for longer than [`INTERRUPTED_AFTER`] `failed`, with a
/// timeline entry, so the retry route can requeue them.
async fn fail_interrupted(store: &Store, limit: u32) -> DomainResult<()> {
    let now = store.now();
    for (tenant, row) in rows_waiting(store, keys::sending_notifications(), INTERRUPTED_AFTER, limit).await? {
        let error = "the send was interrupted; the provider may or may not have the message";
        let update = Update::new(row.key(&tenant))
            .set("status", json!(NotificationStatus::Failed))
            .set("last_error", error)
            .set("updated_at", json!(now))
            .remove(GSI1PK)
            .remove(GSI1SK)
            .add("version", 1)
            .when(Condition::VersionEquals(row.version));
        match store.table().update(update).await {
            Ok(_) => {
                let message = format!(
                    "{} to {} was interrupted mid-send; retry it if it did not arrive",
                    row.channel,
                    row.recipient.as_deref().unwrap_or("?")
                );
                timeline(store, &tenant, &row, "notification_failed", message).await;
            }
            Err(err) if err.is_condition_failed() => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}
