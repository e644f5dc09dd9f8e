//! Alerting operations: alert sources and their keys, alert rules, the raw
//! alerts, and ingestion, which starts (or stops) escalation for every
//! incident it opens or changes.

use crate::alerting::rules::{self, AlertRule, NewRule, RulePatch};
use crate::alerting::sources::{
    self, AlertSource, KeyRejection, NewSource, RevealedSource, SourceContext, SourcePatch,
};
use crate::error::{DomainError, DomainResult};
use crate::identity::Principal;
use crate::incidents::feed::IncidentChange;
use crate::ingest::alerts::{self, AlertRecord, Outcome};
use crate::ingest::event::AlertEvent;
use crate::ingest::formats::parse_alarm_message;
use crate::ingest::pipeline::{self, Ingested};

use serde_json::json;

use super::App;

impl App {
    // Ingestion.

    /// The alert source a presented key belongs to: one table read.
    pub async fn authenticate_source(
        &self,
        api_key: Option<&str>,
    ) -> DomainResult<Result<SourceContext, KeyRejection>> {
        sources::authenticate(self.store(), api_key).await
    }

    /// Ingests alerts from `source`, in order, and pages (or stops paging)
    /// for every incident they open or change. A successful return means
    /// every alert is stored; a new incident records that its escalation is
    /// due in the same write, so paging survives a crash right after.
    ///
    /// One alert goes through the single path; several through the batch
    /// path (`pipeline::Batch`): the rules read once, then rounds of
    /// triggers stored with one marker read, one counter increment and one
    /// `transact_many` each. Paging follows each round, before the next
    /// step, so a trigger then a resolve of one alert in one request does
    /// what two requests would.
    pub async fn ingest(&self, source: &SourceContext, events: Vec<AlertEvent>) -> DomainResult<Vec<Ingested>> {
        let mut done = Vec::with_capacity(events.len());
        if events.len() <= 1 {
            for event in events {
                let ingested = pipeline::ingest(self.store(), source, event).await?;
                self.after_ingest(source, &ingested).await;
                done.push(ingested);
            }
            return Ok(done);
        }
        let mut batch = pipeline::Batch::prepare(self.store(), source, events).await?;
        while let Some(step) = batch.next(self.store(), source).await {
            // What a step stored pages even when a later alert of the step
            // failed: the request fails, but those alerts are stored.
            for ingested in step.done {
                self.after_ingest(source, &ingested).await;
                done.push(ingested);
            }
            if let Some(error) = step.error {
                return Err(error);
            }
        }
        Ok(done)
    }

    /// Pages (or stops paging) for what one stored alert changed.
    async fn after_ingest(&self, source: &SourceContext, ingested: &Ingested) {
        if let Some(incident) = &ingested.incident {
            self.after_incident_change(incident).await;
        } else if ingested.outcome() == Outcome::Deduplicated
            && let Some(id) = ingested.alert.incident_id
        {
            // The open incident counted one more alert.
            self.publish(IncidentChange::touched(&source.tenant, id));
        }
    }

    /// A CloudWatch alarm that SNS delivered for `topic_arn` (the
    /// `alarm-ingest` function): ingested into the source the topic feeds.
    pub async fn ingest_alarm(&self, topic_arn: &str, message: &str) -> DomainResult<Ingested> {
        let source = sources::by_sns_topic(self.store(), topic_arn)
            .await?
            .ok_or_else(|| DomainError::Forbidden(format!("SNS topic {topic_arn} feeds no active alert source")))?;
        let alarm = parse_alarm_message(message)?;
        let mut done = self.ingest(&source, vec![alarm]).await?;
        done.pop()
            .ok_or_else(|| DomainError::Internal("ingesting one alarm returned nothing".into()))
    }

    /// PagerPal's "Send test alert": a critical alert through the normal
    /// ingestion path, paging included.
    pub async fn send_test_alert(&self, caller: &Principal, source_id: u64) -> DomainResult<Ingested> {
        let (source, event) = sources::test_alert(self.store(), caller, source_id).await?;
        let mut done = self.ingest(&source, vec![event]).await?;
        done.pop()
            .ok_or_else(|| DomainError::Internal("ingesting the test alert returned nothing".into()))
    }

