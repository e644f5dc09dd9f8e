//! The `ObjectStore` port's conformance suite, against both adapters over
//! real HTTP: the host's directory (`LocalObjects`, served by
//! `quper::local_files`) and S3 on moto (`S3Objects`, path-style). A
//! presigned PUT really uploads, `head` sees its size and content type, a
//! presigned GET really downloads, `delete` removes (twice is fine), a
//! missing key heads as absent, and a key Quper would not make is refused
//! before any call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quper_core::ports::{ManualClock, ObjectError, ObjectHead, ObjectStore, SystemClock};
use quper_store_local::LocalObjects;
use quper_store_local::objects::{PutError, PutGrant, Refusal};

const MINUTE: Duration = Duration::from_secs(60);

async fn upload(store: &dyn ObjectStore, key: &str, content_type: &str, body: &[u8]) -> u16 {
    let presigned = store
        .presign_put(key, content_type, body.len() as u64, MINUTE)
        .await
        .expect("presign PUT");
    let mut request = reqwest::Client::new().put(&presigned.url).body(body.to_vec());
    for (name, value) in &presigned.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request.send().await.expect("PUT").status().as_u16()
}

async fn download(store: &dyn ObjectStore, key: &str) -> (u16, Vec<u8>) {
    let presigned = store.presign_get(key, MINUTE).await.expect("presign GET");
    let response = reqwest::get(&presigned.url).await.expect("GET");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

/// The suite, against `store`; `prefix` keeps runs apart.
async fn life(store: &dyn ObjectStore, prefix: &str) {
    let key = format!(
        "uploads/{prefix}/0000000001/{}/notes.txt",
        quper_core::model::RecordId::new_v4()
    );
    let body = b"twelve bytes".to_vec();
    assert_eq!(store.head(&key).await.expect("head"), None, "nothing yet");

    let put = store
        .presign_put(&key, "text/plain", 12, MINUTE)
        .await
        .expect("presign");
    assert!(
        put.url.contains(&key) || put.url.contains(&key.replace('/', "%2F")),
        "{}",
        put.url
    );
    assert!(
        put.headers
            .iter()
            .any(|(name, value)| name.eq_ignore_ascii_case("content-type") && value == "text/plain"),
        "{:?}",
        put.headers
    );
    assert_eq!(upload(store, &key, "text/plain", &body).await, 200);
    assert_eq!(
        store.head(&key).await.expect("head"),
        Some(ObjectHead {
            size: 12,
            content_type: Some("text/plain".into())
        })
    );
    assert_eq!(download(store, &key).await, (200, body.clone()));

    // A second object beside it, binary, larger than one read.
    let big_key = format!(
        "uploads/{prefix}/0000000001/{}/data.bin",
        quper_core::model::RecordId::new_v4()
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    assert_eq!(upload(store, &big_key, "application/octet-stream", &big).await, 200);
    assert_eq!(store.head(&big_key).await.expect("head").map(|h| h.size), Some(200_000));
    assert_eq!(download(store, &big_key).await.1, big);

    store.delete(&key).await.expect("delete");
    assert_eq!(store.head(&key).await.expect("head"), None);
    store.delete(&key).await.expect("delete again");
    assert_eq!(download(store, &big_key).await.0, 200, "the other object stays");
    store.delete(&big_key).await.expect("delete");

    for bad in ["../escape", "uploads/../x", "/abs", "uploads//x", "uploads/a b", ""] {
        assert!(
            matches!(store.head(bad).await, Err(ObjectError::InvalidKey(_))),
            "head {bad:?}"
        );
        assert!(
            matches!(
                store.presign_put(bad, "text/plain", 1, MINUTE).await,
                Err(ObjectError::InvalidKey(_))
            ),
            "presign {bad:?}"
        );
        assert!(
            matches!(store.delete(bad).await, Err(ObjectError::InvalidKey(_))),
            "delete {bad:?}"
        );
    }
}

/// A local store served by the host's file router on an ephemeral port.
async fn served_local(clock: Arc<dyn quper_core::ports::Clock>) -> (LocalObjects, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let objects = LocalObjects::new(dir.path(), "a test secret", clock, "http://unset").expect("local objects");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = quper::local_files::router(objects.clone());
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .expect("serve");
    });
    objects.set_base_url(&format!("http://{addr}"));
    (objects, dir)
}

