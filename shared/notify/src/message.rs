//! What a notification says, per channel.
//!
//! Whoever is paged at 3 a.m. must see at a glance what broke, how bad it is,
//! and where to acknowledge it, so every text here carries the severity, the
//! incident number and title, and the link to the incident. The texts differ by
//! what the channel can hold: an SMS fits one 160-character segment when it
//! can, an email has room for the description, Slack gets mrkdwn, a webhook
//! gets structured JSON for machines.
//!
//! Titles and descriptions come from alerts, so from outside: they are put on
//! one line where a line is expected (SMS, subject) and escaped for Slack.

use quper_core::ports::Notice;
use serde_json::{Value, json};

use crate::error::truncate;

/// One GSM-7 SMS segment. Longer texts are split and cost more, and some
/// carriers deliver the parts out of order.
pub const SMS_LIMIT: usize = 160;

/// Shortest title an SMS keeps even when the link alone nearly fills the
/// segment: two segments that say what broke beat one that does not.
const SMS_MIN_TITLE: usize = 24;

/// Slack refuses a section text over 3000 characters.
const SLACK_SECTION_LIMIT: usize = 3000;

/// Longest description put in an email or a webhook payload.
const DESCRIPTION_LIMIT: usize = 4000;

/// What a notification says: the domain's [`Notice`] (what broke, how bad,
/// which escalation level) and the link to the incident's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub notice: Notice,
    /// The incident's page: [`incident_link`] of `QUPER_PUBLIC_URL`.
    pub link: String,
}

impl Message {
    /// The message of `notice`, linking to its incident under `public_url`.
    pub fn new(notice: &Notice, public_url: &str) -> Message {
        Message {
            link: incident_link(public_url, notice.incident_id),
            notice: notice.clone(),
        }
    }
}

/// The notice's fields read as the message's own (`message.title`).
impl std::ops::Deref for Message {
    type Target = Notice;

    fn deref(&self) -> &Notice {
        &self.notice
    }
}

/// The incident's page under the public URL of Quper (`QUPER_PUBLIC_URL`):
/// `https://quper.example.com` and 42 give `https://quper.example.com/incidents/42`.
pub fn incident_link(base: &str, incident_id: u64) -> String {
    format!("{}/incidents/{incident_id}", base.trim().trim_end_matches('/'))
}

/// `[CRITICAL] #42 Database down - ack: <link>`, cut to one SMS segment by
/// shortening the title when the link leaves room for a readable title.
pub fn sms_text(notice: &Message) -> String {
    let head = format!("[{}] #{} ", severity_label(notice), notice.incident_id);
    let tail = format!(" - ack: {}", one_line(&notice.link));
    let room = SMS_LIMIT.saturating_sub(head.chars().count() + tail.chars().count());
    // "..." rather than "…": one character outside GSM-7 turns the whole SMS
    // into UCS-2, with 70 characters a segment.
    let title = truncate(&title(notice), room.max(SMS_MIN_TITLE));
    format!("{head}{title}{tail}")
}

/// `[CRITICAL] #42 Database down`, with the escalation level once it has
/// escalated (`(escalation level 2)`): a second page for the same incident
/// should say why it came.
pub fn email_subject(notice: &Message) -> String {
    let mut subject = format!("[{}] #{} {}", severity_label(notice), notice.incident_id, title(notice));
    if notice.escalation_level > 1 {
        subject.push_str(&format!(" (escalation level {})", notice.escalation_level));
    }
    truncate(&subject, 200)
}

/// A plain-text email: the headline, the description, the facts, the link.
pub fn email_body(notice: &Message) -> String {
    let severity = severity_label(notice);
    let description = description(notice).unwrap_or_else(|| "No description.".to_owned());
    format!(
        "{severity} incident #{id}: {title}\n\
         \n\
         {description}\n\
         \n\
         Severity: {severity}\n\
         Escalation level: {level}\n\
         Tenant: {tenant}\n\
         \n\
         Acknowledge or view the incident:\n\
         {link}\n\
         \n\
         -- \n\
         Sent by Quper because you are on call.\n",
        id = notice.incident_id,
        title = title(notice),
        level = notice.escalation_level,
        tenant = one_line(notice.tenant.as_str()),
        link = one_line(&notice.link),
    )
}

