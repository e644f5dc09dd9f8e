//! No alert refused for a label (issue 10, point 8), over the wire: a real
//! Alertmanager webhook whose alerts carry `severity: major` or `P1` is
//! ingested with the mapped severity and the original kept; a source's own
//! table overrides the built-in one and its default catches the rest (on
//! SQLite and on DynamoDB, where the table lives in the source and its key
//! lookup); the table is validated; unknown values in every format are
//! ingested; one hopeless alert in a batch does not lose the others; a payload
//! that cannot be an alert is still refused in the error format.

use std::sync::Arc;

use quper_core::ports::Table;
use serde_json::{Value, json};

use crate::ingest::{assert_error, assert_field, fixture, sns_cert_dir, sns_fixture};
use crate::support::{TestApp, dynamodb_table, spawn_app, spawn_app_on, spawn_app_with, sqlite_table};

const ALERTS: &str = "/api/v1/alerts";
const GRAFANA: &str = "/api/v1/webhooks/grafana";
const ALERTMANAGER: &str = "/api/v1/webhooks/alertmanager";
const PAGERDUTY: &str = "/api/v1/webhooks/pagerduty";
const CLOUDWATCH: &str = "/api/v1/webhooks/cloudwatch";
const SOURCES: &str = "/api/v1/alert-sources";

/// One Prometheus alert as Alertmanager sends it.
fn prometheus_alert(name: &str, severity: Option<&str>, fingerprint: &str) -> Value {
    let mut labels = json!({ "alertname": name, "instance": "db-1:9187", "job": "postgres" });
    if let Some(severity) = severity {
        labels["severity"] = json!(severity);
    }
    json!({
        "status": "firing",
        "labels": labels,
        "annotations": { "summary": format!("{name} on db-1"), "description": "Replication is behind." },
        "startsAt": "2026-11-30T09:12:01.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": format!("http://prometheus:9090/graph?g0.expr=pg_up+%3D%3D+0&alert={name}"),
        "fingerprint": fingerprint,
    })
}

/// A full Alertmanager v4 webhook (receiver, status, group and common labels,
/// external URL) carrying `alerts`.
fn alertmanager_webhook(alerts: Vec<Value>) -> Value {
    json!({
        "receiver": "quper-oncall",
        "status": "firing",
        "alerts": alerts,
        "groupLabels": { "job": "postgres" },
        "commonLabels": { "job": "postgres", "instance": "db-1:9187" },
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "version": "4",
        "groupKey": "{}/{job=\"postgres\"}:{job=\"postgres\"}",
        "truncatedAlerts": 0
    })
}

/// The stored alert of an ingestion result.
async fn stored_alert(app: &TestApp, token: &str, result: &Value) -> Value {
    let id = result["alert_id"].as_str().expect("alert_id");
    let reply = app.get(&format!("/api/v1/alerts/{id}"), token).await;
    assert_eq!(reply.status, 200, "alert {id}: {:?}", reply.body);
    reply.body
}

async fn incident_severity(app: &TestApp, token: &str, result: &Value) -> Value {
    let id = result["id"].as_u64().expect("incident id");
    let reply = app.get(&format!("/api/v1/incidents/{id}"), token).await;
    assert_eq!(reply.status, 200, "incident {id}: {:?}", reply.body);
    reply.body["severity"].clone()
}

async fn stored_count(app: &TestApp, token: &str) -> (u64, usize) {
    let incidents = app.get("/api/v1/incidents?page_size=200", token).await;
    assert_eq!(incidents.status, 200, "{:?}", incidents.body);
    let alerts = app.get("/api/v1/alerts?limit=200", token).await;
    assert_eq!(alerts.status, 200, "{:?}", alerts.body);
    (
        incidents.body["total"].as_u64().expect("total"),
        alerts.body["items"].as_array().expect("items").len(),
    )
}

/// The `results` of a batch answer, checked to hold `count` entries and no
/// rejections.
fn batch_results(reply: &crate::support::Reply, count: usize) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["rejected"], json!([]), "{:?}", reply.body);
    let results = reply.body["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), count, "{:?}", reply.body);
    results
}

