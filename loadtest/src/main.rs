//! `strata-loadgen`: remote write and query load generator for Strata and
//! any Prometheus-compatible peer, a correctness check, a null receiver and
//! the report writer of `make bench-compare`. See `loadtest/README.md`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod mixed;
mod model;
mod query;
mod report;
mod sink;
mod util;
mod verify;
mod write;

#[derive(Parser)]
#[command(
    name = "strata-loadgen",
    version,
    about = "Load generator for Prometheus-compatible backends"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Push remote write 1.0 requests for N active series.
    Write(write::WriteArgs),
    /// Run a dashboard-like PromQL query mix and measure latency.
    Query(query::QueryArgs),
    /// Push at a fixed rate, alone and then while heavy queries run.
    Mixed(mixed::MixedArgs),
    /// Write known series, read them back, report mismatches (exit 1).
    Verify(verify::VerifyArgs),
    /// A remote write receiver that discards everything.
    Sink(sink::SinkArgs),
    /// Turn a bench-compare results directory into a markdown section.
    Report(report::ReportArgs),
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Write(args) => {
            let json = args.json;
            let r = write::run(args).await?;
            if json {
                print_json(&r)?;
            } else {
                write::print_human(&r);
            }
            Ok(true)
        }
        Command::Query(args) => {
            if args.list {
                query::list();
                return Ok(true);
            }
            let json = args.json;
            let r = query::run(args).await?;
            if json {
                print_json(&r)?;
            } else {
                query::print_human(&r);
            }
            Ok(true)
        }
        Command::Mixed(args) => {
            let json = args.json;
            let r = mixed::run(args).await?;
            if json {
                print_json(&r)?;
            } else {
                mixed::print_human(&r);
            }
            Ok(true)
        }
        Command::Verify(args) => {
            let json = args.json;
            let r = verify::run(args).await?;
            if json {
                print_json(&r)?;
            } else {
                verify::print_human(&r);
            }
            Ok(r.ok)
        }
        Command::Sink(args) => {
            sink::run(args).await?;
            Ok(true)
        }
        Command::Report(args) => {
            report::run(&args)?;
            Ok(true)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strata-loadgen: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("strata-loadgen: {e:#}");
            ExitCode::from(2)
        }
    }
}
