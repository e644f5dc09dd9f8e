//! Every single-table key format, in one place.
//!
//! Every id a key is built from is a parsed domain type ([`TenantId`],
//! [`RecordId`], [`RoleId`], `u64`) or text Quper made itself (sort values,
//! hashes, timer ids), so nothing a client sends can add a `#` or leave its
//! prefix.
//!
//! Tenant data lives under `T#<tenant>#...`, so a query built from a caller's
//! tenant cannot reach another tenant's items. The only keys that do not start
//! with a tenant are global lookups that exist to *find* a tenant before one is
//! known: the login index (`LOGIN#<email>`), API-key and SNS-topic lookups
//! for ingestion (`APIKEY#<sha256>`, `SNSTOPIC#<arn>`), in-app store references
//! and the store notifications waiting for one (`STORELINK#...`,
//! `STOREPENDING#...`, hashed), and rate-limit windows
//! for ingestion (`APIKEY#<sha256>`, `SNSTOPIC#<arn>`), the WebSocket
//! connection lookup (`WSCONN#<connection id>`, API Gateway's events name
//! only the connection), and rate-limit windows
//! for failed logins and for requests by address or alert source key
//! (`RATE#...`, hashed, with a TTL). Two index partitions
//! are global too: `NTFQUEUED` and `NTFSENDING` in GSI1 list notification
//! rows waiting to be sent and being sent, across tenants, for the sweep that
//! re-publishes lost jobs and fails interrupted sends (each row names its
//! tenant), and `REMINDERS` lists delayed notification rules waiting for their
//! timers, so the sweep sends those whose timer was lost; `ENVPURGE` lists
//! deleted environments whose data the purge is still removing; `SYNCJOBS`
//! lists every environment's sync job states, whose figures `/metrics` sums.
//!
//! Deleting an incident removes its alerts (`T#<t>#ALERT#...`, listed by
//! [`incident_alerts`]), its item collection (`T#<t>#INC#<n>`,
//! [`incident_items`]), its sent messages' `NTFMSG#` lookups and its
//! open-incident marker (see `crate::incidents::manual`).
//!
//! Deleting an environment purges everything under `T#<t>#`
//! ([`tenant_data_prefix`]), the global lookups its items own, and last
//! `T#<t>` / `META` (see `crate::identity::purge`).
//!
//! | item | PK | SK | GSI1PK / GSI1SK |
//! |---|---|---|---|
//! | environment (tenant) | `T#<t>` | `META` | `ENVIRONMENTS` / `<t>`; while deleted and being purged: `ENVPURGE` / `<t>` |
//! | counter | `T#<t>#COUNTER` | `<name>` | |
//! | `/metrics` counter (one of 16 shards) | `T#<t>#COUNTER` | `metric#<name>#<shard>` | |
//! | user | `T#<t>#USER` | `<id:010>` | |
//! | login lookup | `LOGIN#<email>` | `T#<t>` | |
//! | web session (operator UI; `ttl`) | `T#<t>#WEBSESSION#<id>` | `META` | |
//! | group | `T#<t>#GROUP` | `<uuid>` | |
//! | group member | `T#<t>#GROUP#<uuid>` | `MEMBER#<user:010>` | |
//! | custom role | `T#<t>#ROLE` | `<uuid>` | |
//! | team | `T#<t>#TEAM` | `<id:010>` | |
//! | team member | `T#<t>#TEAM#<id:010>` | `MEMBER#<user:010>` | |
//! | failed-login window (account and client) | `RATE#LOGIN#<sha256>` | `<minute>` | |
//! | failed-login window (client, across accounts) | `RATE#CLIENT#<sha256>` | `<minute>` | |
//! | readiness probe | `HEALTH` | `PING` | |
//! | alert source | `T#<t>#SOURCE` | `<id:010>` | |
//! | API-key lookup | `APIKEY#<sha256>` | `KEY` | |
//! | SNS topic lookup | `SNSTOPIC#<topic arn>` | `SOURCE` | |
//! | alert rule | `T#<t>#RULE` | `<uuid>` | |
//! | incident | `T#<t>#INC#<n:010>` | `META` | `T#<t>#INCIDENTS` / `<n:010>`, GSI2 `T#<t>#INCIDENTS#<status>` / `<n:010>` |
//! | timeline event | `T#<t>#INC#<n:010>` | `EVT#<time>#<id>` | |
//! | alert | `T#<t>#ALERT#<uuid>` | `META` | `T#<t>#ALERTS` / `<time>#<uuid>`; once it has an incident, GSI2 `T#<t>#INC#<n:010>#ALERTS` / `<time>#<uuid>` |
//! | open-incident (dedup) marker | `T#<t>#DEDUP#<scope>` | `OPEN` | |
//! | schedule (with its rotation layers) | `T#<t>#SCHEDULE` | `<id:010>` | |
//! | schedule entry | `T#<t>#SCHEDULE#<id:010>` | `ENTRY#<entry:010>` | |
//! | escalation policy (levels, assignees) | `T#<t>#POLICY` | `<id:010>` | |
//! | notification log row | `T#<t>#INC#<n:010>` | `NTF#<time>#<id>` | while `queued`: `NTFQUEUED` / `<time>#<id>`; while `sending`: `NTFSENDING` / `<time>#<id>` |
//! | pending notification-rule reminder | `T#<t>#INC#<n:010>` | `REMIND#<timer id>` | `REMINDERS` / `<due time>#<timer id>` |
//! | timer (local adapter) | `TIMERS` / `TIMER#<id>` | due time / `TIMER` | |
//! | worker status | `JOBSTATUS` | `<job>` | |
//! | notification channel | `T#<t>#CHANNEL` | `<uuid>` | |
//! | contact method | `T#<t>#USER#<user:010>#CONTACT` | `<id:010>` | |
//! | notification rule | `T#<t>#USER#<user:010>#NRULE` | `<id:010>` | |
//! | provider message lookup (receipts) | `NTFMSG#<provider message id>` | `MSG` | |
//! | FinOps settings | `T#<t>#FINOPS` | `SETTINGS` | |
//! | FinOps sync state (`data_as_of`) | `T#<t>#FINOPS` | `META` | |
//! | FinOps day header (content hash, chunks) | `T#<t>#FINOPS` | `DAY#<yyyy-mm-dd>` | |
//! | FinOps open anomalies (dedup key → anomaly id) | `T#<t>#FINOPS` | `ANOMOPEN` | |
//! | FinOps day of cost aggregates (packed rows, chunked) | `T#<t>#COSTDAY` | `<yyyy-mm-dd>#<chunk:03>` | |
//! | FinOps cost anomaly | `T#<t>#COSTANOMALY` | `<yyyy-mm-dd>~<dimension>~<hash>` | |
//! | sync job state (paused, last run, cumulative metrics) | `T#<t>#SYNCJOB` | `<job_id>` | `SYNCJOBS` / `<t>#<job_id>` |
//! | sync job lease (one run at a time; `expires_at`, `ttl`) | `T#<t>#SYNCLEASE` | `<job_id>` | |
//! | sync history entry (`ttl`: 14 days) | `T#<t>#SYNCLOG` | `<log_id>` (`<start micros:016x>-<8 hex>`: sorts by start) | |
//! | warehouse table statistics (`table_stats_sync`) | `T#<t>#WHTABLE` | `<table name>` | |
//! | warehouse query (`query_history_sync`; `ttl`) | `T#<t>#WHQUERY` | `<query id>` | |
//! | a user's usage in a day (`crate::usage`) | `T#<t>#USAGE#<user:010>` | `D#<yyyy-mm-dd>` | |
//! | a user's usage in a billing period | `T#<t>#USAGEPERIOD#<yyyy-mm>` | `<user:010>` | |
//! | usage idempotency marker (`ttl`: 2 days) | `T#<t>#USAGEREQ#<sha256>` | `MARK` | |
//! | provider event marker (a webhook applied once; `ttl`: 90 days) | `T#<t>#PROVIDEREVENT#<provider>` | `<sha256 of the event id>` | |
//! | project (OmniStack; soft-deleted: `deleted_at`) | `T#<t>#USER#<owner:010>#PROJECT` | `<uuid>` | |
//! | file record (OmniStack; `pending` ones carry a `ttl`; the bytes are in the object store under `uploads/<t>/<owner:010>/<uuid>/<name>`) | `T#<t>#USER#<owner:010>#FILE` | `<uuid>` | |
//! | audit log entry (append-only) | `T#<t>#AUDIT` | `<epoch micros:016x>-<8 hex>` | |
//! | impersonation session (`ttl`: its expiry; deleted by `stop`) | `T#<t>#IMPERSONATION#<32 hex>` | `META` | |
//! | external identity → user (`crate::identity::external`) | `T#<t>#IDPSUB#<sha256 of issuer, sub>` | `LINK` | |
//! | user → their identity at an issuer (one per issuer) | `T#<t>#IDPUSER#<user:010>` | `<sha256 of issuer>` | |
//! | contact form submission (`crate::contact`; in the contact environment) | `T#<t>#CONTACT` | `<reference id>` | |
//! | contact delivery (email, CRM webhook) | `T#<t>#CNTDLV` | `<delivery id>` | while `queued` or `sending`: `CNTPENDING` / `<due time>#<t>#<delivery id>` |
//! | contact form rate-limit window (`ttl`) | `T#<t>#CONTACTRATE#<sha256 of the client address>` | `<window start, Unix s>` | |
//! | a user's usage since the account began (`crate::usage`: `storage_bytes` is a level) | `T#<t>#USAGETOTAL` | `<user:010>` | |
//! | feature flag (`crate::flags`) | `T#<t>#FLAG` | `<flag id>` | |
//! | feature flag key marker (keys unique per environment) | `T#<t>#FLAGKEY` | `<key>` | |
//! | a user's request rate-limit window (`crate::ratelimit`; `ttl`: a minute past its end) | `T#<t>#RATE#<class>#<window length>#<sha256 of token subject>` | `<window index>` | |
//! | an address's or alert source key's request rate-limit window (`ttl`) | `RATE#REQ#<class>#<window length>#<sha256 of ip\|address or key\|key>` | `<window index>` | |
//! | billing account (Stripe customer, subscription, last event applied; `crate::billing`) | `T#<t>#BILLING` | `<user:010>` | |
//! | Stripe customer lookup (global: finds the tenant of an event naming only a customer) | `STRIPECUST#<sha256 of the customer id>` | `LINK` | |
//! | a user's store account (`crate::app_stores`: their Apple `appAccountToken`) | `T#<t>#STOREACCOUNT` | `<user:010>` | |
//! | a user's store subscription (Apple, Google Play) | `T#<t>#STORESUB#<user:010>` | `<store>#<sha256 of originalTransactionId or purchaseToken>` | |
//! | a store reference a user registered (Google purchase token; the tenant's side of its lookup) | `T#<t>#STOREPURCHASE#<user:010>` | `<store>#<sha256 of the reference>` | |
//! | store reference lookup (global: finds the tenant and user of a store notification) | `STORELINK#<store>#<sha256 of appAccountToken or purchaseToken>` | `LINK` | |
//! | store notification kept until its reference is linked (global) | `STOREPENDING#<store>#<sha256 of the reference>` | `<event ms:016>#<sha256 of the event id>` | |
//! | WebSocket connection on API Gateway (`crate::realtime`; `ttl`: API Gateway's 2-hour connection limit and a margin) | `T#<t>#WSCONN#<connection id>` | `META` | |
//! | a connection's subscription (forgotten with the connection; `ttl`) | `T#<t>#WSCONN#<connection id>` | `SUB#<channel>` | |
//! | a channel's subscriber (queried to publish; `ttl`) | `T#<t>#WSCHAN#<channel>` | `<connection id>` | |
//! | WebSocket connection lookup (API Gateway names only the connection id; `ttl`) | `WSCONN#<connection id>` | `CONN` | |

