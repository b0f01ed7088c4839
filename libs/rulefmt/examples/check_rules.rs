//! `promtool check rules` for our parser:
//! `cargo run -p strata-rulefmt --example check_rules -- FILE...`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut failed = false;
    for path in std::env::args().skip(1) {
        println!("Checking {path}");
        let result = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| strata_rulefmt::parse_rule_file(&text).map_err(|e| e.to_string()));
        match result {
            Ok(file) => println!("  SUCCESS: {} rules found", file.rule_count()),
            Err(e) => {
                failed = true;
                println!("  FAILED:");
                for line in e.lines() {
                    println!("{path}: {line}");
                }
            }
        }
        println!();
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