#[tokio::test]
async fn alertmanager_major_and_p1_are_ingested_with_the_mapped_severity_and_the_original_kept() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("labels-am").await;
    let (_, key) = app.alert_source(&admin, "Prometheus", "alertmanager").await;

    let webhook = alertmanager_webhook(vec![
        prometheus_alert("PostgresReplicationLag", Some("major"), "3f1a2b4c5d6e7f80"),
        prometheus_alert("PostgresDown", Some("P1"), "0a1b2c3d4e5f6071"),
        prometheus_alert("PostgresSlowQueries", Some("minor"), "1122334455667788"),
        prometheus_alert("PostgresOddity", Some("purple"), "99aabbccddeeff00"),
    ]);
    let reply = app.ingest(ALERTMANAGER, &key, &webhook).await;
    let results = batch_results(&reply, 4);
    for (result, raw, severity, origin) in [
        (&results[0], "major", "critical", "builtin"),
        (&results[1], "P1", "critical", "builtin"),
        (&results[2], "minor", "warning", "builtin"),
        // Known to neither table: critical, the value kept.
        (&results[3], "purple", "critical", "format_default"),
    ] {
        assert_eq!(result["outcome"], "created", "{result:?}");
        assert_eq!(result["raw_severity"], raw, "{result:?}");
        assert_eq!(result["severity"], severity, "{result:?}");
        assert_eq!(result["severity_origin"], origin, "{result:?}");
        assert_eq!(incident_severity(&app, &admin, result).await, severity, "{raw}");
        let alert = stored_alert(&app, &admin, result).await;
        assert_eq!(alert["raw_severity"], raw, "{alert:?}");
        assert_eq!(alert["original_severity"], severity, "{alert:?}");
        assert_eq!(alert["severity"], severity, "{alert:?}");
        assert_eq!(alert["severity_origin"], origin, "{alert:?}");
        // The label itself is kept as sent.
        assert_eq!(alert["labels"]["severity"], raw, "{alert:?}");
        assert_eq!(alert["unknown_values"], json!([]), "{alert:?}");
    }
    assert_eq!(stored_count(&app, &admin).await, (4, 4));

    // The same alerts again join their incidents: the severity is no part of
    // their identity.
    let again = app.ingest(ALERTMANAGER, &key, &webhook).await;
    for result in batch_results(&again, 4) {
        assert_eq!(result["outcome"], "deduplicated", "{result:?}");
    }
    assert_eq!(stored_count(&app, &admin).await, (4, 8));
}

