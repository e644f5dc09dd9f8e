//! The `escalator` function's events: EventBridge Scheduler delivers a
//! timer's input, `{"timer_id", "fire_at", "payload"}`, whose payload is an
//! [`EscalationTimer`] or a contact form delivery's [`DeliveryTimer`]; the template's recurring schedule sends
//! `{"sweep": "stranded"}`, the sweep for work lost on its way. An error
//! fails the invocation, so Scheduler retries it and finally leaves it in the
//! dead-letter queue; a stale timer succeeds without paging anyone.

use quper_core::contact::delivery::DeliveryTimer;
use quper_core::oncall::escalation::EscalationTimer;
use quper_core::{App, DomainError, DomainResult};
use serde_json::{Value, json};

/// Handles one Scheduler event.
pub async fn fire(app: &App, event: Value) -> DomainResult<Value> {
    if let Some(sweep) = event.get("sweep") {
        if sweep != "stranded" {
            return Err(DomainError::validation("sweep", "the only sweep is \"stranded\""));
        }
        let report = app.sweep().await?;
        return Ok(json!({
            "sweep": "stranded",
            "republished": report.republished,
            "escalated": report.escalated,
            "reminded": report.reminded,
        }));
    }
    let payload = event
        .get("payload")
        .cloned()
        .ok_or_else(|| DomainError::validation("payload", "a scheduler event carries the timer's payload"))?;
    if let Some(delivery) = DeliveryTimer::of(&payload) {
        let outcome = app.fire_contact_delivery(&delivery).await?;
        tracing::info!(tenant = %delivery.tenant, delivery = %delivery.id, ?outcome, "contact delivery timer fired");
        return Ok(json!({ "timer_id": event.get("timer_id"), "outcome": format!("{outcome:?}") }));
    }
    let timer: EscalationTimer = serde_json::from_value(payload)
        .map_err(|err| DomainError::validation("payload", format!("not an escalation timer: {err}")))?;
    let outcome = app.fire_timer(&timer).await?;
    tracing::info!(tenant = %timer.tenant, incident = timer.incident_id, step = timer.step, ?outcome, "escalation timer fired");
    Ok(json!({ "timer_id": event.get("timer_id"), "outcome": format!("{outcome:?}") }))
}
