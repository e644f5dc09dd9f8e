//! The public contact form: a submission stored with its deliveries in one
//! transaction before the answer, the status of the caller's window, and
//! the fires of the deliveries' timers.

use crate::contact::delivery::{self, DeliveryFire, DeliveryTimer};
use crate::contact::{self, ContactConfig, ContactRequest, ContactStatus, Submission, Submitted, rate};
use crate::error::{DomainError, DomainResult};
use crate::keys;
use crate::ports::{Condition, WriteOp};
use crate::store::{lost_race, to_item};

use super::App;

/// Tries at a free reference id before giving up (32 random bits each).
const REFERENCE_ATTEMPTS: usize = 5;

impl App {
    /// `POST /api/v1/public/contact` from `client` (its address): validated
    /// (422 naming the field), counted against the address's window (429
    /// when full), then stored with its deliveries in one transaction, their
    /// timers armed. Spam (the honeypot filled, a form sent too fast) gets
    /// the same answer and nothing is stored or sent.
    pub async fn submit_contact(&self, client: Option<&str>, request: ContactRequest) -> DomainResult<Submitted> {
        let settings = &self.settings().contact;
        let valid = request.validate(settings)?;
        let client = client.unwrap_or("unknown");
        let window = rate::take(self.store(), settings, client).await?;
        let now = self.now();
        if request.is_spam(settings, now) {
            tracing::info!("a contact form submission looked like spam; answered, not stored");
            return Ok(Submitted {
                reference_id: contact::new_reference_id(),
                stored: false,
                rate: window,
            });
        }
        for _ in 0..REFERENCE_ATTEMPTS {
            let submission = Submission {
                reference_id: contact::new_reference_id(),
                name: valid.name.clone(),
                email: valid.email.clone(),
                phone: valid.phone.clone(),
                company: valid.company.clone(),
                subject: valid.subject.clone(),
                message: valid.message.clone(),
                extra_fields: valid.extra_fields.clone(),
                source: valid.source.clone(),
                submitted_at: now,
                client_hash: Some(rate::client_hash(client)),
            };
            let deliveries = delivery::plan(settings, &submission, now);
            let mut ops = vec![WriteOp::put(
                to_item(
                    &keys::contact_submission(&settings.environment, &submission.reference_id),
                    &submission,
                    &[],
                )?,
                Condition::NotExists,
            )];
            for planned in &deliveries {
                ops.push(delivery::write(planned)?);
            }
            match self.store().transact(ops).await {
                Ok(()) => {}
                // The reference id (or a delivery id made of it) is taken.
                Err(err) if lost_race(&err) => continue,
                Err(err) => return Err(err.into()),
            }
            for planned in &deliveries {
                delivery::arm(self.ports().timers.as_ref(), planned, now).await;
            }
            return Ok(Submitted {
                reference_id: submission.reference_id,
                stored: true,
                rate: window,
            });
        }
        Err(DomainError::Internal("no free contact reference id".into()))
    }

    /// `GET /api/v1/public/contact/status` for `client`: its window as it
    /// stands (nothing counted) and the form's configuration.
    pub async fn contact_status(&self, client: Option<&str>) -> DomainResult<ContactStatus> {
        let settings = &self.settings().contact;
        let rate_limit = rate::peek(self.store(), settings, client.unwrap_or("unknown")).await?;
        Ok(ContactStatus {
            available: true,
            rate_limit,
            config: ContactConfig {
                require_subject: settings.require_subject,
                require_phone: settings.require_phone,
                sends_confirmation: settings.send_confirmation,
            },
        })
    }

    /// A contact delivery's timer fired (the host's timer worker, the
    /// `escalator` function): sent once, retried with backoff, or failed.
    pub async fn fire_contact_delivery(&self, timer: &DeliveryTimer) -> DomainResult<DeliveryFire> {
        let ports = self.ports();
        delivery::fire(
            self.store(),
            ports.sender.as_ref(),
            ports.timers.as_ref(),
            &self.settings().contact,
            timer,
        )
        .await
    }
}