use crate::model::{RecordId, RoleId, TenantId};
use crate::ports::{Index, Key, Query, SortKey};

/// Partition and sort key of the sequence behind integer ids.
pub fn counter(tenant: &TenantId, name: &str) -> Key {
    Key::new(format!("T#{tenant}#COUNTER"), name)
}

/// Every counter of a tenant: id sequences, the incident list counts and
/// the `/metrics` counters (one partition, one query).
pub fn counters(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#COUNTER"))
}

/// The sort-key prefix of the `/metrics` counters in [`counters`].
pub const METRIC_COUNTER_PREFIX: &str = "metric#";

/// One shard of a `/metrics` counter (`name` is Quper's own text, e.g.
/// `alerts` or `ntf_sent#sms`; `shard` one hex digit). Sharded so that
/// concurrent transactions of one tenant seldom touch the same item.
pub fn metric_counter(tenant: &TenantId, name: &str, shard: char) -> Key {
    Key::new(
        format!("T#{tenant}#COUNTER"),
        format!("{METRIC_COUNTER_PREFIX}{name}#{shard}"),
    )
}

/// Integer ids sort as zero-padded strings so a partition reads in id order.
pub fn id_sk(id: u64) -> String {
    format!("{id:010}")
}

/// A signed-in browser's session; `id` is 32 hex characters Quper drew
/// (checked by `identity::web_sessions::is_session_id` before any key is made).
pub fn web_session(tenant: &TenantId, id: &str) -> Key {
    Key::new(format!("T#{tenant}#WEBSESSION#{id}"), "META")
}

