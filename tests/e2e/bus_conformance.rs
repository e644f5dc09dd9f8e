//! Conformance suite of the `Bus` port, and the `notifier` function's batch
//! handling.
//!
//! Every shared case is written once, as `async fn case_x(bus: Harness)`,
//! and [`bus_cases!`] runs it against two adapters:
//!
//! - `sqlite`: `TableQueue` on a fresh SQLite file (the local host's bus);
//!   what arrived on a channel is what `pending` lists with that channel;
//! - `sns`: `SnsBus` on a fresh topic fanned out to one SQS queue per
//!   channel (`create_fanout`); what arrived on a channel is what
//!   `ReceiveMessage` returns from that channel's queue.
//!
//! The AWS side uses moto_server at `QUPER_TEST_DYNAMODB_ENDPOINT` (started
//! by `infra/scripts/test.sh`; moto serves SNS and SQS on the same endpoint
//! and delivers to subscribed queues during `Publish`) and fails, never
//! skips, when it is unset. The `sns_` tests cover what only the fan-out
//! has: message attributes, filter policies, the channel check, redrive to
//! the dead-letter queue. The `notifier_` tests run
//! `quper_lambda::events::sqs::handle_batch` on the sample event in
//! `events/` and on messages taken from a real fan-out queue.

use std::sync::{Arc, Mutex};

use futures::future::join_all;
use quper_core::notifications::queue::TableQueue;
use quper_core::ports::{Bus, BusError, NotificationJob, SystemClock};
use quper_lambda::events::sqs::handle_batch;
use quper_store_aws::{
    CHANNELS, Fanout, MAX_RECEIVE_COUNT, SnsBus, SqsClient, create_fanout, sns_client_with_endpoint,
    sqs_client_with_endpoint,
};
use quper_store_local::SqliteTable;
use serde_json::{Value, json};

/// Runs each listed case against every adapter.
macro_rules! bus_cases {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::sqlite_harness()).await;
                }
            )+
        }

        mod sns {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::sns_harness().await).await;
                }
            )+
        }
    };
}

bus_cases!(
    case_job_arrives_once_on_its_channel,
    case_jobs_land_on_their_own_channels,
    case_empty_id_is_invalid,
    case_same_job_twice_is_accepted,
    case_job_round_trips_exactly,
    case_concurrent_publishes_all_arrive,
);

// ---------------------------------------------------------------------------
// Adapters under test

/// A bus and a way to see what arrived on each channel.
enum Harness {
    Local {
        queue: TableQueue,
        _dir: tempfile::TempDir,
    },
    Aws {
        bus: SnsBus,
        sqs: SqsClient,
        fanout: Fanout,
    },
}

impl Harness {
    fn bus(&self) -> &dyn Bus {
        match self {
            Harness::Local { queue, .. } => queue,
            Harness::Aws { bus, .. } => bus,
        }
    }

    /// Every job that arrived on `channel` since the last call, taken off
    /// the queue (so a second call sees only what arrived since).
    async fn take(&self, channel: &str) -> Vec<NotificationJob> {
        match self {
            Harness::Local { queue, .. } => {
                let mut taken = Vec::new();
                let visible = queue.pending(chrono::Utc::now(), 1000).await.expect("pending");
                for (key, job) in visible {
                    if job.channel == channel {
                        queue.remove(&key).await.expect("remove");
                        taken.push(job);
                    }
                }
                taken
            }
            Harness::Aws { sqs, fanout, .. } => {
                let url = &fanout.queue_urls[channel];
                receive_all(sqs, url)
                    .await
                    .into_iter()
                    .map(|message| {
                        serde_json::from_str(&message.body)
                            .unwrap_or_else(|err| panic!("{channel} queue body is not a job ({err}): {}", message.body))
                    })
                    .collect()
            }
        }
    }

    /// Asserts that nothing is waiting on any channel.
    async fn assert_all_empty(&self) {
        for channel in CHANNELS {
            assert_eq!(self.take(channel).await, [], "{channel} should be empty");
        }
    }
}

