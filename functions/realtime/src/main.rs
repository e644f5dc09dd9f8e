//! Lambda function: the WebSocket API (API Gateway, `$connect` checks the
//! `token` query parameter, `$default` handles a client's frame,
//! `$disconnect` forgets the connection) and the DynamoDB stream of incident
//! `META` items, each change published to its tenant's `incidents` channel
//! (see `quper_lambda::events::websocket`).

#[tokio::main]
async fn main() -> Result<(), quper_lambda::Error> {
    quper_lambda::serve_realtime().await
}