pub fn environment(tenant: &TenantId) -> Key {
    Key::new(format!("T#{tenant}"), "META")
}
pub const ENVIRONMENTS_GSI1PK: &str = "ENVIRONMENTS";
pub fn environments() -> Query {
    Query::index(Index::Gsi1, ENVIRONMENTS_GSI1PK)
}

/// Environments being deleted, whose data the purge job is removing (GSI1;
/// an environment leaves `ENVIRONMENTS` for this partition when it is
/// deleted, and its record goes when the purge has finished).
pub const PURGING_ENVIRONMENTS_GSI1PK: &str = "ENVPURGE";
pub fn purging_environments() -> Query {
    Query::index(Index::Gsi1, PURGING_ENVIRONMENTS_GSI1PK)
}

/// The start of the partition key of every item of a tenant except its
/// environment record (`T#<t>`): what the purge of a deleted environment
/// scans for. The trailing `#` keeps `acme` from matching `acme2`.
pub fn tenant_data_prefix(tenant: &TenantId) -> String {
    format!("T#{tenant}#")
}

pub fn users_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#USER")
}
pub fn users(tenant: &TenantId) -> Query {
    Query::partition(users_pk(tenant))
}
pub fn user(tenant: &TenantId, id: u64) -> Key {
    Key::new(format!("T#{tenant}#USER"), id_sk(id))
}

pub fn login_pk(email: &str) -> String {
    format!("LOGIN#{email}")
}
pub fn login(email: &str, tenant: &TenantId) -> Key {
    Key::new(login_pk(email), format!("T#{tenant}"))
}
pub fn logins(email: &str) -> Query {
    Query::partition(login_pk(email))
}

pub fn groups(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#GROUP"))
}
pub fn group(tenant: &TenantId, id: &RecordId) -> Key {
    Key::new(format!("T#{tenant}#GROUP"), id.as_str())
}
pub fn group_members(tenant: &TenantId, group: &RecordId) -> Query {
    Query::partition(format!("T#{tenant}#GROUP#{group}")).prefix("MEMBER#")
}
pub fn group_member(tenant: &TenantId, group: &RecordId, user: u64) -> Key {
    Key::new(format!("T#{tenant}#GROUP#{group}"), format!("MEMBER#{}", id_sk(user)))
}

