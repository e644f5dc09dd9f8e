//! Validated newtypes: once built, they hold a valid value. Each parses from a
//! string through `TryFrom<String>`, so serde rejects a bad value at the field
//! that holds it and the HTTP layer can name that field in its 422.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The documented bounds of request fields. Each appears in the OpenAPI
/// document (`maxLength`, `maximum`, ...) through the request types'
/// `#[schemars(...)]` attributes, the body check
/// (`quper_http::body_schema`) enforces it as a 422 naming the field, and
/// `docs/api.md` lists them. No text field of a request body may hold a NUL.
pub mod limits {
    /// Names and titles of resources, full names.
    pub const NAME: usize = 255;
    /// Free-text descriptions.
    pub const DESCRIPTION: usize = 4096;
    /// Text an alert rule matches against (titles, descriptions, label values).
    pub const MATCH_TEXT: usize = 1024;
    /// URLs and channel addresses.
    pub const URL: usize = 2048;
    /// AWS ARNs.
    pub const ARN: usize = 2048;
    /// Email addresses (RFC 5321).
    pub const EMAIL: usize = 254;
    /// Passwords, new or presented.
    pub const PASSWORD: usize = 256;
    /// IANA time zone names.
    pub const TIME_ZONE: usize = 64;
    /// Resource ids given in bodies (UUIDs in their 36-character form).
    pub const UUID: usize = 36;
    /// Priorities and orderings (contact methods, escalation level numbers;
    /// alert rules from -PRIORITY to PRIORITY).
    pub const PRIORITY: u32 = 1_000;
    /// Record versions sent back for optimistic concurrency: the largest
    /// integer a JSON number holds exactly (2^53 - 1).
    pub const VERSION: u64 = 9_007_199_254_740_991;
}

/// An environment (tenant) id: 1-63 lowercase letters, digits and dashes,
/// starting with a letter or digit. Never contains `#`, so it cannot break out
/// of its key prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(#[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9][a-z0-9-]*$"))] String);

impl TenantId {
    pub fn parse(value: &str) -> Result<Self, String> {
        let valid = !value.is_empty()
            && value.len() <= 63
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !value.starts_with('-');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err("must be 1-63 characters of a-z, 0-9 and '-', not starting with '-'".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> String {
        value.0
    }
}

impl PartialEq<str> for TenantId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TenantId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, trimmed and lowercased: one `@`, a non-empty local part,
/// a domain with a dot, no whitespace or control characters, at most 254 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Email(#[schemars(length(max = limits::EMAIL))] String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim().to_lowercase();
        let Some((local, domain)) = value.split_once('@') else {
            return Err("must be an email address".into());
        };
        let valid = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
            && value.len() <= 254
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(value))
        } else {
            Err("must be an email address".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> String {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new password: 8 to 256 characters. Not `Serialize`, and its `Debug`
/// hides the value, so it cannot end up in a response or a log.
#[derive(Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String")]
pub struct Password(#[schemars(length(min = 8, max = 256))] String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 256;

    pub fn parse(value: &str) -> Result<Self, String> {
        let chars = value.chars().count();
        if (Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars) {
            Ok(Self(value.to_owned()))
        } else {
            Err(format!("must be {} to {} characters", Self::MIN_CHARS, Self::MAX_CHARS))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Password {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A required display string: trimmed, 1 to 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Name(#[schemars(length(min = 1, max = limits::NAME))] String);

impl Name {
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let chars = value.chars().count();
        if (1..=255).contains(&chars) && !value.chars().any(char::is_control) {
            Ok(Self(value.to_owned()))
        } else {
            Err("must be 1 to 255 characters".into())
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl TryFrom<String> for Name {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<Name> for String {
    fn from(value: Name) -> String {
        value.0
    }
}

/// The id of a record Quper names with a UUID (groups, roles, alert rules,
/// channels, alerts): parsed as a UUID and kept in its lowercase hyphenated
/// form, so nothing but a UUID reaches a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct RecordId(#[schemars(length(max = limits::UUID), extend("format" = "uuid"))] String);

impl RecordId {
    pub fn parse(value: &str) -> Result<Self, String> {
        uuid::Uuid::try_parse(value)
            .map(|id| Self(id.hyphenated().to_string()))
            .map_err(|_| "must be a UUID".to_owned())
    }

    pub fn new_v4() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RecordId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<RecordId> for String {
    fn from(value: RecordId) -> String {
        value.0
    }
}

impl std::ops::Deref for RecordId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a role: a built-in role's name (`admin`, ...) or the UUID of a
/// custom role ([`RecordId`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct RoleId(#[schemars(length(max = limits::UUID))] String);

impl RoleId {
    pub fn parse(value: &str) -> Result<Self, String> {
        if Role::parse(value).is_some() {
            return Ok(Self(value.to_owned()));
        }
        RecordId::parse(value)
            .map(|id| Self(id.into()))
            .map_err(|_| "must be a built-in role name or a role's UUID".to_owned())
    }

    /// A built-in role's id: its name.
    pub fn builtin(role: Role) -> Self {
        Self(role.as_str().to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<RecordId> for RoleId {
    fn from(id: RecordId) -> Self {
        Self(id.0)
    }
}

impl fmt::Display for RoleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RoleId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<RoleId> for String {
    fn from(value: RoleId) -> String {
        value.0
    }
}

impl std::ops::Deref for RoleId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// The built-in roles, in increasing order of power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Responder,
    Admin,
    Superadmin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Superadmin, Role::Admin, Role::Responder, Role::User];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Responder => "responder",
            Role::Admin => "admin",
            Role::Superadmin => "superadmin",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == value)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_cannot_hold_key_separators() {
        assert!(TenantId::parse("acme-prod").is_ok());
        assert!(TenantId::parse("acme#USER").is_err());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse("-x").is_err());
        assert!(TenantId::parse("Acme").is_err());
        assert!(TenantId::parse("..").is_err());
        assert!(TenantId::parse("a\0b").is_err());
        assert!(TenantId::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn record_ids_are_uuids() {
        let id = RecordId::parse("6F9619FF-8B86-D011-B42D-00C04FC964FF").map(String::from);
        assert_eq!(id, Ok("6f9619ff-8b86-d011-b42d-00c04fc964ff".to_owned()));
        for bad in ["", "a#b", "..", "1", "6f9619ff-8b86-d011-b42d-00c04fc964ff#USER"] {
            assert!(RecordId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_normalised() {
        assert_eq!(
            Email::parse(" Ann@Example.COM ").map(String::from),
            Ok("ann@example.com".to_owned())
        );
        for bad in ["ann", "ann@", "@x.io", "ann@x", "a b@x.io", "a@x.io@y.io"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_hide_their_value() {
        let password = Password::parse("correct horse")
            .map_err(|_| ())
            .unwrap_or_else(|()| unreachable!());
        assert_eq!(format!("{password:?}"), "Password(***)");
        assert!(Password::parse("short").is_err());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Superadmin > Role::Admin && Role::Admin > Role::Responder && Role::Responder > Role::User);
    }
}
