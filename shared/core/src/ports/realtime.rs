//! The `Realtime` port: WebSocket channels (`user:<id>`, `project:<id>`,
//! `incidents`). On a host an in-process hub holds the connections; on AWS
//! the connections and subscriptions are items in the table and messages go
//! out through the API Gateway Management API. [`NoRealtime`] delivers to
//! nobody (tests, tools).
//!
//! (Seam: the WebSocket work fills in the operations.)

use async_trait::async_trait;

#[async_trait]
pub trait Realtime: Send + Sync {}

/// No connections anywhere: publishing reaches nobody.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRealtime;

#[async_trait]
impl Realtime for NoRealtime {}
