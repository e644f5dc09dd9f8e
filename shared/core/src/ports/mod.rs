//! Ports: what the domain needs from the outside world. Adapters live in
//! `quper-store-local` (embedded) and `quper-store-aws` (AWS SDKs).

pub mod clock;
pub mod table;

pub use clock::{Clock, ManualClock, SystemClock};
pub use table::{Condition, Index, Item, Key, Page, Query, SortKey, StoreError, Table, WriteOp};
