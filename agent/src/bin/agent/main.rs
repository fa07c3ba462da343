//! gatehouse-agent: the agent daemon (`run`) and the CLI that asks it (`authorize`,
//! `authenticate`, `status`). Everything is in the library (`local::cli`, `daemon`).

use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    gatehouse_agent::local::cli::main(&args)
}
