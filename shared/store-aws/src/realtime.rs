//! The `Realtime` port on AWS: an API Gateway WebSocket API.
//!
//! API Gateway holds the sockets; Quper keeps, in the table, each
//! connection (under its tenant, and a global lookup from the connection id,
//! since API Gateway's events name only the connection) and each
//! subscription twice: under its channel (queried to publish) and under its
//! connection (forgotten with it). Every item carries a `ttl` of API
//! Gateway's two-hour connection limit plus a margin, so connections whose
//! `$disconnect` never ran disappear by themselves. Messages go out with
//! the API Gateway Management API's `PostToConnection` (SigV4-signed, at
//! `QUPER_WEBSOCKET_ENDPOINT`, `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`);
//! a `GoneException` (410) forgets the connection and its subscriptions.

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use quper_core::keys;
use quper_core::model::TenantId;
use quper_core::ports::realtime::{Connection, Realtime, RealtimeError, is_connection_id};
use quper_core::ports::table::{PK, SK, TTL};
use quper_core::ports::{Clock, Condition, Item, Key, Query, Table, WriteOp};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

/// The Management API endpoint of the deployment's WebSocket API stage.
pub const WEBSOCKET_ENDPOINT_ENV: &str = "QUPER_WEBSOCKET_ENDPOINT";
/// How long connection and subscription items live: API Gateway closes a
/// WebSocket connection after two hours; ten minutes of margin.
pub const CONNECTION_TTL_SECONDS: i64 = 2 * 3600 + 600;
/// The lookup item's mark that the connection was sent `connected`.
const GREETED: &str = "greeted";
/// Messages posted at once when publishing to a channel.
const POST_CONCURRENCY: usize = 16;

/// Connections in the table, messages through the Management API.
pub struct ApiGatewayRealtime {
    table: Arc<dyn Table>,
    clock: Arc<dyn Clock>,
    endpoint: String,
    client: OnceCell<Client>,
}

impl ApiGatewayRealtime {
    /// The adapter on `table`, posting to `endpoint` (its client built on
    /// first use).
    pub fn new(table: Arc<dyn Table>, clock: Arc<dyn Clock>, endpoint: impl Into<String>) -> Self {
        ApiGatewayRealtime {
            table,
            clock,
            endpoint: endpoint.into().trim().trim_end_matches('/').to_owned(),
            client: OnceCell::new(),
        }
    }

    /// The adapter when `QUPER_WEBSOCKET_ENDPOINT` is set.
    pub fn from_env(table: Arc<dyn Table>, clock: Arc<dyn Clock>) -> Option<Self> {
        std::env::var(WEBSOCKET_ENDPOINT_ENV)
            .ok()
            .filter(|endpoint| !endpoint.trim().is_empty())
            .map(|endpoint| Self::new(table, clock, endpoint))
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let shared = aws_config::defaults(BehaviorVersion::latest()).load().await;
                let config = aws_sdk_apigatewaymanagement::config::Builder::from(&shared)
                    .endpoint_url(self.endpoint.clone())
                    .build();
                Client::from_conf(config)
            })
            .await
    }

    fn ttl(&self) -> i64 {
        self.clock.now().timestamp() + CONNECTION_TTL_SECONDS
    }

    fn item(key: &Key, fields: Value, ttl: i64) -> Item {
        let mut item = match fields {
            Value::Object(map) => map,
            _ => Item::new(),
        };
        item.insert(PK.into(), Value::String(key.pk.clone()));
        item.insert(SK.into(), Value::String(key.sk.clone()));
        item.insert(TTL.into(), json!(ttl));
        item
    }

    /// Posts `message` to the connection; `false` when API Gateway answers
    /// that it is gone (410), after forgetting it.
    async fn post(&self, id: &str, message: &str) -> Result<bool, RealtimeError> {
        if !is_connection_id(id) {
            return Ok(false);
        }
        let sent = self
            .client()
            .await
            .post_to_connection()
            .connection_id(id)
            .data(Blob::new(message.as_bytes().to_vec()))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(failure)) if failure.err().is_gone_exception() => {
                tracing::debug!(connection = id, "WebSocket connection gone; forgetting it");
                self.disconnect(id).await?;
                Ok(false)
            }
            Err(err) => Err(RealtimeError::Unavailable(format!(
                "PostToConnection: {}",
                aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&err)
            ))),
        }
    }

    async fn query_all(&self, query: Query) -> Result<Vec<Item>, RealtimeError> {
        let mut items = Vec::new();
        let mut query = query;
        loop {
            let page = self.table.query(query.clone()).await.map_err(store)?;
            items.extend(page.items);
            match page.cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => return Ok(items),
            }
        }
    }
}

fn store(err: quper_core::ports::StoreError) -> RealtimeError {
    RealtimeError::Unavailable(format!("connection store: {err}"))
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(Value::as_str).map(str::to_owned)
}

#[async_trait]
impl Realtime for ApiGatewayRealtime {
    async fn connect(&self, connection: &Connection) -> Result<(), RealtimeError> {
        if !is_connection_id(&connection.id) {
            return Err(RealtimeError::Gone(connection.id.clone()));
        }
        let fields = serde_json::to_value(connection).map_err(|err| RealtimeError::Unavailable(err.to_string()))?;
        let ttl = self.ttl();
        let ops = vec![
            WriteOp::put(
                Self::item(
                    &keys::ws_connection(&connection.tenant, &connection.id),
                    fields.clone(),
                    ttl,
                ),
                Condition::None,
            ),
            WriteOp::put(
                Self::item(&keys::ws_connection_lookup(&connection.id), fields, ttl),
                Condition::None,
            ),
        ];
        self.table.transact(ops).await.map_err(store)
    }