/// `TableQueue` on a fresh SQLite file, on the real clock (as the local
/// host runs it).
fn sqlite_harness() -> Harness {
    let dir = tempfile::tempdir().expect("temporary directory");
    let table = SqliteTable::open(&dir.path().join("table.db")).expect("open SQLite table");
    Harness::Local {
        queue: TableQueue::new(Arc::new(table), Arc::new(SystemClock)),
        _dir: dir,
    }
}

/// `SnsBus` on a fresh fan-out (topic, four channel queues with DLQs) on
/// the test endpoint.
async fn sns_harness() -> Harness {
    let (bus, sqs, fanout) = fresh_fanout().await;
    Harness::Aws { bus, sqs, fanout }
}

async fn fresh_fanout() -> (SnsBus, SqsClient, Fanout) {
    let endpoint = test_endpoint();
    let sns = sns_client_with_endpoint(Some(endpoint.clone())).await;
    let sqs = sqs_client_with_endpoint(Some(endpoint)).await;
    let topic = crate::support::unique_table_name("bus");
    let fanout = create_fanout(&sns, &sqs, &topic, &CHANNELS)
        .await
        .expect("create fan-out");
    (SnsBus::new(sns, fanout.topic_arn.clone()), sqs, fanout)
}

/// The test endpoint (moto_server); panics when unset.
fn test_endpoint() -> String {
    let name = crate::support::DYNAMODB_ENDPOINT_ENV;
    std::env::var(name)
        .ok()
        .filter(|endpoint| !endpoint.trim().is_empty())
        .unwrap_or_else(|| {
            panic!(
                "{name} is unset: these tests need an AWS emulator (moto_server) for SNS and SQS. \
                 Run infra/scripts/test.sh, or start `.venv/bin/python infra/scripts/moto_atomic.py 127.0.0.1 PORT` \
                 and set {name}=http://127.0.0.1:PORT with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION."
            )
        })
}

/// One message taken off an SQS queue.
#[derive(Debug)]
struct Received {
    message_id: String,
    body: String,
    /// String message attributes by name.
    attributes: Vec<(String, String)>,
}

/// Receives and deletes every visible message of `url` (moto has delivered
/// everything published by the time `Publish` answers).
async fn receive_all(sqs: &SqsClient, url: &str) -> Vec<Received> {
    let mut taken = Vec::new();
    loop {
        let batch = receive(sqs, url, 30).await;
        if batch.is_empty() {
            return taken;
        }
        for (message, receipt) in batch {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(receipt)
                .send()
                .await
                .expect("delete message");
            taken.push(message);
        }
    }
}

