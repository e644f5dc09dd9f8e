//! Ports: what the domain needs from the outside world: `Table` (storage),
//! `Timers` (durable one-shot timers), `Bus` (notification jobs), `Sender` (providers), `Clock`,
//! `Analytics` (the warehouse sync jobs read), `Schedules` (recurring sync schedules),
//! `ObjectStore` (uploaded files: presigned URLs, head, delete), `Ai` (language-model
//! providers), `Billing` (Stripe), `Realtime` (WebSocket channels). Adapters live in
//! `quper-store-local` (embedded) and `quper-store-aws` (AWS SDKs).

pub mod ai;
pub mod analytics;
pub mod billing;
pub mod bus;
pub mod clock;
pub mod objects;
pub mod realtime;
pub mod schedules;
pub mod sender;
pub mod table;
pub mod timers;

pub use ai::{
    Ai, AiError, ChatMessage, ChatRequest, ChatRole, Completion, CompletionStream, NoAi, ProviderName, StreamPart,
    TokenUsage,
};
pub use analytics::{Analytics, AnalyticsError, AnalyticsQuery, Cell, NoWarehouse, RowPage, WarehouseSource};
pub use billing::{Billing, NoBilling};
pub use bus::{Bus, BusError, NotificationJob};
pub use clock::{Clock, ManualClock, SystemClock};
pub use objects::{NoObjectStore, ObjectError, ObjectHead, ObjectStore, Presigned};
pub use realtime::{Connection, NoRealtime, Realtime, RealtimeError};
pub use schedules::{JobSchedule, ScheduleError, Schedules, SyncFire};
pub use sender::{ChannelKind, Delivery, Notice, OutboundMessage, ProviderState, SendFailure, Sender};
pub use table::{Condition, Index, Item, Key, Page, Query, SortKey, StoreError, Table, Update, WriteOp};
pub use timers::{Timer, TimerError, Timers};
