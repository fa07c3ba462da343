//! gatehouse-loadgen: simulated agents, provisioning, the loopback demo and a redis load
//! client. All logic is in the library (`gatehouse_loadgen`); see docs/LOADGEN.md.

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    gatehouse_loadgen::cli::main(&args)
}
