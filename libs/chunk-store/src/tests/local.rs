//! The local filesystem store.

use super::*;
use crate::LocalObjectStore;

#[tokio::test]
async fn put_get_range_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalObjectStore::new(dir.path()).unwrap();
    assert_eq!(store.kind(), "local");
    store
        .put("t1/chunks/1/w-1", Bytes::from_static(b"0123456789"))
        .await
        .unwrap();
    store
        .put("t1/chunks/2/w-1", Bytes::from_static(b"abc"))
        .await
        .unwrap();
    store
        .put("t1/other", Bytes::from_static(b"x"))
        .await
        .unwrap();
    store.put("t2/chunks/1/w-1", Bytes::new()).await.unwrap();
    store.put("top", Bytes::from_static(b"top")).await.unwrap();

    assert_eq!(
        store.get("t1/chunks/1/w-1").await.unwrap(),
        &b"0123456789"[..]
    );
    assert_eq!(
        store.get_range("t1/chunks/1/w-1", 2, 3).await.unwrap(),
        &b"234"[..]
    );
    // Past the end: what there is, then nothing.
    assert_eq!(
        store.get_range("t1/chunks/1/w-1", 8, 10).await.unwrap(),
        &b"89"[..]
    );
    assert!(store
        .get_range("t1/chunks/1/w-1", 50, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.get_tail("t1/chunks/1/w-1", 4).await.unwrap(),
        &b"6789"[..]
    );
    assert_eq!(
        store.get_tail("t1/chunks/2/w-1", 40).await.unwrap(),
        &b"abc"[..]
    );
    assert!(store.get("t2/chunks/1/w-1").await.unwrap().is_empty());

    // Overwrite replaces.
    store
        .put("t1/chunks/2/w-1", Bytes::from_static(b"new"))
        .await
        .unwrap();
    assert_eq!(store.get("t1/chunks/2/w-1").await.unwrap(), &b"new"[..]);

    assert_eq!(
        store.list("").await.unwrap(),
        vec![
            "t1/chunks/1/w-1",
            "t1/chunks/2/w-1",
            "t1/other",
            "t2/chunks/1/w-1",
            "top"
        ]
    );
    assert_eq!(
        store.list("t1/").await.unwrap(),
        vec!["t1/chunks/1/w-1", "t1/chunks/2/w-1", "t1/other"]
    );
    // A prefix is a string prefix, not only whole segments.
    assert_eq!(
        store.list("t1/chunks/").await.unwrap(),
        vec!["t1/chunks/1/w-1", "t1/chunks/2/w-1"]
    );
    assert_eq!(store.list("t1/o").await.unwrap(), vec!["t1/other"]);
    assert_eq!(
        store.list("t").await.unwrap(),
        store.list("").await.unwrap()
    );
    assert!(store.list("t3/").await.unwrap().is_empty());
    assert!(store.list("zzz").await.unwrap().is_empty());

    store.delete("t1/chunks/1/w-1").await.unwrap();
    store.delete("t1/chunks/1/w-1").await.unwrap(); // missing: fine
    store.delete("t1/chunks").await.unwrap(); // a directory, no object: fine
    assert!(matches!(
        store.get("t1/chunks/1/w-1").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.list("t1/").await.unwrap(),
        vec!["t1/chunks/2/w-1", "t1/other"]
    );

    // Nothing left behind in the temporary directory.
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    // A second store on the same directory sees the objects.
    let again = LocalObjectStore::new(dir.path()).unwrap();
    assert_eq!(again.get("top").await.unwrap(), &b"top"[..]);
}

#[tokio::test]
async fn missing_keys_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalObjectStore::new(dir.path()).unwrap();
    store.put("a/b", Bytes::from_static(b"x")).await.unwrap();
    for key in ["nope", "a", "a/b/c", "a/c"] {
        let e = store.get_range(key, 0, 1).await.unwrap_err();
        assert!(
            matches!(&e, StoreError::NotFound { key: k } if k == key),
            "{key}: {e}"
        );
        assert!(store.get(key).await.unwrap_err().is_not_found());
        assert!(store.get_tail(key, 8).await.unwrap_err().is_not_found());
    }
}

#[tokio::test]
async fn bad_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A root one level down, so a `..` escape would land inside the temp dir.
    let store = LocalObjectStore::new(dir.path().join("root")).unwrap();
    for key in [
        "",
        "/etc/passwd",
        "../outside",
        "a/../../b",
        "a/./b",
        ".",
        "a//b",
        "a/",
        "a\\b",
        "a\0b",
    ] {
        let e = store.put(key, Bytes::from_static(b"x")).await.unwrap_err();
        assert!(matches!(e, StoreError::InvalidKey { .. }), "{key:?}: {e}");
        assert!(e.to_string().contains("invalid object key"), "{e}");
        assert!(matches!(
            store.get(key).await,
            Err(StoreError::InvalidKey { .. })
        ));
        assert!(matches!(
            store.get_range(key, 0, 1).await,
            Err(StoreError::InvalidKey { .. })
        ));
        assert!(matches!(
            store.delete(key).await,
            Err(StoreError::InvalidKey { .. })
        ));
    }
    assert!(matches!(
        store.list("../").await,
        Err(StoreError::InvalidKey { .. })
    ));
    assert!(!dir.path().join("root/outside").exists());
    assert!(!dir.path().join("b").exists());
    // Dots inside a segment are fine (tenant IDs may contain them).
    store
        .put(".tenant/..x/a.b", Bytes::from_static(b"ok"))
        .await
        .unwrap();
    assert_eq!(store.list("").await.unwrap(), vec![".tenant/..x/a.b"]);
}

#[tokio::test]
async fn concurrent_puts_of_one_key_leave_a_whole_object() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(LocalObjectStore::new(dir.path()).unwrap());
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.put("k/v", Bytes::from(vec![i; 4096])).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let body = store.get("k/v").await.unwrap();
    assert_eq!(body.len(), 4096);
    assert!(body.iter().all(|&b| b == body[0]));
}

#[test]
fn stale_temporary_files_are_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    LocalObjectStore::new(dir.path()).unwrap();
    let stale = dir.path().join("tmp").join("1-1");
    let fresh = dir.path().join("tmp").join("1-2");
    std::fs::write(&stale, b"x").unwrap();
    std::fs::write(&fresh, b"x").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    LocalObjectStore::new(dir.path()).unwrap();
    assert!(!stale.exists());
    assert!(fresh.exists());
}
