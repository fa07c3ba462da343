//! gatehouse-agent: the agent daemon (`run`) and the CLI that asks it (`authorize`,
//! `authenticate`, `status`). Everything is in the library (`local::cli`, `daemon`).

use std::process::ExitCode;

fn main() -> ExitCode {
    // This process's own user and group lookups (if glibc ever makes any) must never reach
    // the agent through libnss_gatehouse: it would wait on itself. Set before any thread
    // starts, as `set_var` requires.
    std::env::set_var("GATEHOUSE_NSS_BYPASS", "1");
    gatehouse_common::service::logging::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    gatehouse_agent::local::cli::main(&args)
}