    async fn connection(&self, id: &str) -> Result<Option<Connection>, RealtimeError> {
        if !is_connection_id(id) {
            return Ok(None);
        }
        let Some(item) = self.table.get(&keys::ws_connection_lookup(id)).await.map_err(store)? else {
            return Ok(None);
        };
        serde_json::from_value(Value::Object(item))
            .map(Some)
            .map_err(|err| RealtimeError::Unavailable(format!("stored connection: {err}")))
    }

    async fn disconnect(&self, id: &str) -> Result<(), RealtimeError> {
        let Some(connection) = self.connection(id).await? else {
            return Ok(());
        };
        let tenant = &connection.tenant;
        let items = self.query_all(keys::ws_connection_items(tenant, id)).await?;
        let mut deletes: Vec<Key> = Vec::new();
        for item in &items {
            let (Some(pk), Some(sk)) = (text(item, PK), text(item, SK)) else {
                continue;
            };
            if let Some(channel) = sk.strip_prefix(keys::WS_SUBSCRIPTION_PREFIX) {
                deletes.push(keys::ws_subscriber(tenant, channel, id));
            }
            deletes.push(Key::new(pk, sk));
        }
        deletes.push(keys::ws_connection(tenant, id));
        deletes.push(keys::ws_connection_lookup(id));
        deletes.sort();
        deletes.dedup();
        for key in deletes {
            self.table.delete(&key, Condition::None).await.map_err(store)?;
        }
        Ok(())
    }

    async fn subscribe(&self, connection: &Connection, channel: &str) -> Result<(), RealtimeError> {
        let ttl = self.ttl();
        let fields = json!({ "channel": channel, "connection_id": connection.id, "user_id": connection.user_id });
        let ops = vec![
            // The connection must still be there (it may have closed meanwhile).
            WriteOp::put(
                Self::item(
                    &keys::ws_connection_subscription(&connection.tenant, &connection.id, channel),
                    fields.clone(),
                    ttl,
                ),
                Condition::None,
            ),
            WriteOp::put(
                Self::item(
                    &keys::ws_subscriber(&connection.tenant, channel, &connection.id),
                    fields,
                    ttl,
                ),
                Condition::None,
            ),
        ];
        if self.connection(&connection.id).await?.is_none() {
            return Err(RealtimeError::Gone(connection.id.clone()));
        }
        self.table.transact(ops).await.map_err(store)
    }

    async fn unsubscribe(&self, connection: &Connection, channel: &str) -> Result<(), RealtimeError> {
        let ops = vec![
            WriteOp::Delete {
                key: keys::ws_connection_subscription(&connection.tenant, &connection.id, channel),
                condition: Condition::None,
            },
            WriteOp::Delete {
                key: keys::ws_subscriber(&connection.tenant, channel, &connection.id),
                condition: Condition::None,
            },
        ];
        self.table.transact(ops).await.map_err(store)
    }

    async fn is_subscribed(&self, connection: &Connection, channel: &str) -> Result<bool, RealtimeError> {
        Ok(self
            .table
            .get(&keys::ws_subscriber(&connection.tenant, channel, &connection.id))
            .await
            .map_err(store)?
            .is_some())
    }

    async fn send_to_connection(&self, id: &str, message: &str) -> Result<bool, RealtimeError> {
        self.post(id, message).await
    }

    /// Owed once: the lookup item is marked `greeted` (a race of two first
    /// frames may greet twice; a greeting is never lost).
    async fn take_greeting(&self, id: &str) -> Result<bool, RealtimeError> {
        if !is_connection_id(id) {
            return Ok(false);
        }
        let key = keys::ws_connection_lookup(id);
        let Some(mut item) = self.table.get(&key).await.map_err(store)? else {
            return Ok(false);
        };
        if item.get(GREETED).and_then(Value::as_bool) == Some(true) {
            return Ok(false);
        }
        item.insert(GREETED.into(), Value::Bool(true));
        self.table.put(item, Condition::Exists).await.map_err(store)?;
        Ok(true)
    }

    /// One query of at most one item. A page left empty by expired
    /// subscriptions but with more to read answers `true` (maybe).
    async fn has_subscribers(&self, tenant: &TenantId, channel: &str) -> Result<bool, RealtimeError> {
        let page = self
            .table
            .query(keys::ws_subscribers(tenant, channel).limit(1))
            .await
            .map_err(store)?;
        Ok(!page.items.is_empty() || page.cursor.is_some())
    }

    async fn publish(&self, tenant: &TenantId, channel: &str, message: &str) -> Result<usize, RealtimeError> {
        let subscribers = self.query_all(keys::ws_subscribers(tenant, channel)).await?;
        let ids: Vec<String> = subscribers.iter().filter_map(|item| text(item, SK)).collect();
        let mut delivered = 0;
        for batch in ids.chunks(POST_CONCURRENCY) {
            let posts = batch.iter().map(|id| self.post(id, message));
            for result in futures::future::join_all(posts).await {
                match result {
                    Ok(true) => delivered += 1,
                    Ok(false) => {}
                    // One failing connection does not stop the others.
                    Err(err) => tracing::warn!(error = %err, channel, "posting to a WebSocket connection failed"),
                }
            }
        }
        Ok(delivered)
    }
}
