//! Every single-table key format, in one place.
//!
//! Tenant data lives under `T#<tenant>#...`, so a query built from a caller's
//! tenant cannot reach another tenant's items. The only keys that do not start
//! with a tenant are global lookups that exist to *find* a tenant before one is
//! known: the login index (`LOGIN#<email>`), and rate-limit windows for failed
//! logins (`RATE#...`, hashed, with a TTL).
//!
//! | item | PK | SK | GSI1PK / GSI1SK |
//! |---|---|---|---|
//! | environment (tenant) | `T#<t>` | `META` | `ENVIRONMENTS` / `<t>` |
//! | counter | `T#<t>#COUNTER` | `<name>` | |
//! | user | `T#<t>#USER` | `<id:010>` | |
//! | login lookup | `LOGIN#<email>` | `T#<t>` | |
//! | group | `T#<t>#GROUP` | `<uuid>` | |
//! | group member | `T#<t>#GROUP#<uuid>` | `MEMBER#<user:010>` | |
//! | custom role | `T#<t>#ROLE` | `<uuid>` | |
//! | team | `T#<t>#TEAM` | `<id:010>` | |
//! | team member | `T#<t>#TEAM#<id:010>` | `MEMBER#<user:010>` | |
//! | failed-login window | `RATE#LOGIN#<sha256>` | `<minute>` | |
//! | readiness probe | `HEALTH` | `PING` | |

use crate::ports::{Index, Key, Query};

/// Partition and sort key of the sequence behind integer ids.
pub fn counter(tenant: &str, name: &str) -> Key {
    Key::new(format!("T#{tenant}#COUNTER"), name)
}

/// Integer ids sort as zero-padded strings so a partition reads in id order.
pub fn id_sk(id: u64) -> String {
    format!("{id:010}")
}

pub fn environment(tenant: &str) -> Key {
    Key::new(format!("T#{tenant}"), "META")
}
pub const ENVIRONMENTS_GSI1PK: &str = "ENVIRONMENTS";
pub fn environments() -> Query {
    Query::index(Index::Gsi1, ENVIRONMENTS_GSI1PK)
}

pub fn users(tenant: &str) -> Query {
    Query::partition(format!("T#{tenant}#USER"))
}
pub fn user(tenant: &str, id: u64) -> Key {
    Key::new(format!("T#{tenant}#USER"), id_sk(id))
}

pub fn login_pk(email: &str) -> String {
    format!("LOGIN#{email}")
}
pub fn login(email: &str, tenant: &str) -> Key {
    Key::new(login_pk(email), format!("T#{tenant}"))
}
pub fn logins(email: &str) -> Query {
    Query::partition(login_pk(email))
}

pub fn groups(tenant: &str) -> Query {
    Query::partition(format!("T#{tenant}#GROUP"))
}
pub fn group(tenant: &str, id: &str) -> Key {
    Key::new(format!("T#{tenant}#GROUP"), id)
}
pub fn group_members(tenant: &str, group: &str) -> Query {
    Query::partition(format!("T#{tenant}#GROUP#{group}")).prefix("MEMBER#")
}
pub fn group_member(tenant: &str, group: &str, user: u64) -> Key {
    Key::new(format!("T#{tenant}#GROUP#{group}"), format!("MEMBER#{}", id_sk(user)))
}

pub fn roles(tenant: &str) -> Query {
    Query::partition(format!("T#{tenant}#ROLE"))
}
pub fn role(tenant: &str, id: &str) -> Key {
    Key::new(format!("T#{tenant}#ROLE"), id)
}

pub fn teams(tenant: &str) -> Query {
    Query::partition(format!("T#{tenant}#TEAM"))
}
pub fn team(tenant: &str, id: u64) -> Key {
    Key::new(format!("T#{tenant}#TEAM"), id_sk(id))
}
pub fn team_members(tenant: &str, team: u64) -> Query {
    Query::partition(format!("T#{tenant}#TEAM#{}", id_sk(team))).prefix("MEMBER#")
}
pub fn team_member(tenant: &str, team: u64, user: u64) -> Key {
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

pub fn health_probe() -> Key {
    Key::new("HEALTH", "PING")
}
