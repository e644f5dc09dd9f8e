//! Validated newtypes: once built, they hold a valid value. Each parses from a
//! string through `TryFrom<String>`, so serde rejects a bad value at the field
//! that holds it and the HTTP layer can name that field in its 422.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An environment (tenant) id: 1-63 lowercase letters, digits and dashes,
/// starting with a letter or digit. Never contains `#`, so it cannot break out
/// of its key prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

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
pub struct Email(String);

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
pub struct Password(String);

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
pub struct Name(String);

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