/// A source's table overrides the built-in one, its default catches unknown
/// and absent severities, and both survive the store (the table is kept in
/// the source and in its key's lookup item).
async fn a_source_table_overrides_the_builtin_one(table: Arc<dyn Table>) {
    let app = spawn_app_on(table, &[]).await;
    let admin = app.tenant_with_admin("labels-map").await;
    let created = app
        .post(
            SOURCES,
            &admin,
            json!({
                "name": "Zabbix-ish",
                "source_type": "alertmanager",
                "severity_mapping": { "Major": "warning", "disaster": "critical", "purple": "info" },
                "default_severity": "info",
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        created.body["severity_mapping"],
        json!({ "major": "warning", "disaster": "critical", "purple": "info" })
    );
    assert_eq!(created.body["default_severity"], "info");
    let id = created.body["id"].as_u64().expect("id");
    let key = created.body["api_key"].as_str().expect("api_key").to_owned();
    let got = app.get(&format!("{SOURCES}/{id}"), &admin).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.body["severity_mapping"]["major"], "warning");

    let webhook = alertmanager_webhook(vec![
        prometheus_alert("A", Some("MAJOR"), "a1"),
        prometheus_alert("B", Some("P1"), "b1"),
        prometheus_alert("C", Some("Purple"), "c1"),
        prometheus_alert("D", Some("sev-unknown"), "d1"),
        prometheus_alert("E", None, "e1"),
    ]);
    let reply = app.ingest(ALERTMANAGER, &key, &webhook).await;
    let results = batch_results(&reply, 5);
    for (result, raw, severity, origin) in [
        (&results[0], json!("MAJOR"), "warning", "source_mapping"),
        (&results[1], json!("P1"), "critical", "builtin"),
        (&results[2], json!("Purple"), "info", "source_mapping"),
        (&results[3], json!("sev-unknown"), "info", "source_default"),
        (&results[4], Value::Null, "info", "source_default"),
    ] {
        assert_eq!(result["severity"], severity, "{result:?}");
        assert_eq!(incident_severity(&app, &admin, result).await, severity, "{raw}");
        let alert = stored_alert(&app, &admin, result).await;
        assert_eq!(alert["raw_severity"], raw, "{alert:?}");
        assert_eq!(alert["original_severity"], severity, "{alert:?}");
        assert_eq!(alert["severity_origin"], origin, "{alert:?}");
    }

    // A new table replaces the old one at once (the key's lookup with it).
    let patched = app
        .patch(
            &format!("{SOURCES}/{id}"),
            &admin,
            json!({ "severity_mapping": { "major": "info" }, "default_severity": "warning" }),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["severity_mapping"], json!({ "major": "info" }));
    let webhook = alertmanager_webhook(vec![
        prometheus_alert("F", Some("major"), "f1"),
        prometheus_alert("G", Some("purple"), "g1"),
    ]);
    let reply = app.ingest(ALERTMANAGER, &key, &webhook).await;
    let results = batch_results(&reply, 2);
    assert_eq!(results[0]["severity"], "info", "{:?}", results[0]);
    assert_eq!(results[0]["severity_origin"], "source_mapping");
    assert_eq!(results[1]["severity"], "warning", "{:?}", results[1]);
    assert_eq!(results[1]["severity_origin"], "source_default");

    // The generic format goes through the same table.
    let generic = app
        .ingest(ALERTS, &key, &json!({ "title": "Generic major", "severity": "Major" }))
        .await;
    assert_eq!(generic.status, 201, "{:?}", generic.body);
    assert_eq!(generic.body["severity"], "info");
    assert_eq!(generic.body["raw_severity"], "Major");
}

#[tokio::test]
async fn a_source_table_overrides_the_builtin_one_on_sqlite() {
    let (table, _dir) = sqlite_table();
    a_source_table_overrides_the_builtin_one(table).await;
}

#[tokio::test]
async fn a_source_table_overrides_the_builtin_one_on_dynamodb() {
    a_source_table_overrides_the_builtin_one(dynamodb_table("sevmap").await).await;
}

#[tokio::test]
async fn a_source_table_is_validated_and_a_bad_one_changes_nothing() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("labels-valid").await;
    let long_key: serde_json::Map<String, Value> = [("x".repeat(65), json!("info"))].into_iter().collect();
    let too_many: serde_json::Map<String, Value> = (0..101).map(|i| (format!("v{i}"), json!("info"))).collect();
    let bad: Vec<(Value, &str)> = vec![
        // Values must be Quper severities.
        (
            json!({ "severity_mapping": { "major": "high" } }),
            "severity_mapping.major",
        ),
        (json!({ "severity_mapping": { "major": 1 } }), "severity_mapping.major"),
        (json!({ "severity_mapping": { " ": "info" } }), "severity_mapping"),
        (json!({ "severity_mapping": long_key }), "severity_mapping"),
        (json!({ "severity_mapping": { "a\u{0}b": "info" } }), "severity_mapping"),
        (
            json!({ "severity_mapping": { "Major": "info", "major": "warning" } }),
            "severity_mapping",
        ),
        (
            json!({ "severity_mapping": Value::Object(too_many) }),
            "severity_mapping",
        ),
        (json!({ "severity_mapping": ["major"] }), "severity_mapping"),
        (json!({ "default_severity": "major" }), "default_severity"),
    ];
    for (extra, field) in &bad {
        let mut body = json!({ "name": "Bad", "source_type": "generic" });
        for (name, value) in extra.as_object().expect("object") {
            body[name] = value.clone();
        }
        let reply = app.post(SOURCES, &admin, body.clone()).await;
        assert_field(&reply, field, &format!("create with {extra}"));
    }
    let listed = app.get(SOURCES, &admin).await;
    assert_eq!(listed.body["items"], json!([]), "{:?}", listed.body);

    let (id, _) = app.alert_source(&admin, "Good", "generic").await;
    for (extra, field) in &bad {
        let reply = app.patch(&format!("{SOURCES}/{id}"), &admin, extra.clone()).await;
        assert_field(&reply, field, &format!("update with {extra}"));
    }
    let got = app.get(&format!("{SOURCES}/{id}"), &admin).await;
    assert_eq!(got.body["severity_mapping"], json!({}), "{:?}", got.body);
    assert_eq!(got.body["default_severity"], Value::Null, "{:?}", got.body);
    // Exactly 100 entries of 64 characters are fine.
    let most: serde_json::Map<String, Value> = (0..100).map(|i| (format!("{i:0>64}"), json!("warning"))).collect();
    let reply = app
        .patch(
            &format!("{SOURCES}/{id}"),
            &admin,
            json!({ "severity_mapping": Value::Object(most) }),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["severity_mapping"].as_object().map(|m| m.len()), Some(100));
}

