//! Harness for end-to-end tests: starts the real binaries (built by
//! `cargo build --bins` before the tests run) and the real servers they talk
//! to, all on 127.0.0.1, and stops them when the test ends.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod resources;
mod writer;
pub use resources::{cpu_seconds, mib, rss_bytes, RssPeak};
pub use writer::{held_by, metric, missing, Samples, Writer};

use anyhow::{bail, Context};
use strata_ingester_client::{with_tenant, IngesterClientPool, PoolConfig};
use strata_proto::ingester::{LabelMatcher, MatchType, QueryRequest};
use strata_remote_write::{compress, encode_write_request, OwnedMetadata, OwnedTimeSeries, Sample};

/// A free TCP port on 127.0.0.1, checked by binding it and released.
///
/// Chosen at random below the kernel's ephemeral range, so that the outgoing
/// connections of concurrent tests (which take ephemeral ports) cannot grab
/// it before the server it is meant for binds it. Another test can still
/// pick the same port in that window; [`Strata::wait_ready`] and the server
/// harnesses start again on fresh ports when that happens.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low: u16 = 10_000;
    if ephemeral_low > low + 1_000 {
        for _ in 0..200 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(CALLS.fetch_add(1, Ordering::Relaxed));
            h.write_u32(std::process::id());
            let port = low + (h.finish() % u64::from(ephemeral_low - low)) as u16;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Path of a binary of this workspace in the same profile as the test.
pub fn binary(name: &str) -> PathBuf {
    // The test executable lives in target/<profile>/deps/.
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target/<profile> directory");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` first (make test does)",
        path.display()
    );
    path
}

/// Where test processes write their logs.
pub fn log_dir() -> PathBuf {
    let dir = workspace_root().join("target/e2e-logs");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A child process killed (SIGKILL) when dropped.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
    /// Length of the log when this run started.
    log_start: u64,
}

impl Proc {
    pub fn start(name: &str, program: &Path, args: &[String], cwd: Option<&Path>) -> Proc {
        use std::sync::atomic::{AtomicUsize, Ordering};
        // Tests of one binary run in parallel and may give their processes
        // the same names: a counter keeps their logs apart.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let log = log_dir().join(format!("{name}-{}-{n}.log", std::process::id()));
        Proc::start_logging_to(name, program, args, cwd, log)
    }

    /// Like [`Proc::start`], appending to `log` (a restarted process keeps
    /// its earlier log).
    pub fn start_logging_to(
        name: &str,
        program: &Path,
        args: &[String],
        cwd: Option<&Path>,
        log: PathBuf,
    ) -> Proc {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("create log file");
        let log_start = out.metadata().map(|m| m.len()).unwrap_or(0);
        let err = out.try_clone().expect("clone log file");
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Proc {
            name: name.to_string(),
            child: Some(child),
            log,
            log_start,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait up to `timeout` for a clean exit; returns whether it
    /// exited successfully.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What this run (not an earlier one of the same log) has logged.
    pub fn log_text_of_this_run(&self) -> String {
        let bytes = std::fs::read(&self.log).unwrap_or_default();
        let from = (self.log_start as usize).min(bytes.len());
        String::from_utf8_lossy(&bytes[from..]).into_owned()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `url` until it answers 200 or `timeout` passes.
pub async fn wait_ready(url: &str, timeout: Duration, proc: &mut Proc) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        if !proc.is_running() {
            bail!("{} exited early; log:\n{}", proc.name, proc.log_text());
        }
        match client.get(url).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "{url} not ready after {timeout:?} (last answer: {last}); log:\n{}",
        proc.log_text()
    )
}

/// A Strata process with its ports.
pub struct Strata {
    pub proc: Proc,
    pub http_port: u16,
    pub grpc_port: u16,
    pub data_dir: tempfile::TempDir,
    /// Binary and extra flags it was started with, for [`Strata::restart`].
    bin: String,
    extra: Vec<String>,
}

impl Strata {
    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    pub fn grpc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.grpc_port)
    }

