//! The configuration pages: escalation policies (`/escalation-policies`),
//! alert sources (`/alert-sources`) and the safe settings view with worker
//! health (`/settings`). Every signed-in account reads them; forms are shown
//! to admins, and the domain decides what is allowed.

pub mod policies;
pub mod settings;
pub mod sources;

use axum::http::StatusCode;
use quper_core::DomainError;

use super::{PageError, capitalise};

/// A form the domain refused for its content (400, 409, 422): the message to
/// show on the form again, with its status. Anything else (403, 404,
/// storage) is an error page.
pub fn refused(error: DomainError) -> Result<(StatusCode, String), PageError> {
    let error = PageError::from(error);
    match error.status {
        StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => {
            Ok((error.status, capitalise(&error.message)))
        }
        _ => Err(error),
    }
}

/// An optional whole number from a form field: empty is `None`; anything
/// else must be a number from `min` to `max` (the message names `label`).
pub fn optional_number(label: &str, text: &str, min: u32, max: u32) -> Result<Option<u32>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(format!("{label} must be a whole number from {min} to {max}.")),
    }
}

/// A required whole number from a form field.
pub fn number(label: &str, text: &str, min: u32, max: u32) -> Result<u32, String> {
    optional_number(label, text, min, max)?.ok_or_else(|| format!("{label} is required."))
}

/// An optional id picked from a list (empty: none).
pub fn optional_id(label: &str, text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>()
        .map(Some)
        .map_err(|_| format!("{label}: pick one from the list."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_digits_are_ids() {
        use crate::pages::resource_id;
        assert_eq!(resource_id("42").ok(), Some(42));
        for bad in ["", "+4", "-1", " 4", "4x", "abc", "99999999999999999999999", "1e3"] {
            assert!(resource_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numbers_are_checked() {
        assert_eq!(optional_number("Delay", " ", 0, 10), Ok(None));
        assert_eq!(optional_number("Delay", "5", 0, 10), Ok(Some(5)));
        assert!(optional_number("Delay", "11", 0, 10).is_err());
        assert!(optional_number("Delay", "-1", 0, 10).is_err());
        assert!(number("Level", "", 1, 10).is_err());
        assert_eq!(capitalise("level 1 exists"), "Level 1 exists.");
    }
}