pub fn roles(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#ROLE"))
}
pub fn role(tenant: &TenantId, id: &RoleId) -> Key {
    Key::new(format!("T#{tenant}#ROLE"), id.as_str())
}

pub fn teams(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#TEAM"))
}
pub fn team(tenant: &TenantId, id: u64) -> Key {
    Key::new(format!("T#{tenant}#TEAM"), id_sk(id))
}
pub fn team_members(tenant: &TenantId, team: u64) -> Query {
    Query::partition(format!("T#{tenant}#TEAM#{}", id_sk(team))).prefix("MEMBER#")
}
pub fn team_member(tenant: &TenantId, team: u64, user: u64) -> Key {
    Key::new(
        format!("T#{tenant}#TEAM#{}", id_sk(team)),
        format!("MEMBER#{}", id_sk(user)),
    )
}

/// One minute's window of failed logins for one (account, client) pair. The
/// pair is hashed so neither the email nor the address is stored in clear.
pub fn failed_logins(account_client_hash: &str, minute: i64) -> Key {
    Key::new(format!("RATE#LOGIN#{account_client_hash}"), minute.to_string())
}

/// One minute's window of failed logins from one client address, across
/// accounts (the address hashed).
pub fn failed_logins_by_client(client_hash: &str, minute: i64) -> Key {
    Key::new(format!("RATE#CLIENT#{client_hash}"), minute.to_string())
}

pub fn health_probe() -> Key {
    Key::new("HEALTH", "PING")
}

pub fn sources_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#SOURCE")
}
pub fn sources(tenant: &TenantId) -> Query {
    Query::partition(sources_pk(tenant))
}
pub fn source(tenant: &TenantId, id: u64) -> Key {
    Key::new(format!("T#{tenant}#SOURCE"), id_sk(id))
}
/// The global lookup from an API key's SHA-256 to its source.
pub fn api_key(hash: &str) -> Key {
    Key::new(format!("APIKEY#{hash}"), "KEY")
}
/// The global lookup from an SNS topic to the source it feeds.
pub fn sns_topic(arn: &str) -> Key {
    Key::new(format!("SNSTOPIC#{arn}"), "SOURCE")
}

pub fn rules(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#RULE"))
}
pub fn rule(tenant: &TenantId, id: &RecordId) -> Key {
    Key::new(format!("T#{tenant}#RULE"), id.as_str())
}

pub fn incident_pk(tenant: &TenantId, number: u64) -> String {
    format!("T#{tenant}#INC#{}", id_sk(number))
}
pub fn incident(tenant: &TenantId, number: u64) -> Key {
    Key::new(incident_pk(tenant, number), "META")
}
/// GSI1: every incident of a tenant, by number.
pub fn incidents_gsi1pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#INCIDENTS")
}
/// GSI2: the incidents of a tenant in one status, by number.
pub fn incidents_by_status_gsi2pk(tenant: &TenantId, status: &str) -> String {
    format!("T#{tenant}#INCIDENTS#{status}")
}
/// Everything in an incident's item collection (the record, its timeline,
/// alerts, notification rows and reminders): what deleting it removes.
pub fn incident_items(tenant: &TenantId, number: u64) -> Query {
    Query::partition(incident_pk(tenant, number))
}
pub fn incident_events(tenant: &TenantId, number: u64) -> Query {
    Query::partition(incident_pk(tenant, number)).prefix("EVT#")
}
/// An incident's timeline events and notification rows in one read (sort
/// keys from `EVT#` up to, not including, `NTF$`: `EVT#...`, `META`,
/// `NTF#...`; `$` sorts right after `#`), for the incident analytics.
pub fn incident_history(tenant: &TenantId, number: u64) -> Query {
    Query::partition(incident_pk(tenant, number)).sort(SortKey::Between {
        from: "EVT#".to_owned(),
        to: "NTF$".to_owned(),
    })
}
/// GSI1: a tenant's incidents numbered up to `number`, newest first.
pub fn incidents_up_to(tenant: &TenantId, number: u64) -> Query {
    Query::index(Index::Gsi1, incidents_gsi1pk(tenant))
        .sort(SortKey::To(id_sk(number)))
        .backwards()
}
pub fn incident_event(tenant: &TenantId, number: u64, sort: &str) -> Key {
    Key::new(incident_pk(tenant, number), format!("EVT#{sort}"))
}
/// GSI2: an incident's alerts, oldest first.
pub fn incident_alerts(tenant: &TenantId, number: u64) -> Query {
    Query::index(Index::Gsi2, incident_alerts_gsi2pk(tenant, number))
}
pub fn incident_alerts_gsi2pk(tenant: &TenantId, number: u64) -> String {
    format!("{}#ALERTS", incident_pk(tenant, number))
}
/// The copies of an incident's alerts that stores written before
/// [`incident_alerts`] kept under the incident (read and deleted, never
/// written).
pub fn incident_alert_copies(tenant: &TenantId, number: u64) -> Query {
    Query::partition(incident_pk(tenant, number)).prefix("ALERT#")
}

