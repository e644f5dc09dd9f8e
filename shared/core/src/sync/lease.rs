//! One run of a job at a time per environment: a lease item
//! (`keys::sync_lease`) put only when absent, or over a lease whose
//! `expires_at` (by the application's clock) has passed, so a crashed
//! run's lease expires after [`LEASE_SECONDS`]. Each taking writes a fresh
//! `version`, and release deletes the lease only at that version, so a run
//! whose lease expired and was taken over never releases the new holder's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::DomainResult;
use crate::keys;
use crate::model::TenantId;
use crate::ports::Condition;
use crate::ports::table::TTL;
use crate::store::{Store, to_item};

/// How long a lease holds: longer than any run may last (a Lambda
/// function's 15 minutes).
pub const LEASE_SECONDS: i64 = 15 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LeaseRecord {
    log_id: String,
    taken_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    version: u64,
}

/// A lease this run holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub version: u64,
}

/// Who holds the lease when it could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The history entry of the run that holds it.
    pub log_id: String,
    pub taken_at: DateTime<Utc>,
}

/// Takes the lease of (tenant, job) for the run `log_id`, or says who holds it.
pub async fn acquire(
    store: &Store,
    tenant: &TenantId,
    job_id: &str,
    log_id: &str,
) -> DomainResult<Result<Lease, Held>> {
    let key = keys::sync_lease(tenant, job_id);
    for _ in 0..3 {
        let now = store.now();
        let current: Option<LeaseRecord> = store.get(&key).await?;
        let (condition, floor) = match &current {
            None => (Condition::NotExists, 0),
            Some(held) if held.expires_at > now => {
                return Ok(Err(Held {
                    log_id: held.log_id.clone(),
                    taken_at: held.taken_at,
                }));
            }
            // Expired: taken over, only if nobody took it meanwhile.
            Some(expired) => (Condition::VersionEquals(expired.version), expired.version),
        };
        let micros = u64::try_from(now.timestamp_micros()).unwrap_or(0);
        let version = micros.max(floor + 1);
        let expires_at = now + chrono::Duration::seconds(LEASE_SECONDS);
        let record = LeaseRecord {
            log_id: log_id.to_owned(),
            taken_at: now,
            expires_at,
            version,
        };
        // The table's own expiry removes a lease nobody released, a day late.
        let ttl = expires_at.timestamp() + 86_400;
        let item = to_item(&key, &record, &[(TTL, json!(ttl))])?;
        match store.table().put(item, condition).await {
            Ok(()) => return Ok(Ok(Lease { version })),
            Err(err) if err.is_condition_failed() => continue,
            Err(err) => return Err(err.into()),
        }
    }
    // Lost three races in a row: someone else is taking it right now.
    let current: Option<LeaseRecord> = store.get(&key).await?;
    Ok(Err(Held {
        log_id: current.as_ref().map(|held| held.log_id.clone()).unwrap_or_default(),
        taken_at: current.map(|held| held.taken_at).unwrap_or_else(|| store.now()),
    }))
}

/// Releases a lease this run holds (a lease taken over since is left alone).
pub async fn release(store: &Store, tenant: &TenantId, job_id: &str, lease: &Lease) -> DomainResult<()> {
    match store
        .table()
        .delete(
            &keys::sync_lease(tenant, job_id),
            Condition::VersionEquals(lease.version),
        )
        .await
    {
        Err(err) if err.is_condition_failed() => Ok(()),
        other => Ok(other?),
    }
}