#[tokio::test]
async fn unknown_values_in_every_format_are_ingested_and_kept() {
    let app = spawn_app_with(&[("QUPER_SNS_CERT_DIR", &sns_cert_dir())]).await;
    let admin = app.tenant_with_admin("labels-formats").await;
    let (_, key) = app.alert_source(&admin, "Everything", "generic").await;

    // Generic: a severity, status, team and label values PagerPal does not
    // define.
    let generic = json!({
        "title": "Queue depth", "severity": "P3", "status": "acked", "team_id": "ops",
        "external_id": 4242, "description": { "depth": 10000 },
        "labels": { "depth": 10000, "ok": true, "shard": { "id": 3 }, "queue": "orders" },
    });
    let reply = app.ingest(ALERTS, &key, &generic).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["severity"], "warning");
    assert_eq!(reply.body["external_id"], "4242");
    let alert = stored_alert(&app, &admin, &reply.body).await;
    assert_eq!(alert["raw_severity"], "P3");
    assert_eq!(alert["action"], "trigger");
    assert_eq!(
        alert["labels"],
        json!({ "depth": "10000", "ok": "true", "shard": "{\"id\":3}", "queue": "orders" })
    );
    assert_eq!(alert["description"], "{\"depth\":10000}");
    assert_eq!(alert["raw"], generic);
    let noted: Vec<(&str, &Value)> = alert["unknown_values"]
        .as_array()
        .expect("unknown_values")
        .iter()
        .map(|note| (note["field"].as_str().expect("field"), &note["value"]))
        .collect();
    assert_eq!(
        noted,
        [
            ("status", &json!("acked")),
            ("external_id", &json!(4242)),
            ("team_id", &json!("ops")),
            ("description", &json!({ "depth": 10000 })),
            ("labels.depth", &json!(10000)),
            ("labels.ok", &json!(true)),
            ("labels.shard", &json!({ "id": 3 })),
        ]
    );

    // Grafana unified: an unknown status and a Zabbix severity.
    let mut unified = fixture("grafana-unified-firing.json");
    unified["alerts"][0]["labels"]["severity"] = json!("disaster");
    unified["alerts"][1]["status"] = json!("alerting");
    unified["alerts"][1]["labels"]["severity"] = json!("Average");
    let reply = app.ingest(GRAFANA, &key, &unified).await;
    let results = batch_results(&reply, 2);
    assert_eq!(results[0]["severity"], "critical");
    assert_eq!(results[0]["raw_severity"], "disaster");
    assert_eq!(results[1]["outcome"], "created");
    assert_eq!(results[1]["severity"], "warning");
    assert_eq!(results[1]["unknown_values"][0]["field"], "alerts[1].status");
    assert_eq!(results[1]["unknown_values"][0]["used"], "firing");

    // Grafana legacy: an unknown state and a numeric team label.
    let mut legacy = fixture("grafana-legacy-alerting.json");
    legacy["state"] = json!("firing");
    legacy["tags"]["severity"] = json!("information");
    let reply = app.ingest(GRAFANA, &key, &legacy).await;
    let results = batch_results(&reply, 1);
    assert_eq!(results[0]["outcome"], "created");
    assert_eq!(results[0]["severity"], "info");
    assert_eq!(results[0]["unknown_values"][0]["field"], "state");

    // PagerDuty: an unknown action and severity, a summary that is a number.
    let mut pagerduty = fixture("pagerduty-trigger.json");
    pagerduty["event_action"] = json!("escalate");
    pagerduty["payload"]["severity"] = json!("SEV-2");
    pagerduty["payload"]["summary"] = json!(503);
    let reply = app.ingest(PAGERDUTY, &key, &pagerduty).await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let incidents = app.get("/api/v1/incidents?page_size=200", &admin).await;
    let opened = incidents.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|incident| incident["external_id"] == "srv01/mysql")
        .cloned()
        .expect("the PagerDuty incident");
    assert_eq!(opened["title"], "503");
    assert_eq!(opened["severity"], "critical");
    assert_eq!(opened["labels"]["load avg"], "0.75");

    // CloudWatch (signed): an unknown state, a time and a metric name that
    // do not parse.
    let reply = app
        .post_raw(
            CLOUDWATCH,
            Some(&key),
            "text/plain; charset=UTF-8",
            sns_fixture("notification-odd-values.json"),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["title"], "odd-alarm");
    assert_eq!(reply.body["raw_severity"], "Degraded");
    assert_eq!(reply.body["severity"], "warning");
    let alert = stored_alert(&app, &admin, &reply.body).await;
    assert_eq!(alert["labels"]["namespace"], "AWS/EC2");
    let fields: Vec<&str> = alert["unknown_values"]
        .as_array()
        .expect("unknown_values")
        .iter()
        .filter_map(|note| note["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        [
            "Message.NewStateValue",
            "Message.Trigger.MetricName",
            "Message.StateChangeTime"
        ]
    );

    assert_eq!(stored_count(&app, &admin).await, (6, 6));
}

