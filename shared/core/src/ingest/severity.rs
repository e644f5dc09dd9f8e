//! Severities as monitoring systems name them, mapped onto Quper's three.
//!
//! Every format records the value its sender used (`raw_severity`: a
//! severity label or field, or the state that grades the alert, such as
//! CloudWatch's `ALARM`). [`resolve`] turns it into a [`Severity`], in this
//! order, case-insensitively and ignoring surrounding blanks:
//!
//! 1. the source's own table (`severity_mapping`), which overrides
//! 2. the built-in table ([`builtin`]: Prometheus/Alertmanager, Grafana,
//!    PagerDuty, Opsgenie P1-P5, Zabbix, CloudWatch states, syslog levels);
//! 3. a value neither table knows, or no value at all, takes the source's
//!    `default_severity`, else the format's own default (critical for an
//!    unknown value: an alert nobody could grade pages rather than stays
//!    silent).
//!
//! An unknown value never refuses the alert: the value is kept on the alert
//! (`raw_severity`) with how its severity was chosen (`severity_origin`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::event::Severity;

/// Most entries a source's table may hold.
pub const MAX_MAPPING_ENTRIES: usize = 100;
/// Longest value (in characters) a source's table may map.
pub const MAX_MAPPING_KEY_CHARS: usize = 64;

/// The severity of a value neither table knows, when the source sets none.
pub const UNKNOWN_DEFAULT: Severity = Severity::Critical;

/// The lookup form of a value: trimmed, lowercase.
pub fn normalize(value: &str) -> String {
    value.trim().to_lowercase()
}

/// The built-in table: common severities of other monitoring systems.
pub fn builtin(value: &str) -> Option<Severity> {
    let severity = match normalize(value).as_str() {
        // Prometheus/Alertmanager and Grafana conventions, PagerDuty
        // (critical, error), Opsgenie P1/P2, Zabbix (disaster, high), ITSM
        // (major), syslog (emergency ... error), CloudWatch's ALARM.
        "critical" | "crit" | "fatal" | "page" | "high" | "error" | "err" | "major" | "disaster" | "emergency"
        | "emerg" | "alert" | "severe" | "urgent" | "p0" | "p1" | "p2" | "sev0" | "sev1" | "sev2" | "sev-0"
        | "sev-1" | "sev-2" | "alarm" | "alerting" | "firing" => Severity::Critical,
        // Opsgenie P3, Zabbix (average, warning), ITSM (minor), CloudWatch's
        // INSUFFICIENT_DATA, Grafana's no data.
        "warning" | "warn" | "medium" | "moderate" | "minor" | "average" | "p3" | "sev3" | "sev-3"
        | "insufficient_data" | "no_data" | "nodata" | "degraded" => Severity::Warning,
        // Opsgenie P4/P5, Zabbix information, syslog notice/info/debug,
        // Prometheus none/ticket, CloudWatch's OK.
        "info" | "informational" | "information" | "low" | "none" | "ticket" | "notice" | "debug" | "trace" | "p4"
        | "p5" | "sev4" | "sev5" | "sev-4" | "sev-5" | "ok" => Severity::Info,
        _ => return None,
    };
    Some(severity)
}

/// How an alert's severity was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeverityOrigin {
    /// The source's `severity_mapping` named the value.
    SourceMapping,
    /// The built-in table named the value.
    Builtin,
    /// The value was unknown or absent: the source's `default_severity`.
    SourceDefault,
    /// The value was unknown or absent and the source sets no default: the
    /// format's own (critical for an unknown value).
    FormatDefault,
}

/// A source's table: value (lowercase, trimmed, 1-64 characters) to Quper
/// severity, at most 100 entries. Keys that differ only in case are one key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "BTreeMap<String, Severity>", into = "BTreeMap<String, Severity>")]
pub struct SeverityMapping(BTreeMap<String, Severity>);