    /// Starts `binary` (e.g. `strata`, `strata-ingester`) with its ports on
    /// 127.0.0.1 and `extra` flags.
    pub fn start(name: &str, bin: &str, extra: &[String]) -> Strata {
        let http_port = free_port();
        let grpc_port = free_port();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let args = Self::args(http_port, grpc_port, data_dir.path(), extra);
        let proc = Proc::start(name, &binary(bin), &args, None);
        Strata {
            proc,
            http_port,
            grpc_port,
            data_dir,
            bin: bin.to_string(),
            extra: extra.to_vec(),
        }
    }

    fn args(http_port: u16, grpc_port: u16, data_dir: &Path, extra: &[String]) -> Vec<String> {
        let mut args = vec![
            format!("--server.http-listen-port={http_port}"),
            format!("--server.grpc-listen-port={grpc_port}"),
            "--server.http-listen-address=127.0.0.1".to_string(),
            "--server.grpc-listen-address=127.0.0.1".to_string(),
            format!("--data-dir={}", data_dir.display()),
        ];
        args.extend(extra.iter().cloned());
        args
    }

    fn spawn_again(&mut self) {
        let args = Self::args(
            self.http_port,
            self.grpc_port,
            self.data_dir.path(),
            &self.extra,
        );
        let name = self.proc.name.clone();
        let log = self.proc.log.clone();
        self.proc = Proc::start_logging_to(&name, &binary(&self.bin), &args, None, log);
    }

    /// Starts the stopped process again: same binary, flags, ports and
    /// data directory.
    pub fn restart(&mut self) {
        assert!(
            !self.proc.is_running(),
            "{} is still running",
            self.proc.name
        );
        self.spawn_again();
    }

    /// Waits until `/ready` answers 200. When the process exited because one
    /// of its ports was taken in the meantime (by a server another test
    /// started), it is started again on fresh ports, at most twice.
    pub async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let mut attempts = 0;
        loop {
            let url = format!("{}/ready", self.http());
            match wait_ready(&url, Duration::from_secs(30), &mut self.proc).await {
                Err(e)
                    if attempts < 2
                        && !self.proc.is_running()
                        && self
                            .proc
                            .log_text_of_this_run()
                            .contains("Address already in use") =>
                {
                    eprintln!(
                        "{}: a port was taken, starting again on fresh ports: {e}",
                        self.proc.name
                    );
                    attempts += 1;
                    self.http_port = free_port();
                    self.grpc_port = free_port();
                    self.spawn_again();
                }
                other => return other,
            }
        }
    }
}

/// Starts the one-process `strata` as `name` with `flags` and waits until it
/// is ready; panics if it never is.
pub async fn start_strata(name: &str, flags: &[&str]) -> Strata {
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    let mut strata = Strata::start(name, "strata", &flags);
    strata.wait_ready().await.expect("strata ready");
    strata
}

/// Encodes and snappy-compresses a remote write request.
pub fn write_body(series: &[OwnedTimeSeries]) -> Vec<u8> {
    compress(&encode_write_request(series, &[]))
}

/// Like [`write_body`], with metric metadata entries.
pub fn write_body_with_metadata(series: &[OwnedTimeSeries], metadata: &[OwnedMetadata]) -> Vec<u8> {
    compress(&encode_write_request(series, metadata))
}

/// A series with the given labels (any order; the encoder keeps it) and samples.
pub fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> OwnedTimeSeries {
    OwnedTimeSeries::new(
        labels.iter().map(|(n, v)| (n.to_string(), v.to_string())),
        samples
            .iter()
            .map(|&(timestamp, value)| Sample { timestamp, value }),
    )
}