/// A Slack message: `{"text": <fallback>, "blocks": [<section>]}`. The
/// fallback shows in notifications and clients without blocks; the section
/// links the title to the incident.
pub fn slack_blocks(notice: &Message) -> Value {
    let link = slack_link_target(&notice.link);
    let mut section = format!(
        "*[{}] <{link}|#{} {}>*",
        severity_label(notice),
        notice.incident_id,
        slack_escape(&title(notice))
    );
    if let Some(description) = description(notice) {
        section.push('\n');
        section.push_str(&slack_escape(&description));
    }
    let footer = format!(
        "\nEscalation level {} · tenant {} · <{link}|Acknowledge>",
        notice.escalation_level,
        slack_escape(&one_line(notice.tenant.as_str()))
    );
    // Keep the footer (and its link) whole; cut the description instead.
    let section = truncate(&section, SLACK_SECTION_LIMIT.saturating_sub(footer.chars().count())) + &footer;
    json!({
        "text": format!(
            "[{}] #{} {} - {}",
            severity_label(notice),
            notice.incident_id,
            slack_escape(&title(notice)),
            link
        ),
        "blocks": [
            {
                "type": "section",
                "text": { "type": "mrkdwn", "text": section }
            }
        ]
    })
}

/// The JSON body of a generic webhook. `event` names the kind of payload so
/// receivers can route on it; `summary` is the one-line text for receivers
/// that only forward text.
pub fn webhook_payload(notice: &Message) -> Value {
    json!({
        "event": "incident.notification",
        "tenant": notice.tenant,
        "summary": format!("[{}] #{} {}", severity_label(notice), notice.incident_id, title(notice)),
        "incident": {
            "id": notice.incident_id,
            "title": notice.title,
            "description": notice.description.as_deref().map(|text| truncate(text, DESCRIPTION_LIMIT)),
            "severity": notice.severity,
            "escalation_level": notice.escalation_level,
            "link": notice.link,
        }
    })
}

fn severity_label(notice: &Message) -> String {
    let severity = one_line(&notice.severity).to_uppercase();
    if severity.is_empty() {
        "ALERT".to_owned()
    } else {
        truncate(&severity, 16)
    }
}

fn title(notice: &Message) -> String {
    let title = one_line(&notice.title);
    if title.is_empty() {
        "(untitled incident)".to_owned()
    } else {
        title
    }
}

fn description(notice: &Message) -> Option<String> {
    let description = notice.description.as_deref()?.trim();
    (!description.is_empty()).then(|| truncate(description, DESCRIPTION_LIMIT))
}

