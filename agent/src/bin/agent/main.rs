//! gatehouse-agent: the agent daemon (`run`) and the CLI that asks it (`authorize`,
//! `authenticate`, `status`). Everything is in the library (`local::cli`, `daemon`).

use std::process::ExitCode;

fn main() -> ExitCode {
    gatehouse_common::service::logging::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    gatehouse_agent::local::cli::main(&args)
}