/// One `ReceiveMessage` of up to 10 messages, without waiting, hiding them
/// for `visibility_timeout` seconds; each with its receipt handle.
async fn receive(sqs: &SqsClient, url: &str, visibility_timeout: i32) -> Vec<(Received, String)> {
    let output = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(0)
        .visibility_timeout(visibility_timeout)
        .message_attribute_names("All")
        .send()
        .await
        .expect("receive message");
    output
        .messages()
        .iter()
        .map(|message| {
            let mut attributes: Vec<(String, String)> = message
                .message_attributes()
                .into_iter()
                .flatten()
                .filter_map(|(name, value)| Some((name.clone(), value.string_value()?.to_owned())))
                .collect();
            attributes.sort();
            let received = Received {
                message_id: message.message_id().expect("message id").to_owned(),
                body: message.body().expect("message body").to_owned(),
                attributes,
            };
            (received, message.receipt_handle().expect("receipt handle").to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Helpers

fn tenant(id: &str) -> quper_core::model::TenantId {
    quper_core::model::TenantId::parse(id).expect("tenant id")
}

fn job(id: &str, channel: &str) -> NotificationJob {
    NotificationJob {
        id: id.to_owned(),
        tenant: tenant("acme"),
        incident_id: 42,
        channel: channel.to_owned(),
        user_id: Some(7),
        payload: json!({"row": {"pk": "T#acme#INC#0000000042", "sk": format!("NTF#{id}")}}),
    }
}

fn sorted(mut jobs: Vec<NotificationJob>) -> Vec<NotificationJob> {
    jobs.sort_by(|a, b| a.id.cmp(&b.id));
    jobs
}

// ---------------------------------------------------------------------------
// Shared cases

async fn case_job_arrives_once_on_its_channel(bus: Harness) {
    let sent = job("j-sms-1", "sms");
    bus.bus().publish(sent.clone()).await.expect("publish");
    for other in CHANNELS.iter().filter(|channel| **channel != "sms") {
        assert_eq!(bus.take(other).await, [], "the sms job must not reach {other}");
    }
    assert_eq!(bus.take("sms").await, [sent]);
    // Once: nothing more after taking it.
    bus.assert_all_empty().await;
}

async fn case_jobs_land_on_their_own_channels(bus: Harness) {
    let mut sent = Vec::new();
    // Interleaved: two jobs per channel.
    for round in 0..2 {
        for channel in CHANNELS {
            let job = job(&format!("{channel}-{round}"), channel);
            bus.bus().publish(job.clone()).await.expect("publish");
            sent.push(job);
        }
    }
    for channel in CHANNELS {
        let expected: Vec<NotificationJob> = sent.iter().filter(|job| job.channel == channel).cloned().collect();
        assert_eq!(sorted(bus.take(channel).await), expected, "{channel}");
    }
    bus.assert_all_empty().await;
}

async fn case_empty_id_is_invalid(bus: Harness) {
    for channel in CHANNELS {
        let published = bus.bus().publish(job("", channel)).await;
        assert!(
            matches!(published, Err(BusError::Invalid(_))),
            "{channel}: {published:?}"
        );
    }
    bus.assert_all_empty().await;
}

/// At least once: a job published twice is accepted both times. SNS may
/// deliver both copies (the consumer deduplicates by job id); the local
/// queue keeps one.
async fn case_same_job_twice_is_accepted(bus: Harness) {
    let sent = job("twice", "webhook");
    bus.bus().publish(sent.clone()).await.expect("first publish");
    bus.bus().publish(sent.clone()).await.expect("second publish");
    let arrived = bus.take("webhook").await;
    match &bus {
        Harness::Local { .. } => assert_eq!(arrived, [sent], "the local queue keeps one copy"),
        Harness::Aws { .. } => {
            assert!((1..=2).contains(&arrived.len()), "{arrived:?}");
            assert!(arrived.iter().all(|job| *job == sent), "{arrived:?}");
        }
    }
    bus.assert_all_empty().await;
}

async fn case_job_round_trips_exactly(bus: Harness) {
    let shapes = [
        NotificationJob {
            id: "shape-0".into(),
            tenant: tenant("tenant-with-dashes-0"),
            incident_id: u64::from(u32::MAX) + 17,
            channel: "slack".into(),
            user_id: None,
            payload: Value::Null,
        },
        NotificationJob {
            id: "shape-1".into(),
            tenant: tenant("acme"),
            incident_id: 0,
            channel: "slack".into(),
            user_id: Some(u64::from(u32::MAX)),
            payload: json!({
                "text": "quotes \" and \\ backslashes, unicode ✓ 日本語, newlines\nand\ttabs",
                "nested": {"list": [1, "two", {"three": 3.5}], "empty": {}, "flag": false},
            }),
        },
    ];
    for shape in &shapes {
        bus.bus().publish(shape.clone()).await.expect("publish");
    }
    assert_eq!(sorted(bus.take("slack").await), shapes);
}

async fn case_concurrent_publishes_all_arrive(bus: Harness) {
    let sent: Vec<NotificationJob> = (0..12).map(|n| job(&format!("c-{n:02}"), "email")).collect();
    let results = join_all(sent.iter().map(|job| bus.bus().publish(job.clone()))).await;
    for result in results {
        result.expect("concurrent publish");
    }
    assert_eq!(sorted(bus.take("email").await), sent);
    bus.assert_all_empty().await;
}

// ---------------------------------------------------------------------------
// SNS fan-out only

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_messages_carry_channel_and_tenant_attributes() {
    let (bus, sqs, fanout) = fresh_fanout().await;
    let sent = job("attributes", "email");
    bus.publish(sent.clone()).await.expect("publish");
    let received = receive_all(&sqs, &fanout.queue_urls["email"]).await;
    assert_eq!(received.len(), 1, "{received:?}");
    // Raw delivery: the body is the job itself, not an SNS envelope.
    let body: Value = serde_json::from_str(&received[0].body).expect("JSON body");
    assert_eq!(body, serde_json::to_value(&sent).unwrap());
    assert_eq!(
        received[0].attributes,
        [
            ("channel".to_owned(), "email".to_owned()),
            ("tenant".to_owned(), "acme".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_rejects_jobs_no_queue_would_take() {
    let (bus, sqs, fanout) = fresh_fanout().await;
    for bad in [job("push", "push"), job("capital", "Email"), job("blank", "")] {
        let published = bus.publish(bad.clone()).await;
        assert!(matches!(published, Err(BusError::Invalid(_))), "{bad:?}: {published:?}");
    }
    for url in fanout.queue_urls.values() {
        assert!(receive_all(&sqs, url).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_missing_topic_is_unavailable() {
    let sns = sns_client_with_endpoint(Some(test_endpoint())).await;
    let bus = SnsBus::new(
        sns,
        format!(
            "arn:aws:sns:us-east-1:123456789012:{}",
            crate::support::unique_table_name("missing")
        ),
    );
    let published = bus.publish(job("lost", "email")).await;
    assert!(matches!(published, Err(BusError::Unavailable(_))), "{published:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_fanout_is_idempotent_and_checks_channels() {
    let endpoint = test_endpoint();
    let sns = sns_client_with_endpoint(Some(endpoint.clone())).await;
    let sqs = sqs_client_with_endpoint(Some(endpoint)).await;
    let topic = crate::support::unique_table_name("bus");
    let first = create_fanout(&sns, &sqs, &topic, &["email", "sms"])
        .await
        .expect("create fan-out");
    assert!(first.topic_arn.ends_with(&format!(":{topic}")), "{first:?}");
    assert_eq!(first.queue_urls.keys().collect::<Vec<_>>(), ["email", "sms"]);
    assert_eq!(first.dlq_urls.keys().collect::<Vec<_>>(), ["email", "sms"]);
    assert!(first.queue_urls["sms"].ends_with(&format!("{topic}-sms")), "{first:?}");
    assert!(
        first.dlq_urls["sms"].ends_with(&format!("{topic}-sms-dlq")),
        "{first:?}"
    );

    let again = create_fanout(&sns, &sqs, &topic, &["email", "sms"])
        .await
        .expect("create the same fan-out again");
    assert_eq!(again, first);
    // Subscribing again added no second subscription: one copy per job.
    SnsBus::new(sns.clone(), first.topic_arn.clone())
        .publish(job("after-rerun", "sms"))
        .await
        .expect("publish");
    assert_eq!(receive_all(&sqs, &first.queue_urls["sms"]).await.len(), 1);

    let unknown = create_fanout(&sns, &sqs, &topic, &["email", "pager"]).await;
    assert!(matches!(unknown, Err(BusError::Invalid(_))), "{unknown:?}");
}

/// A message received `MAX_RECEIVE_COUNT` times without being deleted (the
/// notifier reported it failed every time) moves to its dead-letter queue on
/// the next receive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_failing_message_moves_to_the_dead_letter_queue() {
    let (bus, sqs, fanout) = fresh_fanout().await;
    let sent = job("always-fails", "sms");
    bus.publish(sent.clone()).await.expect("publish");
    let url = &fanout.queue_urls["sms"];
    for attempt in 1..=MAX_RECEIVE_COUNT {
        // Visible again at once, as if the visibility timeout had passed.
        let batch = receive(&sqs, url, 0).await;
        assert_eq!(batch.len(), 1, "receive {attempt}: {batch:?}");
    }
    assert!(
        receive(&sqs, url, 0).await.is_empty(),
        "moved after {MAX_RECEIVE_COUNT} receives"
    );
    let dead = receive_all(&sqs, &fanout.dlq_urls["sms"]).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        serde_json::from_str::<NotificationJob>(&dead[0].body).expect("job"),
        sent
    );
    for channel in ["email", "slack", "webhook"] {
        assert!(
            receive_all(&sqs, &fanout.dlq_urls[channel]).await.is_empty(),
            "{channel}"
        );
    }
}

// ---------------------------------------------------------------------------
// The notifier's batch handling

fn sample_event() -> Value {
    let path = format!("{}/../events/notifier-sqs-batch.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {path}: {err}"));
    serde_json::from_str(&text).expect("events/notifier-sqs-batch.json is JSON")
}

/// Runs `handle_batch` with a `deliver` that records the jobs and fails the
/// ids in `fail`.
async fn notify(event: Value, fail: &[&str]) -> (Value, Vec<NotificationJob>) {
    let delivered = Mutex::new(Vec::new());
    let answer = handle_batch(event, |job: NotificationJob| {
        let fails = fail.contains(&job.id.as_str());
        delivered.lock().unwrap().push(job);
        async move { if fails { Err("provider down".to_owned()) } else { Ok(()) } }
    })
    .await;
    (answer, delivered.into_inner().unwrap())
}

#[tokio::test]
async fn notifier_sample_event_reports_the_poison_record() {
    let event = sample_event();
    let records = event["Records"].as_array().expect("Records").clone();
    assert_eq!(records.len(), 2);
    for record in &records {
        assert_eq!(record["eventSource"], "aws:sqs");
        assert!(record["attributes"]["ApproximateReceiveCount"].is_string());
    }
    let valid: NotificationJob = serde_json::from_str(records[0]["body"].as_str().expect("body")).expect("job body");
    assert_eq!(valid.channel, "email");
    assert_eq!(records[0]["messageAttributes"]["channel"]["stringValue"], valid.channel);

    let (answer, delivered) = notify(event.clone(), &[]).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": records[1]["messageId"]}]})
    );
    assert_eq!(delivered, std::slice::from_ref(&valid));

    // When the valid job's delivery fails too, both are reported.
    let (answer, _) = notify(event, &[valid.id.as_str()]).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [
            {"itemIdentifier": records[0]["messageId"]},
            {"itemIdentifier": records[1]["messageId"]}
        ]})
    );

    let readme = std::fs::read_to_string(format!("{}/../events/README.md", env!("CARGO_MANIFEST_DIR")))
        .expect("events/README.md");
    assert!(readme.contains("notifier-sqs-batch.json"));
}

/// Jobs published through `SnsBus` and received from their queue, wrapped
/// in an SQS event the way Lambda's event source mapping does, are what
/// `handle_batch` delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifier_handles_what_the_fanout_delivers() {
    let (bus, sqs, fanout) = fresh_fanout().await;
    let sent = [job("fan-1", "webhook"), job("fan-2", "webhook")];
    for job in &sent {
        bus.publish(job.clone()).await.expect("publish");
    }
    let received = receive_all(&sqs, &fanout.queue_urls["webhook"]).await;
    assert_eq!(received.len(), 2, "{received:?}");
    let records: Vec<Value> = received
        .iter()
        .map(|message| {
            json!({
                "messageId": message.message_id,
                "receiptHandle": "unused",
                "body": message.body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:quper-webhook",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    let (answer, delivered) = notify(json!({ "Records": records }), &["fan-2"]).await;
    assert_eq!(sorted(delivered), sent);
    let failed_message = received
        .iter()
        .find(|message| message.body.contains("\"fan-2\""))
        .expect("fan-2 received");
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": failed_message.message_id}]})
    );
}
