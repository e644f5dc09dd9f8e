//! Data at rest: the host's data directory is the owner's alone (0700), the
//! store's files and the kept secrets are 0600 (an existing store with a wide
//! mode is narrowed when opened), and a copy of the database files alone
//! reveals no channel credential: those are sealed with the secrets key,
//! which is kept in a file of its own (or given by `QUPER_SECRETS_KEY`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use quper::host::{DATABASE_FILE, JWT_SECRET_FILE, LocalHost, SECRETS_KEY_FILE};
use quper_core::ports::SystemClock;
use serde_json::json;

use crate::support::{ROOT_EMAIL, ROOT_PASSWORD, UnconfiguredSender, serve_test_app};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn sibling(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

#[tokio::test]
async fn the_data_directory_is_private_and_a_copy_of_the_database_reveals_no_credential() {
    let parent = tempfile::tempdir().expect("temp dir");
    let data_dir = parent.path().join("volumes").join("quper");
    // No QUPER_JWT_SECRET, no QUPER_SECRETS_KEY: the host makes and keeps both.
    let host = LocalHost::open(
        &data_dir,
        |_: &str| None,
        Arc::new(SystemClock),
        Arc::new(UnconfiguredSender),
    )
    .expect("open the host");
    quper::admin::bootstrap(host.store(), ROOT_EMAIL, ROOT_PASSWORD)
        .await
        .expect("bootstrap");
    let app = serve_test_app(host.router(), parent).await;
    let admin = app.tenant_with_admin("vault").await;

    let slack_token = "T0REST/B0REST/restslacktoken31415";
    let hook_token = "resthooktoken27182";
    for (kind, address) in [
        ("slack", format!("http://127.0.0.1:9/services/{slack_token}")),
        ("webhook", format!("http://127.0.0.1:9/in/{hook_token}")),
    ] {
        let reply = app
            .post(
                "/api/v1/notifications/channels",
                &admin,
                json!({ "name": format!("{kind} channel"), "kind": kind, "address": address }),
            )
            .await;
        assert_eq!(reply.status, 201, "{kind}: {:?}", reply.body);
    }

    assert_eq!(mode(&data_dir), 0o700, "the data directory");
    let database = data_dir.join(DATABASE_FILE);
    for file in [
        database.clone(),
        sibling(&database, "-wal"),
        sibling(&database, "-shm"),
        data_dir.join(JWT_SECRET_FILE),
        data_dir.join(SECRETS_KEY_FILE),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }

    // What a stolen copy of the store holds: the database and its WAL.
    let mut copy = Vec::new();
    for file in [database.clone(), sibling(&database, "-wal")] {
        copy.extend(std::fs::read(&file).expect("read the store"));
    }
    let text = String::from_utf8_lossy(&copy);
    assert!(text.contains("enc:v1:"), "the credentials are stored sealed");
    for secret in [slack_token, "restslacktoken31415", hook_token] {
        assert!(!text.contains(secret), "{secret} is in the database files in clear");
    }
    let key = std::fs::read_to_string(data_dir.join(SECRETS_KEY_FILE)).expect("the key file");
    assert!(!text.contains(key.trim()), "the secrets key is not kept in the store");
}

#[tokio::test]
async fn an_existing_store_open_to_others_is_narrowed_to_its_owner() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("old.db");
    for file in [database.clone(), sibling(&database, "-wal"), sibling(&database, "-shm")] {
        std::fs::write(&file, b"").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    // An empty WAL and shared-memory file are what SQLite leaves after a clean
    // close; an empty database file is an empty database.
    let _table = quper_store_local::SqliteTable::open(&database).expect("open");
    for file in [database.clone(), sibling(&database, "-wal"), sibling(&database, "-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
