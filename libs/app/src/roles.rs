use std::process::ExitCode;
use std::time::Duration;

use strata_server::{load_config_with, shutdown_signal, LoadedConfig};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::modules::ModuleName;
use crate::runner::run;

/// Which parts a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything in one process (in-memory ring, replication factor 1).
    All,
    Distributor,
    Ingester,
    Querier,
    Ruler,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Distributor => "distributor",
            Role::Ingester => "ingester",
            Role::Querier => "querier",
            Role::Ruler => "ruler",
        }
    }

    /// The modules this role runs; the runner adds what they need (see
    /// `crate::modules` for the graph), and the HTTP server.
    pub(crate) fn targets(self) -> &'static [ModuleName] {
        use ModuleName::*;
        match self {
            Role::All => &[Ingester, PushApi, QueryApi, Ruler],
            Role::Distributor => &[PushApi],
            Role::Ingester => &[Ingester],
            Role::Querier => &[QueryApi],
            Role::Ruler => &[Ruler],
        }
    }
}

/// The `main` of every service binary: parses flags, runs the role until
/// SIGTERM/SIGINT, and maps failures to a non-zero exit code.
pub fn main_for(role: Role) -> ExitCode {
    let program = match role {
        Role::All => "strata".to_string(),
        other => format!("strata-{}", other.name()),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let defaults = match role {
        Role::All => Config::single_process_defaults(),
        _ => Config::default(),
    };
    let config = match load_config_with(&defaults, &program, &args) {
        Ok(LoadedConfig::Run(c)) => c,
        Ok(LoadedConfig::Help(text)) | Ok(LoadedConfig::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{program}: {e}");
            return ExitCode::from(2);
        }
    };
    strata_server::logging::init_logging(&program);
    strata_server::memory::start_heap_trimmer(Duration::from_secs(5));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{program}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        shutdown_signal(shutdown.clone());
        run(role, config, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "exiting");
            eprintln!("{program}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
