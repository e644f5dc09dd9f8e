//! The `alarm-ingest` function's handler, in process, with the SNS events kept
//! in `events/`, on the application as every function builds it: on the
//! embedded store and on DynamoDB (moto). An alarm opens an incident and
//! pages whoever is on call for the source's team, at once.

use std::sync::Arc;

use quper_core::App;
use quper_core::identity::Principal;
use quper_core::incidents::model::IncidentStatus;
use quper_core::ingest::alerts::Outcome;
use quper_core::notifications::log::NotificationStatus;
use quper_core::ports::{SystemClock, Table};
use quper_lambda::events::sns::ingest_alarms;
use serde_json::{Value, json};

use crate::support::{bootstrap_root, host_on, parse};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:quper-cloudwatch-alarms";

fn event(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("event file")).expect("event json")
}

/// A team whose policy pages the schedule `primary`, on which `on_call` is
/// on call around the clock; returns the team id.
async fn on_call_team(app: &App, root: &Principal, on_call: u64) -> u64 {
    let schedule = app
        .create_schedule(
            root,
            parse(json!({
                "name": "primary", "time_zone": "UTC",
                "layers": [{ "user_ids": [on_call], "shift_length": 1, "shift_unit": "days", "start": "2020-01-06T00:00:00" }],
            })),
        )
        .await
        .expect("schedule");
    let policy = app
        .create_escalation_policy(root, parse(json!({ "name": "ops" })))
        .await
        .expect("policy");
    app.add_escalation_level(
        root,
        policy.id,
        parse(json!({ "level_number": 1, "delay_minutes": 10, "assignees": [{ "schedule_id": schedule.id }] })),
    )
    .await
    .expect("level");
    app.create_team(
        root,
        parse(json!({ "name": "ops", "default_escalation_policy_id": policy.id })),
    )
    .await
    .expect("team")
    .id
}

async fn scenario(table: Arc<dyn Table>) {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let host = host_on(table, data_dir.path(), &[], Arc::new(SystemClock));
    let app = &host.app;
    let root = bootstrap_root(app).await;
    let responder = app
        .create_user(
            &root,
            parse(json!({ "email": "oncall@example.com", "full_name": "On Call", "role": "responder" })),
        )
        .await
        .expect("responder");
    let team = on_call_team(app, &root, responder.id).await;
    app.create_alert_source(
        &root,
        parse(
            json!({ "name": "CloudWatch prod", "source_type": "cloudwatch", "sns_topic_arn": TOPIC, "team_id": team }),
        ),
    )
    .await
    .expect("source");

    let first = ingest_alarms(app, event("alarm-ingest-sns-alarm.json"))
        .await
        .expect("alarm");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].outcome(), Outcome::Created);
    let number = first[0].alert.incident_id.expect("incident");
    assert_eq!(
        first[0].alert.dedup_key.as_deref(),
        Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:prod-api-cpu-high")
    );
    // The on-call responder is paged at once: a queued message and its job.
    let logs = app.notification_logs(&root, number).await.expect("notification logs");
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(
        (logs[0].user_id, logs[0].status, logs[0].escalation_level),
        (Some(responder.id), NotificationStatus::Queued, 1)
    );
    let queued = host.queue.pending(app.store().now(), 10).await.expect("queue");
    assert_eq!(queued.len(), 1, "the page is on the bus");
    let incident = app.incident(&root, number).await.expect("incident");
    assert_eq!(
        (incident.current_escalation_level, incident.assigned_user_id),
        (1, Some(responder.id))
    );

    // SNS retries and repeated ALARMs join the open incident and page nobody again.
    let again = ingest_alarms(app, event("alarm-ingest-sns-alarm.json"))
        .await
        .expect("retry");
    assert_eq!(
        (again[0].outcome(), again[0].alert.incident_id),
        (Outcome::Deduplicated, Some(number))
    );
    assert_eq!(app.notification_logs(&root, number).await.expect("logs").len(), 1);

    let ok = ingest_alarms(app, event("alarm-ingest-sns-ok.json")).await.expect("ok");
    assert_eq!(ok[0].outcome(), Outcome::Resolved);
    let incident = app.incident(&root, number).await.expect("incident");
    assert_eq!((incident.status, incident.alert_count), (IncidentStatus::Resolved, 2));

    let reopened = ingest_alarms(app, event("alarm-ingest-sns-alarm.json"))
        .await
        .expect("new alarm");
    assert_eq!(
        reopened[0].outcome(),
        Outcome::Created,
        "after OK, the next ALARM opens a new incident"
    );
    assert_ne!(reopened[0].alert.incident_id, Some(number));

    // A topic that feeds no source fails the invocation (SNS retries, then the DLQ).
    let mut stray = event("alarm-ingest-sns-alarm.json");
    stray["Records"][0]["Sns"]["TopicArn"] = json!("arn:aws:sns:us-east-1:123456789012:unknown");
    assert!(ingest_alarms(app, stray).await.is_err());
    let mut garbled = event("alarm-ingest-sns-alarm.json");
    garbled["Records"][0]["Sns"]["Message"] = json!("not json");
    assert!(ingest_alarms(app, garbled).await.is_err());
    assert!(ingest_alarms(app, json!({ "not": "sns" })).await.is_err());
}

#[test]
fn the_sns_events_are_described() {
    let readme =
        std::fs::read_to_string(format!("{}/../events/README.md", env!("CARGO_MANIFEST_DIR"))).expect("README");
    for name in ["alarm-ingest-sns-alarm.json", "alarm-ingest-sns-ok.json"] {
        assert!(readme.contains(name), "events/README.md does not describe {name}");
        let records = &event(name)["Records"];
        assert_eq!(records[0]["EventSource"], "aws:sns", "{name}");
        assert_eq!(records[0]["Sns"]["TopicArn"], TOPIC, "{name}");
    }
}

#[tokio::test]
async fn alarms_from_sns_on_the_embedded_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let table = quper_store_local::SqliteTable::open(&dir.path().join("alarms.db")).expect("sqlite");
    scenario(Arc::new(table)).await;
}

#[tokio::test]
async fn alarms_from_sns_on_dynamodb() {
    scenario(crate::support::dynamodb_table("alarms").await).await;
}
