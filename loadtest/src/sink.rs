//! A null remote write receiver: accepts every push and throws it away,
//! optionally decoding it first to check the generator's output. Used to
//! measure how fast the generator itself can go.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::Router;
use bytes::Bytes;
use clap::Args;
use strata_remote_write::{decompress, WriteRequestRef};

use crate::util::{human, parse_duration};

#[derive(Args, Debug)]
pub struct SinkArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9999")]
    pub listen: SocketAddr,
    /// Decompress and decode every request (answers 400 to bad ones) and
    /// count its samples.
    #[arg(long)]
    pub decode: bool,
    /// Exit after this long (the sink never runs unbounded).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub duration: Duration,
}

/// Counters of a running sink.
#[derive(Default)]
pub struct SinkStats {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    pub samples: AtomicU64,
    pub bad_requests: AtomicU64,
}

#[derive(Clone)]
struct SinkState {
    stats: Arc<SinkStats>,
    decode: bool,
}

const MAX_BODY: usize = 64 << 20;

async fn receive(State(state): State<SinkState>, body: Bytes) -> (StatusCode, String) {
    state.stats.requests.fetch_add(1, Ordering::Relaxed);
    state
        .stats
        .bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    if !state.decode {
        return (StatusCode::NO_CONTENT, String::new());
    }
    let raw = match decompress(&body, MAX_BODY) {
        Ok(raw) => raw,
        Err(e) => {
            state.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return (StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    match WriteRequestRef::decode(&raw) {
        Ok(req) => {
            state
                .stats
                .samples
                .fetch_add(req.sample_count() as u64, Ordering::Relaxed);
            (StatusCode::NO_CONTENT, String::new())
        }
        Err(e) => {
            state.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            (StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}

/// Starts a sink on `addr` in the current runtime; returns its address.
pub async fn spawn(addr: SocketAddr, decode: bool) -> anyhow::Result<(SocketAddr, Arc<SinkStats>)> {
    let stats = Arc::new(SinkStats::default());
    let app = Router::new()
        .fallback(receive)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(SinkState {
            stats: stats.clone(),
            decode,
        });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("sink: server error: {e}");
        }
    });
    Ok((local, stats))
}

pub async fn run(args: SinkArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.listen.ip().is_loopback(),
        "the sink only listens on a loopback address, not {}",
        args.listen
    );
    let (addr, stats) = spawn(args.listen, args.decode).await?;
    eprintln!(
        "sink: listening on http://{addr} (decode={}) for at most {:?}",
        args.decode, args.duration
    );
    let start = Instant::now();
    let deadline = tokio::time::sleep(args.duration);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    let mut last = 0u64;
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let n = stats.samples.load(Ordering::Relaxed);
                eprintln!(
                    "sink: {} requests, {} samples/s over the last 10 s, {} bad",
                    stats.requests.load(Ordering::Relaxed),
                    human((n - last) as f64 / 10.0),
                    stats.bad_requests.load(Ordering::Relaxed)
                );
                last = n;
            }
        }
    }
    eprintln!(
        "sink: done after {:.1} s: {} requests, {} bytes, {} samples decoded, {} bad",
        start.elapsed().as_secs_f64(),
        stats.requests.load(Ordering::Relaxed),
        stats.bytes.load(Ordering::Relaxed),
        stats.samples.load(Ordering::Relaxed),
        stats.bad_requests.load(Ordering::Relaxed)
    );
    Ok(())
}