#[tokio::test]
async fn a_batch_with_hopeless_alerts_keeps_the_others() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("labels-batch").await;
    let (_, key) = app.alert_source(&admin, "Prometheus", "alertmanager").await;

    let untitled = json!({ "status": "firing", "labels": { "severity": "major" }, "fingerprint": "ff00" });
    let webhook = alertmanager_webhook(vec![
        prometheus_alert("Good1", Some("major"), "0001"),
        json!("firing"),
        untitled.clone(),
        prometheus_alert("Good2", Some("disaster"), "0002"),
    ]);
    let reply = app.ingest(ALERTMANAGER, &key, &webhook).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let results = reply.body["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{:?}", reply.body);
    assert!(results.iter().all(|r| r["outcome"] == "created"), "{results:?}");
    assert_eq!(
        reply.body["rejected"],
        json!([
            { "index": 1, "field": "alerts[1]", "message": "must be a JSON object, not a string" },
            { "index": 2, "field": "alerts[2].labels.alertname",
              "message": "is required when there is no annotations.summary nor annotations.description" },
        ])
    );
    assert_eq!(stored_count(&app, &admin).await, (2, 2));

    // Grafana unified, the same way.
    let mut unified = fixture("grafana-unified-firing.json");
    unified["alerts"][0] = json!(null);
    let reply = app.ingest(GRAFANA, &key, &unified).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(reply.body["rejected"][0]["field"], "alerts[0]");
    assert_eq!(stored_count(&app, &admin).await, (3, 3));

    // A batch of nothing but hopeless alerts is refused, naming the first.
    let hopeless = alertmanager_webhook(vec![untitled, json!(7)]);
    let reply = app.ingest(ALERTMANAGER, &key, &hopeless).await;
    assert_field(&reply, "alerts[0].labels.alertname", "a batch of hopeless alerts");
    assert_eq!(stored_count(&app, &admin).await, (3, 3));
}

#[tokio::test]
async fn payloads_that_cannot_be_alerts_are_still_refused_in_the_error_format() {
    let app = spawn_app_with(&[("QUPER_SNS_CERT_DIR", &sns_cert_dir())]).await;
    let admin = app.tenant_with_admin("labels-refused").await;
    let (_, key) = app.alert_source(&admin, "Everything", "generic").await;

    for path in [ALERTS, GRAFANA, ALERTMANAGER, PAGERDUTY] {
        let reply = app
            .post_raw(path, Some(&key), "application/json", "this is not JSON")
            .await;
        assert_error(&reply, 400, "BAD_REQUEST", &format!("{path}: not JSON"));
    }
    for (path, body, field) in [
        (ALERTS, json!("an alert"), ""),
        (ALERTS, json!({ "severity": "major" }), "title"),
        (ALERTMANAGER, json!([1, 2]), ""),
        (ALERTMANAGER, json!({ "version": "4", "status": "firing" }), "alerts"),
        (
            ALERTMANAGER,
            json!({ "version": "4", "alerts": { "status": "firing" } }),
            "alerts",
        ),
        (GRAFANA, json!({ "receiver": "quper" }), "alerts"),
        (
            PAGERDUTY,
            json!({ "event_action": "trigger", "routing_key": key }),
            "payload.summary",
        ),
    ] {
        let reply = app.ingest(path, &key, &body).await;
        assert_field(&reply, field, &format!("{path} with {body}"));
    }
    let reply = app
        .post_raw(
            CLOUDWATCH,
            Some(&key),
            "text/plain; charset=UTF-8",
            sns_fixture("notification-nameless.json"),
        )
        .await;
    assert_field(&reply, "Message.AlarmName", "an alarm with no name");
    assert_eq!(stored_count(&app, &admin).await, (0, 0));
}
