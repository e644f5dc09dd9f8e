//! `quper-store-probe DATABASE`: writes items `PK=probe, SK=<n>` (n zero-padded
//! to ten digits, from 0) to the SQLite table at DATABASE one at a time,
//! printing `acked <n>` to stdout after each write returns, until killed.
//!
//! The conformance suite kills it with SIGKILL and checks that every
//! acknowledged write is in the database afterwards. It exits on its own
//! when stdout goes away, so a crashed test does not leave it running.

use quper_core::ports::{Condition, Item, Table};
use quper_store_local::SqliteTable;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(database) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: quper-store-probe DATABASE");
        return ExitCode::from(2);
    };
    let table = match SqliteTable::open(&database) {
        Ok(table) => table,
        Err(error) => {
            eprintln!("quper-store-probe: cannot open {}: {error}", database.display());
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    for sequence in 0_u64.. {
        let mut item = Item::new();
        item.insert("PK".into(), Value::from("probe"));
        item.insert("SK".into(), Value::from(format!("{sequence:010}")));
        item.insert("sequence".into(), Value::from(sequence));
        if let Err(error) = table.put(item, Condition::None).await {
            eprintln!("quper-store-probe: write {sequence} failed: {error}");
            return ExitCode::FAILURE;
        }
        if writeln!(stdout, "acked {sequence}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            // The reader is gone; nobody is counting acknowledgements.
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}
