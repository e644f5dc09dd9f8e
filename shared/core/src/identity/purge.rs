//! Purging a deleted environment: a resumable, idempotent job that removes
//! everything the environment had, on any `Table`.
//!
//! Deleting an environment ([`environments::delete`]) only marks its record
//! (`T#<t>` / `META`) deleted and moves it to the `ENVPURGE` index partition;
//! from then on nothing of it is accepted or fires, since every entry point
//! checks that the environment is live. The purge then runs in bounded steps,
//! each recording its progress on the record, so a crash resumes where it
//! stopped and a step run twice (two hosts, a retried Lambda) does no harm:
//!
//! 1. its timers are cancelled through the `Timers` port (the local timer
//!    items or, on AWS, the EventBridge Scheduler schedules): every pending
//!    timer whose payload names the tenant;
//! 2. every item under `T#<t>#` is deleted, one [`Table::scan_prefix`] page
//!    a step, after the global lookups it owns: a user's login lookup
//!    (`LOGIN#<email>`), a source's key and SNS-topic lookups (`APIKEY#`,
//!    `SNSTOPIC#`, only while they still name this tenant) and a sent
//!    message's receipt lookup (`NTFMSG#`), a store account's or a
//!    registered purchase's store link (`STORELINK#`). The sparse index entries
//!    (`NTFQUEUED`, `NTFSENDING`, `REMINDERS`) go with their items. The scan
//!    cursor is stored on the record after each page;
//! 3. passes repeat until one finds nothing (which also catches anything a
//!    request already in flight wrote after the deletion), and then the
//!    record itself is deleted: only now can the id be created again.
//!
//! DynamoDB cannot query by key prefix, so the items are found with a
//! filtered Scan (one page per step, resumable by its cursor). Deleting an
//! environment is rare and the Scan runs in the background in bounded
//! pages, which costs less than keeping a registry of every partition a
//! tenant ever wrote, and cannot miss a partition a future feature adds.
//!
//! [`Table::scan_prefix`]: crate::ports::Table::scan_prefix

use serde::Deserialize;
use serde_json::Value;

use crate::error::DomainResult;
use crate::keys;
use crate::model::TenantId;
use crate::ports::table::{GSI1SK, Update};
use crate::ports::{Condition, Item, Key, Timers};
use crate::store::{Store, from_item};

/// Items one purge step reads (and deletes).
pub const PURGE_PAGE: u32 = 100;

/// The purge's progress, kept on the environment's record.
#[derive(Debug, Default, Deserialize)]
struct Progress {
    #[serde(default)]
    deleted_at: Option<Value>,
    /// The tenant's timers have been cancelled.
    #[serde(default)]
    purge_timers_done: bool,
    /// Where the current pass stopped.
    #[serde(default)]
    purge_cursor: Option<String>,
    /// Items the current pass has deleted so far.
    #[serde(default)]
    purge_pass_found: u64,
}

/// What one purge step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeStep {
    /// The environment does not exist or is not deleted: nothing to do.
    NothingToDo,
    /// Cancelled the tenant's pending timers (this many).
    TimersCancelled(usize),
    /// Deleted this many items with their lookups; more steps follow.
    Deleted(usize),
    /// A whole pass found nothing left: the record is gone and the id free.
    Finished,
}

/// One bounded step of the purge of `tenant`, reading at most `page` items.
/// Safe to run any number of times, from any number of processes at once.
pub async fn step(store: &Store, timers: &dyn Timers, tenant: &TenantId, page: u32) -> DomainResult<PurgeStep> {
    let record = keys::environment(tenant);
    let Some(item) = store.table().get(&record).await? else {
        return Ok(PurgeStep::NothingToDo);
    };
    let progress: Progress = from_item(item)?;
    if progress.deleted_at.is_none() {
        // A live or deactivated environment is never purged.
        return Ok(PurgeStep::NothingToDo);
    }
    if !progress.purge_timers_done {
        let cancelled = cancel_timers(timers, tenant).await?;
        record_progress(store, Update::new(record).set("purge_timers_done", true)).await?;
        return Ok(PurgeStep::TimersCancelled(cancelled));
    }
    let page = store
        .table()
        .scan_prefix(
            &keys::tenant_data_prefix(tenant),
            page.max(1),
            progress.purge_cursor.clone(),
        )
        .await?;
    let found = page.items.len();
    for item in page.items {
        remove_with_lookups(store, tenant, item).await?;
    }
    let found_in_pass = progress.purge_pass_found + found as u64;
    match page.cursor {
        Some(cursor) => {
            let update = Update::new(record)
                .set("purge_cursor", cursor)
                .set("purge_pass_found", found_in_pass);
            record_progress(store, update).await?;
            Ok(PurgeStep::Deleted(found))
        }
        None if found_in_pass == 0 => {
            // Condition::None: a second purger finishing at once is fine.
            store
                .table()
                .delete(&keys::environment(tenant), Condition::None)
                .await?;
            tracing::info!(tenant = %tenant, "deleted environment purged; its id is free");
            Ok(PurgeStep::Finished)
        }
        None => {
            // The pass is over but found something: check again from the start.
            let update = Update::new(record)
                .set("purge_cursor", Value::Null)
                .set("purge_pass_found", 0);
            record_progress(store, update).await?;
            Ok(PurgeStep::Deleted(found))
        }
    }
}

