//! Credentials at the edge (`docs/auth.md`), end to end: the one-process
//! `strata` in `auth.mode: tokens` with a tenants file whose tokens for
//! `alpha` and `beta` were made by the real `strata-admin` binary.
//!
//! - A real Prometheus 2.42 remote-writes with `basic_auth` as alpha: its
//!   data lands in alpha, not in beta; wrong or missing credentials are
//!   401 and store nothing.
//! - Alpha's credentials with a forged `X-Scope-OrgID: beta` reach nothing
//!   of beta's on any endpoint family (push, every query endpoint, the
//!   rules APIs, the admin API), and what they write lands in alpha.
//! - A token revoked through the admin API, or with `strata-admin` in the
//!   file, is refused within the reload period.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use strata_e2e::*;
use strata_remote_write::{MetricType, OwnedExemplar, OwnedMetadata};

const API: &str = "/prometheus/api/v1";
const RELOAD_PERIOD: Duration = Duration::from_secs(1);

/// Runs `strata-admin` and returns its standard output; panics on failure.
fn strata_admin(args: &[&str]) -> String {
    let out = Command::new(binary("strata-admin"))
        .args(args)
        .output()
        .expect("run strata-admin");
    assert!(
        out.status.success(),
        "strata-admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn create_token(file: &Path, tenant: &str) -> String {
    let out = strata_admin(&[
        "tokens",
        "create",
        "--tenants-file",
        file.to_str().unwrap(),
        "--tenant",
        tenant,
    ]);
    let token = out.trim().to_string();
    assert!(token.starts_with("strata_"), "{out}");
    token
}

/// How a request authenticates.
#[derive(Clone, Copy, Debug)]
enum Creds<'a> {
    None,
    Basic(&'a str, &'a str),
    Bearer(&'a str),
}

/// `req` with `creds` and, when given, a client-sent `X-Scope-OrgID`.
fn with(
    req: reqwest::RequestBuilder,
    creds: Creds,
    org_id: Option<&str>,
) -> reqwest::RequestBuilder {
    let req = match creds {
        Creds::None => req,
        Creds::Basic(user, password) => req.basic_auth(user, Some(password)),
        Creds::Bearer(token) => req.bearer_auth(token),
    };
    match org_id {
        Some(t) => req.header("X-Scope-OrgID", t),
        None => req,
    }
}

/// Status, `WWW-Authenticate` and body text.
async fn send(req: reqwest::RequestBuilder) -> (u16, Option<String>, String) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    (status, challenge, resp.text().await.unwrap_or_default())
}

/// A strata in tokens mode, its tenants file and the tokens.
struct Env {
    strata: Strata,
    _dir: tempfile::TempDir,
    tenants_file: PathBuf,
    alpha: String,
    beta: String,
    admin: String,
    client: reqwest::Client,
}