/// `id` is the UUID Quper gave the alert when it was ingested; a client's
/// id reaches it only parsed (`ingest::alerts::get` takes a [`RecordId`]).
pub fn alert(tenant: &TenantId, id: &str) -> Key {
    Key::new(format!("T#{tenant}#ALERT#{id}"), "META")
}
pub fn alerts_gsi1pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#ALERTS")
}

/// The marker that says "an incident is open for this scope"; its `version`
/// is the incident's number.
pub fn open_incident(tenant: &TenantId, scope: &str) -> Key {
    Key::new(format!("T#{tenant}#DEDUP#{scope}"), OPEN_INCIDENT_SK)
}
/// The sort key of every open-incident marker, and of nothing else: the
/// local host answers these items from memory (read on every alert).
pub const OPEN_INCIDENT_SK: &str = "OPEN";

pub fn schedules(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#SCHEDULE"))
}
pub fn schedule(tenant: &TenantId, id: u64) -> Key {
    Key::new(format!("T#{tenant}#SCHEDULE"), id_sk(id))
}
pub fn schedule_entries(tenant: &TenantId, schedule: u64) -> Query {
    Query::partition(format!("T#{tenant}#SCHEDULE#{}", id_sk(schedule))).prefix("ENTRY#")
}
pub fn schedule_entry(tenant: &TenantId, schedule: u64, entry: u64) -> Key {
    Key::new(
        format!("T#{tenant}#SCHEDULE#{}", id_sk(schedule)),
        format!("ENTRY#{}", id_sk(entry)),
    )
}

pub fn policies(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#POLICY"))
}
pub fn policy(tenant: &TenantId, id: u64) -> Key {
    Key::new(format!("T#{tenant}#POLICY"), id_sk(id))
}

pub fn incident_notifications(tenant: &TenantId, number: u64) -> Query {
    Query::partition(incident_pk(tenant, number)).prefix("NTF#")
}
pub fn incident_notification(tenant: &TenantId, number: u64, sort: &str) -> Key {
    Key::new(incident_pk(tenant, number), format!("NTF#{sort}"))
}

/// The status of a background job (last run), shared by every instance.
pub fn job_status(job: &str) -> Key {
    Key::new("JOBSTATUS", job)
}
/// Every background job's status.
pub fn job_statuses() -> Query {
    Query::partition("JOBSTATUS")
}

pub fn contact_methods(tenant: &TenantId, user: u64) -> Query {
    Query::partition(format!("T#{tenant}#USER#{}#CONTACT", id_sk(user)))
}
pub fn contact_method(tenant: &TenantId, user: u64, id: u64) -> Key {
    Key::new(format!("T#{tenant}#USER#{}#CONTACT", id_sk(user)), id_sk(id))
}

pub fn notification_rules(tenant: &TenantId, user: u64) -> Query {
    Query::partition(format!("T#{tenant}#USER#{}#NRULE", id_sk(user)))
}
pub fn notification_rule(tenant: &TenantId, user: u64, id: u64) -> Key {
    Key::new(format!("T#{tenant}#USER#{}#NRULE", id_sk(user)), id_sk(id))
}

/// GSI1 partition of notification rows still `queued` (sparse: a row leaves
/// it when delivery claims it).
pub const QUEUED_NOTIFICATIONS_GSI1PK: &str = "NTFQUEUED";
pub fn queued_notifications() -> Query {
    Query::index(Index::Gsi1, QUEUED_NOTIFICATIONS_GSI1PK)
}
/// GSI1 partition of notification rows being sent (left by a finished send).
pub const SENDING_NOTIFICATIONS_GSI1PK: &str = "NTFSENDING";
pub fn sending_notifications() -> Query {
    Query::index(Index::Gsi1, SENDING_NOTIFICATIONS_GSI1PK)
}

/// The global lookup from a provider's message id to its notification row,
/// for delivery receipts (which name no tenant).
pub fn provider_message(message_id: &str) -> Key {
    Key::new(format!("NTFMSG#{message_id}"), "MSG")
}

pub fn channels(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#CHANNEL"))
}
pub fn channel(tenant: &TenantId, id: &RecordId) -> Key {
    Key::new(format!("T#{tenant}#CHANNEL"), id.as_str())
}

/// A delayed notification rule waiting for its timer, in the item collection
/// of the incident whose page set it.
pub fn reminder(tenant: &TenantId, incident: u64, timer_id: &str) -> Key {
    Key::new(incident_pk(tenant, incident), format!("REMIND#{timer_id}"))
}
pub fn incident_reminders(tenant: &TenantId, incident: u64) -> Query {
    Query::partition(incident_pk(tenant, incident)).prefix("REMIND#")
}
/// GSI1 partition of pending reminders across tenants, by due time (sparse:
/// a reminder leaves it when it is sent or cancelled).
pub const REMINDERS_GSI1PK: &str = "REMINDERS";
pub fn due_reminders() -> Query {
    Query::index(Index::Gsi1, REMINDERS_GSI1PK)
}

// FinOps (`crate::finops`). Dates are `NaiveDate`s Quper formats itself;
// anomaly ids are made by `finops::anomalies` (a date, a dimension, a hash).

