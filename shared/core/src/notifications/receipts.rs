//! Provider delivery receipts (Infobip's delivery reports): what a report
//! says, and applying it to its notification row once and only forward.
//!
//! Infobip reports the status of a message as an object: the status group in
//! `groupName` (`PENDING`, `UNDELIVERABLE`, `DELIVERED`, `EXPIRED`,
//! `REJECTED`) and `groupId` (1 to 5), a detail in `name`
//! (`DELIVERED_TO_HANDSET`, `EXPIRED_EXPIRED`, ...), which some reports leave
//! out. PagerPal's specification shows a short form with the group in `name`
//! (`{"name": "DELIVERED"}`). [`ReportedStatus::outcome`] reads the group
//! from `groupName`, else from `groupId`, else from `name` (the group itself
//! or a detail that starts with it).
//!
//! A report applies only to a row that is `sent` with that very provider
//! message id, and moves it to `delivered` or `failed`, both final: a report
//! posted again, a `DELIVERED` after a failure, a failure after a delivery,
//! a `PENDING` at any time, and a late report for a message the row has
//! since replaced (a manual retry sends a new message) change nothing. The
//! move is one conditional write (on the row's version), and a failure
//! writes the fallback row (the person's next contact method) in the same
//! transaction under an id derived from the failed message, so concurrent
//! duplicate reports queue one fallback at most.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::DomainResult;
use crate::keys;
use crate::model::TenantId;
use crate::notifications::delivery::{announce_fallback, fallback_row};
use crate::notifications::log::{NotificationLog, NotificationStatus};
use crate::ports::table::Update;
use crate::ports::{Bus, Condition, Key, StoreError, WriteOp};
use crate::store::{Store, from_item};

/// The longest provider message id a report may name (Infobip's are UUIDs or
/// 19-digit numbers); a longer one names no message of Quper's.
pub const MAX_MESSAGE_ID_LEN: usize = 200;

/// The status object of a delivery report, as the provider sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportedStatus {
    /// `PENDING`, `UNDELIVERABLE`, `DELIVERED`, `EXPIRED`, `REJECTED`.
    pub group_name: Option<String>,
    /// 1 PENDING, 2 UNDELIVERABLE, 3 DELIVERED, 4 EXPIRED, 5 REJECTED.
    pub group_id: Option<i64>,
    /// The detail (`DELIVERED_TO_HANDSET`), or the group itself in the
    /// specification's short form.
    pub name: Option<String>,
    pub description: Option<String>,
}

/// What a report says happened to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedOutcome {
    /// Still on its way: changes nothing.
    Pending,
    Delivered,
    Failed,
}

impl ReportedStatus {
    /// The outcome the report states, from `groupName`, else `groupId`,
    /// else `name`; `None` when none of them is a group Quper knows.
    pub fn outcome(&self) -> Option<ReportedOutcome> {
        let by_group = |group: &str| match group.trim().to_ascii_uppercase().as_str() {
            "PENDING" => Some(ReportedOutcome::Pending),
            "DELIVERED" => Some(ReportedOutcome::Delivered),
            // FAILED: the specification's list.
            "UNDELIVERABLE" | "EXPIRED" | "REJECTED" | "FAILED" => Some(ReportedOutcome::Failed),
            _ => None,
        };
        let by_id = |id: i64| match id {
            1 => Some(ReportedOutcome::Pending),
            3 => Some(ReportedOutcome::Delivered),
            2 | 4 | 5 => Some(ReportedOutcome::Failed),
            _ => None,
        };
        // A detail names its group first: DELIVERED_TO_HANDSET, PENDING_ENROUTE,
        // UNDELIVERABLE_NOT_DELIVERED, EXPIRED_EXPIRED, REJECTED_NETWORK.
        let by_name = |name: &str| {
            by_group(name).or_else(|| {
                let name = name.trim().to_ascii_uppercase();
                let (group, _) = name.split_once('_')?;
                by_group(group)
            })
        };
        self.group_name
            .as_deref()
            .and_then(by_group)
            .or_else(|| self.group_id.and_then(by_id))
            .or_else(|| self.name.as_deref().and_then(by_name))
    }

    /// How the status reads in a row's `last_error`: the description, else
    /// the detail, else the group.
    fn summary(&self) -> String {
        [&self.description, &self.name, &self.group_name]
            .into_iter()
            .flatten()
            .map(|text| text.trim())
            .find(|text| !text.is_empty())
            .map(|text| text.chars().take(500).collect())
            .unwrap_or_else(|| "reported undeliverable".to_owned())
    }
}

/// A delivery report for one message.
#[derive(Debug, Clone)]
pub struct Receipt {
    pub message_id: String,
    pub status: ReportedStatus,
    /// The report's `error.description`, when it names one.
    pub error: Option<String>,
}

/// What a receipt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptOutcome {
    Delivered,
    Failed,
    /// Unknown message, another tenant's message, a status that changes
    /// nothing (PENDING, or one Quper does not know), a row already final, or
    /// a report applied before.
    Ignored,
}

/// How often a receipt re-reads its row after losing a race to another
/// write of it before giving up (the row is then another writer's).
const ATTEMPTS: usize = 5;