impl Env {
    async fn start(name: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let tenants_file = dir.path().join("tenants.yaml");
        let alpha = create_token(&tenants_file, "alpha");
        let beta = create_token(&tenants_file, "beta");
        let text = std::fs::read_to_string(&tenants_file).unwrap();
        assert!(
            !text.contains(&alpha) && !text.contains(&beta),
            "the file holds no token"
        );
        let out = strata_admin(&["hash-admin-token"]);
        let field = |key: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {out}"))
                .trim()
                .to_string()
        };
        let admin = field("token:");
        let admin_hash = field("admin_token_hash:");
        let flags = [
            "--auth.mode=tokens".to_string(),
            format!("--auth.tenants-file={}", tenants_file.display()),
            format!("--auth.reload-period={}s", RELOAD_PERIOD.as_secs()),
            format!("--auth.admin-token-hash={admin_hash}"),
            "--ruler.poll-interval=1s".to_string(),
        ];
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let strata = start_strata(name, &flags).await;
        Env {
            strata,
            _dir: dir,
            tenants_file,
            alpha,
            beta,
            admin,
            client: reqwest::Client::new(),
        }
    }

    fn base(&self) -> String {
        self.strata.http()
    }

    fn alpha(&self) -> Creds<'_> {
        Creds::Basic("alpha", &self.alpha)
    }

    fn beta(&self) -> Creds<'_> {
        Creds::Basic("beta", &self.beta)
    }

    async fn push(
        &self,
        creds: Creds<'_>,
        org_id: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, Option<String>, String) {
        let req = self
            .client
            .post(format!("{}/api/v1/push", self.base()))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body);
        send(with(req, creds, org_id)).await
    }

    /// Pushes one sample (now) of a series named `name`.
    async fn push_metric(&self, creds: Creds<'_>, org_id: Option<&str>, name: &str) -> u16 {
        let body = write_body(&[series(&[("__name__", name)], &[(now_ms(), 1.0)])]);
        self.push(creds, org_id, body).await.0
    }

    async fn get(
        &self,
        path: &str,
        creds: Creds<'_>,
        org_id: Option<&str>,
        params: &[(&str, &str)],
    ) -> (u16, Option<String>, String) {
        let req = self
            .client
            .get(format!("{}{path}", self.base()))
            .query(params);
        send(with(req, creds, org_id)).await
    }

    async fn post_form(
        &self,
        path: &str,
        creds: Creds<'_>,
        org_id: Option<&str>,
        params: &[(&str, &str)],
    ) -> (u16, String) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        let req = self
            .client
            .post(format!("{}{path}", self.base()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        let (status, _, body) = send(with(req, creds, org_id)).await;
        (status, body)
    }

    /// The series of an instant query, as the tenant of `creds` sees them.
    async fn query(&self, creds: Creds<'_>, query: &str) -> Vec<Value> {
        let (status, _, body) = self
            .get(&format!("{API}/query"), creds, None, &[("query", query)])
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        let json: Value = serde_json::from_str(&body).unwrap();
        json["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The admin API's listing: tenant → token ids.
    async fn token_ids(&self) -> Vec<(String, String)> {
        let (status, _, body) = self
            .get("/admin/tenants", Creds::Bearer(&self.admin), None, &[])
            .await;
        assert_eq!(status, 200, "{body}");
        let json: Value = serde_json::from_str(&body).unwrap();
        let mut out = Vec::new();
        for t in json["tenants"].as_array().unwrap() {
            for tok in t["tokens"].as_array().unwrap() {
                out.push((
                    t["tenant"].as_str().unwrap().to_string(),
                    tok["id"].as_str().unwrap().to_string(),
                ));
            }
        }
        out
    }

    fn id_of(ids: &[(String, String)], tenant: &str) -> String {
        ids.iter()
            .find(|(t, _)| t == tenant)
            .map(|(_, id)| id.clone())
            .unwrap_or_else(|| panic!("no token of {tenant} in {ids:?}"))
    }

    async fn metrics(&self) -> String {
        self.get("/metrics", Creds::None, None, &[]).await.2
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_basic_auth_lands_in_its_tenant_and_bad_credentials_store_nothing() {
    let env = Env::start("strata-auth-prom").await;
    let bin = prometheus_bin();
    assert!(
        bin.exists(),
        "{} missing: install the Debian package prometheus",
        bin.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("prometheus.yml");
    let data = dir.path().join("data");
    let push_url = format!("{}/api/v1/push", env.base());
    let alpha_token = env.alpha.clone();
    let (_prom, _prom_base) = start_http_server(
        "prometheus-auth",
        &bin,
        |port| {
            let config = format!(
                r#"
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{port}"]
remote_write:
  - url: "{push_url}"
    basic_auth:
      username: alpha
      password: "{alpha_token}"
    queue_config:
      batch_send_deadline: 500ms
      min_backoff: 50ms
      max_backoff: 1s
"#
            );
            std::fs::write(&config_path, config).unwrap();
            vec![
                format!("--config.file={}", config_path.display()),
                format!("--storage.tsdb.path={}", data.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ]
        },
        "/-/ready",
    )
    .await
    .expect("prometheus ready");

    // Prometheus's own series arrive in alpha.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = env.query(env.alpha(), r#"up{job="prometheus"}"#).await;
        let families = env
            .query(env.alpha(), r#"count({__name__=~"prometheus_.+"})"#)
            .await;
        let count: f64 = families
            .first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if !up.is_empty() && count > 50.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus's data never reached alpha (up: {up:?}, prometheus_* series: {count}); log:\n{}",
            env.strata.proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // And nothing of it in beta.
    assert_eq!(
        env.query(env.beta(), r#"{__name__=~".+"}"#).await,
        Vec::<Value>::new()
    );
    // Or in the anonymous tenant, which a header-less request would name.
    let anonymous = read_ingester(&env.strata.grpc_addr(), "anonymous", 0, now_ms() + 60_000)
        .await
        .unwrap();
    assert!(anonymous.is_empty(), "{anonymous:?}");
    let metrics = env.metrics().await;
    assert!(
        metric_value(&metrics, r#"strata_auth_successes_total{tenant="alpha"}"#).unwrap_or(0.0)
            > 0.0,
        "{metrics}"
    );

    // Wrong or missing credentials: 401 with a challenge, nothing stored.
    let wrong =
        "strata_000000000000_0000000000000000000000000000000000000000000000000000000000000000";
    let attempts = [
        ("wrong password", Creds::Basic("alpha", wrong), None),
        (
            "a password that is no token",
            Creds::Basic("alpha", "hunter2"),
            None,
        ),
        (
            "beta's token for alpha",
            Creds::Basic("alpha", &env.beta),
            None,
        ),
        ("unknown tenant", Creds::Basic("mallory", &env.alpha), None),
        ("garbage bearer", Creds::Bearer("garbage"), None),
        ("no credentials", Creds::None, None),
        ("the tenant header alone", Creds::None, Some("alpha")),
    ];
    for (i, (what, creds, org_id)) in attempts.iter().enumerate() {
        let name = format!("auth_refused_probe_{i}");
        let body = write_body(&[series(&[("__name__", &name)], &[(now_ms(), 1.0)])]);
        let (status, challenge, text) = env.push(*creds, *org_id, body).await;
        assert_eq!(status, 401, "{what}: {text}");
        assert_eq!(
            challenge.as_deref(),
            Some("Basic realm=\"strata\""),
            "{what}"
        );
        assert!(
            text.contains("credentials") || text.contains("basic auth"),
            "{what}: the message says what is wrong: {text}"
        );
    }
    for creds in [env.alpha(), env.beta()] {
        let found = env
            .query(creds, r#"{__name__=~"auth_refused_probe_.*"}"#)
            .await;
        assert!(found.is_empty(), "a refused push was stored: {found:?}");
    }
    let all_tenant_data = read_ingester(&env.strata.grpc_addr(), "alpha", 0, now_ms() + 60_000)
        .await
        .unwrap();
    assert!(
        all_tenant_data
            .keys()
            .all(|k| !k.contains("auth_refused_probe")),
        "a refused push reached the ingester"
    );
    let metrics = env.metrics().await;
    for (labels, at_least) in [
        (r#"{tenant="alpha",reason="invalid_token"}"#, 2.0),
        (r#"{tenant="alpha",reason="tenant_mismatch"}"#, 1.0),
        (r#"{tenant="unknown",reason="tenant_mismatch"}"#, 1.0),
        (r#"{tenant="unknown",reason="invalid_token"}"#, 1.0),
        (r#"{tenant="unknown",reason="missing_credentials"}"#, 2.0),
    ] {
        let v =
            metric_value(&metrics, &format!("strata_auth_failures_total{labels}")).unwrap_or(0.0);
        assert!(
            v >= at_least,
            "strata_auth_failures_total{labels} = {v}:\n{metrics}"
        );
    }
    assert!(
        !metrics.contains("mallory"),
        "attacker-chosen names are no label values"
    );
}

/// Beta's seed: a series with a label of its own, its metadata, an
/// exemplar, and a rule group with an alert that fires at once.
async fn seed_beta(env: &Env) {
    let t = now_ms();
    let mut s = series(
        &[
            ("__name__", "beta_secret_total"),
            ("beta_only_label", "beta-value"),
        ],
        &[(t - 1000, 1.0), (t, 2.0)],
    );
    s.exemplars = vec![OwnedExemplar {
        labels: vec![("trace_id".to_string(), "beta-trace".to_string())],
        value: 2.0,
        timestamp: t,
    }];
    let metadata = [OwnedMetadata {
        metric_type: MetricType::Counter,
        metric_family_name: "beta_secret_total".into(),
        help: "beta's secret".into(),
        unit: String::new(),
    }];
    let (status, _, text) = env
        .push(env.beta(), None, write_body_with_metadata(&[s], &metadata))
        .await;
    assert_eq!(status, 200, "{text}");
    let group = "name: beta_group\ninterval: 1s\nrules:\n  - alert: BetaSecretAlert\n    expr: vector(1)\n  - record: beta:secret:sum\n    expr: sum(beta_secret_total)\n";
    let req = env
        .client
        .post(format!("{}/prometheus/config/v1/rules/beta_ns", env.base()))
        .header("Content-Type", "application/yaml")
        .body(group);
    let (status, _, text) = send(with(req, env.beta(), None)).await;
    assert_eq!(status, 202, "{text}");
    // Beta sees all of it (so the probes below would have found it).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, alerts) = env
            .get(&format!("{API}/alerts"), env.beta(), None, &[])
            .await;
        let (_, _, exemplars) = env
            .get(
                &format!("{API}/query_exemplars"),
                env.beta(),
                None,
                &[
                    ("query", "beta_secret_total"),
                    ("start", &(t / 1000 - 60).to_string()),
                    ("end", &(t / 1000 + 60).to_string()),
                ],
            )
            .await;
        let (_, _, metadata) = env
            .get(&format!("{API}/metadata"), env.beta(), None, &[])
            .await;
        if alerts.contains("BetaSecretAlert")
            && exemplars.contains("beta-trace")
            && metadata.contains("beta_secret_total")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "beta's seed is not visible to beta: alerts {alerts}, exemplars {exemplars}, metadata {metadata}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(env.query(env.beta(), "beta_secret_total").await.len(), 1);
}

/// Whether an answer shows anything of beta's.
fn shows_beta(text: &str) -> bool {
    [
        "beta_secret",
        "beta_only_label",
        "beta_group",
        "BetaSecretAlert",
        "beta_ns",
        "beta-trace",
        "beta-value",
        "beta:secret",
    ]
    .iter()
    .any(|s| text.contains(s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_tenant_header_reaches_nothing_of_another_tenant() {
    let env = Env::start("strata-auth-forged").await;
    seed_beta(&env).await;
    let forged = Some("beta");
    // A minute ahead: the seed's last sample and exemplar are in every range.
    let now = (now_ms() / 1000 + 60).to_string();
    let hour_ago = (now_ms() / 1000 - 3600).to_string();
    let mut probes = 0;
    let mut cross_reads = Vec::new();

    // Alpha's credentials, basic and bearer, with beta named in the header.
    for creds in [env.alpha(), Creds::Bearer(&env.alpha)] {
        // Every query endpoint, GET and form POST.
        let reads: Vec<(String, Vec<(&str, &str)>)> = vec![
            (format!("{API}/query"), vec![("query", "beta_secret_total")]),
            (
                format!("{API}/query"),
                vec![("query", r#"{__name__=~".+"}"#)],
            ),
            (
                format!("{API}/query_range"),
                vec![
                    ("query", r#"{__name__=~"beta.*"}"#),
                    ("start", &hour_ago),
                    ("end", &now),
                    ("step", "15"),
                ],
            ),
            (
                format!("{API}/series"),
                vec![("match[]", r#"{__name__=~".+"}"#)],
            ),
            (format!("{API}/labels"), vec![]),
            (format!("{API}/label/__name__/values"), vec![]),
            (format!("{API}/label/beta_only_label/values"), vec![]),
            (format!("{API}/metadata"), vec![]),
            (
                format!("{API}/metadata"),
                vec![("metric", "beta_secret_total")],
            ),
            (
                format!("{API}/query_exemplars"),
                vec![
                    ("query", "beta_secret_total"),
                    ("start", &hour_ago),
                    ("end", &now),
                ],
            ),
            (
                "/api/v1/query".to_string(),
                vec![("query", "beta_secret_total")],
            ),
            ("/prometheus/config/v1/rules".to_string(), vec![]),
            ("/prometheus/config/v1/rules/beta_ns".to_string(), vec![]),
            (
                "/prometheus/config/v1/rules/beta_ns/beta_group".to_string(),
                vec![],
            ),
            (format!("{API}/rules"), vec![]),
            (format!("{API}/alerts"), vec![]),
            ("/ruler/internal/rules".to_string(), vec![]),
        ];
        for (path, params) in &reads {
            let (status, _, body) = env.get(path, creds, forged, params).await;
            probes += 1;
            // Alpha's own answer: empty, or 404 for rule groups alpha has
            // not got; never a refusal that would hide a bug.
            assert!(
                status == 200 || (status == 404 && path.contains("/config/v1/rules")),
                "GET {path} {params:?}: {status} {body}"
            );
            if shows_beta(&body) {
                cross_reads.push(format!("GET {path} {params:?}: {body}"));
            }
            if path.starts_with(API) && !path.ends_with("rules") && !path.ends_with("alerts") {
                let (status, body) = env.post_form(path, creds, forged, params).await;
                probes += 1;
                assert_eq!(status, 200, "POST {path}: {body}");
                if shows_beta(&body) {
                    cross_reads.push(format!("POST {path} {params:?}: {body}"));
                }
            }
        }
    }
    assert!(
        cross_reads.is_empty(),
        "{} of {probes} probes read beta's data:\n{}",
        cross_reads.len(),
        cross_reads.join("\n")
    );
    eprintln!("{probes} read probes with a forged tenant header: 0 cross-tenant reads");

    // Writes with the forged header land in alpha.
    assert_eq!(
        env.push_metric(env.alpha(), forged, "forged_write_probe")
            .await,
        200
    );
    assert_eq!(
        env.push_metric(
            Creds::Bearer(&env.alpha),
            forged,
            "forged_bearer_write_probe"
        )
        .await,
        200
    );
    let group =
        "name: forged_group\ninterval: 1s\nrules:\n  - record: forged:probe\n    expr: vector(1)\n";
    let req = env
        .client
        .post(format!("{}/prometheus/config/v1/rules/beta_ns", env.base()))
        .body(group);
    let (status, _, text) = send(with(req, env.alpha(), forged)).await;
    assert_eq!(status, 202, "{text}");
    // Deleting beta's group by name deletes nothing of beta's.
    for path in [
        "/prometheus/config/v1/rules/beta_ns/beta_group",
        "/prometheus/config/v1/rules/beta_ns",
    ] {
        let req = env.client.delete(format!("{}{path}", env.base()));
        let (status, _, text) = send(with(req, env.alpha(), forged)).await;
        assert!(
            status == 202 || status == 404,
            "DELETE {path}: {status} {text}"
        );
    }
    for name in ["forged_write_probe", "forged_bearer_write_probe"] {
        assert_eq!(
            env.query(env.alpha(), name).await.len(),
            1,
            "{name} is in alpha"
        );
        assert!(
            env.query(env.beta(), name).await.is_empty(),
            "{name} is not in beta"
        );
    }
    let beta_data = read_ingester(&env.strata.grpc_addr(), "beta", 0, now_ms() + 60_000)
        .await
        .unwrap();
    assert!(
        beta_data.keys().all(|k| !k.contains("forged")),
        "{beta_data:?}"
    );
    assert!(
        beta_data.keys().any(|k| k.contains("beta_secret_total")),
        "{beta_data:?}"
    );
    let (status, _, beta_rules) = env
        .get("/prometheus/config/v1/rules", env.beta(), None, &[])
        .await;
    assert_eq!(status, 200, "{beta_rules}");
    assert!(
        beta_rules.contains("beta_group"),
        "beta's group is intact: {beta_rules}"
    );
    assert!(!beta_rules.contains("forged_group"), "{beta_rules}");

    // The admin API with a tenant's credentials (and the forged header).
    let ids = env.token_ids().await;
    let beta_id = Env::id_of(&ids, "beta");
    let revoke_beta = format!("/admin/tenants/beta/tokens/{beta_id}");
    for creds in [
        env.alpha(),
        Creds::Bearer(&env.alpha),
        env.beta(),
        Creds::None,
    ] {
        let want = if matches!(creds, Creds::None) {
            401
        } else {
            403
        };
        let (status, _, text) = env.get("/admin/tenants", creds, forged, &[]).await;
        assert_eq!(status, want, "GET /admin/tenants with {creds:?}: {text}");
        assert!(!text.contains(&beta_id), "{text}");
        let req = env
            .client
            .post(format!("{}/admin/tenants/beta/tokens", env.base()));
        let (status, _, text) = send(with(req, creds, forged)).await;
        assert_eq!(status, want, "POST with {creds:?}: {text}");
        assert!(!text.contains("strata_"), "{text}");
        let req = env.client.delete(format!("{}{revoke_beta}", env.base()));
        let (status, _, text) = send(with(req, creds, forged)).await;
        assert_eq!(status, want, "DELETE with {creds:?}: {text}");
    }
    assert_eq!(env.token_ids().await, ids, "no token created or revoked");
    assert_eq!(
        env.push_metric(env.beta(), None, "beta_still_works").await,
        200
    );

    // Operator actions take the admin token, not a tenant's.
    let flush = |creds| {
        let req = env.client.post(format!("{}/ingester/flush", env.base()));
        send(with(req, creds, None))
    };
    assert_eq!(flush(Creds::None).await.0, 401);
    assert_eq!(flush(env.alpha()).await.0, 403);
    let (status, _, text) = flush(Creds::Bearer(&env.admin)).await;
    assert!((200..300).contains(&status), "{status} {text}");
    // So do the operators' pages that show every tenant's state.
    for path in ["/runtime_config", "/distributor/ha_tracker"] {
        let (status, _, text) = env.get(path, env.alpha(), forged, &[]).await;
        assert_eq!(status, 403, "{path}: {text}");
        assert!(!shows_beta(&text), "{text}");
        let (status, _, text) = env.get(path, Creds::Bearer(&env.admin), None, &[]).await;
        assert!(
            status != 401 && status != 403,
            "{path} with the admin token: {status} {text}"
        );
    }
    // Operational pages need no credentials.
    for path in ["/", "/metrics", "/ready", "/ring", "/ingester/ring"] {
        let (status, _, text) = env.get(path, Creds::None, None, &[]).await;
        assert_eq!(status, 200, "{path}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_are_refused_within_the_reload_period() {
    let env = Env::start("strata-auth-revoke").await;
    assert_eq!(
        env.push_metric(env.alpha(), None, "before_revocation")
            .await,
        200
    );
    assert_eq!(
        env.push_metric(env.beta(), None, "before_revocation").await,
        200
    );
    let ids = env.token_ids().await;

    // Through the admin API.
    let alpha_id = Env::id_of(&ids, "alpha");
    let req = env
        .client
        .delete(format!(
            "{}/admin/tenants/alpha/tokens/{alpha_id}",
            env.base()
        ))
        .bearer_auth(&env.admin);
    let (status, _, text) = send(req).await;
    assert_eq!(status, 204, "{text}");
    let file = std::fs::read_to_string(&env.tenants_file).unwrap();
    assert!(!file.contains(&alpha_id), "revoked in the file: {file}");
    let revoked = Instant::now();
    let deadline = revoked + RELOAD_PERIOD + Duration::from_secs(5);
    loop {
        let status = env.push_metric(env.alpha(), None, "after_revocation").await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            Instant::now() < deadline,
            "alpha's revoked token still works"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "admin API revocation in force after {:?}",
        revoked.elapsed()
    );
    assert_eq!(
        env.push_metric(Creds::Bearer(&env.alpha), None, "after_revocation")
            .await,
        401
    );
    assert_eq!(
        env.push_metric(env.beta(), None, "beta_unaffected").await,
        200
    );

    // A new token for alpha through the admin API works at once.
    let req = env
        .client
        .post(format!("{}/admin/tenants/alpha/tokens", env.base()))
        .bearer_auth(&env.admin);
    let (status, _, text) = send(req).await;
    assert_eq!(status, 201, "{text}");
    let created: Value = serde_json::from_str(&text).unwrap();
    let new_alpha = created["token"].as_str().unwrap();
    assert_eq!(
        env.push_metric(Creds::Basic("alpha", new_alpha), None, "with_new_token")
            .await,
        200
    );

    // With strata-admin in the file: the running service reloads it.
    let beta_id = Env::id_of(&ids, "beta");
    strata_admin(&[
        "tokens",
        "revoke",
        "--tenants-file",
        env.tenants_file.to_str().unwrap(),
        "--tenant",
        "beta",
        "--id",
        &beta_id,
    ]);
    let revoked = Instant::now();
    let deadline = revoked + 2 * RELOAD_PERIOD + Duration::from_secs(5);
    loop {
        let status = env.push_metric(env.beta(), None, "after_revocation").await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            Instant::now() < deadline,
            "beta's token revoked in the file still works; log:\n{}",
            env.strata.proc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("file revocation in force after {:?}", revoked.elapsed());

    // A broken file keeps the last good version in force.
    std::fs::write(&env.tenants_file, "tenants: [broken").unwrap();
    let deadline = Instant::now() + 2 * RELOAD_PERIOD + Duration::from_secs(5);
    loop {
        let metrics = env.metrics().await;
        if metric_value(&metrics, "strata_auth_tenants_file_last_reload_successful") == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the broken file was not noticed:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        env.push_metric(Creds::Basic("alpha", new_alpha), None, "with_broken_file")
            .await,
        200
    );
    assert_eq!(
        env.push_metric(env.beta(), None, "with_broken_file").await,
        401
    );
    assert!(env
        .strata
        .proc
        .log_text()
        .contains("keeping the last good tenants file"));
}

/// Two ruler replicas in tokens mode: `/prometheus/api/v1/rules` gathers
/// the groups of both, and the replica asking the other passes the
/// request's credentials on, so the other's edge authenticates the same
/// tenant (without them it would refuse, and the answer would be a 503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ruler_replicas_pass_the_credentials_on() {
    let cluster = Cluster::start("auth-rulers", 1, 1).await.expect("cluster");
    let dir = tempfile::tempdir().unwrap();
    let tenants_file = dir.path().join("tenants.yaml");
    let alpha = create_token(&tenants_file, "alpha");
    let beta = create_token(&tenants_file, "beta");
    let mut flags = dynamo_ring_flags(&cluster.dynalite.endpoint(), 1);
    flags.extend([
        "--auth.mode=tokens".to_string(),
        format!("--auth.tenants-file={}", tenants_file.display()),
        format!(
            "--ruler.storage.directory={}",
            dir.path().join("rules").display()
        ),
        "--ruler.poll-interval=1s".to_string(),
        "--ruler.ring.heartbeat-period=1s".to_string(),
        "--ruler.ring.poll-interval=500ms".to_string(),
    ]);
    let mut rulers = Vec::new();
    for id in ["auth-ruler-a", "auth-ruler-b"] {
        let mut f = flags.clone();
        f.push(format!("--lifecycler.id={id}"));
        let mut r = Strata::start(id, "strata-ruler", &f);
        r.wait_ready().await.expect("ruler ready");
        rulers.push(r);
    }
    let client = reqwest::Client::new();
    // Groups of both tenants, through either replica.
    for (i, (tenant, token)) in [("alpha", &alpha), ("beta", &beta)].into_iter().enumerate() {
        for g in 0..4 {
            let body = format!(
                "name: {tenant}_g{g}\ninterval: 1s\nrules:\n  - record: {tenant}:g{g}\n    expr: vector({g})\n"
            );
            let req = client
                .post(format!(
                    "{}/prometheus/config/v1/rules/ns",
                    rulers[(i + g) % 2].http()
                ))
                .basic_auth(tenant, Some(token))
                .body(body);
            let (status, _, text) = send(req).await;
            assert_eq!(status, 202, "{text}");
        }
    }
    // Wait until the groups are shared out (8 in all, some on each): then
    // neither replica holds all of alpha's, and a full answer needs the
    // other's.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut loaded = Vec::new();
        for ruler in &rulers {
            let metrics = get_text(&client, &format!("{}/metrics", ruler.http()))
                .await
                .unwrap()
                .1;
            loaded.push(metric_value(&metrics, "strata_ruler_groups_loaded").unwrap_or(0.0));
        }
        if loaded.iter().sum::<f64>() == 8.0 && loaded.iter().all(|n| *n > 0.0) {
            eprintln!("groups per ruler: {loaded:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the groups were never shared out: {loaded:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Each replica answers with every group of the tenant, and only its.
    let want: Vec<String> = (0..4).map(|g| format!("alpha_g{g}")).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    for ruler in &rulers {
        loop {
            let req = client
                .get(format!("{}{API}/rules", ruler.http()))
                .basic_auth("alpha", Some(&alpha))
                .header("X-Scope-OrgID", "beta");
            let (status, _, text) = send(req).await;
            assert!(
                status == 200 || Instant::now() < deadline,
                "{}: {status} {text}",
                ruler.proc.name
            );
            assert!(
                !text.contains("beta_g"),
                "beta's groups in alpha's answer: {text}"
            );
            if status == 200 && want.iter().all(|g| text.contains(g.as_str())) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} never listed alpha's groups: {status} {text}",
                ruler.proc.name
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}
