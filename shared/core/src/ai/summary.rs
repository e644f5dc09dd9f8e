//! Incident summaries (`POST /api/v1/incidents/{id}/summary`): the prompt
//! made of an incident, its latest alerts and its timeline, asked of the
//! `moderate` route (OpenAI's `gpt-4o`, else the first configured
//! provider's fallback, as routed chat does).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::incidents::model::{Incident, TimelineEvent};
use crate::ingest::alerts::AlertRecord;
use crate::ports::ai::{ChatMessage, ChatRole, ProviderName, TokenUsage};

/// Most alerts (the latest) and timeline entries (the latest) in a prompt.
pub const MAX_ALERTS: usize = 20;
pub const MAX_EVENTS: usize = 50;
/// Longest text of one field in a prompt (longer ones are cut).
const MAX_FIELD: usize = 500;
/// The summary's length in tokens, at most.
pub const SUMMARY_MAX_TOKENS: u32 = 600;
/// Summaries should be factual.
pub const SUMMARY_TEMPERATURE: f64 = 0.2;

const SYSTEM: &str = "You are an on-call assistant. Summarise the incident for a responder who has just \
joined: what is happening, its impact and severity, what has been done so far (who acknowledged, \
escalated or resolved it and when), and what to look at next. Use only the facts given; say when \
something is unknown. At most 200 words.";

/// `POST /api/v1/incidents/{id}/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct IncidentSummary {
    pub incident_id: u64,
    pub summary: String,
    pub model: String,
    pub provider: ProviderName,
    pub usage: TokenUsage,
    pub generated_at: DateTime<Utc>,
}

fn cut(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_FIELD {
        text.to_owned()
    } else {
        let mut out: String = text.chars().take(MAX_FIELD).collect();
        out.push_str("...");
        out
    }
}

/// The conversation that asks for the summary.
pub fn prompt(incident: &Incident, alerts: &[AlertRecord], timeline: &[TimelineEvent]) -> Vec<ChatMessage> {
    let mut text = String::new();
    text.push_str(&format!("Incident #{}: {}\n", incident.id, cut(&incident.title)));
    text.push_str(&format!(
        "Status: {}. Severity: {}. Opened: {}. Alerts so far: {}.\n",
        incident.status.as_str(),
        incident.severity.as_str(),
        incident.created_at.to_rfc3339(),
        incident.alert_count
    ));
    if let Some(description) = incident.description.as_deref().filter(|d| !d.trim().is_empty()) {
        text.push_str(&format!("Description: {}\n", cut(description)));
    }
    if !incident.labels.is_empty() {
        let labels: Vec<String> = incident
            .labels
            .iter()
            .take(20)
            .map(|(k, v)| format!("{}={}", cut(k), cut(v)))
            .collect();
        text.push_str(&format!("Labels: {}\n", labels.join(", ")));
    }
    let mut alerts: Vec<&AlertRecord> = alerts.iter().collect();
    alerts.sort_by_key(|a| a.received_at);
    let skip = alerts.len().saturating_sub(MAX_ALERTS);
    text.push_str(&format!(
        "\nAlerts ({} in all, the latest {} shown):\n",
        alerts.len(),
        alerts.len() - skip
    ));
    for alert in alerts.iter().skip(skip) {
        text.push_str(&format!(
            "- {} [{}] {}{}\n",
            alert.received_at.to_rfc3339(),
            alert.severity.as_str(),
            cut(&alert.title),
            alert
                .description
                .as_deref()
                .filter(|d| !d.trim().is_empty())
                .map(|d| format!(": {}", cut(d)))
                .unwrap_or_default()
        ));
    }
    let mut events: Vec<&TimelineEvent> = timeline.iter().collect();
    events.sort_by_key(|e| (e.created_at, e.sequence));
    let skip = events.len().saturating_sub(MAX_EVENTS);
    text.push_str(&format!(
        "\nTimeline ({} entries, the latest {} shown):\n",
        events.len(),
        events.len() - skip
    ));
    for event in events.iter().skip(skip) {
        text.push_str(&format!(
            "- {} {}: {}\n",
            event.created_at.to_rfc3339(),
            cut(&event.event_type),
            cut(&event.message)
        ));
    }
    vec![
        ChatMessage {
            role: ChatRole::System,
            content: SYSTEM.to_owned(),
        },
        ChatMessage {
            role: ChatRole::User,
            content: text,
        },
    ]
}
