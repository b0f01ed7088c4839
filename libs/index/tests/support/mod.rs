//! Test support: a real dynalite (DynamoDB API server from npm) per test.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A dynalite server on a free loopback port, in memory, killed on drop.
pub struct Dynalite {
    child: Child,
    pub endpoint: String,
}

impl Dynalite {
    /// Starts dynalite from `$DYNALITE_BIN` or `<repo>/.tmp/npm/node_modules/.bin/dynalite`
    /// (`make test-deps` installs it there). When neither exists, prints that `test` was
    /// skipped and returns `None`. Panics when an installed dynalite does not start.
    pub fn start(test: &str) -> Option<Dynalite> {
        let Some(bin) = dynalite_bin() else {
            println!(
                "skipped {test}: dynalite is not installed (set DYNALITE_BIN or run `make test-deps`)"
            );
            return None;
        };
        let port = free_port();
        let mut child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--createTableMs",
                "20",
                "--deleteTableMs",
                "20",
                "--updateTableMs",
                "20",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", bin.display()));

        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                panic!("dynalite exited with {status} before listening: {stderr}");
            }
            assert!(
                Instant::now() < deadline,
                "dynalite did not listen on {addr} within 30s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Dynalite {
            child,
            endpoint: format!("http://{addr}"),
        })
    }
}

impl Drop for Dynalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn dynalite_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("DYNALITE_BIN") {
        let bin = PathBuf::from(bin);
        return bin.exists().then_some(bin);
    }
    let bin =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tmp/npm/node_modules/.bin/dynalite");
    bin.exists().then_some(bin)
}
