//! PromQL queries: parse, plan (`select_requests`) and evaluation over a
//! tiny in-memory storage (see `strata_promql::fuzzing`).

#![no_main]

use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    install_panic_hook();
    LAST_PANIC.with(|p| p.borrow_mut().take());
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        strata_promql::fuzzing::check_query(data);
    }));
    if result.is_err() {
        // The panic escaped: a crash. Report where it happened, then
        // abort so libFuzzer saves the input.
        if let Some(report) = LAST_PANIC.with(|p| p.borrow_mut().take()) {
            eprintln!("{report}");
        }
        std::process::abort();
    }
});

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// `strata_promql::parse` catches the parser's panics on out-of-range
/// literals (`x[1e400]`) and turns them into `bad_data`, as the server
/// does. libfuzzer-sys's panic hook aborts on every panic, caught or not,
/// so it is replaced by one that only records the panic (message,
/// location, backtrace); the record is printed if the panic escapes the
/// check.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let report = format!(
                "panic in the promql fuzz target: {info}\n{}",
                Backtrace::force_capture()
            );
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(report));
        }));
    });
}