fn finops_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#FINOPS")
}
pub fn finops_settings(tenant: &TenantId) -> Key {
    Key::new(finops_pk(tenant), "SETTINGS")
}
pub fn finops_meta(tenant: &TenantId) -> Key {
    Key::new(finops_pk(tenant), "META")
}
pub fn finops_open_anomalies(tenant: &TenantId) -> Key {
    Key::new(finops_pk(tenant), "ANOMOPEN")
}
pub fn cost_day_header(tenant: &TenantId, day: chrono::NaiveDate) -> Key {
    Key::new(finops_pk(tenant), format!("DAY#{day}"))
}
/// The day headers of `[first, last]` (inclusive).
pub fn cost_day_headers(tenant: &TenantId, first: chrono::NaiveDate, last: chrono::NaiveDate) -> Query {
    Query::partition(finops_pk(tenant)).sort(SortKey::Between {
        from: format!("DAY#{first}"),
        to: format!("DAY#{last}"),
    })
}
fn cost_days_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#COSTDAY")
}
pub fn cost_day_chunk(tenant: &TenantId, day: chrono::NaiveDate, chunk: u32) -> Key {
    Key::new(cost_days_pk(tenant), format!("{day}#{chunk:03}"))
}
/// Every chunk of the days `[first, last]` (inclusive), in day order.
pub fn cost_days(tenant: &TenantId, first: chrono::NaiveDate, last: chrono::NaiveDate) -> Query {
    Query::partition(cost_days_pk(tenant)).sort(SortKey::Between {
        from: format!("{first}#"),
        to: format!("{last}#~"),
    })
}
fn cost_anomalies_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#COSTANOMALY")
}
pub fn cost_anomaly(tenant: &TenantId, id: &str) -> Key {
    Key::new(cost_anomalies_pk(tenant), id)
}
/// Every cost anomaly, newest day first.
pub fn cost_anomalies(tenant: &TenantId) -> Query {
    Query::partition(cost_anomalies_pk(tenant)).backwards()
}

/// A sync job's state in `tenant` (`job_id` is one of the registry's ids,
/// `crate::sync::jobs`).
pub fn sync_job(tenant: &TenantId, job_id: &str) -> Key {
    Key::new(format!("T#{tenant}#SYNCJOB"), job_id)
}
pub fn sync_jobs(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#SYNCJOB"))
}
/// Every environment's sync job states (GSI1), for `/metrics`.
pub const SYNC_JOBS_GSI1PK: &str = "SYNCJOBS";
pub fn sync_jobs_gsi1sk(tenant: &TenantId, job_id: &str) -> String {
    format!("{tenant}#{job_id}")
}
pub fn all_sync_jobs() -> Query {
    Query::index(Index::Gsi1, SYNC_JOBS_GSI1PK)
}
/// The lease of one run of a sync job.
pub fn sync_lease(tenant: &TenantId, job_id: &str) -> Key {
    Key::new(format!("T#{tenant}#SYNCLEASE"), job_id)
}
/// One sync history entry; `log_id` was checked by
/// `crate::sync::history::is_log_id`.
pub fn sync_log(tenant: &TenantId, log_id: &str) -> Key {
    Key::new(format!("T#{tenant}#SYNCLOG"), log_id)
}
pub fn sync_logs(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#SYNCLOG"))
}
/// The statistics of one warehouse table, by its name.
pub fn warehouse_table(tenant: &TenantId, table_name: &str) -> Key {
    Key::new(format!("T#{tenant}#WHTABLE"), table_name)
}
pub fn warehouse_tables(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#WHTABLE"))
}
/// One query the warehouse ran, by its id.
pub fn warehouse_query(tenant: &TenantId, query_id: &str) -> Key {
    Key::new(format!("T#{tenant}#WHQUERY"), query_id)
}
pub fn warehouse_queries(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#WHQUERY"))
}

/// One day of a user's usage (`crate::usage`).
pub fn usage_day(tenant: &TenantId, user: u64, day: chrono::NaiveDate) -> Key {
    Key::new(format!("T#{tenant}#USAGE#{user:010}"), format!("D#{day}"))
}
/// A user's usage days `[first, last]` (inclusive), in day order.
pub fn usage_days(tenant: &TenantId, user: u64, first: chrono::NaiveDate, last: chrono::NaiveDate) -> Query {
    Query::partition(format!("T#{tenant}#USAGE#{user:010}")).sort(SortKey::Between {
        from: format!("D#{first}"),
        to: format!("D#{last}"),
    })
}
/// A user's usage in one billing period (`period`: `yyyy-mm`, Quper's own).
pub fn usage_period(tenant: &TenantId, period: &str, user: u64) -> Key {
    Key::new(format!("T#{tenant}#USAGEPERIOD#{period}"), format!("{user:010}"))
}
/// Every user's usage in one billing period (one query, for top users).
pub fn usage_periods(tenant: &TenantId, period: &str) -> Query {
    Query::partition(format!("T#{tenant}#USAGEPERIOD#{period}"))
}
/// The marker of a counted idempotency key (`hash`: its SHA-256, hex).
pub fn usage_marker(tenant: &TenantId, hash: &str) -> Key {
    Key::new(format!("T#{tenant}#USAGEREQ#{hash}"), "MARK")
}