    // Alert sources.

    pub async fn alert_sources(&self, caller: &Principal) -> DomainResult<Vec<AlertSource>> {
        sources::list(self.store(), caller).await
    }

    pub async fn alert_source(&self, caller: &Principal, id: u64) -> DomainResult<AlertSource> {
        sources::get(self.store(), caller, id).await
    }

    pub async fn create_alert_source(&self, caller: &Principal, new: NewSource) -> DomainResult<RevealedSource> {
        let done = sources::create(self.store(), caller, new).await?;
        self.audit(
            caller,
            "source.create",
            "alert_source",
            done.source.id,
            json!({"name": done.source.name}),
        )
        .await;
        Ok(done)
    }

    pub async fn update_alert_source(
        &self,
        caller: &Principal,
        id: u64,
        patch: SourcePatch,
    ) -> DomainResult<AlertSource> {
        let done = sources::update(self.store(), caller, id, patch).await?;
        self.audit(caller, "source.update", "alert_source", id, json!({"name": done.name}))
            .await;
        Ok(done)
    }

    pub async fn set_alert_source_active(
        &self,
        caller: &Principal,
        id: u64,
        active: bool,
    ) -> DomainResult<AlertSource> {
        let done = sources::set_active(self.store(), caller, id, active).await?;
        self.audit(
            caller,
            "source.set_active",
            "alert_source",
            id,
            json!({"is_active": active}),
        )
        .await;
        Ok(done)
    }

    pub async fn regenerate_alert_source_key(&self, caller: &Principal, id: u64) -> DomainResult<RevealedSource> {
        let done = sources::regenerate_key(self.store(), caller, id).await?;
        self.audit(
            caller,
            "source.rotate_key",
            "alert_source",
            id,
            json!({"name": done.source.name}),
        )
        .await;
        Ok(done)
    }

    pub async fn delete_alert_source(&self, caller: &Principal, id: u64) -> DomainResult<()> {
        sources::delete(self.store(), caller, id).await?;
        self.audit(caller, "source.delete", "alert_source", id, json!({})).await;
        Ok(())
    }

    // Alert rules.

    pub async fn alert_rules(&self, caller: &Principal) -> DomainResult<Vec<AlertRule>> {
        rules::list(self.store(), caller).await
    }

    pub async fn alert_rule(&self, caller: &Principal, id: &crate::model::RecordId) -> DomainResult<AlertRule> {
        rules::get(self.store(), caller, id).await
    }

    pub async fn create_alert_rule(&self, caller: &Principal, new: NewRule) -> DomainResult<AlertRule> {
        let done = rules::create(self.store(), caller, new).await?;
        self.audit(
            caller,
            "alert_rule.create",
            "alert_rule",
            &done.id,
            json!({"name": done.name}),
        )
        .await;
        Ok(done)
    }

    pub async fn update_alert_rule(
        &self,
        caller: &Principal,
        id: &crate::model::RecordId,
        patch: RulePatch,
    ) -> DomainResult<AlertRule> {
        let done = rules::update(self.store(), caller, id, patch).await?;
        self.audit(
            caller,
            "alert_rule.update",
            "alert_rule",
            &done.id,
            json!({"name": done.name}),
        )
        .await;
        Ok(done)
    }

    pub async fn delete_alert_rule(&self, caller: &Principal, id: &crate::model::RecordId) -> DomainResult<()> {
        rules::delete(self.store(), caller, id).await?;
        self.audit(caller, "alert_rule.delete", "alert_rule", id, json!({}))
            .await;
        Ok(())
    }

    // Raw alerts.

    /// One page of the tenant's alerts, newest first, and the cursor of the
    /// next.
    pub async fn recent_alerts(
        &self,
        caller: &Principal,
        limit: u32,
        cursor: Option<String>,
    ) -> DomainResult<(Vec<AlertRecord>, Option<String>)> {
        alerts::recent(self.store(), caller, limit, cursor).await
    }

    pub async fn alert(&self, caller: &Principal, id: &crate::model::RecordId) -> DomainResult<AlertRecord> {
        alerts::get(self.store(), caller, id).await
    }
}