/// Control characters and runs of white space as one space: a title from an
/// alert may hold newlines, which do not belong in an SMS or a subject.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Slack's mrkdwn reserves `&`, `<` and `>` (for links and mentions such as
/// `<!channel>`); escaped, an alert title cannot ping a whole workspace.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A URL inside `<url|label>`: `|`, `<` and `>` would end it early.
fn slack_link_target(link: &str) -> String {
    one_line(link)
        .replace('|', "%7C")
        .replace('<', "%3C")
        .replace('>', "%3E")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Message {
        let notice = Notice {
            tenant: quper_core::model::TenantId::parse("acme").expect("tenant id"),
            incident_id: 42,
            title: "Database down".to_owned(),
            description: Some("Primary stopped answering\nat 03:12 UTC".to_owned()),
            severity: "critical".to_owned(),
            escalation_level: 1,
        };
        Message::new(&notice, "https://quper.example.com/")
    }

    #[test]
    fn incident_links_join_the_public_url() {
        assert_eq!(
            incident_link("https://q.example.com", 7),
            "https://q.example.com/incidents/7"
        );
        assert_eq!(
            incident_link("https://q.example.com//", 7),
            "https://q.example.com/incidents/7"
        );
        assert_eq!(
            incident_link("http://127.0.0.1:3000/app/", 9),
            "http://127.0.0.1:3000/app/incidents/9"
        );
    }

    #[test]
    fn sms_says_what_how_bad_and_where() {
        assert_eq!(
            sms_text(&notice()),
            "[CRITICAL] #42 Database down - ack: https://quper.example.com/incidents/42"
        );
    }

    #[test]
    fn sms_shortens_long_titles_to_one_segment() {
        let mut long = notice();
        long.notice.title = format!("Disk full on\n{}", "very-long-host-name-".repeat(20));
        let text = sms_text(&long);
        assert_eq!(text.chars().count(), SMS_LIMIT, "{text}");
        assert!(text.starts_with("[CRITICAL] #42 Disk full on very-long"), "{text}");
        assert!(
            text.ends_with("... - ack: https://quper.example.com/incidents/42"),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn sms_keeps_a_readable_title_when_the_link_is_huge() {
        let mut huge = notice();
        huge.link = format!("https://quper.example.com/{}", "x".repeat(200));
        let text = sms_text(&huge);
        assert!(text.contains("#42 Database down - ack: https://"), "{text}");
    }

    #[test]
    fn email_subject_and_body_carry_the_facts() {
        let mut escalated = notice();
        assert_eq!(email_subject(&escalated), "[CRITICAL] #42 Database down");
        escalated.notice.escalation_level = 3;
        escalated.notice.title = "Database\r\nBcc: victim@example.com".to_owned();
        assert_eq!(
            email_subject(&escalated),
            "[CRITICAL] #42 Database Bcc: victim@example.com (escalation level 3)"
        );
        let body = email_body(&notice());
        assert!(body.starts_with("CRITICAL incident #42: Database down\n"), "{body}");
        assert!(body.contains("Primary stopped answering\nat 03:12 UTC"));
        assert!(body.contains("Escalation level: 1"));
        assert!(body.contains("Tenant: acme"));
        assert!(body.contains("\nhttps://quper.example.com/incidents/42\n"));
        let mut bare = notice();
        bare.notice.description = Some("  ".to_owned());
        assert!(email_body(&bare).contains("No description."));
    }

    #[test]
    fn slack_message_has_a_fallback_and_a_section() {
        let mut noisy = notice();
        noisy.notice.title = "<!channel> down & out".to_owned();
        let message = slack_blocks(&noisy);
        let text = message["text"].as_str().expect("text");
        assert_eq!(
            text,
            "[CRITICAL] #42 &lt;!channel&gt; down &amp; out - https://quper.example.com/incidents/42"
        );
        assert_eq!(message["blocks"][0]["type"], "section");
        assert_eq!(message["blocks"][0]["text"]["type"], "mrkdwn");
        let section = message["blocks"][0]["text"]["text"].as_str().expect("section");
        assert!(
            section.starts_with(
                "*[CRITICAL] <https://quper.example.com/incidents/42|#42 &lt;!channel&gt; down &amp; out>*\n"
            ),
            "{section}"
        );
        assert!(section.contains("Escalation level 1"));
        assert!(section.ends_with("<https://quper.example.com/incidents/42|Acknowledge>"));
    }

    #[test]
    fn slack_section_stays_under_the_limit() {
        let mut long = notice();
        long.notice.description = Some("y".repeat(10_000));
        let message = slack_blocks(&long);
        let section = message["blocks"][0]["text"]["text"].as_str().expect("section");
        assert!(section.chars().count() <= SLACK_SECTION_LIMIT);
        assert!(section.ends_with("|Acknowledge>"));
    }

    #[test]
    fn webhook_payload_is_structured() {
        let payload = webhook_payload(&notice());
        assert_eq!(payload["event"], "incident.notification");
        assert_eq!(payload["tenant"], "acme");
        assert_eq!(payload["summary"], "[CRITICAL] #42 Database down");
        assert_eq!(payload["incident"]["id"], 42);
        assert_eq!(payload["incident"]["severity"], "critical");
        assert_eq!(payload["incident"]["escalation_level"], 1);
        assert_eq!(payload["incident"]["link"], "https://quper.example.com/incidents/42");
        assert_eq!(
            payload["incident"]["description"],
            "Primary stopped answering\nat 03:12 UTC"
        );
        let mut bare = notice();
        bare.notice.description = None;
        assert!(webhook_payload(&bare)["incident"]["description"].is_null());
    }
}
