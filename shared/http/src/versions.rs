//! Deprecated API versions (RFC 8594 / RFC 9745 headers).
//!
//! `QUPER_DEPRECATED_VERSIONS` lists deprecated versions (`v1`, `v2`,
//! comma-separated; none by default); `QUPER_SUNSET_V1` / `QUPER_SUNSET_V2`
//! give a version's removal date (RFC 3339 or an HTTP date). Every `/api/`
//! response of a deprecated version carries `Deprecation: true`,
//! `Sunset: <HTTP date>` (when a date is set), `X-Deprecation-Notice`, and,
//! for v1, `Link: </api/v2/>; rel="successor-version"`.

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use chrono::{DateTime, Utc};

use crate::config::ConfigError;
use crate::middleware::ApiVersion;

pub const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
pub const SUNSET: HeaderName = HeaderName::from_static("sunset");
pub const DEPRECATION_NOTICE: HeaderName = HeaderName::from_static("x-deprecation-notice");

/// One deprecated version and when it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecated {
    pub version: ApiVersion,
    pub sunset: Option<DateTime<Utc>>,
}

/// The deprecated versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deprecations(pub Vec<Deprecated>);

/// `Wed, 31 Dec 2025 23:59:59 GMT`.
pub fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_rfc2822(text))
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

impl Deprecations {
    pub fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let list = var("QUPER_DEPRECATED_VERSIONS").unwrap_or_default();
        let mut deprecated = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let version = match name.to_ascii_lowercase().as_str() {
                "v1" => ApiVersion::V1,
                "v2" => ApiVersion::V2,
                _ => {
                    return Err(ConfigError {
                        name: "QUPER_DEPRECATED_VERSIONS",
                        message: format!("{name:?} is not an API version (v1, v2)"),
                    });
                }
            };
            if deprecated.iter().any(|d: &Deprecated| d.version == version) {
                continue;
            }
            deprecated.push(Deprecated { version, sunset: None });
        }
        for (version, name) in [(ApiVersion::V1, "QUPER_SUNSET_V1"), (ApiVersion::V2, "QUPER_SUNSET_V2")] {
            let Some(text) = var(name).filter(|s| !s.trim().is_empty()) else {
                continue;
            };
            let at = parse_date(&text).ok_or_else(|| ConfigError {
                name,
                message: format!("{text:?} is neither an RFC 3339 date-time nor an HTTP date"),
            })?;
            let entry = deprecated
                .iter_mut()
                .find(|d| d.version == version)
                .ok_or_else(|| ConfigError {
                    name,
                    message: format!(
                        "a sunset for {} needs {} in QUPER_DEPRECATED_VERSIONS",
                        version.as_str(),
                        version.as_str()
                    ),
                })?;
            entry.sunset = Some(at);
        }
        Ok(Deprecations(deprecated))
    }

    /// Adds the deprecation headers of `version`, when it is deprecated.
    pub fn decorate(&self, version: ApiVersion, headers: &mut HeaderMap) {
        let Some(deprecated) = self.0.iter().find(|d| d.version == version) else {
            return;
        };
        headers.insert(DEPRECATION, HeaderValue::from_static("true"));
        let mut notice = format!("API {} is deprecated", version.as_str());
        if let Some(sunset) = deprecated.sunset {
            let date = http_date(sunset);
            if let Ok(value) = HeaderValue::from_str(&date) {
                headers.insert(SUNSET, value);
            }
            notice.push_str(&format!(" and will be removed on {date}"));
        }
        if version == ApiVersion::V1 {
            notice.push_str("; use /api/v2/");
            headers.insert(
                header::LINK,
                HeaderValue::from_static("</api/v2/>; rel=\"successor-version\""),
            );
        }
        notice.push('.');
        if let Ok(value) = HeaderValue::from_str(&notice) {
            headers.insert(DEPRECATION_NOTICE, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn sunsets_are_read_as_rfc_3339_or_http_dates() {
        let rfc3339 = Deprecations::from_lookup(&lookup(&[
            ("QUPER_DEPRECATED_VERSIONS", "v1"),
            ("QUPER_SUNSET_V1", "2025-12-31T23:59:59Z"),
        ]))
        .expect("valid");
        let http = Deprecations::from_lookup(&lookup(&[
            ("QUPER_DEPRECATED_VERSIONS", "v1"),
            ("QUPER_SUNSET_V1", "Wed, 31 Dec 2025 23:59:59 GMT"),
        ]))
        .expect("valid");
        assert_eq!(rfc3339, http);
        let mut headers = HeaderMap::new();
        rfc3339.decorate(ApiVersion::V1, &mut headers);
        assert_eq!(headers[SUNSET], "Wed, 31 Dec 2025 23:59:59 GMT");
        assert_eq!(headers[DEPRECATION], "true");
        let mut v2 = HeaderMap::new();
        rfc3339.decorate(ApiVersion::V2, &mut v2);
        assert!(v2.is_empty());
    }

    #[test]
    fn bad_deprecation_settings_fail_start_up() {
        for pairs in [
            &[("QUPER_DEPRECATED_VERSIONS", "v3")][..],
            &[("QUPER_DEPRECATED_VERSIONS", "v1"), ("QUPER_SUNSET_V1", "next year")][..],
            &[("QUPER_SUNSET_V1", "2030-01-01T00:00:00Z")][..],
        ] {
            let lookup = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
            assert!(Deprecations::from_lookup(&lookup).is_err(), "{pairs:?}");
        }
    }
}
