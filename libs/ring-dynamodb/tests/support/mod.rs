//! Test support: a real dynalite (DynamoDB API server from npm) per test.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Version range installed when no dynalite is found.
const DYNALITE_PACKAGE: &str = "dynalite@4";

/// A dynalite server on a free loopback port, in memory, killed on drop.
pub struct Dynalite {
    child: Child,
    pub endpoint: String,
}

impl Dynalite {
    /// Finds (or installs) dynalite and starts it. Panics with an explanation when that is
    /// impossible: these tests need the real server.
    pub fn start() -> Dynalite {
        let bin = dynalite_bin();
        let port = free_port();
        let mut child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            // Table state changes are instant enough for tests.
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
        Dynalite {
            child,
            endpoint: format!("http://{addr}"),
        }
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

/// `$DYNALITE_BIN`, else `<repo>/.tmp/npm/node_modules/.bin/dynalite`, installing it there
/// with npm when missing.
fn dynalite_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("DYNALITE_BIN") {
        return PathBuf::from(bin);
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let prefix = repo.join(".tmp/npm");
    let bin = prefix.join("node_modules/.bin/dynalite");

    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if bin.exists() {
        return bin;
    }
    std::fs::create_dir_all(&prefix).expect("create npm prefix");
    let status = Command::new("npm")
        .arg("install")
        .arg("--prefix")
        .arg(&prefix)
        .args([
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            DYNALITE_PACKAGE,
        ])
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|err| {
            panic!("dynalite is not installed and npm cannot run ({err}); set DYNALITE_BIN")
        });
    assert!(
        status.success(),
        "npm install {DYNALITE_PACKAGE} failed with {status}"
    );
    assert!(
        bin.exists(),
        "npm installed dynalite but {} is missing",
        bin.display()
    );
    bin
}