impl SeverityMapping {
    pub fn get(&self, value: &str) -> Option<Severity> {
        self.0.get(&normalize(value)).copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<BTreeMap<String, Severity>> for SeverityMapping {
    type Error = String;

    fn try_from(entries: BTreeMap<String, Severity>) -> Result<Self, String> {
        if entries.len() > MAX_MAPPING_ENTRIES {
            return Err(format!("must have at most {MAX_MAPPING_ENTRIES} entries"));
        }
        let mut out = BTreeMap::new();
        for (value, severity) in entries {
            let key = normalize(&value);
            let chars = key.chars().count();
            if chars == 0 || chars > MAX_MAPPING_KEY_CHARS || key.chars().any(char::is_control) {
                return Err(format!(
                    "`{}`: every value mapped must be 1 to {MAX_MAPPING_KEY_CHARS} characters without control characters",
                    value.escape_debug()
                ));
            }
            if out.insert(key, severity).is_some() {
                return Err(format!(
                    "`{}` is mapped twice (values are compared case-insensitively)",
                    value.escape_debug()
                ));
            }
        }
        Ok(Self(out))
    }
}

impl From<SeverityMapping> for BTreeMap<String, Severity> {
    fn from(mapping: SeverityMapping) -> Self {
        mapping.0
    }
}

/// The severity of `raw` (the value the sender used, if any) for a source
/// with `mapping` and `default`; `format_default` is what the format itself
/// implies when the sender named no severity.
pub fn resolve(
    raw: Option<&str>,
    mapping: &SeverityMapping,
    default: Option<Severity>,
    format_default: Severity,
) -> (Severity, SeverityOrigin) {
    let raw = raw.filter(|raw| !raw.trim().is_empty());
    if let Some(raw) = raw {
        if let Some(severity) = mapping.get(raw) {
            return (severity, SeverityOrigin::SourceMapping);
        }
        if let Some(severity) = builtin(raw) {
            return (severity, SeverityOrigin::Builtin);
        }
    }
    match (default, raw) {
        (Some(severity), _) => (severity, SeverityOrigin::SourceDefault),
        (None, Some(_)) => (UNKNOWN_DEFAULT, SeverityOrigin::FormatDefault),
        (None, None) => (format_default, SeverityOrigin::FormatDefault),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(entries: &[(&str, Severity)]) -> Result<SeverityMapping, String> {
        SeverityMapping::try_from(
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn builtin_table_knows_other_systems() {
        assert_eq!(builtin("major"), Some(Severity::Critical));
        assert_eq!(builtin(" P1 "), Some(Severity::Critical));
        assert_eq!(builtin("Disaster"), Some(Severity::Critical));
        assert_eq!(builtin("average"), Some(Severity::Warning));
        assert_eq!(builtin("minor"), Some(Severity::Warning));
        assert_eq!(builtin("INSUFFICIENT_DATA"), Some(Severity::Warning));
        assert_eq!(builtin("P5"), Some(Severity::Info));
        assert_eq!(builtin("information"), Some(Severity::Info));
        assert_eq!(builtin("purple"), None);
        assert_eq!(builtin(""), None);
    }

    #[test]
    fn the_source_table_overrides_and_the_default_catches_the_rest() {
        let table = mapping(&[("MAJOR", Severity::Warning), ("purple", Severity::Info)]).unwrap();
        assert_eq!(
            resolve(Some("Major"), &table, None, Severity::Critical),
            (Severity::Warning, SeverityOrigin::SourceMapping)
        );
        assert_eq!(
            resolve(Some("p1"), &table, None, Severity::Info),
            (Severity::Critical, SeverityOrigin::Builtin)
        );
        assert_eq!(
            resolve(Some("odd"), &table, Some(Severity::Warning), Severity::Info),
            (Severity::Warning, SeverityOrigin::SourceDefault)
        );
        assert_eq!(
            resolve(Some("odd"), &table, None, Severity::Info),
            (UNKNOWN_DEFAULT, SeverityOrigin::FormatDefault)
        );
        assert_eq!(
            resolve(None, &table, None, Severity::Info),
            (Severity::Info, SeverityOrigin::FormatDefault)
        );
        assert_eq!(
            resolve(Some("  "), &table, Some(Severity::Warning), Severity::Info),
            (Severity::Warning, SeverityOrigin::SourceDefault)
        );
    }

    #[test]
    fn tables_are_bounded_and_case_insensitive() {
        assert!(mapping(&[("a", Severity::Info), ("A", Severity::Critical)]).is_err());
        assert!(mapping(&[(" ", Severity::Info)]).is_err());
        assert!(mapping(&[(&"x".repeat(65), Severity::Info)]).is_err());
        assert!(mapping(&[("a\u{0}b", Severity::Info)]).is_err());
        let many: Vec<(String, Severity)> = (0..101).map(|i| (format!("v{i}"), Severity::Info)).collect();
        let many: Vec<(&str, Severity)> = many.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert!(mapping(&many).is_err());
        assert!(mapping(&many[..100]).is_ok());
        let table = mapping(&[(" Sev-A ", Severity::Warning)]).unwrap();
        assert_eq!(
            BTreeMap::from(table.clone()).keys().next().map(String::as_str),
            Some("sev-a")
        );
        assert_eq!(table.get("SEV-A"), Some(Severity::Warning));
    }
}
