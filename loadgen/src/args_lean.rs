//! Options of the lean-client subcommands (`redis`, `direct`): parsed into typed settings with
//! a clear message for every mistake. Pure; part of [`super`].

use super::options::Options;
use super::{ArgError, DirectArgs, RedisArgs, DEFAULT_DURATION_S, MAX_CONNECTIONS};

pub(super) fn parse_redis(o: &Options) -> Result<RedisArgs, ArgError> {
    let addr = o.get("--addr").ok_or(ArgError::Required("--addr"))?;
    Ok(RedisArgs {
        addr: o.addr("--addr", addr)?,
        connections: o
            .number("--connections", 1, MAX_CONNECTIONS)?
            .ok_or(ArgError::Required("--connections"))?,
        duration: o.seconds("--duration", DEFAULT_DURATION_S)?,
        json: o.path("--json"),
        pin_cpu: o.number("--pin-cpu", 0, 1023)?,
    })
}

pub(super) fn parse_direct(o: &Options) -> Result<DirectArgs, ArgError> {
    let server = o.get("--server").ok_or(ArgError::Required("--server"))?;
    Ok(DirectArgs {
        server: o.addr("--server", server)?,
        identities: o
            .path("--identities")
            .ok_or(ArgError::Required("--identities"))?,
        agents: o
            .number("--agents", 1, MAX_CONNECTIONS)?
            .ok_or(ArgError::Required("--agents"))?,
        duration: o.seconds("--duration", DEFAULT_DURATION_S)?,
        json: o.path("--json"),
        pin_cpu: o.number("--pin-cpu", 0, 1023)?,
        seed: o.number("--seed", 0, u64::MAX)?.unwrap_or(1),
    })
}
