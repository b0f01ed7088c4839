//! `strata-admin`: manages the API tokens of a tenants file and makes admin
//! tokens (`docs/auth.md`). The logic is in `strata_auth::cli`.

fn main() -> std::process::ExitCode {
    let stdin = std::io::stdin();
    strata_auth::cli::run(
        std::env::args_os(),
        &mut stdin.lock(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
}
