//! One integration-test binary for the whole product.
//!
//! - `table_conformance`: the `Table` port's cases, run against the embedded
//!   SQLite adapter and against DynamoDB on `moto_server`.

mod table_conformance;
