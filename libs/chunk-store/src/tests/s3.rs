//! The S3 store against a real S3-compatible server (s3s-fs).
//!
//! Runs when `S3S_FS_BIN` names the s3s-fs binary, or when it is installed at
//! `<workspace>/.tmp/cargo/bin/s3s-fs` (`cargo install s3s-fs --version 0.14.1 --locked
//! --features binary --root .tmp/cargo`); otherwise it says so and passes.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::{read_index, ChunkFetcher, S3Config, S3ObjectStore};

const ACCESS_KEY: &str = "strata";
const SECRET_KEY: &str = "strata-secret";

fn s3s_fs_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("S3S_FS_BIN").filter(|b| !b.is_empty()) {
        return Some(PathBuf::from(bin));
    }
    let installed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tmp/cargo/bin/s3s-fs");
    installed.exists().then_some(installed)
}

/// A running s3s-fs, killed on drop.
struct Server {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(bin: &PathBuf) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let server = Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[tokio::test]
async fn s3_store_against_s3s_fs() {
    let Some(bin) = s3s_fs_binary() else {
        println!(
            "s3_store_against_s3s_fs NOT RUN: s3s-fs not found (set S3S_FS_BIN or install it \
             into .tmp/cargo)"
        );
        return;
    };
    let server = start_server(&bin);
    let config = S3Config {
        bucket: "strata-chunks".to_string(),
        endpoint: server.endpoint.clone(),
        force_path_style: true,
        create_bucket: true,
        access_key_id: Some(ACCESS_KEY.to_string()),
        secret_access_key: Some(SECRET_KEY.to_string()),
        ..S3Config::default()
    };
    let store = Arc::new(S3ObjectStore::connect(&config).await.unwrap());
    assert_eq!(store.kind(), "s3");
    // Connecting again finds the bucket there.
    S3ObjectStore::connect(&config).await.unwrap();

    let written = small_series();
    let key = "tenant-1/chunks/19000/w-1";
    let built = build("tenant-1", key, &written);
    store.put(key, built.body.clone()).await.unwrap();
    store
        .put(
            "tenant-1/chunks/19001/w-1",
            Bytes::from_static(b"0123456789"),
        )
        .await
        .unwrap();
    store
        .put("tenant-2/chunks/19000/w-1", Bytes::from_static(b"x"))
        .await
        .unwrap();

    assert_eq!(store.get(key).await.unwrap(), built.body);
    let other = "tenant-1/chunks/19001/w-1";
    assert_eq!(store.get_range(other, 2, 3).await.unwrap(), &b"234"[..]);
    assert_eq!(store.get_range(other, 8, 10).await.unwrap(), &b"89"[..]);
    assert!(store.get_range(other, 50, 10).await.unwrap().is_empty());
    assert!(store.get_range(other, 0, 0).await.unwrap().is_empty());
    assert_eq!(store.get_tail(other, 4).await.unwrap(), &b"6789"[..]);
    assert_eq!(store.get_tail(other, 40).await.unwrap(), &b"0123456789"[..]);

    assert_eq!(
        store.list("tenant-1/").await.unwrap(),
        vec![key, "tenant-1/chunks/19001/w-1"]
    );
    assert_eq!(store.list("").await.unwrap().len(), 3);

    for e in [
        store.get("tenant-1/missing").await.unwrap_err(),
        store
            .get_range("tenant-1/missing", 0, 10)
            .await
            .unwrap_err(),
        store.get_range("tenant-1/missing", 0, 0).await.unwrap_err(),
        store.get_tail("tenant-1/missing", 24).await.unwrap_err(),
    ] {
        assert!(
            matches!(&e, StoreError::NotFound { key } if key == "tenant-1/missing"),
            "{e}"
        );
    }
    assert!(matches!(
        store.put("../x", Bytes::new()).await,
        Err(StoreError::InvalidKey { .. })
    ));

    // The index and the chunks, through S3.
    let index = read_index(&*store, key).await.unwrap();
    assert_eq!(index, built.index);
    let refs = all_refs(&index);
    let expected = expected_payloads(&index, &written);
    let fetcher = ChunkFetcher::new(store.clone());
    let results = fetcher.fetch(&refs).await;
    for (r, got) in refs.iter().zip(results) {
        assert_eq!(got.unwrap(), expected[&(r.object.clone(), r.offset)]);
    }
    assert_eq!(fetcher.metrics().coalesced_reads.get(), 1);

    store.delete(other).await.unwrap();
    store.delete(other).await.unwrap();
    assert!(store.get(other).await.unwrap_err().is_not_found());
    assert_eq!(store.list("tenant-1/").await.unwrap(), vec![key]);

    // A bucket that does not exist, without create_bucket: a clear S3 error on use.
    let missing = S3ObjectStore::connect(&S3Config {
        bucket: "no-such-bucket".to_string(),
        create_bucket: false,
        ..config.clone()
    })
    .await
    .unwrap();
    let e = missing.get(key).await.unwrap_err();
    assert!(
        matches!(&e, StoreError::S3 { .. } | StoreError::NotFound { .. }),
        "{e}"
    );
}

#[tokio::test]
async fn s3_config_mistakes_are_refused() {
    let e = S3ObjectStore::connect(&S3Config::default())
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::InvalidConfig(_)), "{e}");
    let e = S3ObjectStore::connect(&S3Config {
        bucket: "b".to_string(),
        access_key_id: Some("key".to_string()),
        ..S3Config::default()
    })
    .await
    .unwrap_err();
    assert!(e.to_string().contains("secret"), "{e}");
    let debug = format!(
        "{:?}",
        S3Config {
            secret_access_key: Some("hunter2".to_string()),
            ..S3Config::default()
        }
    );
    assert!(!debug.contains("hunter2"), "{debug}");
}