/// One audit log entry (`sort`: `<epoch micros:016x>-<8 hex>`, Quper's own).
pub fn audit_entry(tenant: &TenantId, sort: &str) -> Key {
    Key::new(format!("T#{tenant}#AUDIT"), sort)
}
/// The audit log, oldest first (`.backwards()` for newest first).
pub fn audit_entries(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#AUDIT"))
}

/// One impersonation session (`session`: 32 hex characters Quper made).
pub fn impersonation(tenant: &TenantId, session: &str) -> Key {
    Key::new(format!("T#{tenant}#IMPERSONATION#{session}"), "META")
}
/// The user an external identity signs in as (`subject_hash`: SHA-256 hex of
/// the issuer and the token's `sub`).
pub fn external_identity(tenant: &TenantId, subject_hash: &str) -> Key {
    Key::new(format!("T#{tenant}#IDPSUB#{subject_hash}"), "LINK")
}
/// The identity a user has at one issuer (`issuer_hash`: SHA-256 hex of the
/// issuer), so an account is linked to one subject per issuer.
pub fn external_identity_of_user(tenant: &TenantId, user: u64, issuer_hash: &str) -> Key {
    Key::new(format!("T#{tenant}#IDPUSER#{user:010}"), issuer_hash)
}

// Projects and files (OmniStack), each under its owner.

/// One of a user's projects (soft-deleted ones stay, with `deleted_at`).
pub fn project(tenant: &TenantId, owner: u64, id: &RecordId) -> Key {
    Key::new(format!("T#{tenant}#USER#{}#PROJECT", id_sk(owner)), id.as_str())
}
/// A user's projects.
pub fn projects(tenant: &TenantId, owner: u64) -> Query {
    Query::partition(format!("T#{tenant}#USER#{}#PROJECT", id_sk(owner)))
}
/// One of a user's files (pending uploads carry a `ttl`).
pub fn file(tenant: &TenantId, owner: u64, id: &RecordId) -> Key {
    Key::new(format!("T#{tenant}#USER#{}#FILE", id_sk(owner)), id.as_str())
}
/// A user's files, pending and uploaded.
pub fn files(tenant: &TenantId, owner: u64) -> Query {
    Query::partition(format!("T#{tenant}#USER#{}#FILE", id_sk(owner)))
}

/// A contact form submission (`reference`: `CNT-` + 8 hex, Quper's own).
pub fn contact_submission(tenant: &TenantId, reference: &str) -> Key {
    Key::new(format!("T#{tenant}#CONTACT"), reference)
}
/// One delivery of the contact form (`id`: Quper's own, `<8 hex>-<kind>`,
/// checked by `crate::admin::jobs` before a client's text reaches here).
pub fn contact_delivery(tenant: &TenantId, id: &str) -> Key {
    Key::new(format!("T#{tenant}#CNTDLV"), id)
}
pub fn contact_deliveries(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#CNTDLV"))
}
/// Contact deliveries waiting or being sent, across tenants (GSI1, by due
/// time), for the sweep.
pub const PENDING_CONTACT_DELIVERIES_GSI1PK: &str = "CNTPENDING";
pub fn pending_contact_deliveries() -> Query {
    Query::index(Index::Gsi1, PENDING_CONTACT_DELIVERIES_GSI1PK)
}
/// The contact form's window of one client address (`client_hash`: its
/// SHA-256, hex; `window_start`: Unix seconds).
pub fn contact_rate(tenant: &TenantId, client_hash: &str, window_start: i64) -> Key {
    Key::new(
        format!("T#{tenant}#CONTACTRATE#{client_hash}"),
        window_start.to_string(),
    )
}

// Usage totals and feature flags (`crate::usage`, `crate::flags`).

/// A user's usage since the account began (every metric; `storage_bytes`
/// is the level of storage in use).
pub fn usage_total(tenant: &TenantId, user: u64) -> Key {
    Key::new(format!("T#{tenant}#USAGETOTAL"), id_sk(user))
}
/// Every user's totals (one query: who stores most).
pub fn usage_totals(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#USAGETOTAL"))
}
/// One feature flag (`id`: `flag_<32 hex>`, checked by
/// `flags::FlagId::parse`).
pub fn feature_flag(tenant: &TenantId, id: &str) -> Key {
    Key::new(format!("T#{tenant}#FLAG"), id)
}
/// Every feature flag of an environment.
pub fn feature_flags(tenant: &TenantId) -> Query {
    Query::partition(format!("T#{tenant}#FLAG"))
}
/// The marker that keeps a flag key unique in its environment (`key`
/// checked by `flags::FlagKey`: `[A-Za-z0-9_.-]`, no `#`).
pub fn feature_flag_key(tenant: &TenantId, key: &str) -> Key {
    Key::new(format!("T#{tenant}#FLAGKEY"), key)
}

// Request rate limits (`crate::ratelimit`): `class` and `window` are Quper's
// own text (`default`, `60s`), `hash` a SHA-256 in hex, `index` the window's
// number since the epoch.

/// A user's window of requests in a rate-limit class.
pub fn rate_window_user(tenant: &TenantId, class: &str, window: &str, hash: &str, index: i64) -> Key {
    Key::new(format!("T#{tenant}#RATE#{class}#{window}#{hash}"), index.to_string())
}

