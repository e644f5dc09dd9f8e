//! Billing with Stripe (`crate::billing`): the caller's own status,
//! Checkout, Billing Portal, invoices, cancel and resume through the
//! `Billing` port, and Stripe's verified events applied once.

use super::App;
use crate::billing::events::{self, EventOutcome, StripeEvent};
use crate::billing::{self, BillingStatus, CancelView, CheckoutRequest, CheckoutView, PortalView, ResumeView};
use crate::error::DomainResult;
use crate::identity::Principal;
use crate::ports::billing::Invoice;

impl App {
    /// `GET /api/v1/app/billing/status`: from Quper's own state.
    pub async fn billing_status(&self, caller: &Principal) -> DomainResult<BillingStatus> {
        billing::status(self.store(), caller).await
    }

    /// `POST /api/v1/app/billing/checkout`: the customer created once, then
    /// a Checkout Session; audited.
    pub async fn start_checkout(&self, caller: &Principal, request: CheckoutRequest) -> DomainResult<CheckoutView> {
        billing::checkout(self.store(), self.ports().billing.as_ref(), caller, request).await
    }

    /// `GET /api/v1/app/billing/portal?return_url=`; audited.
    pub async fn billing_portal(&self, caller: &Principal, return_url: Option<&str>) -> DomainResult<PortalView> {
        billing::portal(self.store(), self.ports().billing.as_ref(), caller, return_url).await
    }

    /// `GET /api/v1/app/billing/invoices?limit=`.
    pub async fn billing_invoices(&self, caller: &Principal, limit: Option<u32>) -> DomainResult<Vec<Invoice>> {
        billing::invoices(self.store(), self.ports().billing.as_ref(), caller, limit).await
    }

    /// `POST /api/v1/app/billing/cancel?immediate=`: Stripe's answer stored
    /// with the user's plan; audited.
    pub async fn cancel_subscription(&self, caller: &Principal, immediate: bool) -> DomainResult<CancelView> {
        billing::cancel(self.store(), self.ports().billing.as_ref(), caller, immediate).await
    }

    /// `POST /api/v1/app/billing/resume`; audited.
    pub async fn resume_subscription(&self, caller: &Principal) -> DomainResult<ResumeView> {
        billing::resume(self.store(), self.ports().billing.as_ref(), caller).await
    }

    /// A verified Stripe event: its effect and its marker in one
    /// transaction (a replay changes nothing); audited.
    pub async fn apply_stripe_event(&self, event: StripeEvent) -> DomainResult<EventOutcome> {
        events::apply(self.store(), self.ports().billing.as_ref(), event).await
    }
}
