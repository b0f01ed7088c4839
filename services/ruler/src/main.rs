//! The ruler service. All logic lives in `strata-app` and the libraries.

fn main() -> std::process::ExitCode {
    strata_app::main_for(strata_app::Role::Ruler)
}