/// Applies one delivery receipt. `tenant`, when the receipt URL names one,
/// must be the message's tenant: a receipt for another tenant's message
/// changes nothing.
pub async fn apply(
    store: &Store,
    bus: &dyn Bus,
    tenant: Option<&str>,
    receipt: &Receipt,
) -> DomainResult<ReceiptOutcome> {
    let message_id = receipt.message_id.as_str();
    if message_id.is_empty() || message_id.len() > MAX_MESSAGE_ID_LEN || message_id.chars().any(char::is_control) {
        return Ok(ReceiptOutcome::Ignored);
    }
    let target = match receipt.status.outcome() {
        Some(ReportedOutcome::Delivered) => NotificationStatus::Delivered,
        Some(ReportedOutcome::Failed) => NotificationStatus::Failed,
        Some(ReportedOutcome::Pending) | None => return Ok(ReceiptOutcome::Ignored),
    };
    let Some(lookup) = store.table().get(&keys::provider_message(message_id)).await? else {
        return Ok(ReceiptOutcome::Ignored);
    };
    let text = |name: &str| lookup.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(owner), Some(pk), Some(sk)) = (text("tenant"), text("pk"), text("sk")) else {
        return Ok(ReceiptOutcome::Ignored);
    };
    let Ok(owner) = TenantId::parse(&owner) else {
        return Ok(ReceiptOutcome::Ignored);
    };
    if tenant.is_some_and(|t| owner != t) || !pk.starts_with(&format!("T#{owner}#")) {
        return Ok(ReceiptOutcome::Ignored);
    }
    let key = Key::new(pk, sk);
    for _ in 0..ATTEMPTS {
        let Some(item) = store.table().get(&key).await? else {
            return Ok(ReceiptOutcome::Ignored);
        };
        let row: NotificationLog = from_item(item)?;
        // Only forward, only once, only for the message the row last sent.
        if row.status != NotificationStatus::Sent || row.provider_message_id.as_deref() != Some(message_id) {
            return Ok(ReceiptOutcome::Ignored);
        }
        let now = store.now();
        let mut update = Update::new(key.clone())
            .set("status", json!(target))
            .set("updated_at", json!(now))
            .set("next_attempt_at", Value::Null)
            .add("version", 1)
            .when(Condition::VersionEquals(row.version));
        let mut ops = Vec::with_capacity(2);
        let mut fallback = None;
        if target == NotificationStatus::Failed {
            let error = match &receipt.error {
                Some(error) => error.chars().take(500).collect(),
                None => receipt.status.summary(),
            };
            update = update.set("last_error", error);
            fallback = fallback_row(&row, fallback_id(&row.id, message_id), now);
        }
        ops.push(WriteOp::Update(update));
        if let Some(next) = &fallback {
            ops.push(next.write(&owner)?);
            ops.extend(crate::metrics::writes(
                &owner,
                crate::metrics::notifications_created([next]),
            ));
        }
        match store.table().transact(ops).await {
            Ok(()) => {}
            // Another write of the row won: read it again and decide anew.
            Err(StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict) => continue,
            Err(err) => return Err(err.into()),
        }
        return Ok(match (target, fallback) {
            (NotificationStatus::Delivered, _) => ReceiptOutcome::Delivered,
            (_, Some(next)) => {
                announce_fallback(store, bus, &owner, &row, &next).await;
                ReceiptOutcome::Failed
            }
            (_, None) => ReceiptOutcome::Failed,
        });
    }
    Ok(ReceiptOutcome::Ignored)
}

/// The id of the fallback row a failed message queues: the same for every
/// report of that failure, so the row is written once.
fn fallback_id(row_id: &str, message_id: &str) -> String {
    let digest = Sha256::digest(format!("fallback\0{row_id}\0{message_id}").as_bytes());
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(group_name: Option<&str>, group_id: Option<i64>, name: Option<&str>) -> ReportedStatus {
        ReportedStatus {
            group_name: group_name.map(str::to_owned),
            group_id,
            name: name.map(str::to_owned),
            description: None,
        }
    }

    #[test]
    fn the_group_is_read_from_group_name_then_group_id_then_name() {
        use ReportedOutcome::*;
        let cases = [
            (
                status(Some("DELIVERED"), Some(3), Some("DELIVERED_TO_HANDSET")),
                Some(Delivered),
            ),
            (status(Some("UNDELIVERABLE"), None, None), Some(Failed)),
            (status(Some("EXPIRED"), Some(4), Some("EXPIRED_EXPIRED")), Some(Failed)),
            (
                status(Some("REJECTED"), Some(5), Some("REJECTED_NETWORK")),
                Some(Failed),
            ),
            (status(Some("PENDING"), Some(1), Some("PENDING_ENROUTE")), Some(Pending)),
            (status(None, Some(3), None), Some(Delivered)),
            (status(None, Some(2), Some("whatever")), Some(Failed)),
            (status(Some("something new"), Some(1), None), Some(Pending)),
            (status(None, None, Some("DELIVERED")), Some(Delivered)),
            (status(None, None, Some("FAILED")), Some(Failed)),
            (status(None, None, Some("delivered_to_handset")), Some(Delivered)),
            (
                status(None, None, Some("UNDELIVERABLE_REJECTED_OPERATOR")),
                Some(Failed),
            ),
            (status(None, Some(0), Some("NO_ERROR")), None),
            (status(None, None, None), None),
        ];
        for (status, expected) in cases {
            assert_eq!(status.outcome(), expected, "{status:?}");
        }
    }

    #[test]
    fn a_failure_has_one_fallback_id_per_message() {
        assert_eq!(fallback_id("row", "m1"), fallback_id("row", "m1"));
        assert_ne!(fallback_id("row", "m1"), fallback_id("row", "m2"));
        assert_eq!(fallback_id("row", "m1").len(), 32);
    }
}
