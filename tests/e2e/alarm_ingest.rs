//! The `alarm-ingest` function's handler, in process, with the SNS events kept
//! in `events/`: on the embedded store and on DynamoDB (moto).

use std::sync::Arc;

use quper_core::Store;
use quper_core::alerting::sources::{self, NewSource};
use quper_core::identity;
use quper_core::incidents::lifecycle;
use quper_core::incidents::model::IncidentStatus;
use quper_core::ingest::alerts::Outcome;
use quper_core::ingest::sns_event;
use quper_core::ports::{SystemClock, Table};
use serde_json::{Value, json};

use crate::support::{ROOT_EMAIL, ROOT_PASSWORD};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:quper-cloudwatch-alarms";

fn event(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("event file")).expect("event json")
}

async fn scenario(table: Arc<dyn Table>) {
    let store = Store::new(table, Arc::new(SystemClock));
    quper::admin::bootstrap(&store, ROOT_EMAIL, ROOT_PASSWORD)
        .await
        .expect("bootstrap");
    let root = identity::principal(&store, "default", 1).await.expect("principal");
    let new: NewSource = serde_json::from_value(json!({
        "name": "CloudWatch prod", "source_type": "cloudwatch", "sns_topic_arn": TOPIC,
    }))
    .expect("new source");
    sources::create(&store, &root, new).await.expect("source");

    let first = sns_event::handle(&store, event("alarm-ingest-sns-alarm.json"))
        .await
        .expect("alarm");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].outcome(), Outcome::Created);
    let number = first[0].alert.incident_id.expect("incident");
    assert_eq!(
        first[0].alert.dedup_key.as_deref(),
        Some("arn:aws:cloudwatch:us-east-1:123456789012:alarm:prod-api-cpu-high")
    );

    // SNS retries and repeated ALARMs join the open incident.
    let again = sns_event::handle(&store, event("alarm-ingest-sns-alarm.json"))
        .await
        .expect("retry");
    assert_eq!(
        (again[0].outcome(), again[0].alert.incident_id),
        (Outcome::Deduplicated, Some(number))
    );

    let ok = sns_event::handle(&store, event("alarm-ingest-sns-ok.json"))
        .await
        .expect("ok");
    assert_eq!(ok[0].outcome(), Outcome::Resolved);
    let incident = lifecycle::get(&store, &root, number).await.expect("incident");
    assert_eq!((incident.status, incident.alert_count), (IncidentStatus::Resolved, 2));

    let reopened = sns_event::handle(&store, event("alarm-ingest-sns-alarm.json"))
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
    assert!(sns_event::handle(&store, stray).await.is_err());
    let mut garbled = event("alarm-ingest-sns-alarm.json");
    garbled["Records"][0]["Sns"]["Message"] = json!("not json");
    assert!(sns_event::handle(&store, garbled).await.is_err());
    assert!(sns_event::handle(&store, json!({ "not": "sns" })).await.is_err());
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