/// Stores progress on a record that must still exist (a purge that already
/// finished elsewhere must not bring the record back).
async fn record_progress(store: &Store, update: Update) -> DomainResult<()> {
    match store.table().update(update.when(Condition::Exists)).await {
        Ok(_) => Ok(()),
        Err(err) if err.is_condition_failed() => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Cancels every pending timer whose payload names `tenant`.
async fn cancel_timers(timers: &dyn Timers, tenant: &TenantId) -> DomainResult<usize> {
    let mut cancelled = 0;
    for timer in timers.pending().await.map_err(timer_error)? {
        if timer.payload.get("tenant").and_then(Value::as_str) == Some(tenant.as_str()) {
            timers.cancel(&timer.id).await.map_err(timer_error)?;
            cancelled += 1;
        }
    }
    Ok(cancelled)
}

fn timer_error(err: crate::ports::TimerError) -> crate::error::DomainError {
    crate::error::DomainError::Store(crate::ports::StoreError::Unavailable(format!("timers: {err}")))
}

/// Deletes one item of the tenant after the global lookups it owns.
async fn remove_with_lookups(store: &Store, tenant: &TenantId, item: Item) -> DomainResult<()> {
    let Some(key) = Key::of(&item) else {
        return Ok(());
    };
    let text = |name: &str| item.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
    if key.pk == keys::users_pk(tenant)
        && let Some(email) = text("email")
    {
        store
            .table()
            .delete(&keys::login(email, tenant), Condition::None)
            .await?;
    }
    if key.pk == keys::sources_pk(tenant) {
        if let Some(hash) = text("key_hash") {
            remove_lookup_of(store, tenant, keys::api_key(hash)).await?;
        }
        if let Some(topic) = text("sns_topic_arn") {
            remove_lookup_of(store, tenant, keys::sns_topic(topic)).await?;
        }
    }
    if key.sk.starts_with("NTF#")
        && let Some(message) = text("provider_message_id")
    {
        remove_lookup_of(store, tenant, keys::provider_message(message)).await?;
    }
    if let Some(lookup) = crate::app_stores::owned_lookup(tenant, &key, &item) {
        remove_lookup_of(store, tenant, lookup).await?;
    }
    store.table().delete(&key, Condition::None).await?;
    Ok(())
}

/// Deletes a global lookup if it still names `tenant` (a topic may since
/// feed another environment's source).
pub(crate) async fn remove_lookup_of(store: &Store, tenant: &TenantId, lookup: Key) -> DomainResult<()> {
    let Some(item) = store.table().get(&lookup).await? else {
        return Ok(());
    };
    if item.get("tenant").and_then(Value::as_str) == Some(tenant.as_str()) {
        store.table().delete(&lookup, Condition::None).await?;
    }
    Ok(())
}

/// What one run over the deleted environments did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Steps run.
    pub steps: usize,
    /// Environments whose purge finished.
    pub finished: usize,
}

/// Runs up to `max_steps` purge steps over the environments being purged,
/// each to its end while steps remain.
pub async fn run(store: &Store, timers: &dyn Timers, max_steps: usize) -> DomainResult<PurgeReport> {
    let mut report = PurgeReport::default();
    let records: Vec<Item> = store.query_all(keys::purging_environments()).await?;
    for record in records {
        let Some(tenant) = record
            .get(GSI1SK)
            .and_then(Value::as_str)
            .and_then(|id| TenantId::parse(id).ok())
        else {
            continue;
        };
        while report.steps < max_steps {
            report.steps += 1;
            match step(store, timers, &tenant, PURGE_PAGE).await? {
                PurgeStep::Finished => {
                    report.finished += 1;
                    break;
                }
                PurgeStep::NothingToDo => break,
                PurgeStep::TimersCancelled(_) | PurgeStep::Deleted(_) => {}
            }
        }
    }
    Ok(report)
}
