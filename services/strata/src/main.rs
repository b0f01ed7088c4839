//! The one-process mode: distributor, ingester, querier and ruler in one
//! process, with an in-memory ring. For small installs, development and
//! `make run`.

fn main() -> std::process::ExitCode {
    strata_app::main_for(strata_app::Role::All)
}