/// A client address's or an alert source key's window of requests (global:
/// no tenant is known before the request is authenticated).
pub fn rate_window_global(class: &str, window: &str, hash: &str, index: i64) -> Key {
    Key::new(format!("RATE#REQ#{class}#{window}#{hash}"), index.to_string())
}

/// A provider event applied (`crate::webhooks`): one per (provider, event id).
pub fn provider_event(tenant: &TenantId, provider: &str, event_hash: &str) -> Key {
    Key::new(format!("T#{tenant}#PROVIDEREVENT#{provider}"), event_hash)
}

// Billing with Stripe (`crate::billing`).

/// A user's billing account (their Stripe customer and subscription).
pub fn billing_account(tenant: &TenantId, user: u64) -> Key {
    Key::new(format!("T#{tenant}#BILLING"), id_sk(user))
}

/// The lookup from a Stripe customer (`customer_hash`: the SHA-256 of its
/// id, hex) to its (tenant, user). Global: a Stripe event that names only a
/// customer (an invoice) must find its tenant before one is known.
pub fn stripe_customer(customer_hash: &str) -> Key {
    Key::new(format!("STRIPECUST#{customer_hash}"), "LINK")
}

// --- In-app store subscriptions (`crate::app_stores`) ---

/// A user's store account (their Apple `appAccountToken`).
pub fn store_account(tenant: &TenantId, user: u64) -> Key {
    Key::new(store_accounts_pk(tenant), id_sk(user))
}
/// Global lookup: a store reference (Apple `appAccountToken`, Google
/// `purchaseToken`; `hash` its SHA-256) → the tenant and user it belongs to.
/// Exists only to find the tenant of a store notification.
pub fn store_link(store: &str, hash: &str) -> Key {
    Key::new(format!("STORELINK#{store}#{hash}"), "LINK")
}
/// Global: a verified store notification kept until its reference is linked
/// (`sort`: `<event ms:016>#<sha256 of the event id>`).
pub fn store_pending(store: &str, hash: &str, sort: &str) -> Key {
    Key::new(format!("STOREPENDING#{store}#{hash}"), sort)
}
/// The kept notifications of one reference, oldest first.
pub fn store_pendings(store: &str, hash: &str) -> Query {
    Query::partition(format!("STOREPENDING#{store}#{hash}"))
}
/// A user's record of one store subscription (`hash`: SHA-256 of Apple's
/// `originalTransactionId` or Google's `purchaseToken`).
pub fn store_subscription(tenant: &TenantId, user: u64, store: &str, hash: &str) -> Key {
    Key::new(
        format!("T#{tenant}#STORESUB#{}", id_sk(user)),
        format!("{store}#{hash}"),
    )
}
/// A store reference a user registered (the tenant's side of its
/// [`store_link`], so an environment's purge finds and removes it).
pub fn store_purchase(tenant: &TenantId, user: u64, store: &str, hash: &str) -> Key {
    Key::new(
        format!("T#{tenant}#STOREPURCHASE#{}", id_sk(user)),
        format!("{store}#{hash}"),
    )
}
/// The partition of a tenant's store accounts.
pub fn store_accounts_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}#STOREACCOUNT")
}
/// Every store subscription of a user.
pub fn store_subscriptions(tenant: &TenantId, user: u64) -> Query {
    Query::partition(format!("T#{tenant}#STORESUB#{}", id_sk(user)))
}

// WebSocket connections on API Gateway (`quper_store_aws::ApiGatewayRealtime`).
// Connection ids are checked by `ports::realtime::is_connection_id` (base64
// or UUID text, no `#`); channels are the names `crate::realtime::Channel`
// prints.

/// A WebSocket connection of the tenant.
pub fn ws_connection(tenant: &TenantId, connection: &str) -> Key {
    Key::new(format!("T#{tenant}#WSCONN#{connection}"), "META")
}

/// The sort-key prefix of a connection's subscriptions.
pub const WS_SUBSCRIPTION_PREFIX: &str = "SUB#";

/// One subscription of a connection, kept under the connection.
pub fn ws_connection_subscription(tenant: &TenantId, connection: &str, channel: &str) -> Key {
    Key::new(
        format!("T#{tenant}#WSCONN#{connection}"),
        format!("{WS_SUBSCRIPTION_PREFIX}{channel}"),
    )
}

/// Every item of a connection (the connection and its subscriptions).
pub fn ws_connection_items(tenant: &TenantId, connection: &str) -> Query {
    Query::partition(format!("T#{tenant}#WSCONN#{connection}"))
}

/// One subscriber of a channel.
pub fn ws_subscriber(tenant: &TenantId, channel: &str, connection: &str) -> Key {
    Key::new(format!("T#{tenant}#WSCHAN#{channel}"), connection)
}

/// Every subscriber of a channel.
pub fn ws_subscribers(tenant: &TenantId, channel: &str) -> Query {
    Query::partition(format!("T#{tenant}#WSCHAN#{channel}"))
}

/// Where a connection's tenant is found from its id alone.
pub fn ws_connection_lookup(connection: &str) -> Key {
    Key::new(format!("WSCONN#{connection}"), "CONN")
}