/// POSTs a remote write body; returns status and body text.
pub async fn push(
    client: &reqwest::Client,
    base: &str,
    tenant: Option<&str>,
    body: Vec<u8>,
) -> anyhow::Result<(u16, String)> {
    let mut req = client
        .post(format!("{base}/api/v1/push"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    let resp = req.send().await.context("push request")?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

/// POSTs a remote write body as [`push`] does and asserts it is accepted
/// with 200; the failure message is the answer's text.
pub async fn push_ok(client: &reqwest::Client, base: &str, tenant: Option<&str>, body: Vec<u8>) {
    let (code, text) = push(client, base, tenant, body).await.unwrap();
    assert_eq!(code, 200, "{text}");
}

/// Every sample of every series an ingester holds for `tenant` in
/// `[start, end]`, keyed by the series' text form. Stale markers are kept.
pub async fn read_ingester(
    addr: &str,
    tenant: &str,
    start: i64,
    end: i64,
) -> anyhow::Result<BTreeMap<String, Vec<(i64, u64)>>> {
    let pool = IngesterClientPool::new(PoolConfig::default());
    let mut client = pool.get(addr)?;
    let req = with_tenant(
        tenant,
        QueryRequest {
            start_ms: start,
            end_ms: end,
            matchers: vec![LabelMatcher {
                r#type: MatchType::RegexMatch as i32,
                name: "__name__".into(),
                value: ".+".into(),
            }],
        },
    )?;
    let mut stream = client.query_stream(req).await?.into_inner();
    let mut out = BTreeMap::new();
    while let Some(msg) = stream.message().await? {
        for s in msg.series {
            let labels = strata_model::Labels::from_pairs(
                s.labels.iter().map(|l| (l.name.clone(), l.value.clone())),
            );
            let entry: &mut Vec<(i64, u64)> = out.entry(labels.to_string()).or_default();
            for c in &s.chunks {
                let mut it = strata_chunk::XorIterator::new(&c.data);
                for (t, v) in it.by_ref() {
                    if t >= start && t <= end {
                        entry.push((t, v.to_bits()));
                    }
                }
                if let Some(e) = it.err() {
                    bail!("corrupt chunk from {addr}: {e}");
                }
            }
        }
    }
    Ok(out)
}

/// Installed location of the `dynalite` DynamoDB-API server (installed by
/// `make test` into `.tmp/npm`, or given by `DYNALITE_BIN`).
pub fn dynalite_bin() -> PathBuf {
    if let Ok(p) = std::env::var("DYNALITE_BIN") {
        return PathBuf::from(p);
    }
    workspace_root().join(".tmp/npm/node_modules/.bin/dynalite")
}

/// A running dynalite on 127.0.0.1.
pub struct Dynalite {
    pub proc: Proc,
    pub port: u16,
    /// Where it keeps its tables when started with
    /// [`Dynalite::start_persistent`] (in memory otherwise).
    data_dir: Option<tempfile::TempDir>,
}

impl Dynalite {
    pub async fn start() -> anyhow::Result<Dynalite> {
        Self::start_with(None).await
    }

    /// A dynalite keeping its tables on disk, so that it can be stopped and
    /// started again ([`Dynalite::stop`], [`Dynalite::start_again`]) without
    /// losing them, as a DynamoDB outage would.
    pub async fn start_persistent() -> anyhow::Result<Dynalite> {
        Self::start_with(Some(tempfile::tempdir()?)).await
    }

    async fn start_with(data_dir: Option<tempfile::TempDir>) -> anyhow::Result<Dynalite> {
        let bin = dynalite_bin();
        if !bin.exists() {
            bail!(
                "dynalite is not installed at {}: run `make test-deps` (npm install --prefix .tmp/npm dynalite@4)",
                bin.display()
            );
        }
        let path = data_dir.as_ref().map(|d| d.path().to_path_buf());
        let (proc, port) =
            start_listening("dynalite", &bin, |port| Self::args(port, path.as_deref())).await?;
        Ok(Dynalite {
            proc,
            port,
            data_dir,
        })
    }

    fn args(port: u16, path: Option<&Path>) -> Vec<String> {
        let mut args = vec![
            "--host".to_string(),
            "127.0.0.1".to_string(),
            "--port".to_string(),
            port.to_string(),
        ];
        if let Some(path) = path {
            args.push("--path".to_string());
            args.push(path.display().to_string());
        }
        args
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL) and waits until its port refuses connections.
    pub async fn stop(&mut self) {
        self.proc.kill();
        wait_port_closed("dynalite", self.port).await;
    }

    /// Starts it again on the same port (with its tables, when persistent).
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        let path = self.data_dir.as_ref().map(|d| d.path().to_path_buf());
        let args = Self::args(self.port, path.as_deref());
        self.proc = Proc::start_logging_to(
            "dynalite",
            &dynalite_bin(),
            &args,
            None,
            self.proc.log.clone(),
        );
        wait_port_open(&mut self.proc, self.port).await
    }
}

/// Waits until nothing accepts connections on `port` any more.
async fn wait_port_closed(name: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "{name} still accepts connections on {port} after being killed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `proc` accepts connections on `port` (20 s at most).
async fn wait_port_open(proc: &mut Proc, port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if !proc.is_running() {
            bail!("{} exited: {}", proc.name, proc.log_text_of_this_run());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{} did not listen on {port} again within 20 s", proc.name)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The first of `points` timestamps `step_ms` apart, on a whole step, whose
/// last one is a little in the past.
pub fn aligned_start(points: i64, step_ms: i64) -> i64 {
    (now_ms() - points * step_ms) / step_ms * step_ms
}

/// GET `base` + `path` (a query API path such as `/prometheus/api/v1/query`)
/// with URL parameters, as `tenant`; returns the status and the JSON body.
pub async fn api_get(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    tenant: Option<&str>,
    params: &[(&str, &str)],
) -> anyhow::Result<(u16, serde_json::Value)> {
    let mut req = client.get(format!("{base}{path}")).query(params);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    json_answer(req).await
}

/// POST `base` + `path` with a form-encoded body, as Grafana does.
pub async fn api_post_form(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    tenant: Option<&str>,
    params: &[(&str, &str)],
) -> anyhow::Result<(u16, serde_json::Value)> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let mut req = client
        .post(format!("{base}{path}"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    json_answer(req).await
}

/// The `data` of a successful query API answer; asserts the status is 200
/// and the JSON `status` is `success`.
pub fn success(answer: &(u16, serde_json::Value)) -> &serde_json::Value {
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["status"], "success", "{}", answer.1);
    &answer.1["data"]
}

/// Sends `req` and returns the answer's body text, whatever its status;
/// panics if the request or the reading of the body fails.
pub async fn body_text(req: reqwest::RequestBuilder) -> String {
    req.send()
        .await
        .expect("send request")
        .text()
        .await
        .expect("read answer body")
}

async fn json_answer(req: reqwest::RequestBuilder) -> anyhow::Result<(u16, serde_json::Value)> {
    let resp = req.send().await.context("query API request")?;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text)
        .with_context(|| format!("answer is not JSON (status {status}): {text}"))?;
    if !content_type.starts_with("application/json") {
        bail!("answer has content type {content_type:?}, not application/json");
    }
    Ok((status, json))
}

/// Flags of a separate service whose ring lives in the DynamoDB-API server
/// at `endpoint`, with quick heartbeats and ring polls.
pub fn dynamo_ring_flags(endpoint: &str, replication_factor: usize) -> Vec<String> {
    vec![
        "--ring.store=dynamodb".to_string(),
        format!("--ring.dynamodb.endpoint={endpoint}"),
        "--ring.dynamodb.table=strata_ring_e2e".to_string(),
        format!("--ring.replication-factor={replication_factor}"),
        "--ring.poll-interval=200ms".to_string(),
        "--lifecycler.heartbeat-period=1s".to_string(),
    ]
}

/// GET `url`; returns the status and body text.
pub async fn get_text(client: &reqwest::Client, url: &str) -> anyhow::Result<(u16, String)> {
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

/// The member rows of a ring status page (`/ring`), by instance ID; each
/// row maps the table's column headers ("State", "Tokens", "Ownership",
/// ...) to the cell's text.
pub fn ring_members(page: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    fn cells<'a>(row: &'a str, tag: &str) -> Vec<&'a str> {
        let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
        let mut out = Vec::new();
        let mut rest = row;
        while let Some(start) = rest.find(&open) {
            let after = &rest[start..];
            let Some(gt) = after.find('>') else { break };
            let body = &after[gt + 1..];
            let Some(end) = body.find(&close) else { break };
            out.push(body[..end].trim());
            rest = &body[end..];
        }
        out
    }
    let headers = cells(page, "th");
    let mut members = BTreeMap::new();
    for row in page.split("<tr").skip(1) {
        let row = row.split("</tr>").next().unwrap_or_default();
        let values = cells(row, "td");
        let Some(id) = values.first() else { continue };
        let columns = headers
            .iter()
            .zip(&values)
            .map(|(h, v)| (h.to_string(), v.to_string()))
            .collect();
        members.insert(id.to_string(), columns);
    }
    members
}

/// Polls the ring status page of the service at `base` until every
/// instance in `ids` is ACTIVE and healthy there; returns its members.
pub async fn wait_for_active(
    client: &reqwest::Client,
    base: &str,
    ids: &[&str],
    timeout: Duration,
) -> anyhow::Result<BTreeMap<String, BTreeMap<String, String>>> {
    let deadline = Instant::now() + timeout;
    let mut page = String::new();
    while Instant::now() < deadline {
        if let Ok((200, text)) = get_text(client, &format!("{base}/ring")).await {
            let members = ring_members(&text);
            let active = |id: &&str| {
                members.get(*id).is_some_and(|m| {
                    m.get("State").map(String::as_str) == Some("ACTIVE")
                        && m.get("Healthy").map(String::as_str) != Some("no")
                })
            };
            if ids.iter().all(active) {
                return Ok(members);
            }
            page = text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{base}/ring never showed {ids:?} ACTIVE and healthy; last page:\n{page}")
}

/// The value of the first sample line of `metrics` (Prometheus text
/// format) that starts with `prefix` (a metric name, optionally with
/// labels).
pub fn metric_value(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| {
            l.starts_with(prefix)
                && (prefix.ends_with('}')
                    || matches!(l.as_bytes().get(prefix.len()), Some(b' ' | b'{')))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// What an ingester holds for one tenant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantCounts {
    pub series: u64,
    pub samples_appended: u64,
}

/// Series and appended samples per tenant of the ingester at `addr`
/// (its `AllTenantStats` answer).
pub async fn ingester_tenants(addr: &str) -> anyhow::Result<BTreeMap<String, TenantCounts>> {
    let pool = IngesterClientPool::new(PoolConfig::default());
    let mut client = pool.get(addr)?;
    let stats = client
        .all_tenant_stats(strata_proto::ingester::AllTenantStatsRequest {})
        .await?
        .into_inner()
        .stats;
    Ok(stats
        .into_iter()
        .map(|s| {
            (
                s.tenant,
                TenantCounts {
                    series: s.series,
                    samples_appended: s.samples_appended,
                },
            )
        })
        .collect())
}

/// Flags a [`Cluster`] gives each role on top of the ring's.
#[derive(Clone, Debug, Default)]
pub struct RoleFlags {
    pub ingester: Vec<String>,
    pub distributor: Vec<String>,
    pub querier: Vec<String>,
}

/// The distributed layout for read-path tests: dynalite holding the ring,
/// `n` ingesters (`ingester-0`, `ingester-1`, ...), a distributor and a
/// querier as separate processes, all with the same replication factor.
/// Dropping it kills the processes (dynalite last).
pub struct Cluster {
    pub ingesters: Vec<Strata>,
    pub distributor: Strata,
    pub querier: Strata,
    pub dynalite: Dynalite,
}

impl Cluster {
    /// Starts the cluster; returns once the distributor and the querier
    /// both see every ingester ACTIVE and healthy in the ring. `name`
    /// prefixes the processes' log names.
    pub async fn start(
        name: &str,
        ingesters: usize,
        replication_factor: usize,
    ) -> anyhow::Result<Cluster> {
        let dynalite = Dynalite::start().await?;
        Cluster::start_on(
            dynalite,
            name,
            ingesters,
            replication_factor,
            &RoleFlags::default(),
        )
        .await
    }

    /// [`Cluster::start`] with the ring in `dynalite` (already running, so
    /// that `extra` can point other stores at it too) and `extra` flags
    /// for each role after the ring's.
    pub async fn start_on(
        dynalite: Dynalite,
        name: &str,
        ingesters: usize,
        replication_factor: usize,
        extra: &RoleFlags,
    ) -> anyhow::Result<Cluster> {
        let flags = dynamo_ring_flags(&dynalite.endpoint(), replication_factor);
        let with = |more: &[String]| {
            let mut f = flags.clone();
            f.extend(more.iter().cloned());
            f
        };
        let mut started = Vec::with_capacity(ingesters);
        for i in 0..ingesters {
            let mut f = with(&extra.ingester);
            f.push(format!("--lifecycler.id={}", Cluster::ingester_id(i)));
            started.push(
                Cluster::start_ready(&format!("{name}-ingester-{i}"), "strata-ingester", &f)
                    .await?,
            );
        }
        let distributor = Cluster::start_ready(
            &format!("{name}-distributor"),
            "strata-distributor",
            &with(&extra.distributor),
        )
        .await?;
        let querier = Cluster::start_ready(
            &format!("{name}-querier"),
            "strata-querier",
            &with(&extra.querier),
        )
        .await?;
        let ids: Vec<String> = (0..ingesters).map(Cluster::ingester_id).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let client = reqwest::Client::new();
        for service in [&distributor, &querier] {
            wait_for_active(&client, &service.http(), &ids, Duration::from_secs(20)).await?;
        }
        Ok(Cluster {
            ingesters: started,
            distributor,
            querier,
            dynalite,
        })
    }

    /// Starts a service and waits until it is ready.
    async fn start_ready(name: &str, bin: &str, flags: &[String]) -> anyhow::Result<Strata> {
        let mut service = Strata::start(name, bin, flags);
        service.wait_ready().await?;
        Ok(service)
    }

    /// The ring ID of ingester `i`.
    pub fn ingester_id(i: usize) -> String {
        format!("ingester-{i}")
    }
}

/// Debian's Prometheus 2.42 (or `PROMETHEUS_BIN`).
pub fn prometheus_bin() -> PathBuf {
    std::env::var("PROMETHEUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/bin/prometheus"))
}

/// A sample value as Prometheus's JSON writes it (`"NaN"`, `"+Inf"`, ...).
pub fn parse_prom_value(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .unwrap_or_else(|_| panic!("bad sample value {other}")),
    }
}

/// Starts an HTTP server (`program` with `args(port)`) on a free port of
/// 127.0.0.1 and waits until `ready_path` answers 200; returns it and its
/// base URL.
pub async fn start_http_server(
    name: &str,
    program: &Path,
    args: impl Fn(u16) -> Vec<String>,
    ready_path: &str,
) -> anyhow::Result<(Proc, String)> {
    let (mut proc, port) = start_listening(name, program, args).await?;
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(
        &format!("{base}{ready_path}"),
        Duration::from_secs(30),
        &mut proc,
    )
    .await?;
    Ok((proc, base))
}

/// Starts `program` with `args(port)` on a free port until it accepts TCP
/// connections on 127.0.0.1 (at most three ports, in case one handed out by
/// [`free_port`] was taken in the meantime); returns the process and port.
async fn start_listening(
    name: &str,
    program: &Path,
    args: impl Fn(u16) -> Vec<String>,
) -> anyhow::Result<(Proc, u16)> {
    let mut last_log = String::new();
    for _ in 0..3 {
        let port = free_port();
        let mut proc = Proc::start(name, program, &args(port), None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && proc.is_running() {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok((proc, port));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last_log = proc.log_text();
        if proc.is_running() {
            bail!("{name} did not listen on port {port} within 20 s; log:\n{last_log}");
        }
    }
    bail!("{name} exited three times; last log:\n{last_log}")
}

/// Installed location of the `s3s-fs` S3-API server (built by `make
/// test-deps` into `.tmp/cargo`, or given by `S3S_FS_BIN`).
pub fn s3s_fs_bin() -> PathBuf {
    if let Ok(p) = std::env::var("S3S_FS_BIN") {
        return PathBuf::from(p);
    }
    workspace_root().join(".tmp/cargo/bin/s3s-fs")
}

/// Access key of every [`S3sFs`].
pub const S3_ACCESS_KEY: &str = "strata";
/// Secret key of every [`S3sFs`].
pub const S3_SECRET_KEY: &str = "strata-secret";
/// The bucket [`store_flags`] puts chunks in.
pub const S3_BUCKET: &str = "strata-chunks";

/// A running s3s-fs on 127.0.0.1 serving a fresh temporary directory
/// (bucket `b`, key `k` is the file `<data_dir>/b/k`; s3s-fs keeps its own
/// metadata in dot files at the top), with the credentials
/// [`S3_ACCESS_KEY`] / [`S3_SECRET_KEY`]. Killed when dropped, then the
/// directory is removed.
pub struct S3sFs {
    pub proc: Proc,
    pub port: u16,
    // Declared after `proc`, so the server is killed before its directory
    // is removed.
    data_dir: tempfile::TempDir,
}

impl S3sFs {
    pub async fn start() -> anyhow::Result<S3sFs> {
        let bin = s3s_fs_bin();
        if !bin.exists() {
            bail!(
                "s3s-fs is not installed at {}: run `make test-deps` (cargo install s3s-fs --locked --root .tmp/cargo) or set S3S_FS_BIN",
                bin.display()
            );
        }
        let data_dir = tempfile::tempdir()?;
        let root = data_dir.path().to_path_buf();
        let (proc, port) = start_listening("s3s-fs", &bin, |port| Self::args(port, &root)).await?;
        Ok(S3sFs {
            proc,
            port,
            data_dir,
        })
    }

    fn args(port: u16, root: &Path) -> Vec<String> {
        vec![
            "--host".to_string(),
            "127.0.0.1".to_string(),
            "--port".to_string(),
            port.to_string(),
            "--access-key".to_string(),
            S3_ACCESS_KEY.to_string(),
            "--secret-key".to_string(),
            S3_SECRET_KEY.to_string(),
            root.display().to_string(),
        ]
    }

    /// Kills it (SIGKILL) and waits until its port refuses connections; its
    /// objects stay on disk.
    pub async fn stop(&mut self) {
        self.proc.kill();
        wait_port_closed("s3s-fs", self.port).await;
    }

    /// Starts it again on the same port and directory.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        let args = Self::args(self.port, self.data_dir.path());
        self.proc =
            Proc::start_logging_to("s3s-fs", &s3s_fs_bin(), &args, None, self.proc.log.clone());
        wait_port_open(&mut self.proc, self.port).await
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The directory s3s-fs serves.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The directory holding `bucket`'s objects.
    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.data_dir.path().join(bucket)
    }

    /// Every object of `bucket`: its key and the path of its file, sorted
    /// by key.
    pub fn objects(&self, bucket: &str) -> Vec<(String, PathBuf)> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                let key = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                let path = entry.path();
                match entry.file_type() {
                    Ok(t) if t.is_dir() => walk(&path, &key, out),
                    Ok(t) if t.is_file() => out.push((key, path)),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.bucket_dir(bucket), "", &mut out);
        out.sort();
        out
    }

    /// Total size of `bucket`'s object files (s3s-fs's metadata files
    /// left out).
    pub fn object_bytes(&self, bucket: &str) -> u64 {
        self.objects(bucket)
            .iter()
            .filter_map(|(_, path)| std::fs::metadata(path).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// Installed location of memcached (Debian package `memcached`, installed
/// by `make test-deps`, or given by `MEMCACHED_BIN`).
pub fn memcached_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MEMCACHED_BIN") {
        return PathBuf::from(p);
    }
    PathBuf::from("/usr/bin/memcached")
}

/// A memcached on 127.0.0.1 (TCP only, 64 MB) that a test can stop and
/// start again on the same port; killed when dropped.
pub struct Memcached {
    pub proc: Proc,
    pub port: u16,
}

impl Memcached {
    fn args(port: u16) -> Vec<String> {
        let mut args: Vec<String> = [
            "-l",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-m",
            "64",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        // memcached refuses to run as root unless told which user to be.
        if unsafe { libc::geteuid() } == 0 {
            args.extend(["-u".to_string(), "root".to_string()]);
        }
        args
    }

    pub async fn start() -> anyhow::Result<Memcached> {
        let bin = memcached_bin();
        if !bin.exists() {
            bail!(
                "memcached is not installed at {}: run `make test-deps` (apt-get install memcached) or set MEMCACHED_BIN",
                bin.display()
            );
        }
        let (proc, port) = start_listening("memcached", &bin, Memcached::args).await?;
        Ok(Memcached { proc, port })
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL) and waits until its port refuses connections.
    pub async fn stop(&mut self) {
        self.proc.kill();
        wait_port_closed("memcached", self.port).await;
    }

    /// Starts it again, empty, on the same port; waits until it accepts
    /// connections.
    pub async fn start_again(&mut self) -> anyhow::Result<()> {
        assert!(!self.proc.is_running(), "memcached is still running");
        self.proc = Proc::start_logging_to(
            "memcached",
            &memcached_bin(),
            &Memcached::args(self.port),
            None,
            self.proc.log.clone(),
        );
        wait_port_open(&mut self.proc, self.port).await
    }
}

/// Flags putting chunks into `s3` (bucket [`S3_BUCKET`], created on
/// start), the series index into the DynamoDB-API server at
/// `dynalite_endpoint` (tables created on start), and the cache into the
/// memcached servers `memcached` (`host:port`; none leaves the flag out).
pub fn store_flags(s3: &S3sFs, dynalite_endpoint: &str, memcached: &[String]) -> Vec<String> {
    let mut flags = vec![
        "--storage.chunks.backend=s3".to_string(),
        format!("--storage.chunks.s3.bucket={S3_BUCKET}"),
        format!("--storage.chunks.s3.endpoint={}", s3.endpoint()),
        "--storage.chunks.s3.region=us-east-1".to_string(),
        "--storage.chunks.s3.force-path-style=true".to_string(),
        "--storage.chunks.s3.create-bucket=true".to_string(),
        format!("--storage.chunks.s3.access-key-id={S3_ACCESS_KEY}"),
        format!("--storage.chunks.s3.secret-access-key={S3_SECRET_KEY}"),
        "--storage.index.backend=dynamodb".to_string(),
        format!("--storage.index.dynamodb.endpoint={dynalite_endpoint}"),
        "--storage.index.dynamodb.create-tables=true".to_string(),
    ];
    if !memcached.is_empty() {
        flags.push(format!(
            "--storage.cache.memcached.addresses=[{}]",
            memcached.join(",")
        ));
    }
    flags
}