#[tokio::test]
async fn local_directory_conforms() {
    let (objects, _dir) = served_local(Arc::new(SystemClock)).await;
    life(&objects, "local").await;
}

#[tokio::test]
async fn local_uploads_are_capped_while_streaming_and_leave_nothing() {
    let clock = Arc::new(ManualClock::at(chrono::Utc::now()));
    let (objects, dir) = served_local(clock.clone()).await;
    let key = "uploads/t/0000000001/f/x.bin";
    let grant = PutGrant {
        size: 4,
        content_type: "application/octet-stream".into(),
    };
    // More bytes than granted, whatever the declared length said.
    let mut pending = objects.begin_put(key, grant.clone()).await.expect("begin");
    pending.write(b"abc").await.expect("within the grant");
    assert!(matches!(
        pending.write(b"de").await,
        Err(PutError::Refused(Refusal::TooLarge { declared: 4, got: 5 }))
    ));
    drop(pending);
    // Fewer bytes than granted.
    let mut short = objects.begin_put(key, grant).await.expect("begin");
    short.write(b"ab").await.expect("write");
    assert!(matches!(
        short.finish().await,
        Err(PutError::Refused(Refusal::WrongLength { .. }))
    ));
    assert_eq!(objects.head(key).await.expect("head"), None);
    let leftovers = std::fs::read_dir(dir.path().join("tmp")).expect("tmp").count();
    assert_eq!(leftovers, 0, "abandoned uploads leave no temporary file");

    // Signed URLs name their expiry: valid until it, refused after.
    let presigned = objects
        .presign_put(key, "text/plain", 2, Duration::from_secs(10))
        .await
        .expect("presign");
    clock.advance(chrono::Duration::seconds(11));
    let late = reqwest::Client::new()
        .put(&presigned.url)
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .expect("PUT");
    assert_eq!(late.status(), 403);
    // A URL signed by another host's secret is refused too.
    let other_dir = tempfile::tempdir().expect("temp dir");
    let other = LocalObjects::new(other_dir.path(), "another secret", clock.clone(), "http://x").expect("other");
    let foreign = other
        .presign_put(key, "text/plain", 2, Duration::from_secs(60))
        .await
        .expect("presign");
    let path_and_query = foreign.url.trim_start_matches("http://x");
    let base = presigned.url.split("/local-files/").next().expect("base").to_owned();
    let refused = reqwest::Client::new()
        .put(format!("{base}{path_and_query}"))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .expect("PUT");
    assert_eq!(refused.status(), 403);
    // A browser's preflight is answered.
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{base}/local-files/{key}"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
}

/// The S3 endpoint of the tests: `QUPER_TEST_S3_ENDPOINT`, else the moto of
/// `QUPER_TEST_DYNAMODB_ENDPOINT` (moto serves S3 too).
fn s3_endpoint() -> String {
    ["QUPER_TEST_S3_ENDPOINT", crate::support::DYNAMODB_ENDPOINT_ENV]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| {
            panic!(
                "QUPER_TEST_S3_ENDPOINT and {} are unset: the S3 side of this suite needs moto (run infra/scripts/test.sh)",
                crate::support::DYNAMODB_ENDPOINT_ENV
            )
        })
}

#[tokio::test]
async fn s3_on_moto_conforms() {
    let endpoint = s3_endpoint();
    let bucket = crate::support::unique_table_name("files");
    let client = quper_store_aws::s3_client_with_endpoint(Some(endpoint.clone())).await;
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let store = quper_store_aws::S3Objects::new(&bucket, Some(endpoint.clone()), Arc::new(SystemClock));
    let presigned = store
        .presign_put("uploads/a/b", "text/plain", 3, MINUTE)
        .await
        .expect("presign");
    assert!(
        presigned.url.starts_with(&format!("{endpoint}/{bucket}/uploads/a/b?")),
        "path-style: {}",
        presigned.url
    );
    assert!(presigned.url.contains("X-Amz-Expires=60"), "{}", presigned.url);
    life(&store, "s3").await;
}
