//! The harness's store servers themselves: s3s-fs answers S3 requests
//! on its endpoint and keeps objects under its data directory; memcached
//! stores and returns values, stops, and starts again empty on the same
//! port.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use strata_e2e::*;

/// Sends one memcached text-protocol command and reads the answer up to
/// and including the line `last`.
fn memcached_command(addr: &str, command: &str, last: &str) -> Vec<String> {
    let mut stream = TcpStream::connect(addr).expect("connect to memcached");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(command.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).expect("memcached answer");
        assert!(n > 0, "memcached closed the connection after {lines:?}");
        let line = line.trim_end().to_string();
        let done = line == last || line.starts_with("ERROR") || line.starts_with("SERVER_ERROR");
        lines.push(line);
        if done {
            return lines;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3s_fs_serves_its_data_dir() {
    let s3 = S3sFs::start().await.expect("s3s-fs");
    assert!(s3.data_dir().is_dir());
    assert!(s3.objects(S3_BUCKET).is_empty());
    assert_eq!(s3.object_bytes(S3_BUCKET), 0);
    // An unsigned request is an S3 error answer, so it is s3s-fs speaking.
    let (status, body) = get_text(&reqwest::Client::new(), &format!("{}/", s3.endpoint()))
        .await
        .unwrap();
    assert!(status == 403 || status == 400, "{status}: {body}");
    assert!(body.contains("<Error>"), "{status}: {body}");

    // A file written where s3s-fs keeps bucket objects counts as an object.
    let dir = s3.bucket_dir(S3_BUCKET).join("tenant");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("obj"), b"12345").unwrap();
    std::fs::write(s3.data_dir().join(".bucket-x.metadata.json"), b"{}").unwrap();
    assert_eq!(
        s3.objects(S3_BUCKET)
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        ["tenant/obj"]
    );
    assert_eq!(s3.object_bytes(S3_BUCKET), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_stops_and_starts_again_on_its_port() {
    let mut mc = Memcached::start().await.expect("memcached");
    let addr = mc.addr();
    assert_eq!(
        memcached_command(&addr, "set k 0 0 5\r\nhello\r\n", "STORED"),
        ["STORED"]
    );
    assert_eq!(
        memcached_command(&addr, "get k\r\n", "END"),
        ["VALUE k 0 5", "hello", "END"]
    );

    mc.stop().await;
    assert!(TcpStream::connect(&addr).is_err(), "{addr} still answers");

    mc.start_again().await.expect("memcached again");
    assert_eq!(mc.addr(), addr);
    // Empty after the restart.
    assert_eq!(memcached_command(&addr, "get k\r\n", "END"), ["END"]);
    let flags = store_flags(
        &S3sFs::start().await.expect("s3s-fs"),
        "http://127.0.0.1:1",
        std::slice::from_ref(&addr),
    );
    assert!(
        flags.contains(&format!("--storage.cache.memcached.addresses=[{addr}]")),
        "{flags:?}"
    );
}
