//! A real memcached for tests and benchmarks: started on a free loopback port,
//! killed when dropped.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The memcached binary: `$MEMCACHED_BIN`, else `memcached` on the path.
fn binary() -> String {
    std::env::var("MEMCACHED_BIN").unwrap_or_else(|_| "memcached".to_string())
}

/// Whether a memcached binary can be run here.
pub fn available() -> bool {
    Command::new(binary())
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A running memcached; killed on drop.
pub struct Memcached {
    child: Option<Child>,
    port: u16,
}

impl Memcached {
    /// Starts one on a free port, or says why not (`None`: no binary here).
    pub fn start() -> Option<Self> {
        if !available() {
            return None;
        }
        for _ in 0..5 {
            let port = free_port();
            if let Some(m) = Self::start_on(port) {
                return Some(m);
            }
        }
        panic!("memcached would not start on any free port");
    }

    /// Starts one on `port`; `None` if it did not come up.
    pub fn start_on(port: u16) -> Option<Self> {
        let child = Command::new(binary())
            .args(["-l", "127.0.0.1", "-p", &port.to_string(), "-U", "0"])
            // Ignored unless running as root, where memcached insists on a user.
            .args(["-u", "root", "-m", "64", "-c", "256"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .ok()?;
        let mut m = Memcached {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                // Make sure it is ours answering, not another server that got the port
                // first (memcached exits at once when it cannot listen).
                std::thread::sleep(Duration::from_millis(100));
                let alive = m
                    .child
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
                if alive {
                    return Some(m);
                }
                m.child = None;
                return None;
            }
            if let Some(c) = m.child.as_mut() {
                if c.try_wait().ok().flatten().is_some() {
                    m.child = None;
                    return None;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server (its data is gone); the port can be reused by [`Memcached::start_on`].
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Starts a memcached, or prints that the calling test is skipped and returns from it.
#[macro_export]
macro_rules! memcached_or_skip {
    ($test:expr) => {
        match support::Memcached::start() {
            Some(m) => m,
            None => {
                // Straight to stderr, past the test harness's output capture.
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "skipped {}: no memcached binary (install the Debian package `memcached`)",
                    $test
                );
                return;
            }
        }
    };
}
